"""Forward problems that make DiffNet's data: linear (heat) and Perona-Malik diffusion, and
the measurement noise.

The solvers take (B, H, W, C) float images of any H, W and return float32 tensors of the
active Keras backend; they use `keras.ops` only and build their explicit steps from the one
stencil in `diffnet_tf.stencil`. Explicit steps check the CFL bound dt * max(diffusivity) <=
1/4 of the 2-D unit grid (Sect. 2.1, eq. 2.10). Channels: heat acts on each channel;
Perona-Malik on each channel ('channelwise') or with one diffusivity for all channels
('shared', from the mean over channels of the squared gradient magnitude, as in colour
Perona-Malik after Sapiro-Ringach and Tschumperle-Deriche), so identical channels give the
grey result either way.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from keras import ops

from diffnet_tf import protocols
from diffnet_tf.checks import check_choice, check_image_batch, check_integer, check_number
from diffnet_tf.stencil import apply_stencil, neighbours

CFL_BOUND = 0.25  # dt * max diffusivity for a stable explicit step on the unit 2-D grid
NOISE_STREAM = 7  # separates the noise's random streams from the images' (same seed)


def perona_malik_rational(grad_sq, lam):
    """The Perona-Malik diffusivity of the paper (Sect. 5.2): 1 / (1 + |grad u|^2 / lam^2)."""
    return 1.0 / (1.0 + grad_sq / lam**2)


def perona_malik_exponential(grad_sq, lam):
    """Perona and Malik's other diffusivity: exp(-|grad u|^2 / lam^2)."""
    return ops.exp(-grad_sq / lam**2)


# Each diffusivity maps |grad u|^2 into (0, 1]; the CFL check relies on that maximum of 1.
DIFFUSIVITIES = {
    "perona_malik": perona_malik_rational,
    "exponential": perona_malik_exponential,
}

# Perona-Malik data conventions -> the stencil boundary that realises them.
#   'neumann': zero flux through the boundary (paper eq. 4.5); mass is conserved.
#   'original': the released MATLAB script (AnisoDiff2d): the exterior is zero, both its
#               value and its diffusivity, so mass leaks through the boundary.
PM_CONVENTIONS = {"neumann": "neumann", "original": "zero"}
COUPLINGS = ("shared", "channelwise")


def check_cfl(dt, max_diffusivity=1.0):
    """Raises a ValueError if an explicit step of size `dt` violates the CFL bound."""
    check_number(dt, "dt")
    if dt <= 0 or dt * max_diffusivity > CFL_BOUND:
        raise ValueError(
            f"Unstable explicit step: expected 0 < dt * max diffusivity <= {CFL_BOUND} "
            f"(the CFL bound on the unit 2-D grid). Received dt={dt} with max diffusivity "
            f"{max_diffusivity}, product {dt * max_diffusivity}."
        )


def check_perona_malik_arguments(steps, dt, lam, convention, diffusivity, coupling):
    """Raises a ValueError unless these are valid `perona_malik` arguments (coupling None:
    'shared', the same as 'channelwise' for one channel)."""
    check_integer(steps, "steps")
    check_cfl(dt)
    check_number(lam, "the contrast parameter lam", positive=True)
    check_choice(convention, tuple(PM_CONVENTIONS), "convention")
    check_choice(diffusivity, tuple(DIFFUSIVITIES), "diffusivity")
    if coupling is not None:
        check_choice(coupling, COUPLINGS, "coupling")


def check_heat_arguments(t):
    """Raises a ValueError unless `t` is a finite diffusion time >= 0."""
    check_number(t, "the diffusion time t", minimum=0)


def _as_image_batch(u, name="u"):
    check_image_batch(u, name, channels=None)
    return ops.cast(ops.convert_to_tensor(u), "float32")


def perona_malik_step(u, dt, lam, convention="neumann", diffusivity="perona_malik",
                      coupling="shared"):
    """One explicit Perona-Malik step in divergence form.

        u <- u + dt * sum_{n in N, W, S, E} g_n * (u_n - u)

    where the pixel diffusivity is gamma(|grad u|^2) with |grad u| from backward
    differences, and the face diffusivity g_n is the mean of the diffusivities of the two
    pixels the face separates. This is eq. (2.10) with the stencil L_dt(gamma) of eq. (4.1).

    Args:
        u: (B, H, W, C) float32 images.
        dt: time step; must satisfy dt <= 1/4 (checked by `perona_malik`).
        lam: contrast parameter lambda > 0.
        convention: 'neumann' or 'original' (see PM_CONVENTIONS).
        diffusivity: a name in DIFFUSIVITIES.
        coupling: 'shared' (one diffusivity from the mean over channels of |grad u_c|^2)
            or 'channelwise' (each channel its own); the same for one channel.

    Returns:
        (B, H, W, C) float32 tensor.
    """
    boundary = PM_CONVENTIONS[convention]
    u_n, u_w, _, _ = neighbours(u, boundary)
    grad_sq = ops.square(u - u_n) + ops.square(u - u_w)
    if coupling == "shared":
        grad_sq = ops.mean(grad_sq, axis=-1, keepdims=True)
    g = DIFFUSIVITIES[diffusivity](grad_sq, lam)
    faces = [0.5 * (g + g_n) for g_n in neighbours(g, boundary)]
    faces = [ops.broadcast_to(face, ops.shape(u)) for face in faces]  # shared: to C maps
    centre = faces[0] + faces[1] + faces[2] + faces[3]  # mean-free: centre = sum of four
    return apply_stencil(u, ops.concatenate(faces + [centre], axis=-1), dt, boundary)


