"""Sect. 6.2, Figs. 11-13: what DiffNet's learned filters do as the noise grows.

    python -m experiments.interpretation                           # the paper's protocol
    python -m experiments.interpretation --models_from=runs/perona_malik   # reuse runs
    python -m experiments.interpretation --dataset=synthetic --train_size=1000 \\
        --test_size=100 --epochs=4                                      # CPU-sized

For every level in `--noise_levels` (default 0.01%, 0.1%, 1%, 10% and noise-free) one
DiffNet is trained to invert Perona-Malik diffusion with the protocol of Sect. 5.2, or
loaded: from `--models_from` (the run folders experiments.perona_malik writes,
diffnet_pm_inverse_<dataset>_<pm_boundary>_noise<level>_n<train_size>/model.keras),
else from an earlier run of this study in `--out_dir`. Each layer's filters W(zeta) split
into a mean-free part L and the smoothing S = sum_{i=1..4} zeta_i - zeta_5 (eq. 2.26).

- Fig. 11: S of every layer for one test image (`--image_index`), one row per noise level.
- Fig. 12: the diagonal zeta_5 of the same, likewise. Each panel is on its own scale.
- Fig. 13: the estimate of alpha, the mean |S| over an image (Sect. 6.2), averaged over the
  first `--num_samples` test images, against the noise level on a log axis. The paper
  plots one curve and does not say how layers are combined: the black curve is the mean
  over layers (error bars: the standard deviation over images), thin lines are the single
  layers. Noise 0 cannot stand on a log axis: it is drawn unconnected, one decade left of
  the smallest positive level, at a tick labelled '0'.

Writes <out_dir>/: results.json (per level: alpha per layer, their mean and its standard
deviation over images, the learned dt per layer, the PSNR of the samples and of their
inputs, the model used), fig11_smoothing.png, fig12_diagonal.png,
fig13_alpha_vs_noise.png, and models/<run folder>/ for every model trained here.
"""

import os

import keras
import numpy as np
from absl import app, flags

from diffnet_tf import metrics, plotting
from diffnet_tf.analysis import decompose_filters
from experiments import common, perona_malik  # perona_malik: --dataset, --pm_boundary

flags.DEFINE_list("noise_levels", ["0.0001", "0.001", "0.01", "0.1", "0"],
                  "Noise levels, fractions of the image maximum (Fig. 13: 0.01% ... 10%).")
flags.DEFINE_integer("num_samples", 32, "Test images the alpha estimate averages over.")
flags.DEFINE_integer("image_index", 0, "The test image whose filters Figs. 11 and 12 show.")
flags.DEFINE_string("models_from", None, "Folder of experiments.perona_malik runs whose "
                    "DiffNet models are reused where one matches a noise level.")

FLAGS = flags.FLAGS
BATCH = 16  # images per trace, to bound the memory of the filter maps


def parse_noise_levels(values):
    """The --noise_levels list as unique floats >= 0, in the given order."""
    try:
        levels = list(dict.fromkeys(float(v) for v in values))
    except ValueError:
        raise ValueError(f"Expected --noise_levels to be numbers. Received {values}.") from None
    if not levels or min(levels) < 0:
        raise ValueError(f"Expected --noise_levels >= 0. Received {values}.")
    return levels


def finished_model(run_dir):
    """The model of a finished run folder (model.keras and metrics.json), or None."""
    if all(os.path.exists(os.path.join(run_dir, f)) for f in ("model.keras", "metrics.json")):
        return keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    return None


def smoothing_per_image(model, inputs):
    """alpha of each image and layer: mean |S| over the pixels.

    Args:
        model: a DiffNet.
        inputs: (N, H, W, 1) images.

    Returns:
        (N, K) array for K layers, and the model's dt per layer.
    """
    alpha, dt = [], None
    for start in range(0, len(inputs), BATCH):
        trace = model.trace(inputs[start : start + BATCH])
        alpha.append(np.stack([np.abs(decompose_filters(z)[0]).mean(axis=(1, 2))
                               for z in trace["filters"]], axis=1))
        dt = trace["dt"]
    return np.concatenate(alpha), dt


