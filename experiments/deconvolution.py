"""Sect. 5.1: deconvolution of discs blurred by the heat equation (T = 1) with DiffNet.

    python -m experiments.deconvolution                                # the paper's protocol
    python -m experiments.deconvolution --epochs=500 --lr_init=0.002 --lr_final=0.000004
                                        # shorter: 1 h 19 min on 2 cores, 79.8 dB (batch form)

The paper's protocol: 1024 training and 128 test images (64x64) of one disc each, of
random radius and contrast; heat-equation blur with zero Neumann boundary to T = 1, no
noise; DiffNet with 3 diffusion layers (4-layer estimators) and a final ReLU; batch 16,
Adam 4e-4 -> 1e-6 over 1000 epochs. `--max_discs=4` makes a harder variant: 1-4
overlapping discs per image, with edges between two contrasts.
Writes runs/deconvolution/<run>/ with config.json, metrics.json, model.keras, figures/
(Fig. 4: a disc and its blurred version with Fourier magnitudes; Fig. 5: the states
F_0..F_3 with Fourier magnitudes, and every layer's filter maps) and tensorboard/.
"""

import os

from absl import app, flags

from diffnet_tf import datasets, plotting
from experiments import common

FLAGS = common.FLAGS
BLUR_TIME = 1.0
flags.DEFINE_integer("max_discs", 1, "The most discs in one image (the paper's: 1); more "
                     "make overlapping discs with several contrast levels, a harder task.",
                     lower_bound=1)


PAPER = dict(num_layers=3, epochs=1000, train_size=1024, val_size=128, test_size=128)


def write_figures(model, test_pairs, run_dir):
    """Figs. 4 and 5 for the first test disc."""
    blurred, disc = test_pairs[0][:1], test_pairs[1][:1]
    figures = os.path.join(run_dir, "figures")
    plotting.with_fourier({"disc": disc[0], f"blurred (T = {BLUR_TIME:g})": blurred[0]},
                          os.path.join(figures, "fig4_disc_and_blur.png"))
    trace = model.trace(blurred)
    states = {f"F_{k}": state[0] for k, state in enumerate(trace["states"])}
    plotting.with_fourier(states, os.path.join(figures, "fig5_states.png"))
    plotting.filter_maps([zeta[0] for zeta in trace["filters"]],
                         os.path.join(figures, "fig5_filters.png"))


def main(argv):
    del argv
    config = common.config_from_flags("diffnet", "heat_inverse", "discs", 0.0, PAPER,
                                      image_size=64, max_discs=FLAGS.max_discs)
    out_dir = common.resolve(FLAGS.out_dir, os.path.join("runs", "deconvolution"))
    run_dir = os.path.join(out_dir, f"diffnet{config.num_layers}_discs{config.max_discs}"
                                    f"_n{config.train_size}_e{config.epochs}_s{config.seed}")
    print(f"Disc deconvolution (heat equation, T = {BLUR_TIME:g}): {config.train_size} "
          f"training / {config.test_size} test discs, {config.epochs} epochs -> {run_dir}")
    pairs = {
        split: datasets.make_pairs("heat_inverse", split, dataset="discs", n=n, t=BLUR_TIME,
                                   seed=config.seed, max_discs=config.max_discs,
                                   data_dir=FLAGS.data_dir, verbose=min(FLAGS.verbose, 1))
        for split, n in (("train", config.train_size), ("test", config.test_size))
    }
    model, results = common.run(config, pairs["train"], pairs["test"], run_dir,
                                strategy=common.strategy_from_flags(), verbose=FLAGS.verbose)
    write_figures(model, pairs["test"], run_dir)
    print(common.summary_line("diffnet", results))
    print(f"relative l2 error (test): {results['test']['relative_l2_mean']:.3g}")


if __name__ == "__main__":
    app.run(main)
