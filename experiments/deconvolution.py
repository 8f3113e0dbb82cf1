"""Sect. 5.1: deconvolution of discs blurred by the heat equation (T = 1) with DiffNet.

    python -m experiments.deconvolution                                # the paper's protocol
    python -m experiments.deconvolution --epochs=500 --lr_init=0.002 --lr_final=0.000004
                                        # shorter: 1 h 19 min on 2 cores, 79.8 dB (batch form)

The paper's protocol (the protocol 'deconvolution' of diffnet_tf/protocols.py): 1024
training and 128 test images (64x64) of one disc each, of random radius and contrast;
heat-equation blur with zero Neumann boundary to T = 1, no noise; DiffNet with 3 diffusion
layers (4-layer estimators) and a final ReLU; batch 16, Adam 4e-4 -> 1e-6 over 1000 epochs.
`--max_discs=4` makes a harder variant: 1-4 overlapping discs per image, with edges between
two contrasts. `--heat_solver=explicit|implicit` blurs with the authors' AnisoDiff2d.m
(zero exterior: 10 explicit steps of 0.1, or one implicit step of T) instead of the exact
solution; `--precision=fast` trains in the device's default precision (TF32 on recent
NVIDIA GPUs) instead of true float32.

Besides the per-image figures, it reports the released code's: the PSNR of 16-image test
batches (mean, min, max) and the whole-set relative l2 error, for DiffNet, the classical
Tikhonov inverse of the heat operator (its weight chosen on the training images) and the
blurred input.

Writes runs/deconvolution/<run folder>/ (README, "Run folders"): spec.json, metrics.json,
model.keras, figures/ (Fig. 4: a disc and its blurred version with Fourier magnitudes;
Fig. 5: the states F_0..F_3 with Fourier magnitudes, and every layer's filter maps) and
tensorboard/. The same command again resumes or reports the run (--overwrite retrains).
"""

from pathlib import Path

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import strategy
from diffnet_tf.cli.report import count, report
from diffnet_tf.cli.spec_flags import spec_from_flags

FLAGS = programs.flag_values("deconvolution")


def main(argv):
    del argv
    from diffnet_tf import protocols, run_figures, runs

    values, verbose = startup.begin("deconvolution", FLAGS)
    run_spec = spec_from_flags(programs.protocol_spec("deconvolution"), values)
    data = run_spec.data
    print(f"Disc deconvolution (heat equation, T = {data.heat_time:g}, {data.heat_solver} "
          f"solver): {data.train_size} training / {data.test_size} test images of up to "
          f"{count(data.max_discs, 'disc')}, {count(run_spec.train.epochs, 'epoch')} in "
          f"{run_spec.train.precision} precision")
    result = runs.execute(run_spec, Path(values["out_dir"]), values["data_dir"],
                          values["overwrite"], verbose, figures=run_figures.disc_deconvolution,
                          strategy=strategy(values["strategy"]))
    for line in released_statistics(result.metrics, protocols.DISC_PSNR,
                                    protocols.DISC_RELATIVE_L2):
        print(line)
    report(result)  # last: where the files are


def released_statistics(metrics, paper_psnr, paper_relative_l2):
    """Lines on the released code's statistics (metrics.json's): DiffNet's on the test and
    the training set (the paper gives one figure for both), the Tikhonov baseline's and the
    input's on the test set, beside the paper's PSNR and relative l2 error."""
    def line(quality):
        return (f"{quality['psnr_batch16_mean']:.2f} dB (min {quality['psnr_batch16_min']:.2f}, "
                f"max {quality['psnr_batch16_max']:.2f}), whole-set relative l2 "
                f"{quality['relative_l2_set']:.2g}")

    return [f"Test, the released code's statistics (PSNR of 16-image batches): DiffNet "
            f"{line(metrics['test'])} (paper, training and test: {paper_psnr} dB, "
            f"{paper_relative_l2:.2g})",
            f"Training set, its first {metrics['train_images_evaluated']} images: DiffNet "
            f"{line(metrics['train'])}",
            f"Tikhonov inverse (weight {metrics['tikhonov_weight']:.2g}, chosen on the "
            f"training images): {line(metrics['test_tikhonov'])}",
            f"Input: {line(metrics['test_input'])}"]


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
