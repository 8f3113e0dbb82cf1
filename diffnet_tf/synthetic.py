"""Synthetic image sources: `synthetic_images`, the embedded natural-image-like default (a
dead-leaves model), and `disc_images`, the discs of the deconvolution experiment (Sect. 5.1).

Both return float32 arrays (n, size, size, channels) in [0, 1] (the dead leaves grey or
colour, scaled to maximum 1; the discs grey, at their own contrast), and image i depends
only on (seed, start + i). NumPy only.
"""

import functools
import math

import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_integer

# Dead leaves: shape radii with density ~ r^-3 (scale invariance) in [R_MIN, size / 2].
_R_MIN = 1.5
_COVERAGE = 2.6  # expected number of shapes over a pixel; the rest shows the background
_SLOPE = 0.3  # largest change of a shape's shading across the image width
_TEXTURE = 0.01  # standard deviation of the fine texture (sensor-like noise)
# Colour: a shape's RGB gains have log standard deviation _SATURATION (channel correlation
# about 0.9, as in photographs); the channels share this fraction of the texture's variance.
_SATURATION = 0.2
_SHARED_TEXTURE = 0.5
# Rows: the shared texture field, then each channel's own; the mix keeps the variance.
_TEXTURE_MIX = np.vstack([np.full((1, 3), _SHARED_TEXTURE**0.5),
                          np.eye(3) * (1 - _SHARED_TEXTURE) ** 0.5]).astype(np.float32)
GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)  # ITU-R 601 luma of RGB


def scale_to_max_one(images):
    """Divides each image (first axis) by its maximum; all-zero images stay zero."""
    peak = images.max(axis=tuple(range(1, images.ndim)), keepdims=True)
    return images / np.where(peak > 0, peak, 1).astype(images.dtype)


@functools.lru_cache(maxsize=16)
def _shape_templates(rmax, width):
    """Flat pixel offsets, on a canvas `width` wide, of discs then squares of radius 0..rmax."""
    y, x = np.mgrid[-rmax : rmax + 1, -rmax : rmax + 1]
    templates = []
    for inside in (lambda r: y**2 + x**2 <= (r + 0.5) ** 2,
                   lambda r: np.maximum(abs(y), abs(x)) <= r):
        templates += [(y * width + x)[inside(r)].astype(np.intp) for r in range(rmax + 1)]
    return templates


def _chromaticities(u):
    """RGB gains near grey (..., 3) from uniforms (..., 3): log gains uniform with standard
    deviation _SATURATION, scaled so that each gain's grey value (GREY_WEIGHTS) is 1."""
    gain = np.exp((_SATURATION * 12**0.5) * (u - 0.5))
    return gain / (gain @ GREY_WEIGHTS)[..., None]


def _dead_leaves(start, n, size, seed, channels):
    """Pool images start .. start + n - 1 of the dead-leaves model; see `synthetic_images`."""
    rmax, width = size // 2, 2 * size
    a, b = _R_MIN**-2, rmax**-2
    mean_area = (math.pi + 4) / 2 * math.log(rmax / _R_MIN) / (0.5 * (a - b))  # E[area]
    k = math.ceil(_COVERAGE * size**2 / mean_area)  # shapes per image, the last one is k
    extra = 0 if channels == 1 else 3  # colour: per shape 3 gains, per pixel 3 textures
    u = np.empty((n, k + 1, 7 + extra), np.float32)  # r, y, x, grey, 2 slopes, family, gains
    texture = np.empty((n, size + 2, size + 2, 1 + extra), np.float32)  # shared, own
    for i in range(n):
        rng = np.random.default_rng([seed, start + i])
        u[i, :, :7] = rng.random((k + 1, 7), dtype=np.float32)
        texture[i, ..., 0] = rng.random((size + 2, size + 2), dtype=np.float32)  # not normal
        if extra:  # drawn after the grey image's numbers: the same shapes, coloured
            u[i, :, 7:] = rng.random((k + 1, 3), dtype=np.float32)
            texture[i, ..., 1:] = rng.random((size + 2, size + 2, 3), dtype=np.float32)
    radius = np.minimum(np.rint((a - u[:, :k, 0] * (a - b)) ** -0.5), rmax).astype(np.intp)
    cy, cx = (u[:, :, 1] * size).astype(np.intp), (u[:, :, 2] * size).astype(np.intp)
    cy[:, k], cx[:, k] = size // 2, size // 2  # shape k is the background
    centre = (np.arange(n)[:, None] * width + cy[:, :k] + size // 2) * width + cx[:, :k] + size // 2
    group = ((u[:, :k, 6] < 0.5) * (rmax + 1) + radius).ravel()  # template index
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(2 * rmax + 3))
    depth = np.tile(np.arange(k, dtype=np.int32), n)
    # z-buffer: each pixel shows the covering shape drawn last (highest depth); -1: background
    zbuf = np.full(n * width * width, -1, np.int32)
    for g, template in enumerate(_shape_templates(rmax, width)):
        shapes = order[bounds[g] : bounds[g + 1]]
        if shapes.size:
            pixels = (centre.ravel()[shapes, None] + template).ravel()
            np.maximum.at(zbuf, pixels, np.repeat(depth[shapes], template.size))
    lo = size // 2 - 1  # crop with a one-pixel margin for the blur
    visible = zbuf.reshape(n, width, width)[:, lo : lo + size + 2, lo : lo + size + 2]
    visible = np.where(visible < 0, k, visible) + (k + 1) * np.arange(n)[:, None, None]
    # smooth shading: grey level (log-uniform, like reflectances) plus a linear ramp
    slope = (u[..., 4:6] - 0.5) * (2 * _SLOPE / size)
    offset = np.exp(-3 * u[..., 3]) - slope[..., 0] * cy - slope[..., 1] * cx
    shading = np.stack([offset, slope[..., 0], slope[..., 1]], axis=-1).reshape(-1, 3)
    shading = np.take(shading, visible, axis=0)  # (n, size + 2, size + 2, 3): each pixel's ramp
    coords = np.arange(-1, size + 1, dtype=np.float32)  # image rows/columns of the crop
    image = shading[..., 0] + shading[..., 1] * coords[:, None] + shading[..., 2] * coords
    image, noise = image[..., None], texture - 0.5  # luminance; uniform texture, mean 0
    if extra:  # each shape's colour; a texture partly shared by the channels
        image = image * np.take(_chromaticities(u[..., 7:]).reshape(-1, 3), visible, axis=0)
        noise = noise @ _TEXTURE_MIX
    image += (_TEXTURE * 12**0.5) * noise  # standard deviation _TEXTURE
    image = 0.75 * image[:, 1:-1] + 0.125 * (image[:, :-2] + image[:, 2:])  # mild blur
    image = 0.75 * image[:, :, 1:-1] + 0.125 * (image[:, :, :-2] + image[:, :, 2:])
    return scale_to_max_one(np.maximum(image, 0))


