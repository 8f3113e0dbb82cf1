"""The paper's figures from NumPy arrays. Every panel is shown on its own scale, as in the
paper. Each function saves a PNG and returns its path. matplotlib's object API (Figure,
no pyplot): importing this module leaves matplotlib's backend alone.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from diffnet_tf.analysis import decompose_filters, fourier_magnitude

FILTER_TITLES = ("zeta_1 (top)", "zeta_2 (left)", "zeta_3 (bottom)", "zeta_4 (right)",
                 "zeta_5 (centre)", "S = sum zeta_1..4 - zeta_5")


def image_grid(panels, path, column_titles=None, row_titles=None, panel_size=2.2):
    """Saves a grid of greyscale images, each panel with its own colour scale.

    Args:
        panels: list of rows, each a list of (H, W) or (H, W, 1) arrays.
        path: where to write the PNG.
        column_titles: one title per column (or None).
        row_titles: one label per row (or None).
        panel_size: inches per panel.

    Returns:
        `path`.
    """
    rows, cols = len(panels), max(len(row) for row in panels)
    fig = Figure(figsize=(panel_size * cols, panel_size * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, row in enumerate(panels):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                image = np.asarray(row[c])
                ax.imshow(image[..., 0] if image.ndim == 3 else image, cmap="gray")
            if r == 0 and column_titles:
                ax.set_title(column_titles[c], fontsize=8)
            if c == 0 and row_titles:
                ax.text(-0.08, 0.5, row_titles[r], transform=ax.transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def reconstructions(truth, inputs, outputs, path, psnr=None):
    """Figs. 6 and 7: ground truth, diffused input, reconstruction, residual per sample.

    Args:
        truth, inputs, outputs: (N, H, W, 1) arrays (a few test samples).
        path: PNG path.
        psnr: optional (N,) PSNR of each reconstruction, shown as the row label.
    """
    panels = [[t, i, o, t - o] for t, i, o in zip(truth, inputs, outputs)]
    labels = None if psnr is None else [f"PSNR {p:.2f} dB" for p in psnr]
    return image_grid(panels, path, ["truth", "input", "reconstruction", "residual"], labels)


def comparison(truth, inputs, outputs, psnr, path):
    """Figs. 8 and 9: one test sample reconstructed by several models, with residuals.

    Args:
        truth, inputs: (H, W, 1) arrays.
        outputs: dict model name -> (H, W, 1) reconstruction.
        psnr: dict model name -> PSNR in dB.
        path: PNG path.
    """
    names = list(outputs)
    panels = [[truth, inputs] + [outputs[n] for n in names] + [truth - outputs[n] for n in names]]
    titles = (["truth", "input"] + [f"{n}: {psnr[n]:.2f} dB" for n in names]
              + [f"{n} residual" for n in names])
    return image_grid(panels, path, titles)


def with_fourier(images, path):
    """Figs. 4 and 5 (left): images and the centred log magnitude of their Fourier
    transform, one row per named image.

    Args:
        images: dict name -> (H, W) or (H, W, 1) array.
        path: PNG path.
    """
    panels = [[image, fourier_magnitude(image)] for image in images.values()]
    return image_grid(panels, path, ["image", "|Fourier| (log)"], list(images))


def filter_maps(filters, path):
    """Fig. 5 (right) and Figs. 11-12: each layer's five filter maps and its smoothing
    part S, for one image.

    Args:
        filters: list over layers of (H, W, 5) arrays.
        path: PNG path.
    """
    panels = []
    for zeta in filters:
        smoothing, _ = decompose_filters(zeta)
        panels.append([zeta[..., i] for i in range(5)] + [smoothing])
    return image_grid(panels, path, FILTER_TITLES, [f"layer {k + 1}" for k in range(len(filters))])


def _line_axes(xs, xlabel, ylabel, title):
    """A figure with a log x axis for the positive values `xs`."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    ax.set_xscale("log")
    if np.ptp(xs) == 0:  # one x value: a log axis needs a range around it
        ax.set_xlim(xs[0] / 3, xs[0] * 3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _save(fig, ax, path):
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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
               "mean over layers" if per_layer is not None else "alpha", 1.5)]
    if per_layer is not None:
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        curves += [(np.asarray(per_layer)[:, k], None, colours[k % len(colours)],
                    f"layer {k + 1}", 0.8) for k in range(np.shape(per_layer)[1])]
    fig, ax = _line_axes(np.where(levels > 0, levels, zero_at),
                         "noise level (fraction of the image maximum)", "alpha = mean |S|", title)
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
