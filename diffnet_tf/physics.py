"""Forward problems that make DiffNet's data: linear (heat) and Perona-Malik diffusion, and
the measurement noise.

The solvers take (B, H, W, C) float images of any H, W and return float32 tensors of the
active Keras backend, true float32 on every device; they use `keras.ops` only, build their
explicit steps from the one stencil in `diffnet_tf.stencil` and their exact and implicit
heat steps in the Laplacian's eigenbasis (`diffnet_tf.spectral`). Explicit steps check the
CFL bound dt * max(diffusivity) <= 1/4 of the 2-D unit grid (Sect. 2.1, eq. 2.10).
Channels: heat acts on each channel;
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

from diffnet_tf import protocols, spectral
from diffnet_tf.checks import (
    BOUNDARIES,
    check_choice,
    check_image_batch,
    check_integer,
    check_number,
)
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
    """Raises a ValueError if an explicit step of size `dt` violates the CFL bound; returns
    dt as a float."""
    dt = check_number(dt, "dt")
    if dt <= 0 or dt * max_diffusivity > CFL_BOUND:
        raise ValueError(
            f"Unstable explicit step: expected 0 < dt * max diffusivity <= {CFL_BOUND} "
            f"(the CFL bound on the unit 2-D grid). Received dt={dt} with max diffusivity "
            f"{max_diffusivity}, product {dt * max_diffusivity}."
        )
    return dt


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


HEAT_METHODS = ("exact", "explicit", "implicit")
EXPLICIT_DT = 0.2  # the default largest explicit heat step (stable: <= CFL_BOUND)


def heat_steps(t, method, dt=None):
    """The number of equal steps `heat` takes: 1 for 'exact', ceil(t / dt) otherwise (dt
    None: EXPLICIT_DT for 'explicit', t for 'implicit', i.e. one step); 0 when t = 0."""
    check_choice(method, HEAT_METHODS, "method")
    check_heat_arguments(t)
    if method == "exact" or t == 0:
        return int(method == "exact")
    if method == "explicit":
        dt = check_cfl(EXPLICIT_DT if dt is None else dt)
    else:
        dt = check_number(t if dt is None else dt, "dt", positive=True)
    return math.ceil(t / dt - 1e-9)  # 1.0 / 0.1 is 10 steps, not 11


def heat_multipliers(eigenvalues, t, method="exact", dt=None):
    """The eigenvalues of `heat`'s operator u(0) -> u(t), given those of minus the 2-D
    Laplacian (lambda, any shape, float64): exp(-t lambda) for 'exact', (1 - tau lambda)^s
    for s explicit steps of tau = t / s (eq. 2.10), (1 + tau lambda)^-s for implicit steps."""
    steps = heat_steps(t, method, dt)
    eigenvalues = np.asarray(eigenvalues, np.float64)
    if method == "exact":
        return np.exp(-t * eigenvalues)
    tau = t / steps if steps else 0.0
    return (1.0 - tau * eigenvalues if method == "explicit"
            else 1.0 / (1.0 + tau * eigenvalues)) ** steps


def _spectral(u, t, method, dt, boundary):
    """`heat` in the Laplacian's eigenbasis. 'exact' is separable, exp(t L) u =
    P_H u P_W' with P_n = exp(t L_n) per axis (two products); implicit steps are not:
    transform, scale by `heat_multipliers`, transform back (four)."""
    if method == "exact":
        rows, columns = (spectral.propagator(n, t, boundary) for n in u.shape[1:3])
        return spectral.exact_product(columns, spectral.exact_product(rows, u, 1), 2)
    scale = heat_multipliers(spectral.laplacian_eigenvalues(*u.shape[1:3], boundary), t,
                             method, dt)
    coefficients = spectral.transform(u, boundary)
    coefficients = coefficients * ops.convert_to_tensor(scale[None, :, :, None], "float32")
    return spectral.transform(coefficients, boundary, inverse=True)


def heat(u, t=protocols.HEAT_TIME, method="exact", dt=None, boundary="neumann"):
    """Isotropic diffusion (gamma = 1) to time t (eq. 2.1), in true float32 on every device.

    With zero-Neumann boundary (eq. 4.5) and away from the boundary this approximates
    convolution with the Gaussian of standard deviation sqrt(2 t) (eq. 2.3). Each channel
    diffuses on its own. L below is the 5-point Laplacian (eq. 4.1 with gamma = 1), the sum
    of two 1-D Laplacians whose eigenbases are the DCT-II ('neumann') or the DST-I ('zero').

    Args:
        u: (B, H, W, C) float images.
        t: diffusion time T >= 0 (the disc experiment uses T = 1).
        method: 'exact' solves the semi-discrete du/dt = L u exactly, u(t) = exp(t L) u(0),
            in L's eigenbasis; 'explicit' takes ceil(t / dt) equal explicit steps
            u <- u + tau L u (eq. 2.10) through the stencil; 'implicit' ceil(t / dt) equal
            implicit steps u <- (I - tau L)^-1 u, in L's eigenbasis. These are the
            isotropic solvers of the authors' AnisoDiff2d.m ('Iso', 'Explicit' and
            'Implicit'), which use the zero exterior.
        dt: the largest step; None: EXPLICIT_DT for 'explicit' (which needs dt <= 1/4),
            t for 'implicit' (one step); unused by 'exact'.
        boundary: 'neumann' (eq. 4.5: mass is conserved) or 'zero' (the exterior is zero,
            as in AnisoDiff2d.m: mass leaves through the boundary).

    Returns:
        (B, H, W, C) float32 tensor.
    """
    u = _as_image_batch(u)
    steps = heat_steps(t, method, dt)
    check_choice(boundary, BOUNDARIES, "boundary")
    if method != "explicit":
        return _spectral(u, t, method, dt, boundary) if steps else u
    laplacian = ops.convert_to_tensor(np.repeat([1.0, 1.0, 1.0, 1.0, 4.0], u.shape[-1]),
                                      "float32")  # eq. (4.1) with gamma = 1
    for _ in range(steps):
        u = apply_stencil(u, laplacian, t / steps, boundary)
    return u


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
