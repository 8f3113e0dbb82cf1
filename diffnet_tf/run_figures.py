"""The figures of a run folder, from its trained model and its data (`runs.execute`'s
`figures` argument), and the figures that compare runs.

    reconstructions(spec, model, pairs, folder)      Figs. 6/7 (Sect. 5.2) and samples.npz
    disc_deconvolution(spec, model, pairs, folder)   Figs. 4 and 5 (Sect. 5.1)
    comparison(folder, other_folder, path)   Figs. 8/9: two runs' reconstructions side by side
    interpretation(...)                      Figs. 11-13 (Sect. 6.2)
"""

import textwrap
from pathlib import Path

import numpy as np
from keras import ops

from diffnet_tf import baselines, metrics, plotting, problems, protocols
from diffnet_tf.files import replace_atomically
from diffnet_tf.precision import matrix_precision
from diffnet_tf.spec import RunSpec

SAMPLES = 4  # test samples shown
TITLE_WIDTH = 56  # characters per line of the disc figures' titles


def setting(spec):
    """A figure title naming a run's setting, e.g. 'DiffNet-5: invert Perona-Malik
    diffusion (Sect. 5.2), noise 0.01, synthetic, 1000 training images'."""
    model = (f"DiffNet-{spec.model.num_layers}" if spec.model.kind == "diffnet" else "U-Net")
    colour = ", colour" if spec.data.channels == 3 else ""
    return (f"{model}: {problems.get(spec.data.problem).description}, noise "
            f"{spec.data.noise:g}, {spec.data.source}{colour}, {spec.data.train_size} "
            "training images")


def reconstructions(spec, model, pairs, folder):
    """Figs. 6/7: the first test samples (truth, input, reconstruction, residual), and
    their arrays in samples.npz for comparisons."""
    inputs, targets = (a[:SAMPLES] for a in pairs.test)
    outputs = np.asarray(model.predict(inputs, verbose=0))
    psnr = np.asarray(ops.convert_to_numpy(metrics.psnr(targets, outputs)))
    input_psnr = np.asarray(ops.convert_to_numpy(metrics.psnr(targets, inputs)))
    replace_atomically(Path(folder) / "samples.npz", lambda temporary: np.savez(
        temporary, inputs=inputs, targets=targets, outputs=outputs, psnr=psnr,
        input_psnr=input_psnr))
    plotting.reconstructions(targets, inputs, outputs, Path(folder) / "reconstructions.png",
                             psnr, input_psnr, setting(spec))


def released_statistics(spec, model, pairs):
    """The released code's test statistics of DiffNet, the Tikhonov baseline (its weight
    chosen on the training pairs, `baselines`) and the input, beside the paper's, as lines
    for a title (a list of strings): the PSNR of 16-image batches (mean, min-max) and the
    whole-set relative l2.
    """
    inputs, targets = pairs.test
    with matrix_precision("float32"):  # as metrics.json's (training.evaluate)
        outputs = np.asarray(model.predict(inputs, verbose=0))
    weight, _ = baselines.choose_weight(*pairs.train, spec.data)
    lines = []
    for name, estimates in (("DiffNet", outputs), ("Tikhonov", baselines.tikhonov(
            inputs, spec.data, weight)), ("input", inputs)):
        batches = metrics.released_batch_psnrs(targets, estimates)
        lines.append(f"{name} {batches.mean():.2f} dB ({batches.min():.2f}-{batches.max():.2f}),"
                     f" {metrics.relative_l2_set(targets, estimates):.2g}")
    return ["test, PSNR of 16-image batches: mean (min-max),", "whole-set relative l2:",
            *lines, f"paper: {protocols.DISC_PSNR} dB, {protocols.DISC_RELATIVE_L2:.2g}"]


def disc_deconvolution(spec, model, pairs, folder):
    """Figs. 4 and 5 for the first test disc: the disc and its blurred version with their
    Fourier magnitudes, the states F_0..F_K with theirs, and every layer's filter maps; the
    titles of Figs. 4 and 5 carry the released code's test statistics
    (`released_statistics`)."""
    blurred, disc = pairs.test[0][:1], pairs.test[1][:1]
    title = "\n".join([*textwrap.wrap(f"{setting(spec)}, heat solver {spec.data.heat_solver}",
                                      TITLE_WIDTH), *released_statistics(spec, model, pairs)])
    plotting.with_fourier({"disc": disc[0], f"blurred (T = {spec.data.heat_time:g})": blurred[0]},
                          Path(folder) / "fig4_disc_and_blur.png", f"Fig. 4: {title}")
    trace = model.trace(blurred)
    states = {f"F_{k}": state[0] for k, state in enumerate(trace["states"])}
    plotting.with_fourier(states, Path(folder) / "fig5_states.png", f"Fig. 5: {title}")
    plotting.filter_maps([zeta[0] for zeta in trace["filters"]],
                         Path(folder) / "fig5_filters.png", f"Fig. 5, filters: {title}")


def comparison(folder, other_folder, path):
    """Figs. 8/9: the first test sample of two runs on the same data, side by side.

    Args:
        folder, other_folder: run folders holding figures/samples.npz (`reconstructions`)
            and spec.json.
        path: the PNG to write.

    Returns:
        `path`, or None when the runs' samples differ (not the same data).
    """
    ours, theirs = (np.load(Path(f) / "figures" / "samples.npz") for f in (folder, other_folder))
    if not np.array_equal(ours["targets"], theirs["targets"]):
        return None
    specs = [RunSpec.load(Path(f) / "spec.json") for f in (folder, other_folder)]
    names = [setting(s).split(":")[0] for s in specs]
    outputs = {names[0]: ours["outputs"][0], names[1]: theirs["outputs"][0]}
    scores = {names[0]: ours["psnr"][0], names[1]: theirs["psnr"][0]}
    title = "Figs. 8/9: " + setting(specs[0]).split(": ", 1)[1]
    return plotting.comparison(ours["targets"][0], ours["inputs"][0], outputs, scores, path,
                               ours["input_psnr"][0], title)


def interpretation(levels, results, smoothing, diagonal, folder, image, samples):
    """Figs. 11-13 of the interpretation study.

    Args:
        levels: the noise levels, in the study's order.
        results: {level key: `analysis.filter_statistics` numbers} in the same order.
        smoothing, diagonal: per level, the list of S and zeta_5 maps (H, W) per layer.
        folder: where the PNGs go.
        image: the image of Figs. 11 and 12, for their titles (e.g. 'synthetic, test
            image 0').
        samples: the images alpha is averaged over, for Fig. 13's title.
    """
    folder = Path(folder)
    rows = [f"noise {level:g}" for level in levels]
    columns = [f"layer {k + 1}" for k in range(max(len(row) for row in smoothing))]
    plotting.signed_maps(smoothing, folder / "fig11_smoothing.png", "S", columns, rows,
                         f"Fig. 11: the smoothing S = ζ1+ζ2+ζ3+ζ4−ζ5 ({image})")
    plotting.signed_maps(diagonal, folder / "fig12_diagonal.png", "ζ5", columns, rows,
                         f"Fig. 12: the diagonal ζ5 ({image})")
    per_layer = [r["alpha_per_layer"] for r in results.values()]
    plotting.alpha_vs_noise(levels, [r["alpha_mean"] for r in results.values()],
                            folder / "fig13_alpha_vs_noise.png",
                            std=[r["alpha_std_over_images"] for r in results.values()],
                            per_layer=per_layer if len({len(a) for a in per_layer}) == 1 else None,
                            title=f"Fig. 13: smoothing α against the noise ({samples})")
