"""Sect. 5.1: deconvolution of discs blurred by the heat equation (T = 1) with DiffNet.

    python -m experiments.deconvolution                                # the paper's protocol
    python -m experiments.deconvolution --epochs=500 --lr_init=0.002 --lr_final=0.000004
                                        # shorter: 1 h 19 min on 2 cores, 79.8 dB (batch form)

The paper's protocol (the protocol 'deconvolution' of diffnet_tf/protocols.py): 1024
training and 128 test images (64x64) of one disc each, of random radius and contrast;
heat-equation blur with zero Neumann boundary to T = 1, no noise; DiffNet with 3 diffusion
layers (4-layer estimators) and a final ReLU; batch 16, Adam 4e-4 -> 1e-6 over 1000 epochs.
`--max_discs=4` makes a harder variant: 1-4 overlapping discs per image, with edges between
two contrasts.

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
    from diffnet_tf import run_figures, runs

    values, verbose = startup.begin("deconvolution", FLAGS)
    run_spec = spec_from_flags(programs.protocol_spec("deconvolution"), values)
    data = run_spec.data
    print(f"Disc deconvolution (heat equation, T = {data.heat_time:g}): {data.train_size} "
          f"training / {data.test_size} test images of up to {count(data.max_discs, 'disc')}, "
          f"{count(run_spec.train.epochs, 'epoch')}")
    result = runs.execute(run_spec, Path(values["out_dir"]), values["data_dir"],
                          values["overwrite"], verbose, figures=run_figures.disc_deconvolution,
                          strategy=strategy(values["strategy"]))
    print(f"relative l2 error (test): {result.metrics['test']['relative_l2_mean']:.3g}, "
          f"PSNR in the released code's batch form: {result.metrics['test']['psnr_batch']:.2f} dB")
    report(result)  # last: where the files are


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