def perona_malik(u, steps=protocols.PM_STEPS, dt=protocols.PM_DT, lam=protocols.PM_LAMBDA,
                 convention="neumann", diffusivity="perona_malik", coupling=None):
    """Perona-Malik nonlinear diffusion by explicit steps (Sect. 5.2).

    Args:
        u: (B, H, W, C) float images (the paper scales each to maximum 1).
        steps: number of explicit steps (>= 0).
        dt: step size, 0 < dt <= 1/4 (CFL; every diffusivity here is at most 1).
        lam: contrast parameter lambda > 0.
        convention: 'neumann' (paper, eq. 4.5) or 'original' (released data script).
        diffusivity: 'perona_malik' (rational, the paper's) or 'exponential'.
        coupling: for C > 1, 'shared' (vector-valued Perona-Malik: one diffusivity from
            the mean over channels of |grad u_c|^2, so identical channels give the grey
            result) or 'channelwise' (each channel on its own); None means 'shared'. For
            C = 1 both are the same.

    Returns:
        (B, H, W, C) float32 tensor: the diffused images.
    """
    u = _as_image_batch(u)
    check_perona_malik_arguments(steps, dt, lam, convention, diffusivity, coupling)
    for _ in range(int(steps)):
        u = perona_malik_step(u, dt, lam, convention, diffusivity, coupling or "shared")
    return u


def neumann_laplacian_eigenvalues(n):
    """Eigenvalues of minus the 1-D discrete Neumann Laplacian, in DCT-II order (float64).

    The matrix tridiag(1, -2, 1) with -1 in both corners (the stencil with a mirrored
    neighbour) is diagonalised by the DCT-II; its k-th eigenvalue is -(2 - 2 cos(pi k / n)).
    """
    return 2.0 - 2.0 * np.cos(math.pi * np.arange(n) / n)


def dct_matrix(n):
    """The orthonormal DCT-II matrix D (n, n), float64: D @ x is the DCT-II of x."""
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    matrix = np.sqrt(2.0 / n) * np.cos(math.pi * (i + 0.5) * k / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def heat_propagator(n, t):
    """exp(t L) for the 1-D Neumann Laplacian L of size n, float64 (n, n): D' exp(-t lambda) D."""
    matrix = dct_matrix(n)
    return (matrix.T * np.exp(-t * neumann_laplacian_eigenvalues(n))) @ matrix


def heat(u, t=protocols.HEAT_TIME, method="exact", dt=0.2):
    """Isotropic diffusion (gamma = 1) to time t with zero-Neumann boundary (eqs. 2.1, 4.5).

    Away from the boundary this approximates convolution with the Gaussian of standard
    deviation sqrt(2 t) (eq. 2.3). Each channel diffuses on its own.

    Args:
        u: (B, H, W, C) float images.
        t: diffusion time T >= 0 (the disc experiment uses T = 1).
        method: 'exact' solves the semi-discrete equation du/dt = L u exactly, with L the
            5-point Neumann Laplacian: L is the sum of two 1-D Laplacians, each
            diagonalised by the DCT-II, so u(t) = P_H u(0) P_W' with P_n = exp(t L_n)
            (`heat_propagator`). 'explicit' takes ceil(t / dt) equal explicit steps
            (eq. 2.10) of at most dt.
        dt: the largest explicit step (0 < dt <= 1/4); used by 'explicit' only.

    Returns:
        (B, H, W, C) float32 tensor.
    """
    u = _as_image_batch(u)
    check_choice(method, ("exact", "explicit"), "method")
    check_heat_arguments(t)
    if method == "explicit":
        check_cfl(dt)
        steps = math.ceil(t / dt)
        channels = u.shape[-1]
        laplacian = ops.convert_to_tensor(np.repeat([1.0, 1.0, 1.0, 1.0, 4.0], channels),
                                          "float32")  # eq. (4.1) with gamma = 1
        for _ in range(steps):
            u = apply_stencil(u, laplacian, t / steps, "neumann")
        return u
    rows, columns = (ops.convert_to_tensor(heat_propagator(n, t).astype(np.float32))
                     for n in u.shape[1:3])
    return ops.einsum("ij,bjkc,lk->bilc", rows, u, columns)


def add_noise(x, level, seed, start=0):
    """Additive white Gaussian noise, sigma = level x each image's maximum (Sect. 5.2).

    Image i's noise depends only on (seed, start + i), so a set's noise does not depend on
    how many images are drawn. NumPy, identical on every backend.

    Args:
        x: (B, H, W, C) float images (array or tensor).
        level: noise level as a fraction of each image's maximum (0.01 = 1 %), finite, >= 0.
        seed: integer seed.
        start: the pool index of the first image.

    Returns:
        float32 array (B, H, W, C): x + sigma * n, n ~ N(0, 1) independent per pixel.
    """
    images = np.array(ops.convert_to_numpy(x), np.float32)
    check_image_batch(images, "x", channels=None)
    check_number(level, "the noise level", minimum=0)
    if not level:
        return images
    sigma = level * images.max(axis=(1, 2, 3))

    def add(block):  # NumPy releases the GIL here: blocks run on all cores
        for i in block:
            rng = np.random.Generator(np.random.SFC64([seed, NOISE_STREAM, start + i]))
            images[i] += sigma[i] * rng.standard_normal(images.shape[1:], dtype=np.float32)

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(add, np.array_split(np.arange(len(images)), workers)))
    return images
