"""The Laplacian's eigenbases and the exact float32 products the heat solvers use."""

import numpy as np
import pytest
from keras import ops

from diffnet_tf import spectral


def minus_laplacian(n, boundary):
    """tridiag(-1, 2, -1) of size n; a mirrored neighbour (Neumann) takes 1 off each end."""
    matrix = 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    if boundary == "neumann":
        matrix[0, 0] -= 1.0
        matrix[-1, -1] -= 1.0
    return matrix


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_the_eigenbasis_is_orthonormal_and_diagonalises_the_laplacian(boundary, n):
    matrix, eigenvalues = spectral.laplacian_eigenbasis(n, boundary)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(matrix @ minus_laplacian(n, boundary) @ matrix.T,
                               np.diag(eigenvalues), atol=1e-12)


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_the_propagator_is_the_matrix_exponential(boundary):
    values, vectors = np.linalg.eigh(-minus_laplacian(9, boundary))
    np.testing.assert_allclose(spectral.propagator(9, 0.8, boundary),
                               (vectors * np.exp(0.8 * values)) @ vectors.T, atol=1e-12)


def test_exact_product_is_the_float64_product_along_either_axis_in_any_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    u, matrix = rng.random((5, 6, 7, 2), np.float32), rng.standard_normal((4, 6))
    rows = ops.convert_to_numpy(spectral.exact_product(matrix, u, 1))
    np.testing.assert_allclose(rows, np.einsum("ij,bjkc->bikc", matrix, u), atol=1e-6)
    other = rng.standard_normal((3, 7))
    np.testing.assert_allclose(ops.convert_to_numpy(spectral.exact_product(other, u, 2)),
                               np.einsum("lk,bjkc->bjlc", other, u), atol=1e-6)
    monkeypatch.setattr(spectral, "PRODUCT_ELEMENTS", 1)  # one image at a time
    np.testing.assert_allclose(ops.convert_to_numpy(spectral.exact_product(matrix, u, 1)), rows,
                               atol=1e-7)


def test_the_transforms_use_no_matrix_product_and_invert_each_other(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a matrix product, which a GPU rounds to TF32")

    for name in ("einsum", "matmul", "tensordot", "dot"):
        monkeypatch.setattr(ops, name, refuse)
    u = np.random.default_rng(1).random((2, 8, 11, 1), np.float32)
    for boundary in ("neumann", "zero"):
        coefficients = spectral.transform(u, boundary)
        back = ops.convert_to_numpy(spectral.transform(coefficients, boundary, inverse=True))
        np.testing.assert_allclose(back, u, atol=1e-6)
