"""Sect. 5.2: invert (or learn) Perona-Malik diffusion with DiffNet or the U-Net baseline.

    python -m experiments.perona_malik --noise=0.01                   # the paper's protocol
    python -m experiments.perona_malik --dataset=synthetic --noise=0.01 \\
        --train_size=2000 --test_size=200 --epochs=5                   # CPU-sized, no download

With no flags but --noise it runs the paper's full protocol on STL-10: 90,000 training
and 10,000 test images (96x96), Perona-Malik with 4 steps of dt = 0.1 and lambda = 0.2,
18 epochs, batch 16, Adam 2e-3 -> 4e-6 (DiffNet) or 5e-4 -> 2e-5 (U-Net).
Writes runs/perona_malik/<model>_<setting>/: config.json, metrics.json, model.keras,
best.keras, figures/, tensorboard/. Starting the same command again resumes an
interrupted run. When DiffNet and U-Net runs of the same setting exist, a side-by-side
figure like Figs. 8/9 is written too.
"""

import os

import numpy as np
from absl import app, flags

from diffnet_tf import datasets, metrics, plotting
from experiments import common

flags.DEFINE_float("noise", 0.0, "Noise level as a fraction of the image maximum (0.01 = 1%).")
flags.DEFINE_enum("model", "diffnet", ["diffnet", "unet"], "The network to train.")
flags.DEFINE_enum("problem", "inverse", ["inverse", "forward"],
                  "inverse: diffused (+ noise) -> clean; forward: clean -> diffused.")
flags.DEFINE_enum("dataset", "stl10", ["stl10", "synthetic"],
                  "stl10 (the paper's; see data/README.md) or the embedded synthetic images.")
flags.DEFINE_enum("pm_boundary", "neumann", ["neumann", "original"],
                  "Data convention: the paper's Neumann or the released script's zero exterior.")

FLAGS = flags.FLAGS
OTHER_MODEL = {"diffnet": "unet", "unet": "diffnet"}


PAPER = dict(num_layers=5, epochs=18, train_size=90_000, val_size=500, test_size=10_000)


def setting_name(config):
    """What makes runs comparable across models: problem, data, noise and training size."""
    return (f"{config.problem}_{config.dataset}_{FLAGS.pm_boundary}_noise{config.noise:g}"
            f"_n{config.train_size}")


def load_pairs(config, split, n):
    return datasets.make_pairs(
        config.problem, split, dataset=config.dataset, n=n, noise=config.noise,
        boundary=FLAGS.pm_boundary, seed=config.seed, data_dir=FLAGS.data_dir,
        verbose=min(FLAGS.verbose, 1),
    )


def write_figures(model, test_pairs, run_dir, out_dir, config):
    """Figs. 6/7 for the first test samples, and Figs. 8/9 when the other model's run of
    the same setting exists."""
    inputs, targets = (a[: common.PREVIEW_IMAGES] for a in test_pairs)
    outputs = np.asarray(model.predict(inputs, verbose=0))
    psnr = np.asarray(metrics.psnr(targets, outputs))
    np.savez(os.path.join(run_dir, "figures", "samples.npz"),
             inputs=inputs, targets=targets, outputs=outputs, psnr=psnr)
    plotting.reconstructions(targets, inputs, outputs,
                             os.path.join(run_dir, "figures", "reconstructions.png"), psnr)
    other = os.path.join(out_dir, f"{OTHER_MODEL[config.model]}_{setting_name(config)}",
                         "figures", "samples.npz")
    if os.path.exists(other):
        theirs = np.load(other)
        if np.array_equal(theirs["targets"], targets):
            reconstructions = {config.model: outputs[0], OTHER_MODEL[config.model]: theirs["outputs"][0]}
            scores = {config.model: psnr[0], OTHER_MODEL[config.model]: theirs["psnr"][0]}
            plotting.comparison(targets[0], inputs[0], reconstructions, scores,
                                os.path.join(run_dir, "figures", "comparison.png"))


def main(argv):
    del argv
    config = common.config_from_flags(FLAGS.model, f"pm_{FLAGS.problem}", FLAGS.dataset,
                                      FLAGS.noise, PAPER)
    out_dir = common.resolve(FLAGS.out_dir, os.path.join("runs", "perona_malik"))
    run_dir = os.path.join(out_dir, f"{config.model}_{setting_name(config)}")
    print(f"Perona-Malik {FLAGS.problem} problem, noise {config.noise:g}, {config.model} "
          f"on {config.dataset}: {config.train_size} training / {config.test_size} test "
          f"images, {config.epochs} epochs -> {run_dir}")
    train_pairs = load_pairs(config, "train", config.train_size)
    test_pairs = load_pairs(config, "test", config.test_size)
    model, results = common.run(config, train_pairs, test_pairs, run_dir,
                                strategy=common.strategy_from_flags(), verbose=FLAGS.verbose)
    write_figures(model, test_pairs, run_dir, out_dir, config)
    print(common.summary_line(config.model, results))


if __name__ == "__main__":
    app.run(main)
