"""Reference implementations the benchmark times DiffNet and the data pipeline against.

    original_update, OriginalDiffNet   the DiffNet update as the authors' released TF1 code
                                       wrote it (same estimators and parameters as DiffNet)
    ComputeFloor                       DiffNet's estimator compute without its stencil
                                       updates: the floor DiffNet cannot go below
    sparse_perona_malik                Perona-Malik per image with a sparse operator rebuilt
                                       every step, as the released MATLAB script does

Benchmark only: none of these is part of the library's API.
"""

import keras
import numpy as np
from keras import ops

from diffnet_tf import protocols
from diffnet_tf.layers import FilterEstimator
from diffnet_tf.models import DiffusionStack


def original_update(u, zeta, dt):
    """The DiffNet update written as the authors' released TF1 code wrote it (zero boundary).

    DiffNet_nonlin.py's `diffLayer`: each neighbour image is a zero row or column
    concatenated to a cropped copy of u, and each filter channel is sliced out and reshaped
    to (B, H, W, 1) on its own before the pointwise products. The channels are taken in the
    paper's order (top, left, bottom, right, centre; the released code had the centre first)
    so the same estimator weights give the same numbers as
    `diffnet_tf.stencil.apply_stencil(u, zeta, dt, 'zero')`.

    Args:
        u: (B, H, W, 1) image.
        zeta: (B, H, W, 5) filter maps.
        dt: scalar time step.

    Returns:
        (B, H, W, 1) tensor u + dt * (z1 u_N + z2 u_W + z3 u_S + z4 u_E - z5 u).
    """
    batch, height, width = ops.shape(u)[0], u.shape[1], u.shape[2]
    zero_row = ops.zeros((batch, 1, width, 1), dtype=u.dtype)
    zero_col = ops.zeros((batch, height, 1, 1), dtype=u.dtype)
    x_up = ops.concatenate([zero_row, u[:, : height - 1]], axis=1)
    x_down = ops.concatenate([u[:, 1:], zero_row], axis=1)
    x_left = ops.concatenate([zero_col, u[:, :, : width - 1]], axis=2)
    x_right = ops.concatenate([u[:, :, 1:], zero_col], axis=2)
    k_up, k_left, k_down, k_right, k_diag = (
        ops.reshape(zeta[:, :, :, i], (-1, height, width, 1)) for i in range(5)
    )
    return u + dt * (k_up * x_up + k_down * x_down + k_left * x_left + k_right * x_right
                     - k_diag * u)  # eq. (4.6)


class OriginalDiffusionLayer(keras.layers.Layer):
    """A DiffNet layer with the released code's update (`original_update`); benchmark only.

    The same FilterEstimator and learned dt as `diffnet_tf.layers.DiffusionLayer`, created
    in the same order, so weights transfer between the two with get/set_weights.
    """

    def __init__(self, estimator_depth=protocols.ESTIMATOR_DEPTH,
                 width=protocols.ESTIMATOR_WIDTH, dt_init=protocols.DT_INIT, **kwargs):
        super().__init__(**kwargs)
        self.estimator_depth = estimator_depth
        self.width = width
        self.dt_init = dt_init
        self.estimator = FilterEstimator(estimator_depth, width, name="estimator")

    def build(self, input_shape):
        self.estimator.build(input_shape)
        self.dt = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.dt_init), name="dt"
        )

    def call(self, inputs):
        return original_update(inputs, self.estimator(inputs), self.dt)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class OriginalDiffNet(DiffusionStack):
    """DiffNet built from `OriginalDiffusionLayer`s: same parameters, the released update."""

    def __init__(self, num_layers=protocols.DIFFNET_LAYERS,
                 estimator_depth=protocols.ESTIMATOR_DEPTH, width=protocols.ESTIMATOR_WIDTH,
                 **kwargs):
        super().__init__(**kwargs)
        self.diffusion_layers = [
            OriginalDiffusionLayer(estimator_depth, width, name=f"diffusion_{k + 1}")
            for k in range(num_layers)
        ]


class ComputeFloor(keras.Model):
    """DiffNet's compute without its stencil updates: what DiffNet cannot go below.

    The same five 4-layer FilterEstimators applied in sequence; estimator k + 1 reads the
    first filter map (zeta_1, channel 0) of estimator k, so the chain is sequential and
    differentiable like DiffNet's; no shifts, no update, no dt; the final ReLU as DiffNet.
    5 x 20,261 = 101,305 parameters.
    """

    def __init__(self, num_layers=protocols.DIFFNET_LAYERS,
                 estimator_depth=protocols.ESTIMATOR_DEPTH, width=protocols.ESTIMATOR_WIDTH,
                 **kwargs):
        super().__init__(**kwargs)
        self.estimators = [
            FilterEstimator(estimator_depth, width, name=f"estimator_{k + 1}")
            for k in range(num_layers)
        ]

    def build(self, input_shape):
        for estimator in self.estimators:
            estimator.build(input_shape)

    def call(self, inputs):
        u = inputs
        for estimator in self.estimators:
            u = estimator(u)[..., :1]
        return ops.relu(u)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def _sparse_pm_operator(image, lam):
    """The released script's sparse operator for one image (AnisoDiff2d's
    BuildAnisoLaplacian): backward differences with a zero exterior, the Perona-Malik
    diffusivity lam^2 / (|grad u|^2 + lam^2) at each pixel, the mean of two pixels' at each
    face, and L = -(Dx' Kx Dx + Dy' Ky Dy). Column-major like MATLAB, built from scratch."""
    from scipy import sparse

    n = image.shape[0]
    d1 = sparse.diags([1.0, -1.0], [-1, 0], shape=(n + 1, n))
    mid = sparse.diags([0.5, 0.5], [-1, 0], shape=(n + 1, n))
    eye = sparse.identity(n)
    d_rows, d_cols = sparse.kron(eye, d1), sparse.kron(d1, eye)
    mid_rows, mid_cols = sparse.kron(eye, mid), sparse.kron(mid, eye)
    h = image.reshape(-1, order="F")
    g_rows = (d_rows @ h).reshape(n + 1, n, order="F")[:n]
    g_cols = (d_cols @ h).reshape(n, n + 1, order="F")[:, :n]
    grad = np.sqrt(g_rows**2 + g_cols**2)
    kappa = (lam**2 / (grad**2 + lam**2)).reshape(-1, order="F")
    k_rows, k_cols = sparse.diags(mid_rows @ kappa), sparse.diags(mid_cols @ kappa)
    return -(d_rows.T @ k_rows @ d_rows + d_cols.T @ k_cols @ d_cols)


def sparse_perona_malik(image, steps=protocols.PM_STEPS, dt=protocols.PM_DT,
                        lam=protocols.PM_LAMBDA):
    """Perona-Malik for one (n, n) image as the released MATLAB script computes it.

    AnisoDiff2d with 'NonLinear', 'Explicit': for every step a new sparse operator L of the
    current image, then h <- (I + dt L) h, in float64. Its exterior is zero (value and
    diffusivity): `diffnet_tf.physics.perona_malik(..., boundary='original')` agrees with it.

    Returns:
        float64 (n, n) array.
    """
    from scipy import sparse

    n = image.shape[0]
    h = np.asarray(image, np.float64).reshape(-1, order="F")
    for _ in range(steps):
        laplacian = _sparse_pm_operator(h.reshape(n, n, order="F"), lam)
        h = (sparse.identity(n * n) + dt * laplacian) @ h
    return h.reshape(n, n, order="F")


def have_scipy():
    try:
        import scipy.sparse  # noqa: F401
    except ImportError:
        return False
    return True
