"""The classical baseline of the heat inverse problem (Sect. 5.1): the Tikhonov-regularised
inverse of the heat operator in its eigenbasis, its weight chosen on training images.

The data's heat solver (`problems.HEAT_SOLVERS`) is a linear operator A = M' diag(a) M,
with M the orthonormal 2-D eigenbasis of the Laplacian (`spectral.transform`: the DCT-II
for the 'exact' Neumann solver, the DST-I for the zero exterior of the released solvers)
and a its eigenvalues (`physics.heat_multipliers`: exp(-T lambda) for 'exact'). Then

    x_alpha = argmin_x ||A x - y||^2 + alpha ||x||^2 = M' diag(a / (a^2 + alpha)) M y,

and alpha is the value of WEIGHTS that maximises the mean per-image PSNR of x_alpha on the
training pairs (by Parseval, the error is measured on the coefficients: one transform for
the whole search). NumPy, float64: no device rounds it.
"""

import numpy as np

from diffnet_tf import metrics, physics, problems, spectral

WEIGHTS = 10.0 ** np.arange(-16.0, 0.25, 0.25)  # alpha: 1e-16 .. 1, 4 values per decade


def has_baseline(data):
    """Whether `data` (a `spec.DataSpec`) is an inverse heat problem, which has one."""
    problem = problems.get(data.problem)
    return problem.physics is problems.HEAT and not problem.input_is_clean


def heat_spectrum(data, height, width):
    """(boundary, a): the eigenbasis of `data`'s heat solver on a height x width grid and
    its operator's eigenvalues a (height, width), float64."""
    solver = problems.HEAT_SOLVERS[data.heat_solver]
    eigenvalues = spectral.laplacian_eigenvalues(height, width, solver["boundary"])
    return solver["boundary"], physics.heat_multipliers(eigenvalues, data.heat_time,
                                                        solver["method"], solver["dt"])


def _coefficients(images, boundary, inverse=False):
    """(N, H, W, C) images in the eigenbasis (or back), float64."""
    rows, columns = (spectral.laplacian_eigenbasis(n, boundary)[0] for n in images.shape[1:3])
    if inverse:
        rows, columns = rows.T, columns.T
    return np.einsum("ij,bjkc,lk->bilc", rows, np.asarray(images, np.float64), columns,
                     optimize=True)


def tikhonov(inputs, data, weight):
    """The Tikhonov estimates x_alpha of clean images from heat-diffused `inputs`.

    Args:
        inputs: (N, H, W, C) diffused images (+ noise).
        data: the `spec.DataSpec` that made them (its heat time and solver).
        weight: alpha >= 0.

    Returns:
        (N, H, W, C) float32 array.
    """
    boundary, a = heat_spectrum(data, *inputs.shape[1:3])
    gain = (a / (a**2 + weight))[None, :, :, None]
    return _coefficients(gain * _coefficients(inputs, boundary), boundary,
                         inverse=True).astype(np.float32)


def choose_weight(inputs, targets, data, weights=WEIGHTS):
    """The weight of `weights` whose Tikhonov estimates of `inputs` have the highest mean
    per-image PSNR against `targets` (training pairs).

    Returns:
        (weight, its mean per-image PSNR in dB).
    """
    boundary, a = heat_spectrum(data, *inputs.shape[1:3])
    y, x = _coefficients(inputs, boundary), _coefficients(targets, boundary)
    targets = np.asarray(targets, np.float64)
    peak = 20.0 * np.log10(targets.max(axis=(1, 2, 3)) - targets.min(axis=(1, 2, 3)))
    scores = []
    for weight in weights:
        squared = ((a / (a**2 + weight))[None, :, :, None] * y - x) ** 2
        scores.append(np.mean(peak - 10.0 * np.log10(squared.mean(axis=(1, 2, 3)))))
    best = int(np.argmax(scores))
    return float(weights[best]), float(scores[best])


def classical_baseline(data, pairs):
    """metrics.json's classical baseline of a run: {} where `data` has none, else
    {'tikhonov_weight': alpha chosen on all training pairs, 'test_tikhonov' and
    'train_tikhonov': `metrics.image_quality` of its estimates (the training images the
    model's own figures use)}.

    Args:
        data: a `spec.DataSpec`.
        pairs: the run's `pairs.RunPairs`.
    """
    if not has_baseline(data):
        return {}
    weight, _ = choose_weight(*pairs.train, data)
    evaluated = min(len(pairs.train[0]), len(pairs.test[0]))  # as the model's train figures
    parts = {"test": pairs.test, "train": tuple(a[:evaluated] for a in pairs.train)}
    return {"tikhonov_weight": weight,
            **{f"{name}_tikhonov": metrics.image_quality(targets, tikhonov(inputs, data, weight))
               for name, (inputs, targets) in parts.items()}}
