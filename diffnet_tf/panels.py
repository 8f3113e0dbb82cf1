"""The images TensorBoard shows for a run, drawn with PIL: one validation sample
(input | output | target | residual) and one layer's filter maps (Fig. 11).

Images are on plotting's fixed grey range [0, 1] (clipped) and the signed residual target -
output on a fixed symmetric scale, so epochs and runs compare. Filter maps take values from
about 0.01 to 100 (between layers, epochs and models), so each is shown on its own
symmetric scale (`readable_scale`), as the paper's Figs. 11-12 show each on its own scale.
Signed values use plotting's diverging colour map (blue negative, white zero, red
positive); every scale is drawn as a colour bar with ticks inside the image.
"""

import functools
import math

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffnet_tf.analysis import decompose_filters
from diffnet_tf.checks import check_number
from diffnet_tf.plotting import DIVERGING_COLOURS, GREY_RANGE, filter_titles

MIN_TILE = 96  # smaller images are enlarged (nearest neighbour) to at least this side
GAP = 6  # pixels between tiles
TITLE_HEIGHT = 18  # pixels above each tile for its title
BAR_WIDTH = 10  # colour bar width in pixels
FONT_SIZE = 14
FILTER_TITLES = filter_titles("zeta_", "S (smoothing)")  # ASCII: PIL's default font


