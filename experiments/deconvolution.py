"""Sect. 5.1: deconvolution of discs blurred by the heat equation (T = 1) with DiffNet.

    python -m experiments.deconvolution                                # the paper's protocol
    python -m experiments.deconvolution --epochs=500 --lr_init=0.002 --lr_final=0.000004
                                        # shorter: 1 h 19 min on 2 cores, 79.8 dB (batch form)

The paper's protocol (the preset 'deconvolution' of diffnet_tf/protocols.py): 1024
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

from absl import flags

from experiments import cli

FLAGS = flags.FlagValues()
cli.define_flags(FLAGS, "max_discs", "heat_time", "train_size", "val_size", "test_size",
                 "layers", "estimator_depth", "width", "boundary", "dt_init", "epochs",
                 "batch_size", "lr_init", "lr_final", "seed", "out_dir", "data_dir",
                 "overwrite", "strategy", "verbose")


def main(argv):
    del argv
    from diffnet_tf import datasets, figures, runs, spec  # after cli.start's set-up

    datasets.use_classic_xla_cpu_emitter()
    values = FLAGS.flag_values_dict()
    verbose = cli.verbosity(values["verbose"])
    run_spec = cli.spec_from_flags(spec.preset("deconvolution"), values)
    cli.check_folders(values, "out_dir", "data_dir")
    data = run_spec.data
    print(f"Disc deconvolution (heat equation, T = {data.heat_time:g}): {data.train_size} "
          f"training / {data.test_size} test images of up to {cli.count(data.max_discs, 'disc')}, "
          f"{cli.count(run_spec.train.epochs, 'epoch')}")
    result = runs.execute(run_spec, cli.output_root(values, "deconvolution"),
                          values["data_dir"], values["overwrite"], verbose,
                          figures=figures.discs,
                          strategy=cli.strategy(values["strategy"]))
    print(f"relative l2 error (test): {result.metrics['test']['relative_l2_mean']:.3g}, "
          f"PSNR in the released code's batch form: {result.metrics['test']['psnr_batch']:.2f} dB")
    cli.report(result)  # last: where the files are


if __name__ == "__main__":
    cli.start(main, FLAGS)
