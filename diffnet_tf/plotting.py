"""The paper's figures from NumPy arrays. Each function saves a PNG and returns its path.

Panels that show the same quantity share one colour scale with a colour bar, so sizes can
be compared: images in grey on [0, their largest value] (colour images in colour), signed
maps (residuals, filter maps) in a diverging map on a symmetric scale centred at zero, and
Fourier magnitudes on one log scale. matplotlib's object API (Figure, no pyplot):
importing this module leaves matplotlib's backend alone.

The colour maps, the grey scale's range and the filter maps' titles below are also those
of TensorBoard's panels (`diffnet_tf.panels`), so a figure and a panel read alike.
"""

import dataclasses

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from diffnet_tf.analysis import decompose_filters, fourier_magnitude
from diffnet_tf.files import replace_atomically

GREY_COLOURS = "gray"
DIVERGING_COLOURS = "RdBu_r"  # signed maps: blue negative, near-white zero, red positive
MAGNITUDE_COLOURS = "magma"
GREY_RANGE = (0.0, 1.0)  # images: 0 black, 1 white (the images' maximum by convention)
STENCIL_POSITIONS = ("top", "left", "bottom", "right", "centre")  # of zeta_1 ... zeta_5
FONT = 10  # points, every label
DPI = 110


def filter_titles(symbol, smoothing):
    """Titles of the five filter maps, '<symbol><k> (<position>)' for k = 1 ... 5 in the
    paper's stencil order (eq. 4.7), and `smoothing`, the title of their smoothing part S
    (eq. 2.26)."""
    return tuple(f"{symbol}{k} ({position})" for k, position in
                 enumerate(STENCIL_POSITIONS, start=1)) + (smoothing,)


FILTER_TITLES = filter_titles("ζ", "S = ζ1+ζ2+ζ3+ζ4−ζ5")


@dataclasses.dataclass(frozen=True)
class Scale:
    """A colour scale: its colour map, range and the colour bar's label."""

    cmap: str
    low: float
    high: float
    label: str


def grey_scale(images, label="intensity"):
    """Grey on GREY_RANGE, extended up to the images' largest value to show overshoot."""
    low, high = GREY_RANGE
    return Scale(GREY_COLOURS, low, max(high, float(np.max(images))), label)


def signed_scale(maps, label):
    """A diverging map on [-m, m], m the largest magnitude: zero is white, signs differ."""
    largest = float(np.max(np.abs(maps))) if np.size(maps) else 0.0
    return Scale(DIVERGING_COLOURS, -largest or -1.0, largest or 1.0, label)


def magnitude_scale(maps, label="log(1 + |Fourier|)"):
    return Scale(MAGNITUDE_COLOURS, 0.0, float(np.max(maps)) or 1.0, label)


