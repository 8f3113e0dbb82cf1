"""The paper's figures from NumPy arrays. Every panel is shown on its own scale, as in the
paper. Each function saves a PNG and returns its path. A leaf module (matplotlib, Agg).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffnet_tf.analysis import decompose_filters, fourier_magnitude  # noqa: E402

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
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows),
                             squeeze=False)
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
    plt.close(fig)
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