def analyse(model, inputs, targets, image_index, num_samples):
    """Fig. 11-13 numbers of one model: the filter maps of one image and alpha statistics.

    Returns:
        (numbers for results.json, S maps (K, H, W), zeta_5 maps (K, H, W)).
    """
    alpha, dt = smoothing_per_image(model, inputs[:num_samples])
    outputs = model.predict(inputs[:num_samples], verbose=0)
    filters = model.trace(inputs[image_index : image_index + 1])["filters"]
    numbers = {
        "alpha_per_layer": alpha.mean(axis=0).tolist(),
        "alpha_mean": float(alpha.mean()),
        "alpha_std_over_images": float(alpha.mean(axis=1).std()),
        "dt": dt,
        "psnr_mean": float(np.mean(metrics.psnr(targets[:num_samples], outputs))),
        "input_psnr_mean": float(np.mean(metrics.psnr(targets[:num_samples],
                                                      inputs[:num_samples]))),
    }
    smoothing = np.stack([decompose_filters(z[0])[0] for z in filters])
    diagonal = np.stack([z[0, ..., 4] for z in filters])
    return numbers, smoothing, diagonal


def model_for(config, out_dir):
    """A finished DiffNet of `config`'s setting from --models_from or out_dir, else a new one
    trained into out_dir/models/. Returns (model, run folder)."""
    name = f"diffnet_{perona_malik.setting_name(config)}"
    own = os.path.join(out_dir, "models", name)
    for run_dir in ([os.path.join(FLAGS.models_from, name)] if FLAGS.models_from else []) + [own]:
        model = finished_model(run_dir)
        if model is not None:
            print(f"noise {config.noise:g}: using {run_dir}")
            return model, run_dir
    print(f"noise {config.noise:g}: training {config.train_size} images, {config.epochs} "
          f"epochs -> {own}")
    train_pairs = perona_malik.load_pairs(config, "train", config.train_size)
    test_pairs = perona_malik.load_pairs(config, "test", config.test_size)
    model, results = common.run(config, train_pairs, test_pairs, own,
                                strategy=common.strategy_from_flags(), verbose=FLAGS.verbose)
    print(common.summary_line(name, results))
    return model, own


def main(argv):
    del argv
    levels = parse_noise_levels(FLAGS.noise_levels)
    configs = [common.config_from_flags("diffnet", "pm_inverse", FLAGS.dataset, level,
                                        perona_malik.PAPER) for level in levels]
    num_samples, image_index = FLAGS.num_samples, FLAGS.image_index
    if not 1 <= num_samples <= configs[0].test_size:
        raise ValueError(f"Expected 1 <= --num_samples <= --test_size "
                         f"({configs[0].test_size}). Received {num_samples}.")
    if not 0 <= image_index < configs[0].test_size:
        raise ValueError(f"Expected 0 <= --image_index < --test_size ({configs[0].test_size})."
                         f" Received {image_index}.")
    if FLAGS.models_from and not os.path.isdir(FLAGS.models_from):
        raise ValueError(f"Expected --models_from to be a folder of run folders. Received "
                         f"{FLAGS.models_from!r}, which is not a folder.")
    out_dir = common.resolve(FLAGS.out_dir, os.path.join("runs", "interpretation"))
    os.makedirs(out_dir, exist_ok=True)
    results, smoothing, diagonal = {}, [], []
    for config in configs:
        model, run_dir = model_for(config, out_dir)
        inputs, targets = perona_malik.load_pairs(config, "test",
                                                  max(num_samples, image_index + 1))
        numbers, s, z5 = analyse(model, inputs, targets, image_index, num_samples)
        results[f"{config.noise:g}"] = dict(numbers, noise=config.noise, model=run_dir)
        smoothing.append(list(s))
        diagonal.append(list(z5))
        print(f"noise {config.noise:g}: alpha {numbers['alpha_mean']:.4g} (per layer "
              f"{', '.join(f'{a:.3g}' for a in numbers['alpha_per_layer'])}), PSNR "
              f"{numbers['psnr_mean']:.2f} dB on {num_samples} test images")
    rows = [f"noise {level:g}" for level in levels]
    columns = [f"layer {k + 1}" for k in range(max(len(row) for row in smoothing))]
    plotting.image_grid(smoothing, os.path.join(out_dir, "fig11_smoothing.png"), columns, rows)
    plotting.image_grid(diagonal, os.path.join(out_dir, "fig12_diagonal.png"), columns, rows)
    cells = list(results.values())
    per_layer = [c["alpha_per_layer"] for c in cells]
    plotting.alpha_vs_noise(levels, [c["alpha_mean"] for c in cells],
                            os.path.join(out_dir, "fig13_alpha_vs_noise.png"),
                            std=[c["alpha_std_over_images"] for c in cells],
                            per_layer=per_layer if len({len(a) for a in per_layer}) == 1 else None,
                            title=f"{FLAGS.dataset}, {num_samples} test images")
    common.write_json(os.path.join(out_dir, "results.json"),
                      dict(num_samples=num_samples, image_index=image_index, levels=results))
    print(f"Wrote Figs. 11-13 and results.json to {out_dir}")


if __name__ == "__main__":
    app.run(main)