def grey_image(image):
    """RGB colours of an image on the fixed grey scale GREY_RANGE = [0, 1]: 0 black,
    1 white, values outside clipped; a 3-channel image keeps its colours.

    Args:
        image: (H, W, 1) or (H, W, 3) floats.

    Returns:
        (H, W, 3) uint8.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected an (H, W, 1) or (H, W, 3) image. Received shape {image.shape}."
        )
    low, high = GREY_RANGE
    rgb = np.broadcast_to(image, image.shape[:2] + (3,))
    return np.round((np.clip(rgb, low, high) - low) / (high - low) * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _diverging_table():
    """255 RGB colours of the diverging map; entry 127 is exactly its middle (zero)."""
    colours = matplotlib.colormaps[DIVERGING_COLOURS](np.linspace(0.0, 1.0, 255))
    return np.round(colours[:, :3] * 255).astype(np.uint8)


def diverging_image(values, scale):
    """RGB colours of signed values on the fixed symmetric scale [-scale, scale]: blue
    negative, near-white zero, red positive; values outside are clipped.

    Args:
        values: (H, W) floats.
        scale: positive half-width of the scale.

    Returns:
        (H, W, 3) uint8.
    """
    scale = check_number(scale, "scale", positive=True)
    fraction = np.clip(np.asarray(values, np.float32) / scale, -1.0, 1.0)
    return _diverging_table()[np.rint((fraction + 1.0) * 127).astype(np.int32)]


def readable_scale(values, percentile=99.0):
    """The half-width of a symmetric colour scale that shows `values`: their `percentile`-th
    percentile of |value| rounded up to 1, 2, 3 or 5 times a power of ten, so at most
    100 - percentile % of the finite values saturate and the colour bar's ticks read
    easily (0.2, not 0.1837); 1 when no finite value is non-zero.

    Args:
        values: an array of any shape (non-finite values are ignored).
        percentile: in (0, 100].

    Returns:
        A positive float, e.g. 0.05.
    """
    percentile = check_number(percentile, "percentile", positive=True, maximum=100)
    magnitudes = np.abs(np.asarray(values, np.float64))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    high = float(np.percentile(magnitudes, percentile)) if magnitudes.size else 0.0
    if high == 0.0:
        return 1.0
    exponent = math.floor(math.log10(high))
    steps = (float(f"{m}e{exponent}") for m in (1, 2, 3, 5, 10))  # decimal: 0.2, not 0.2000...04
    # within float32 rounding of a step stays on it (0.1 in float32 is 0.10000000149)
    return next(s for s in steps if s >= high * (1 - 1e-6))  # 10 ** (exponent + 1) > high


def sample_panel(inputs, output, target, residual_scale=0.05):
    """One image of one sample: input | output | target | residual side by side.

    Input, output and target are on the fixed grey scale [0, 1] (clipped; colour images
    in colour), the residual target - output on the fixed diverging scale
    [-residual_scale, residual_scale] (for colour images, its mean over the channels).
    Each scale is drawn as a colour bar with ticks. Images whose longer side is below
    MIN_TILE pixels are enlarged by an integer factor (nearest neighbour).

    Args:
        inputs: (H, W, C) network input, C = 1 or 3.
        output: (H, W, C) network output.
        target: (H, W, C) ground truth.
        residual_scale: positive half-width of the residual's scale.

    Returns:
        (H', W', 3) uint8 image.
    """
    shapes = {np.shape(inputs), np.shape(output), np.shape(target)}
    if len(shapes) != 1:
        raise ValueError(
            "Expected input, output and target of the same shape (H, W, C). "
            f"Received shapes {np.shape(inputs)}, {np.shape(output)}, {np.shape(target)}."
        )
    residual_scale = check_number(residual_scale, "residual_scale", positive=True)
    residual = np.mean(np.asarray(target, np.float32) - np.asarray(output, np.float32), axis=-1)
    zoom = _zoom(residual.shape)
    grey = [_enlarge(grey_image(image), zoom) for image in (inputs, output, target)]
    height = grey[0].shape[0]
    low, high = GREY_RANGE
    return _layout([[
        ("input", grey[0], ()),
        ("output", grey[1], ()),
        ("target", grey[2], ()),
        ("", grey_image(_bar(high, low, height)[..., None]),
         (f"{high:g}", f"{(low + high) / 2:g}", f"{low:g}")),
        ("target - output", _enlarge(diverging_image(residual, residual_scale), zoom), ()),
        ("", diverging_image(_bar(residual_scale, -residual_scale, height), residual_scale),
         _signed_ticks(residual_scale)),
    ]])


def filter_panel(zeta, scale=None, caption=""):
    """One image of one layer's filter maps for one image: zeta_1 (top), zeta_2 (left),
    zeta_3 (bottom) in the first row, zeta_4 (right), zeta_5 (centre) and the smoothing
    part S = zeta_1 + zeta_2 + zeta_3 + zeta_4 - zeta_5 (eq. 2.26, Fig. 11) in the second,
    each beside the colour bar of its symmetric diverging scale (ticks: +scale, 0, -scale).

    Args:
        zeta: (H, W, 5 * n) filter maps grouped by stencil position (top, left, bottom,
            right, centre; `stencil.apply_stencil`): the first stencil's five maps are
            shown, zeta[..., k * n] (channel 0's, or channel 0 from channel 0 when
            coupled).
        scale: None: each map on its own scale, `readable_scale` of its values (the
            paper's Figs. 11-12); a positive number: every map on the fixed scale
            [-scale, scale].
        caption: text (lines separated by newlines) at the end of the first row.

    Returns:
        (H', W', 3) uint8 image.
    """
    zeta = np.asarray(zeta, np.float32)
    if zeta.ndim != 3 or zeta.shape[-1] == 0 or zeta.shape[-1] % 5:
        raise ValueError(
            "Expected filter maps of shape (H, W, 5 * n) (five maps per channel). "
            f"Received shape {zeta.shape}."
        )
    if scale is not None:
        scale = check_number(scale, "scale", positive=True)
    first = zeta[..., :: zeta.shape[-1] // 5]  # the first stencil's five maps
    smoothing, _ = decompose_filters(first)
    maps = [first[..., k] for k in range(5)] + [smoothing]
    zoom = _zoom(smoothing.shape)
    tiles = []
    for title, values in zip(FILTER_TITLES, maps):
        own = scale or readable_scale(values)
        tile = _with_bar(_enlarge(diverging_image(values, own), zoom), own)
        tiles.append((title, tile, _signed_ticks(own)))
    blank = np.full((tiles[0][1].shape[0], 1, 3), 255, np.uint8)  # the caption's column
    return _layout([tiles[:3] + [(caption, blank, ())], tiles[3:]])


def _zoom(shape):
    """The integer enlargement that makes the longer side at least MIN_TILE pixels."""
    return max(1, math.ceil(MIN_TILE / max(shape[:2])))


def _enlarge(rgb, zoom):
    """Nearest-neighbour enlargement by an integer factor."""
    return np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)


def _bar(top, bottom, height):
    """(height, BAR_WIDTH) values from `top` to `bottom`, the body of a colour bar."""
    return np.repeat(np.linspace(top, bottom, height)[:, None], BAR_WIDTH, axis=1)


def _with_bar(tile, scale):
    """An RGB tile of signed values with the colour bar of its scale on its right."""
    height = tile.shape[0]
    gap = np.full((height, GAP // 2, 3), 255, np.uint8)
    return np.concatenate([tile, gap, diverging_image(_bar(scale, -scale, height), scale)], axis=1)


def _signed_ticks(scale):
    return (f"+{scale:g}", "0", f"-{scale:g}")


@functools.lru_cache(maxsize=1)
def _font():
    return ImageFont.load_default(size=FONT_SIZE)


def _layout(rows):
    """Draws rows of (title, (h, w, 3) uint8 tile, tick labels) on a white canvas.

    Every tile has the first tile's height; each has its title above it (a longer title
    widens its column), and tick labels (top to bottom, evenly spaced) to its right (a
    colour bar's).
    """
    font = _font()
    row_step = TITLE_HEIGHT + rows[0][0][1].shape[0] + GAP
    placed, width = [], 0
    for r, row in enumerate(rows):
        x, y = GAP, GAP + TITLE_HEIGHT + r * row_step
        for title, tile, ticks in row:
            placed.append((x, y, title, tile, ticks))
            labels = 2 + max(int(font.getlength(tick)) for tick in ticks) if ticks else 0
            title_width = max(int(font.getlength(line)) for line in title.split("\n"))
            x += max(tile.shape[1] + labels, title_width) + GAP
        width = max(width, x)
    canvas = Image.new("RGB", (width, GAP + len(rows) * row_step), "white")
    draw = ImageDraw.Draw(canvas)
    for x, y, title, tile, ticks in placed:
        canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (x, y))
        draw.multiline_text((x, y - TITLE_HEIGHT), title, fill="black", font=font, spacing=2)
        for i, tick in enumerate(ticks):
            tick_y = y + i * (tile.shape[0] - 1) / (len(ticks) - 1)
            draw.text((x + tile.shape[1] + 2, tick_y), tick, fill="black", font=font, anchor="lm")
    return np.asarray(canvas)