def synthetic_images(n, size=protocols.STL10_SIDE, seed=0, start=0, channels=1):
    """Natural-image-like pictures from a dead-leaves model: the embedded default source.

    Occluding discs and squares with power-law distributed radii (density ~ r^-3 between
    1.5 px and size / 2, so edges appear at every scale, as in photographs), random grey
    levels, a linear shading ramp on each shape, mild texture and blur. Horizontal
    differences are heavy-tailed like those of natural images.

    In colour (channels=3) the scene is the grey one's (the same shapes and shading), each
    shape's luminance times RGB gains near grey (log gains of standard deviation 0.2, grey
    value 1), plus a texture the channels partly share: the channels correlate about 0.9,
    as in photographs, and the ITU-R 601 grey conversion is close to the grey image.

    Args:
        n: number of images (>= 0).
        size: side length in pixels (>= 8; STL-10's is 96).
        seed: integer seed; the same seed gives the same images.
        start: index of the first image in the pool; image i depends only on (seed,
            start + i), never on n.
        channels: 1 (grey) or 3 (RGB).

    Returns:
        float32 array (n, size, size, channels) in [0, 1], each image's maximum (over all
        channels) 1.
    """
    n, size = check_integer(n, "n"), check_integer(size, "image size", 8)
    check_integer(start, "start")
    integer = isinstance(channels, (int, np.integer)) and not isinstance(channels, bool)
    if not integer or channels not in (1, 3):
        raise ValueError(f"Expected channels 1 or 3. Received {channels!r}.")
    out = np.empty((n, size, size, channels), np.float32)
    for i in range(0, n, 32):  # a chunk whose z-buffer stays in cache
        out[i : i + 32] = _dead_leaves(start + i, min(32, n - i), size, seed, channels)
    return out


def disc_images(n, size=protocols.DISC_SIDE, seed=0, start=0, max_discs=1):
    """Discs of random radius, position and contrast on a zero background (Sect. 5.1).

    Each image holds 1 .. max_discs discs (the count uniform) of radius size/16 .. size/4,
    inside the image, each with its own contrast 0.2 .. 1 (a later disc covers an earlier
    one). The images are not rescaled: a disc's contrast is its value. The paper's discs are
    "simple discs of varying radius and contrast" and its Fig. 4 shows one; its 86.24 dB
    with a relative l2 error of 2.5e-4 implies a mean squared image value of 0.038, which
    one unscaled disc per image gives (0.036 expected) and four do not.

    Args:
        n: number of images (>= 0).
        size: side length in pixels (>= 8; the paper's is 64).
        seed: integer seed; image i depends only on (seed, start + i).
        start: index of the first image in the pool.
        max_discs: the most discs in one image (>= 1; 1 is the paper's experiment).

    Returns:
        float32 array (n, size, size, 1) in [0, 1], each image's maximum 0.2 .. 1.
    """
    n, size = check_integer(n, "n"), check_integer(size, "image size", 8)
    check_integer(start, "start")
    check_integer(max_discs, "max_discs", 1)
    u = np.array([np.random.default_rng([seed, start + i]).random((max_discs, 5))
                  for i in range(n)]).reshape(n, max_discs, 5)
    radius = size / 16 + u[..., 0] * (size / 4 - size / 16)
    cy, cx = (radius + u[..., k] * (size - 1 - 2 * radius) for k in (1, 2))
    contrast = 0.2 + 0.8 * u[..., 3]
    active = np.arange(max_discs) <= np.floor(u[:, :1, 4] * max_discs)  # the first 1 .. max_discs
    y, x = np.mgrid[:size, :size].astype(np.float32)
    images = np.zeros((n, size, size), np.float32)
    for d in range(max_discs):
        inside = (y - cy[:, d, None, None]) ** 2 + (x - cx[:, d, None, None]) ** 2 <= (
            radius[:, d, None, None] ** 2
        )
        images = np.where(inside & active[:, d, None, None], contrast[:, d, None, None], images)
    return images.astype(np.float32)[..., None]
