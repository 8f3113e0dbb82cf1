"""The discrete Laplacian's eigenbases and products that are exact in float32 on every
device: what the heat solvers (`physics.heat`) and the classical baseline
(`baselines.tikhonov`) work in.

Minus the 5-point Laplacian (eq. 4.1 with gamma = 1) is the sum of two 1-D Laplacians, one
per image axis, each diagonalised by an orthonormal transform: the DCT-II for the
zero-Neumann boundary (eq. 4.5), the DST-I for a zero exterior (the authors' AnisoDiff2d.m).
`exact_product` applies such a matrix along an image axis as elementwise float32 products
summed in float32, never a matrix product, so no device rounds it to TF32
(docs/DESIGN.md, "Precision"). keras.ops and NumPy only.
"""

import math

import numpy as np
from keras import ops

from diffnet_tf.checks import BOUNDARIES, check_choice

PRODUCT_ELEMENTS = 2**24  # the most float32 terms one exact product holds at once (64 MiB)


def laplacian_eigenbasis(n, boundary="neumann"):
    """The orthonormal eigenbasis of minus the 1-D discrete Laplacian tridiag(-1, 2, -1) of
    size n, and its eigenvalues (float64).

    'neumann' (eq. 4.5, a mirrored neighbour: the corner entries are 1, not 2): the DCT-II,
    eigenvalues 2 - 2 cos(pi k / n), k = 0 .. n-1. 'zero' (the zero exterior of the
    authors' AnisoDiff2d.m, a Dirichlet condition): the DST-I, eigenvalues
    2 - 2 cos(pi k / (n + 1)), k = 1 .. n.

    Returns:
        (matrix (n, n), eigenvalues (n,)): matrix @ x is x in the eigenbasis.
    """
    check_choice(boundary, BOUNDARIES, "boundary")
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    if boundary == "zero":
        matrix = np.sqrt(2.0 / (n + 1)) * np.sin(math.pi * (i + 1) * (k + 1) / (n + 1))
        return matrix, 2.0 - 2.0 * np.cos(math.pi * np.arange(1, n + 1) / (n + 1))
    matrix = np.sqrt(2.0 / n) * np.cos(math.pi * (i + 0.5) * k / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix, 2.0 - 2.0 * np.cos(math.pi * np.arange(n) / n)


def propagator(n, t, boundary="neumann"):
    """exp(t L) for the 1-D Laplacian L of size n, (n, n) float64: M' diag(exp(-t lambda)) M
    with (M, lambda) = `laplacian_eigenbasis`."""
    matrix, eigenvalues = laplacian_eigenbasis(n, boundary)
    return (matrix.T * np.exp(-t * eigenvalues)) @ matrix


def exact_product(matrix, u, axis):
    """matrix (m, n) applied along image axis 1 (rows) or 2 (columns) of u (B, .., .., C):
    out[b, i, k, c] = sum_j matrix[i, j] u[b, j, k, c] for axis 1.

    Float32 products summed in float32, never a matrix product or einsum: GPUs round the
    inputs of float32 matrix products to 10 mantissa bits (TF32) by default on TensorFlow
    and JAX, which elementwise products and sums never do, so the result is the same on
    every device to float32 rounding (docs/DESIGN.md, "Precision"). At most
    PRODUCT_ELEMENTS terms are held at once (in batches of images); compiled (XLA) the
    products fuse into the sums.

    Returns:
        (B, m, W, C) for axis 1, (B, H, m, C) for axis 2.
    """
    if axis == 2:
        return ops.transpose(exact_product(matrix, ops.transpose(u, (0, 2, 1, 3)), 1),
                             (0, 2, 1, 3))
    weights = ops.convert_to_tensor(np.asarray(matrix, np.float32))[None, :, :, None, None]

    def product(images):
        return ops.sum(weights * images[:, None], axis=2)

    batch, terms = u.shape[0], math.prod(matrix.shape) * math.prod(u.shape[2:])
    step = max(1, PRODUCT_ELEMENTS // terms)
    if batch is None or batch <= step:
        return product(u)
    return ops.concatenate([product(u[i : i + step]) for i in range(0, batch, step)], axis=0)


def laplacian_eigenvalues(height, width, boundary="neumann"):
    """The eigenvalues of minus the 2-D Laplacian on a height x width grid, (height, width)
    float64: lambda_i + mu_k, in the order of `transform`'s coefficients."""
    rows, columns = (laplacian_eigenbasis(n, boundary)[1] for n in (height, width))
    return rows[:, None] + columns[None, :]


def transform(u, boundary="neumann", inverse=False):
    """Images in the 2-D eigenbasis of the Laplacian (coefficient [i, k] of eigenvalue
    lambda_i + mu_k), or back with `inverse`; exact float32 (`exact_product`).

    Args:
        u: (B, H, W, C) float32 tensor: images, or coefficients with `inverse`.
        boundary: 'neumann' (DCT-II) or 'zero' (DST-I).
        inverse: map coefficients back to images (the transforms are orthonormal).

    Returns:
        (B, H, W, C) float32 tensor.
    """
    rows, columns = (laplacian_eigenbasis(n, boundary)[0] for n in u.shape[1:3])
    if inverse:
        rows, columns = rows.T, columns.T
    return exact_product(columns, exact_product(rows, u, 1), 2)
