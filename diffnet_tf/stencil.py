"""The 5-point stencil of DiffNet: neighbour shifts and the explicit update (eq. 4.6).

This is the one place the stencil lives; the physics solvers and the learned layers both
call it. Neighbours are taken by shifting and cropping the image (Sect. 4.3: "apply the
filters as pointwise matrix-matrix multiplication to a shifted and cropped image"), never by
a sparse matrix or a fixed convolution kernel. Only `keras.ops` is used, so it runs on every
Keras backend and inside compiled graphs.

Boundaries (what a missing neighbour outside the image is):
    'neumann': the boundary pixel itself, the zero-Neumann condition of eq. (4.5).
    'zero': zero, as in the authors' released code.
"""

from keras import ops

from diffnet_tf.checks import BOUNDARIES, check_choice

# (axis, offset) of each neighbour in the paper's channel order: top, left, bottom, right.
# offset -1 means "the pixel one step back along the axis", so u_N[i, j] = u[i - 1, j].
NEIGHBOURS = ((1, -1), (2, -1), (1, 1), (2, 1))


def shift(u, axis, offset, boundary="neumann"):
    """The neighbour image one pixel away along a spatial axis.

    Args:
        u: (B, H, W, C) tensor.
        axis: 1 (vertical) or 2 (horizontal).
        offset: -1 for the neighbour before (above / left), +1 after (below / right).
        boundary: 'neumann' or 'zero'.

    Returns:
        (B, H, W, C) tensor v with v[..., i, ...] = u[..., i + offset, ...], and the missing
        row or column filled according to `boundary`.
    """
    check_choice(boundary, BOUNDARIES, "boundary")
    n = u.shape[axis]
    if offset == -1:
        kept, edge = _slice(u, axis, 0, n - 1), _slice(u, axis, 0, 1)
    elif offset == 1:
        kept, edge = _slice(u, axis, 1, n), _slice(u, axis, n - 1, n)
    else:
        raise ValueError(f"Expected offset -1 or 1. Received {offset!r}.")
    if boundary == "zero":
        edge = ops.zeros_like(edge)
    parts = [edge, kept] if offset == -1 else [kept, edge]
    return ops.concatenate(parts, axis=axis)


def _slice(u, axis, start, stop):
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return u[tuple(index)]


def neighbours(u, boundary="neumann"):
    """The four neighbour images (u_N, u_W, u_S, u_E) in the paper's order.

    Args:
        u: (B, H, W, C) tensor.
        boundary: 'neumann' or 'zero'.

    Returns:
        A list of four (B, H, W, C) tensors: top, left, bottom, right neighbours.
    """
    return [shift(u, axis, offset, boundary) for axis, offset in NEIGHBOURS]


def apply_stencil(u, zeta, dt, boundary="neumann"):
    """One explicit update with the stencil W_dt(zeta) (eqs. 4.6 and 4.7).

        F_k = u + dt * (z1 * u_N + z2 * u_W + z3 * u_S + z4 * u_E - z5 * u)

    Args:
        u: (B, H, W, 1) image F_{k-1}.
        zeta: (B, H, W, 5) filter maps in the paper's order (top, left, bottom, right,
            centre); the centre weight enters with a minus sign.
        dt: scalar time step (a Python float or a scalar tensor/variable).
        boundary: 'neumann' (eq. 4.5) or 'zero' (the released code).

    Returns:
        (B, H, W, 1) tensor F_k.
    """
    if zeta.shape[-1] != 5:
        raise ValueError(
            "Expected zeta to hold five filter maps (top, left, bottom, right, centre) in "
            f"its last axis. Received shape {tuple(zeta.shape)}."
        )
    z_top, z_left, z_bottom, z_right, z_centre = ops.split(zeta, 5, axis=-1)
    u_top, u_left, u_bottom, u_right = neighbours(u, boundary)
    # Five products summed directly: cheaper than stacking the inputs into a 5-channel
    # tensor and reducing it (measured by `python -m experiments.benchmark`).
    update = z_top * u_top + z_left * u_left + z_bottom * u_bottom + z_right * u_right
    return u + dt * (update - z_centre * u)  # eq. (4.6)
