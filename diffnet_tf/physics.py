"""Forward problems that make DiffNet's data: linear (heat) and Perona-Malik diffusion.

All solvers take and return (B, H, W, 1) float32 tensors of any H, W, and build their
explicit steps from the one stencil in `diffnet_tf.stencil`. Explicit steps check the CFL
bound dt * max(diffusivity) <= 1/4 of the 2-D unit grid (Sect. 2.1, eq. 2.10) and raise
otherwise.
"""

import math

import tensorflow as tf

from diffnet_tf.checks import check_choice, check_image_batch
from diffnet_tf.stencil import apply_stencil, neighbours

CFL_BOUND = 0.25  # dt * max diffusivity for a stable explicit step on the unit 2-D grid


def perona_malik_rational(grad_sq, lam):
    """The Perona-Malik diffusivity of the paper (Sect. 5.2): 1 / (1 + |grad u|^2 / lam^2)."""
    return 1.0 / (1.0 + grad_sq / lam**2)


def perona_malik_exponential(grad_sq, lam):
    """Perona and Malik's other diffusivity: exp(-|grad u|^2 / lam^2)."""
    return tf.exp(-grad_sq / lam**2)


# Each diffusivity maps |grad u|^2 into (0, 1]; the CFL check relies on that maximum of 1.
DIFFUSIVITIES = {
    "perona_malik": perona_malik_rational,
    "exponential": perona_malik_exponential,
}

# Perona-Malik boundary conventions -> the stencil boundary that realises them.
#   'neumann': zero flux through the boundary (paper eq. 4.5); mass is conserved.
#   'original': the released MATLAB script (AnisoDiff2d): the exterior is zero, both its
#               value and its diffusivity, so mass leaks through the boundary.
PM_BOUNDARIES = {"neumann": "neumann", "original": "zero"}


def check_cfl(dt, max_diffusivity=1.0):
    """Raises a ValueError if an explicit step of size `dt` violates the CFL bound."""
    if dt <= 0 or dt * max_diffusivity > CFL_BOUND:
        raise ValueError(
            f"Unstable explicit step: expected 0 < dt * max diffusivity <= {CFL_BOUND} "
            f"(the CFL bound on the unit 2-D grid). Received dt={dt} with max diffusivity "
            f"{max_diffusivity}, product {dt * max_diffusivity}."
        )


def _as_image_batch(u, name="u"):
    check_image_batch(u, name)
    return tf.cast(tf.convert_to_tensor(u), tf.float32)


def perona_malik_step(u, dt, lam, boundary="neumann", diffusivity="perona_malik"):
    """One explicit Perona-Malik step in divergence form.

        u <- u + dt * sum_{n in N, W, S, E} g_n * (u_n - u)

    where the pixel diffusivity is gamma(|grad u|^2) with |grad u| from backward
    differences, and the face diffusivity g_n is the mean of the diffusivities of the two
    pixels the face separates. This is eq. (2.10) with the stencil L_dt(gamma) of eq. (4.1).

    Args:
        u: (B, H, W, 1) float32 image.
        dt: time step; must satisfy dt <= 1/4 (checked by `perona_malik`).
        lam: contrast parameter lambda > 0.
        boundary: 'neumann' or 'original' (see PM_BOUNDARIES).
        diffusivity: a name in DIFFUSIVITIES.

    Returns:
        (B, H, W, 1) float32 tensor.
    """
    stencil_boundary = PM_BOUNDARIES[check_choice(boundary, tuple(PM_BOUNDARIES), "boundary")]
    gamma = DIFFUSIVITIES[check_choice(diffusivity, tuple(DIFFUSIVITIES), "diffusivity")]
    u_n, u_w, _, _ = neighbours(u, stencil_boundary)
    g = gamma(tf.square(u - u_n) + tf.square(u - u_w), lam)
    faces = [0.5 * (g + g_n) for g_n in neighbours(g, stencil_boundary)]
    zeta = tf.concat(faces + [tf.add_n(faces)], axis=-1)  # mean-free: centre = sum of four
    return apply_stencil(u, zeta, dt, stencil_boundary)


