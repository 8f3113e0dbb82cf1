"""Interpreting learned filters (Sects. 2.3 and 6.2) and Fourier magnitudes for figures.

NumPy in, NumPy out; `filter_statistics` calls a model's `trace`.
"""

import numpy as np
from keras import ops

from diffnet_tf import metrics

TRACE_BATCH = 16  # images per trace, to bound the memory of the filter maps


def decompose_filters(zeta):
    """Splits DiffNet filters W(zeta) into a learned smoothing S and a mean-free part L.

    W(zeta) = L(zeta) + S(zeta) (eq. 2.26): L has the same neighbour weights with the
    centre set to their sum, so L applied to a constant image is zero (eq. 2.22); what is
    left is the diagonal S = sum_{i=1..4} zeta_i - zeta_5, zero for a pure (mean-free)
    diffusion and the learned regularisation otherwise (Fig. 11).

    Args:
        zeta: (..., 5) filter maps in the paper's order (top, left, bottom, right, centre).

    Returns:
        (smoothing, mean_free): smoothing (...,) = sum of the four neighbour maps minus the
        centre map; mean_free (..., 5) = zeta with its centre replaced by the neighbour sum.
    """
    zeta = np.asarray(zeta)
    if zeta.shape[-1] != 5:
        raise ValueError(
            f"Expected five filter maps in the last axis. Received shape {zeta.shape}."
        )
    neighbour_sum = zeta[..., :4].sum(axis=-1)
    mean_free = np.concatenate([zeta[..., :4], neighbour_sum[..., None]], axis=-1)
    return neighbour_sum - zeta[..., 4], mean_free


def alpha_estimate(zeta):
    """The smoothing level alpha of each image: mean |S| over its pixels (Sect. 6.2, Fig. 13).

    Args:
        zeta: (B, H, W, 5) filter maps of one layer.

    Returns:
        (B,) array: the mean of |sum_{i=1..4} zeta_i - zeta_5| over each image's pixels.
    """
    smoothing, _ = decompose_filters(zeta)
    return np.abs(smoothing).mean(axis=(1, 2))


def fourier_magnitude(image, log=True):
    """Centred magnitude of the 2-D Fourier transform, as in Figs. 4 and 5.

    Args:
        image: (H, W) or (H, W, 1) array.
        log: return log(1 + |F|) (the visible dynamic range of the paper's panels).

    Returns:
        (H, W) array with the zero frequency at the centre.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"Expected an (H, W) or (H, W, 1) image. Received shape {image.shape}.")
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(image)))
    return np.log1p(magnitude) if log else magnitude


def filter_statistics(model, inputs, targets):
    """Sect. 6.2's numbers of a trained DiffNet (Fig. 13).

    Args:
        model: a DiffNet (anything with `trace` and `predict`).
        inputs: (N, H, W, 1) test inputs; alpha is averaged over all N.
        targets: (N, H, W, 1) their targets.

    Returns:
        A dict with alpha_per_layer (mean |S| over pixels and images, per layer),
        alpha_mean (over layers), alpha_std_over_images (of the per-image mean over
        layers), dt per layer, psnr_mean of the outputs and input_psnr_mean.
    """
    alpha, dt = [], None
    for start in range(0, len(inputs), TRACE_BATCH):
        trace = model.trace(inputs[start : start + TRACE_BATCH])
        alpha.append(np.stack([alpha_estimate(z) for z in trace["filters"]], axis=1))
        dt = trace["dt"]
    alpha = np.concatenate(alpha)  # (N, K)
    outputs = model.predict(inputs, verbose=0)
    return {
        "alpha_per_layer": alpha.mean(axis=0).tolist(),
        "alpha_mean": float(alpha.mean()),
        "alpha_std_over_images": float(alpha.mean(axis=1).std()),
        "dt": dt,
        "psnr_mean": float(np.mean(ops.convert_to_numpy(metrics.psnr(targets, outputs)))),
        "input_psnr_mean": float(np.mean(ops.convert_to_numpy(metrics.psnr(targets, inputs)))),
    }


def smoothing_and_diagonal(model, image):
    """Figs. 11 and 12 for one image: each layer's smoothing S = sum zeta_1..4 - zeta_5
    and its diagonal zeta_5.

    Args:
        model: a DiffNet.
        image: (1, H, W, 1) input.

    Returns:
        (smoothing, diagonal), each (K, H, W) for K layers.
    """
    filters = model.trace(image)["filters"]
    return (np.stack([decompose_filters(z[0])[0] for z in filters]),
            np.stack([z[0, ..., 4] for z in filters]))
