"""Invariants of the forward solvers and agreement with independent NumPy references."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from diffnet_tf import physics, problems, spec


def random_images(shape=(3, 13, 18, 1), seed=0, low=0.0):
    return np.random.default_rng(seed).uniform(low, 1.0, shape).astype(np.float32)


def numpy_perona_malik_original(u, steps, dt, lam):
    """The released MATLAB data script as PAPER_FACTS.md describes it: |grad u| from
    backward differences, face diffusivity = mean of the two pixels' diffusivities, flux =
    face diffusivity x difference, exterior value and diffusivity zero."""
    u = u[..., 0].astype(np.float64)
    for _ in range(steps):
        p = np.pad(u, ((0, 0), (1, 1), (1, 1)))  # zero exterior value
        grad_sq = (p[:, 1:-1, 1:-1] - p[:, :-2, 1:-1]) ** 2 + (p[:, 1:-1, 1:-1] - p[:, 1:-1, :-2]) ** 2
        g = np.pad(1.0 / (1.0 + grad_sq / lam**2), ((0, 0), (1, 1), (1, 1)))  # zero exterior
        centre = u.copy()
        flux = np.zeros_like(u)
        for di, dj in [(-1, 0), (0, -1), (1, 0), (0, 1)]:
            neighbour = p[:, 1 + di : p.shape[1] - 1 + di, 1 + dj : p.shape[2] - 1 + dj]
            g_nb = g[:, 1 + di : g.shape[1] - 1 + di, 1 + dj : g.shape[2] - 1 + dj]
            face = 0.5 * (g[:, 1:-1, 1:-1] + g_nb)
            flux += face * (neighbour - centre)
        u = u + dt * flux
    return u[..., None]


def test_original_convention_matches_numpy_reference():
    u = random_images()
    expected = numpy_perona_malik_original(u, steps=4, dt=0.1, lam=0.2)
    result = ops.convert_to_numpy(physics.perona_malik(u, convention="original"))
    np.testing.assert_allclose(result, expected, atol=1e-5)


@pytest.mark.parametrize("method", physics.HEAT_METHODS)
def test_heat_keeps_constant_images_constant(method):
    u = np.full((2, 9, 14, 1), 0.7, np.float32)
    out = ops.convert_to_numpy(physics.heat(u, 1.5, method=method))
    np.testing.assert_allclose(out, u, atol=1e-6)


def test_perona_malik_keeps_constant_images_constant():
    u = np.full((2, 16, 21, 1), 0.7, np.float32)
    out = ops.convert_to_numpy(physics.perona_malik(u, convention="neumann"))
    np.testing.assert_allclose(out, u, atol=1e-6)
    # 'original' has a zero exterior, so only the boundary layer moves: information travels
    # one pixel per step, and pixels farther than `steps` from the edge keep their value.
    steps = 4
    out = ops.convert_to_numpy(physics.perona_malik(u, steps=steps, convention="original"))
    interior = (slice(None), slice(steps, -steps), slice(steps, -steps))
    np.testing.assert_allclose(out[interior], u[interior], atol=1e-6)
    assert out[:, 0, 0, 0].max() < 0.7


@pytest.mark.parametrize(
    "solve",
    [
        lambda u: physics.perona_malik(u, convention="neumann"),
        lambda u: physics.perona_malik(u, steps=3, dt=0.25, diffusivity="exponential"),
        lambda u: physics.heat(u, 2.0, method="exact"),
        lambda u: physics.heat(u, 2.0, method="explicit"),
        lambda u: physics.heat(u, 2.0, method="implicit", dt=0.5),
    ],
)
def test_neumann_solvers_conserve_mass(solve):
    u = random_images()
    mass = u.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(solve(u)).sum(axis=(1, 2, 3)), mass, rtol=1e-5)


@pytest.mark.parametrize("solve", [
    lambda u: physics.perona_malik(u, convention="original"),
    *[lambda u, m=method: physics.heat(u, 1.0, m, boundary="zero") for method in physics.HEAT_METHODS],
])
def test_a_zero_exterior_loses_mass_through_the_boundary(solve):
    u = random_images()
    out = ops.convert_to_numpy(solve(u))
    assert np.all(out.sum(axis=(1, 2, 3)) < u.sum(axis=(1, 2, 3)))


@pytest.mark.parametrize("convention", ["neumann", "original"])
def test_perona_malik_obeys_max_min_principle_up_to_the_cfl_bound(convention):
    u = random_images(low=-1.0)
    out = ops.convert_to_numpy(
        physics.perona_malik(u, steps=6, dt=0.25, lam=1.0, convention=convention))
    # The 'original' exterior is zero, so zero joins the range of values.
    low, high = (u.min(), u.max()) if convention == "neumann" else (min(u.min(), 0), max(u.max(), 0))
    assert out.min() >= low - 1e-6 and out.max() <= high + 1e-6


def test_explicit_heat_obeys_max_min_principle_at_the_cfl_bound():
    u = random_images(low=-1.0)
    out = ops.convert_to_numpy(physics.heat(u, 3.0, method="explicit", dt=0.25))
    assert out.min() >= u.min() - 1e-6 and out.max() <= u.max() + 1e-6


@pytest.mark.parametrize("method", ["explicit", "implicit"])
@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_stepped_heat_converges_to_exact_at_first_order(method, boundary):
    u = random_images()
    exact = ops.convert_to_numpy(physics.heat(u, 1.0, method="exact", boundary=boundary))
    errors = [
        np.abs(ops.convert_to_numpy(physics.heat(u, 1.0, method, dt, boundary)) - exact).max()
        for dt in (0.1, 0.05, 0.025, 0.0125)
    ]
    assert all(fine < 0.6 * coarse for coarse, fine in zip(errors, errors[1:]))
    assert errors[-1] < 3e-3


def test_heat_matches_gaussian_convolution_away_from_the_boundary():
    t, n = 16.0, 97  # sigma = sqrt(2 t) = 5.7 px, the boundary 8 sigma away
    u = np.zeros((1, n, n, 1), np.float32)
    u[0, n // 2, n // 2, 0] = 1.0
    out = ops.convert_to_numpy(physics.heat(u, t))[0, :, :, 0]
    x = np.arange(n) - n // 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    gaussian = np.exp(-r2 / (4 * t)) / (4 * math.pi * t)  # G_sqrt(2t), eq. (2.3)
    assert np.abs(out - gaussian).max() < 0.02 * gaussian.max()
    # The discrete heat kernel spreads with variance exactly 2t per axis, like G_sqrt(2t).
    np.testing.assert_allclose((out * x[:, None] ** 2).sum(), 2 * t, rtol=1e-4)


def test_solvers_accept_any_size_and_return_float32():
    u = random_images((2, 5, 31, 1)).astype(np.float64)
    for out in (physics.perona_malik(u), physics.heat(u), physics.add_noise(u, 0.1, seed=1)):
        assert tuple(out.shape) == (2, 5, 31, 1)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_add_noise_is_seeded_and_scaled_by_each_image_maximum():
    u = random_images((2, 64, 64, 1))
    u[1] *= 0.5  # second image's maximum is half the first's
    a, b = physics.add_noise(u, 0.01, seed=3), physics.add_noise(u, 0.01, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, physics.add_noise(u, 0.01, seed=4))
    sigma = (a - u).std(axis=(1, 2, 3))
    np.testing.assert_allclose(sigma, 0.01 * u.max(axis=(1, 2, 3)), rtol=0.05)
    np.testing.assert_array_equal(physics.add_noise(u, 0.0, seed=3), u)
    assert (u == random_images((2, 64, 64, 1)) * [[[[1.0]]], [[[0.5]]]]).all()  # input untouched


def test_add_noise_of_an_image_depends_only_on_its_pool_index():
    u = random_images((5, 16, 16, 1))
    whole = physics.add_noise(u, 0.1, seed=2)
    tail = physics.add_noise(u[3:], 0.1, seed=2, start=3)
    np.testing.assert_array_equal(whole[3:], tail)
    assert not np.array_equal(whole[:2], physics.add_noise(u[:2], 0.1, seed=2, start=3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: physics.perona_malik(np.zeros((4, 4, 1), np.float32)), r"shape \(B, H, W, C\).*wrong rank"),
        (lambda: physics.heat(np.zeros((1, 4, 4), np.float32)), r"wrong rank.*\(1, 4, 4\)"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.uint8)), "floating-point dtype.*uint8"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), convention="dirichlet"), "Unknown convention 'dirichlet'"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), diffusivity="tukey"), "Unknown diffusivity 'tukey'"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), dt=0.3), "Unstable explicit step.*dt=0.3"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), method="explicit", dt=0.26), "Unstable explicit step"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), lam=0.0), "lam > 0"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), steps=-1), "integer >= 0"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), t=-1.0), "t >= 0"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), method="crank_nicolson"), "Unknown method 'crank_nicolson'"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), boundary="periodic"), "Unknown boundary 'periodic'"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), method="implicit", dt=0.0), "dt > 0"),
        (lambda: physics.add_noise(np.zeros((1, 4, 4, 1), np.float32), -0.01, seed=0), "noise level >= 0"),
        (lambda: physics.add_noise(np.zeros((1, 4, 4, 1), np.float32), np.inf, seed=0), "noise level to be a finite"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), dt=np.nan), "dt to be a finite"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 1), np.float32), lam=np.inf), "lam to be a finite"),
        (lambda: physics.heat(np.zeros((1, 4, 4, 1), np.float32), t=np.nan), "t to be a finite"),
        (lambda: physics.perona_malik(np.zeros((1, 4, 4, 3), np.float32), coupling="mean"), "Unknown coupling 'mean'"),
    ],
)
def test_bad_arguments_raise_value_errors_that_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def tensorflow_dct_heat(u, t):
    """The exact heat solver as it was written with tf.signal.dct (an independent reference
    for the DCT-II matrices of physics.heat)."""
    tf = pytest.importorskip("tensorflow", reason="tf.signal.dct is the reference")

    def dct2(x, transform):
        x = transform(x, type=2, norm="ortho")
        return tf.linalg.matrix_transpose(transform(tf.linalg.matrix_transpose(x), type=2,
                                                    norm="ortho"))

    h, w = u.shape[1:3]
    eig = [2.0 - 2.0 * tf.cos(math.pi * tf.range(n, dtype=tf.float32) / n) for n in (h, w)]
    decay = tf.exp(-t * (eig[0][:, None] + eig[1][None, :]))
    channels = [dct2(dct2(u[..., c], tf.signal.dct) * decay, tf.signal.idct)
                for c in range(u.shape[-1])]
    return np.stack([c.numpy() for c in channels], axis=-1)


@pytest.mark.parametrize("shape, t", [((3, 13, 18, 1), 1.0), ((2, 64, 64, 1), 0.3),
                                      ((2, 9, 20, 3), 2.5)])
def test_exact_heat_equals_the_tf_signal_dct_solver(shape, t):
    u = random_images(shape)
    np.testing.assert_allclose(ops.convert_to_numpy(physics.heat(u, t)), tensorflow_dct_heat(u, t),
                               atol=1e-6)


# ---------------------------------------------------------------- colour (B, H, W, C)


@pytest.mark.parametrize("coupling", ["shared", "channelwise"])
@pytest.mark.parametrize("convention", ["neumann", "original"])
def test_identical_channels_give_the_grey_result_in_each_channel(coupling, convention):
    grey = random_images((2, 12, 17, 1))
    colour = np.repeat(grey, 3, axis=-1)
    expected = ops.convert_to_numpy(physics.perona_malik(grey, convention=convention))
    result = ops.convert_to_numpy(
        physics.perona_malik(colour, convention=convention, coupling=coupling))
    for c in range(3):
        np.testing.assert_allclose(result[..., c], expected[..., 0], atol=1e-6)
    for method in ("exact", "explicit"):
        heated = ops.convert_to_numpy(physics.heat(colour, 0.7, method=method))
        np.testing.assert_allclose(heated, np.repeat(ops.convert_to_numpy(
            physics.heat(grey, 0.7, method=method)), 3, axis=-1), atol=1e-6)


@pytest.mark.parametrize("solve", [
    lambda u: physics.perona_malik(u, coupling="shared"),
    lambda u: physics.perona_malik(u, coupling="channelwise"),
    lambda u: physics.heat(u, 2.0, method="exact"),
    lambda u: physics.heat(u, 2.0, method="explicit"),
])
def test_colour_solvers_conserve_mass_and_the_range_per_channel(solve):
    u = random_images((2, 11, 14, 3), low=-1.0)
    u[..., 1] *= 0.3  # channels of different ranges
    out = ops.convert_to_numpy(solve(u))
    np.testing.assert_allclose(out.sum(axis=(1, 2)), u.sum(axis=(1, 2)), rtol=1e-5, atol=1e-4)
    assert (out.min(axis=(1, 2)) >= u.min(axis=(1, 2)) - 1e-6).all()
    assert (out.max(axis=(1, 2)) <= u.max(axis=(1, 2)) + 1e-6).all()


def test_shared_coupling_diffuses_less_across_an_edge_any_channel_has():
    """One diffusivity for all channels: an edge in red alone slows green's diffusion
    there, which channelwise diffusion does not do."""
    u = np.zeros((1, 16, 16, 3), np.float32)
    u[..., :, 8:, 0] = 1.0  # a red edge
    u[..., 1] = np.random.default_rng(0).random((16, 16)) * 0.1  # green texture
    shared = ops.convert_to_numpy(physics.perona_malik(u, coupling="shared"))[..., 1]
    alone = ops.convert_to_numpy(physics.perona_malik(u, coupling="channelwise"))[..., 1]
    def change(out, columns):
        return np.abs(out - u[..., 1])[:, :, columns].mean()

    edge, far = slice(8, 9), slice(0, 4)  # the column of red's backward difference; far off
    assert change(shared, edge) < 0.7 * change(alone, edge)
    assert change(shared, far) == pytest.approx(change(alone, far), rel=0.05)


def test_colour_perona_malik_is_vector_valued_by_default():
    rng = np.random.default_rng(3)
    u = rng.uniform(size=(2, 12, 10, 3)).astype(np.float32)
    default = physics.perona_malik(u)
    np.testing.assert_array_equal(ops.convert_to_numpy(default),
                                  ops.convert_to_numpy(physics.perona_malik(u, coupling="shared")))
    assert np.abs(ops.convert_to_numpy(default) -
                  ops.convert_to_numpy(physics.perona_malik(u, coupling="channelwise"))).max() > 1e-4


# ---------------------------------------------------------------- the authors' isotropic solvers


def aniso_diff_2d_iso(image, solver, iterations, delta_t, exterior="zero"):
    """A NumPy port of the isotropic branch of the authors' AnisoDiff2d.m (ADtype 'Iso',
    repository imageFlowNet/DiffNet, dataCreation/): for an N x N image,
    D1x = spdiags([-1 1], -1:0, N+1, N) (the differences across every pixel face, the first
    and last faces to a zero exterior), Lapl = -(D1x2d' D1x2d + D1y2d' D1y2d) with
    D1x2d = kron(I, D1x), D1y2d = kron(D1x, I); 'Explicit': h <- (I + dt Lapl) h and
    'Implicit': h <- (I - dt Lapl) \\ h, ADiter times. Not in the script: 'Exact',
    h <- expm(dt Lapl) h, and exterior 'neumann', which drops the two faces to the exterior
    (zero flux, eq. 4.5). Float64."""
    n = image.shape[0]
    d1x = np.zeros((n + 1, n))
    d1x[np.arange(n), np.arange(n)] = 1.0
    d1x[np.arange(1, n + 1), np.arange(n)] = -1.0
    if exterior == "neumann":
        d1x = d1x[1:-1]
    d1x2d, d1y2d = np.kron(np.eye(n), d1x), np.kron(d1x, np.eye(n))
    lapl = -(d1x2d.T @ d1x2d + d1y2d.T @ d1y2d)
    if solver == "Exact":
        values, vectors = np.linalg.eigh(lapl)
        step = (vectors * np.exp(delta_t * values)) @ vectors.T
    elif solver == "Explicit":
        step = np.eye(n * n) + delta_t * lapl
    else:
        step = np.linalg.inv(np.eye(n * n) - delta_t * lapl)
    h = image.astype(np.float64).reshape(-1)
    for _ in range(iterations):
        h = step @ h
    return h.reshape(n, n)


def ported(images, *arguments):
    return np.stack([aniso_diff_2d_iso(image[..., 0], *arguments) for image in images])[..., None]


# DataSpec.heat_solver -> the port's (solver, ADiter, ADdeltaT, exterior) at T = 1
DATA_SOLVERS = {"exact": ("Exact", 1, 1.0, "neumann"), "explicit": ("Explicit", 10, 0.1, "zero"),
                "implicit": ("Implicit", 1, 1.0, "zero")}


@pytest.mark.parametrize("solver", list(problems.HEAT_SOLVERS))
def test_each_heat_solver_of_the_data_agrees_with_the_port_of_anisodiff2d(solver):
    data = spec.protocol("deconvolution").replace(data={"heat_solver": solver}).data
    assert data.heat_time == 1.0
    images = random_images((2, 12, 12, 1))
    result = ops.convert_to_numpy(problems.get(data.problem).physics.forward(images, data))
    np.testing.assert_allclose(result, ported(images, *DATA_SOLVERS[solver]), atol=1e-6)


@pytest.mark.parametrize("method, steps, boundary", [
    ("exact", 1, "zero"), ("explicit", 4, "neumann"), ("implicit", 3, "neumann"),
    ("implicit", 2, "zero")])
def test_heat_agrees_with_the_port_of_anisodiff2d_for_any_steps_and_boundary(method, steps,
                                                                            boundary):
    images, t = random_images((2, 9, 9, 1), seed=1), 0.7
    result = ops.convert_to_numpy(physics.heat(images, t, method, t / steps, boundary))
    np.testing.assert_allclose(
        result, ported(images, method.capitalize(), steps, t / steps, boundary), atol=1e-6)


# ---------------------------------------------------------------- true float32 on every device


def tf32(array):
    """float32 values rounded to TF32's 10-bit mantissa (to nearest, ties to even): what
    NVIDIA GPUs since Ampere do by default to the inputs of float32 matrix products and
    convolutions on TensorFlow and JAX."""
    bits = np.ascontiguousarray(array, np.float32).view(np.uint32)
    bits = (bits + np.uint32(0xFFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)
    return bits.view(np.float32)


@pytest.fixture
def tf32_matrix_products(monkeypatch):
    """keras.ops' matrix products and convolutions round their float32 inputs as TF32 does:
    a GPU's default precision, emulated on any device."""
    def rounded(op):
        def call(*args, **kwargs):
            args = [ops.convert_to_tensor(tf32(ops.convert_to_numpy(a)))
                    if hasattr(a, "dtype") and keras.backend.standardize_dtype(a.dtype) == "float32"
                    else a for a in args]
            return op(*args, **kwargs)
        return call

    for name in ("einsum", "matmul", "tensordot", "dot", "inner", "conv", "depthwise_conv",
                 "separable_conv", "conv_transpose"):
        monkeypatch.setattr(ops, name, rounded(getattr(ops, name)))


def test_the_emulation_rounds_matrix_products(tf32_matrix_products):
    a, b = random_images((1, 1, 64, 64))[0, 0], random_images((1, 1, 64, 64), seed=1)[0, 0]
    error = np.abs(ops.convert_to_numpy(ops.matmul(a, b)) - a.astype(np.float64) @ b).max()
    assert error > 1e-4


@pytest.mark.parametrize("method", physics.HEAT_METHODS)
@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_heat_is_true_float32_under_a_reduced_matrix_precision(tf32_matrix_products, method,
                                                               boundary):
    images, steps = random_images((2, 16, 16, 1), seed=2), 1 if method == "exact" else 5
    result = ops.convert_to_numpy(physics.heat(images, 1.0, method, 1.0 / steps, boundary))
    expected = ported(images, method.capitalize(), steps, 1.0 / steps, boundary)
    np.testing.assert_allclose(result, expected, atol=1e-6)