def _plane(image, scale):
    """A 2-D map, or an RGB image clipped to the scale (colour images keep their colour)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0]
    if image.ndim == 3 and scale.cmap != GREY_COLOURS:  # a signed map of colour: channel mean
        return image.mean(axis=-1)
    return np.clip(image / scale.high, 0, 1) if image.ndim == 3 else image


def image_grid(rows, path, scales, column_titles=None, row_titles=None, title=None,
               panel_size=2.4):
    """Saves a grid of images with one colour bar per scale.

    Args:
        rows: list of rows, each a list of (H, W), (H, W, 1) or (H, W, 3) arrays or None
            (an empty cell).
        path: where to write the PNG.
        scales: one Scale per column, or a list of rows of Scales (one per cell); cells
            with an equal Scale share one colour bar.
        column_titles: one title per column (or None).
        row_titles: one label per row (or None).
        title: the figure's title (or None).
        panel_size: inches per panel.

    Returns:
        `path`.
    """
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    per_cell = isinstance(scales[0], list)
    cell_scales = scales if per_cell else [list(scales)] * n_rows
    distinct = {scale for row in cell_scales for scale in row if scale is not None}
    # "compressed": constrained layout for fixed-aspect panels; plain "constrained" pushes
    # the row labels off the figure's left edge once colour bars span several panels.
    fig = Figure(figsize=(panel_size * n_cols + 1.2 * len(distinct),
                          panel_size * n_rows + 0.5 * bool(title)), layout="compressed")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    groups = {}  # scale -> (an image drawn with it, the axes using it)
    for r, row in enumerate(rows):
        labelled = False
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            image = row[c] if c < len(row) else None
            if image is None:
                ax.axis("off")
            else:
                scale = cell_scales[r][c]
                drawn = ax.imshow(_plane(image, scale), cmap=scale.cmap, vmin=scale.low,
                                  vmax=scale.high)
                groups.setdefault(scale, (drawn, []))[1].append(ax)
            if r == 0 and column_titles:
                ax.set_title(column_titles[c], fontsize=FONT)
            if row_titles and image is not None and not labelled:
                ax.set_ylabel(row_titles[r], fontsize=FONT)
                labelled = True
    for scale, (drawn, group) in groups.items():
        bar = fig.colorbar(drawn, ax=group, shrink=0.85, aspect=40)
        bar.set_label(scale.label, fontsize=FONT)
        bar.ax.tick_params(labelsize=FONT - 1)
    if title:
        fig.suptitle(title, fontsize=FONT + 1)
    replace_atomically(path, lambda temporary: fig.savefig(temporary, dpi=DPI))
    return path


def reconstructions(truth, inputs, outputs, path, psnr, input_psnr, title=None):
    """Figs. 6 and 7: truth, input, reconstruction (one grey scale) and the signed residual
    truth - reconstruction (its own scale) of each sample, with both PSNRs.

    Args:
        truth, inputs, outputs: (N, H, W, C) arrays (a few test samples).
        path: PNG path.
        psnr: (N,) PSNR of each reconstruction; input_psnr: (N,) of each input.
        title: the setting, e.g. 'DiffNet, Perona-Malik inversion, noise 0.01'.
    """
    residuals = np.asarray(truth) - np.asarray(outputs)
    grey = grey_scale([truth, inputs, outputs])
    scales = [grey, grey, grey, signed_scale(residuals, "truth − reconstruction")]
    rows = [[t, i, o, d] for t, i, o, d in zip(truth, inputs, outputs, residuals)]
    labels = [f"input {a:.2f} dB\n→ {b:.2f} dB" for a, b in zip(input_psnr, psnr)]
    return image_grid(rows, path, scales, ["truth", "input", "reconstruction",
                                           "residual"], labels, title)


def comparison(truth, inputs, outputs, psnr, path, input_psnr, title=None):
    """Figs. 8 and 9: one test sample reconstructed by several models (one grey scale) and,
    below, their signed residuals (one scale), with the PSNRs.

    Args:
        truth, inputs: (H, W, C) arrays.
        outputs: dict model name -> (H, W, C) reconstruction.
        psnr: dict model name -> PSNR in dB; input_psnr: the input's.
        path: PNG path.
        title: the setting.
    """
    names = list(outputs)
    residuals = [np.asarray(truth) - outputs[n] for n in names]
    grey = grey_scale([truth, inputs, *outputs.values()])
    signed = signed_scale(residuals, "truth − reconstruction")
    rows = [[truth, inputs] + [outputs[n] for n in names], [None, None] + residuals]
    scales = [[grey] * len(rows[0]), [None, None] + [signed] * len(names)]
    titles = ["truth", f"input: {input_psnr:.2f} dB"] + [f"{n}: {psnr[n]:.2f} dB" for n in names]
    return image_grid(rows, path, scales, titles, ["", "residual"], title)


def with_fourier(images, path, title=None):
    """Figs. 4 and 5 (left): images (one grey scale) and the centred log magnitude of their
    Fourier transform (one scale), one row per named image.

    Args:
        images: dict name -> (H, W) or (H, W, 1) array.
        path: PNG path.
        title: the figure's title.
    """
    magnitudes = [fourier_magnitude(image) for image in images.values()]
    rows = [[image, magnitude] for image, magnitude in zip(images.values(), magnitudes)]
    scales = [grey_scale(list(images.values())), magnitude_scale(magnitudes)]
    return image_grid(rows, path, scales, ["image", "|Fourier| (log)"], list(images), title)


def filter_maps(filters, path, title=None):
    """Fig. 5 (right) and Figs. 11-12: each layer's five filter maps and its smoothing part
    S, for one image, on one signed scale.

    Args:
        filters: list over layers of (H, W, 5) arrays.
        path: PNG path.
        title: the figure's title.
    """
    rows = [[zeta[..., i] for i in range(5)] + [decompose_filters(zeta)[0]] for zeta in filters]
    scale = signed_scale(rows, "filter weight")
    return image_grid(rows, path, [scale] * 6, FILTER_TITLES,
                      [f"layer {k + 1}" for k in range(len(filters))], title)


def signed_maps(rows, path, label, column_titles=None, row_titles=None, title=None):
    """A grid of signed maps (e.g. Figs. 11 and 12) on one symmetric scale."""
    scale = signed_scale(rows, label)
    return image_grid(rows, path, [scale] * max(len(r) for r in rows), column_titles,
                      row_titles, title)


def _line_axes(xs, xlabel, ylabel, title):
    """A figure with a log x axis for the positive values `xs`."""
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    if np.ptp(xs) == 0:  # one x value: a log axis needs a range around it
        ax.set_xlim(xs[0] / 3, xs[0] * 3)
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel(ylabel, fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    if title:
        ax.set_title(title, fontsize=FONT + 1)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _save(fig, ax, path):
    ax.legend(fontsize=FONT - 1)
    replace_atomically(path, lambda temporary: fig.savefig(temporary, dpi=DPI))
    return path


def psnr_vs_training_size(curves, path, input_psnr=None, title=None):
    """Fig. 10: test PSNR against the number of training images (log x), one line per
    model, with the per-image standard deviation as error bars.

    Args:
        curves: dict model name -> (sizes, psnr_mean, psnr_std), three sequences of equal
            length (sizes need not be sorted).
        path: PNG path.
        input_psnr: optional PSNR of the network inputs themselves, drawn as a dashed line.
        title: optional title.
    """
    xs = np.concatenate([np.asarray(c[0], np.float64) for c in curves.values()])
    fig, ax = _line_axes(xs, "training images", "test PSNR (dB)", title)
    sizes = np.unique(xs)  # ticked as counts (10, 500, 90k), not powers of ten
    ax.set_xticks(sizes, [f"{size / 1000:g}k" if size >= 1000 else f"{size:g}" for size in sizes])
    ax.minorticks_off()
    for name, (sizes, mean, std) in curves.items():
        order = np.argsort(sizes)
        ax.errorbar(np.asarray(sizes)[order], np.asarray(mean)[order],
                    yerr=np.asarray(std)[order], marker="o", capsize=3, label=name)
    if input_psnr is not None:
        ax.axhline(input_psnr, color="grey", linestyle="--", label="input")
    return _save(fig, ax, path)


def alpha_vs_noise(noise_levels, alpha, path, std=None, per_layer=None, title=None):
    """Fig. 13: the smoothing estimate alpha (mean |S| over the image) against the noise
    level (log x).

    A noise level of 0 cannot stand on a log axis: its values are drawn unconnected, as
    hollow markers one decade left of the smallest positive level, ticked '0'.

    Args:
        noise_levels: (L,) noise levels (fractions; 0 allowed).
        alpha: (L,) alpha per level (e.g. the mean over layers).
        path: PNG path.
        std: optional (L,) error bars (e.g. the standard deviation over images).
        per_layer: optional (L, K) alpha of each of K layers, drawn as thin lines.
        title: optional title.
    """
    levels = np.asarray(noise_levels, np.float64)
    if levels.ndim != 1 or np.any(levels < 0):
        raise ValueError(f"Expected a list of noise levels >= 0. Received {levels.tolist()}.")
    positive = np.sort(levels[levels > 0])
    zero_at = positive[0] / 10 if positive.size else 1e-4
    curves = [(np.asarray(alpha), None if std is None else np.asarray(std), "black",
               "mean over layers" if per_layer is not None else "α", 1.5)]
    if per_layer is not None:
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        curves += [(np.asarray(per_layer)[:, k], None, colours[k % len(colours)],
                    f"layer {k + 1}", 0.8) for k in range(np.shape(per_layer)[1])]
    fig, ax = _line_axes(np.where(levels > 0, levels, zero_at),
                         "noise level (fraction of the image maximum)", "α = mean |S|", title)
    on_axis = np.argsort(np.where(levels > 0, levels, np.inf))[: positive.size]
    for values, err, colour, label, width in curves:
        ax.errorbar(levels[on_axis], values[on_axis], None if err is None else err[on_axis],
                    color=colour, marker="o", markersize=3 + width * 2, linewidth=width,
                    capsize=3, label=label)
        for i in np.flatnonzero(levels == 0):
            ax.errorbar([zero_at], [values[i]], None if err is None else [err[i]],
                        color=colour, marker="o", markersize=3 + width * 3,
                        markerfacecolor="none", capsize=3)
    if np.any(levels == 0):
        ticks = [zero_at] + positive.tolist()
        ax.set_xticks(ticks, ["0"] + [f"{t:g}" for t in positive])
        ax.minorticks_off()
    return _save(fig, ax, path)