def perona_malik(u, steps=4, dt=0.1, lam=0.2, boundary="neumann", diffusivity="perona_malik"):
    """Perona-Malik nonlinear diffusion by explicit steps (Sect. 5.2; paper: 4 x 0.1, 0.2).

    Args:
        u: (B, H, W, 1) float images (the paper scales each to maximum 1).
        steps: number of explicit steps (>= 0).
        dt: step size, 0 < dt <= 1/4 (CFL; every diffusivity here is at most 1).
        lam: contrast parameter lambda > 0.
        boundary: 'neumann' (paper, eq. 4.5) or 'original' (released data script).
        diffusivity: 'perona_malik' (rational, the paper's) or 'exponential'.

    Returns:
        (B, H, W, 1) float32 tensor: the diffused images.
    """
    u = _as_image_batch(u)
    check_choice(boundary, tuple(PM_BOUNDARIES), "boundary")
    check_choice(diffusivity, tuple(DIFFUSIVITIES), "diffusivity")
    check_cfl(dt)
    if lam <= 0:
        raise ValueError(f"Expected a contrast parameter lam > 0. Received lam={lam}.")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"Expected a non-negative integer number of steps. Received {steps}.")
    for _ in range(int(steps)):
        u = perona_malik_step(u, dt, lam, boundary, diffusivity)
    return u


def neumann_laplacian_eigenvalues(n):
    """Eigenvalues of minus the 1-D discrete Neumann Laplacian, in DCT-II order.

    The matrix tridiag(1, -2, 1) with -1 in both corners (the stencil with a mirrored
    neighbour) is diagonalised by the DCT-II; its k-th eigenvalue is -(2 - 2 cos(pi k / n)).
    """
    k = tf.range(n, dtype=tf.float32)
    return 2.0 - 2.0 * tf.cos(math.pi * k / n)


def _dct2(x):
    """Orthonormal 2-D DCT-II over the last two axes of (B, H, W)."""
    x = tf.signal.dct(x, type=2, norm="ortho")
    x = tf.signal.dct(tf.linalg.matrix_transpose(x), type=2, norm="ortho")
    return tf.linalg.matrix_transpose(x)


def _idct2(x):
    x = tf.signal.idct(x, type=2, norm="ortho")
    x = tf.signal.idct(tf.linalg.matrix_transpose(x), type=2, norm="ortho")
    return tf.linalg.matrix_transpose(x)


def heat(u, t=1.0, method="exact", dt=0.2):
    """Isotropic diffusion (gamma = 1) to time t with zero-Neumann boundary (eqs. 2.1, 4.5).

    Away from the boundary this approximates convolution with the Gaussian of standard
    deviation sqrt(2 t) (eq. 2.3).

    Args:
        u: (B, H, W, 1) float images.
        t: diffusion time T >= 0 (the disc experiment uses T = 1).
        method: 'exact' solves the semi-discrete equation du/dt = L u exactly, with L the
            5-point Neumann Laplacian, diagonalised by the DCT-II: u(t) = exp(t L) u(0).
            'explicit' takes ceil(t / dt) equal explicit steps (eq. 2.10) of at most dt.
        dt: the largest explicit step (0 < dt <= 1/4); used by 'explicit' only.

    Returns:
        (B, H, W, 1) float32 tensor.
    """
    u = _as_image_batch(u)
    check_choice(method, ("exact", "explicit"), "method")
    if t < 0:
        raise ValueError(f"Expected a diffusion time t >= 0. Received t={t}.")
    if method == "explicit":
        check_cfl(dt)
        steps = math.ceil(t / dt)
        laplacian = tf.constant([1.0, 1.0, 1.0, 1.0, 4.0])  # eq. (4.1) with gamma = 1
        for _ in range(steps):
            u = apply_stencil(u, laplacian, t / steps, "neumann")
        return u
    height, width = u.shape[1], u.shape[2]
    decay = tf.exp(
        -t * (neumann_laplacian_eigenvalues(height)[:, None]
              + neumann_laplacian_eigenvalues(width)[None, :])
    )
    return _idct2(_dct2(u[..., 0]) * decay)[..., None]


def add_noise(x, level, seed):
    """Additive white Gaussian noise, sigma = level x the image's maximum (Sect. 5.2).

    Args:
        x: (B, H, W, 1) float images.
        level: noise level as a fraction of each image's maximum (0.01 = 1 %), >= 0.
        seed: int or pair of ints; the same seed gives the same noise.

    Returns:
        (B, H, W, 1) float32 tensor x + sigma * n, n ~ N(0, 1) independent per pixel.
    """
    x = _as_image_batch(x, "x")
    if level < 0:
        raise ValueError(f"Expected a noise level >= 0. Received level={level}.")
    seed = (seed, 0) if isinstance(seed, int) else tuple(seed)
    sigma = level * tf.reduce_max(x, axis=(1, 2, 3), keepdims=True)
    return x + sigma * tf.random.stateless_normal(tf.shape(x), seed=seed)
