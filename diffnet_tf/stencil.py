"""The 5-point stencil of DiffNet: neighbour shifts and the explicit update (eq. 4.6), for
single-channel and multichannel images (Remark 4).

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

from diffnet_tf.checks import BOUNDARIES, CHANNEL_MIXINGS, check_choice

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
    # Negative bounds need no size: the same code for sizes known only at run time.
    if offset == -1:
        kept, edge = _slice(u, axis, 0, -1), _slice(u, axis, 0, 1)
    elif offset == 1:
        kept, edge = _slice(u, axis, 1, None), _slice(u, axis, -1, None)
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


def num_filter_maps(channels, channel_mixing="none"):
    """How many filter maps a stencil update of a C-channel image takes (Remark 4).

    Args:
        channels: C, the image's channels.
        channel_mixing: 'none' (each channel diffuses on its own: 5 C maps) or 'full'
            (every output channel reads every input channel: 5 C^2 maps).

    Returns:
        5 C or 5 C^2 (5 for a single-channel image either way).
    """
    check_choice(channel_mixing, CHANNEL_MIXINGS, "channel_mixing")
    return 5 * channels if channel_mixing == "none" else 5 * channels**2


def apply_stencil(u, zeta, dt, boundary="neumann"):
    """One explicit update with the stencil W_dt(zeta) (eqs. 4.6 and 4.7; Remark 4).

    For a single-channel image (C = 1), eq. (4.6):

        F_k = u + dt * (z1 * u_N + z2 * u_W + z3 * u_S + z4 * u_E - z5 * u)

    For C channels the filters become a tensor of one 5-point stencil per pair of output
    channel c and input channel d (Remark 4), still a diffusion update:

        F_k^c = u^c + dt * sum_d (z1^cd u^d_N + z2^cd u^d_W + z3^cd u^d_S + z4^cd u^d_E
                                  - z5^cd u^d)

    The size of zeta's last axis says which form is meant, and the maps are grouped by
    stencil position k = 0..4 in the paper's order (top, left, bottom, right, centre; the
    centre weight enters with a minus sign):
        5 C maps (channelwise): z_k^c = zeta[..., k C + c]; channel c diffuses on its own,
            the block-diagonal case z^cd = 0 for d != c;
        5 C^2 maps (coupled): z_k^cd = zeta[..., k C^2 + c C + d].
    Grouping by position keeps the channelwise update the single-channel one, applied to
    (B, H, W, C) slices, with no reshape (a channel-major layout made the Perona-Malik
    solver 3-4x slower under XLA, measured).

    Args:
        u: (B, H, W, C) image F_{k-1}.
        zeta: (B, H, W, 5 C) or (B, H, W, 5 C^2) filter maps, laid out as above.
        dt: scalar time step (a Python float or a scalar tensor/variable).
        boundary: 'neumann' (eq. 4.5) or 'zero' (the released code).

    Returns:
        (B, H, W, C) tensor F_k.
    """
    u = ops.convert_to_tensor(u)  # a NumPy u too: under torch, ndarray + tensor fails
    mix = _coupled_product if _is_coupled(zeta.shape, u.shape[-1]) else ops.multiply
    z_top, z_left, z_bottom, z_right, z_centre = ops.split(zeta, 5, axis=-1)
    u_top, u_left, u_bottom, u_right = neighbours(u, boundary)
    # Five products summed directly: cheaper than stacking the inputs into a 5-channel
    # tensor and reducing it (measured by `python -m experiments.benchmark`). ops.split,
    # not strided slices: their gradient made a TensorFlow step without XLA several times
    # slower when measured.
    update = (mix(z_top, u_top) + mix(z_left, u_left) + mix(z_bottom, u_bottom)
              + mix(z_right, u_right))
    return u + dt * (update - mix(z_centre, u))  # eq. (4.6), Remark 4


def _is_coupled(zeta_shape, channels):
    """False for 5 C filter maps (channelwise), True for 5 C^2 (coupled), else raises."""
    maps = zeta_shape[-1]
    if maps == num_filter_maps(channels, "none"):
        return False
    if maps == num_filter_maps(channels, "full"):
        return True
    raise ValueError(
        "Expected zeta's last axis to hold five filter maps (top, left, bottom, right, "
        f"centre) per stencil: 5 C = {5 * channels} (channelwise) or 5 C^2 = "
        f"{5 * channels**2} (coupled) for an image with C = {channels} channels. "
        f"Received shape {tuple(zeta_shape)}."
    )


def _coupled_product(z, v):
    """sum_d z^cd v^d: z (B, H, W, C^2) holding [c C + d], v (B, H, W, C)."""
    channels = v.shape[-1]
    z = ops.reshape(z, ops.shape(z)[:-1] + (channels, channels))
    return ops.einsum("...cd,...d->...c", z, v)
