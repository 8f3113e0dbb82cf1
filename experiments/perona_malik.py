"""Sect. 5.2: invert (or learn) Perona-Malik diffusion with DiffNet or the U-Net baseline.

    python -m experiments.perona_malik --noise=0.01                   # the paper's protocol
    python -m experiments.perona_malik --dataset=synthetic --noise=0.01 \\
        --train_size=1000 --test_size=200 --epochs=5                   # CPU-sized, no download

With no flags but --noise it runs the paper's full protocol on STL-10 (the presets
'perona_malik' and, with --model=unet, 'perona_malik_unet' of diffnet_tf/protocols.py):
90,000 training and 10,000 test images (96x96), Perona-Malik with 4 steps of dt = 0.1 and
lambda = 0.2, 18 epochs, batch 16, Adam 2e-3 -> 4e-6 (DiffNet) or 5e-4 -> 2e-5 (U-Net).
Every other flag changes one field of that run spec; --channels=3 trains on colour images
(vector-valued Perona-Malik data, --pm_coupling; a colour DiffNet, --channel_mixing).

Writes runs/perona_malik/<run folder>/ (README, "Run folders"): spec.json, metrics.json,
model.keras, figures/reconstructions.png (Figs. 6/7), tensorboard/. The same command again
resumes an unfinished run, or reports a finished one (--overwrite trains it again). Once a
DiffNet and a U-Net run on the same data have finished, figures/comparison.png shows them
side by side (Figs. 8/9).
"""

from absl import flags

from experiments import cli

FLAGS = flags.FlagValues()
flags.DEFINE_enum("model", "diffnet", ["diffnet", "unet"], "The network to train.",
                  flag_values=FLAGS)
flags.DEFINE_enum("problem", "inverse", ["inverse", "forward"],
                  "inverse: diffused (+ noise) -> clean; forward: clean (+ noise) -> diffused.",
                  flag_values=FLAGS)
cli.define_flags(FLAGS, "noise", "dataset", "channels", "pm_coupling", "channel_mixing",
                 "pm_convention", "pm_steps", "pm_dt", "pm_lambda",
                 "train_size", "val_size", "test_size", "layers", "estimator_depth", "width",
                 "boundary", "dt_init", "unet_filters", "epochs", "batch_size", "lr_init",
                 "lr_final", "seed", "out_dir", "data_dir", "download", "overwrite", "strategy",
                 "verbose")
OTHER_MODEL = {"diffnet": "unet", "unet": "diffnet"}


def main(argv):
    del argv
    from diffnet_tf import datasets, figures, runs, spec  # after cli.start's set-up

    datasets.use_classic_xla_cpu_emitter()
    values = FLAGS.flag_values_dict()
    verbose = cli.verbosity(values["verbose"])
    preset = spec.preset("perona_malik_unet" if values["model"] == "unet" else "perona_malik")
    preset = preset.replace(data={"problem": f"pm_{values['problem']}"})
    run_spec = cli.spec_from_flags(preset, values)
    cli.check_folders(values, "out_dir", "data_dir")
    root = cli.output_root(values, "perona_malik")
    data = run_spec.data
    print(f"Perona-Malik {values['problem']} problem, noise {data.noise:g}, "
          f"{run_spec.model.kind} on {data.source}: {data.train_size} training / "
          f"{data.test_size} test images, {cli.count(run_spec.train.epochs, 'epoch')}")
    result = runs.execute(run_spec, root, values["data_dir"], values["overwrite"],
                          verbose, figures=figures.reconstructions,
                          strategy=cli.strategy(values["strategy"]), download=values["download"])
    for folder, other in runs.finished_runs(root):
        if other.data == data and other.model.kind == OTHER_MODEL[run_spec.model.kind]:
            figures.comparison(result.path, folder, result.path / "figures" / "comparison.png")
    cli.report(result)


if __name__ == "__main__":
    cli.start(main, FLAGS)
