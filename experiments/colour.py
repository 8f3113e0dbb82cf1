"""Colour Perona-Malik inversion (the paper's Remark 4): a colour DiffNet against the grey
DiffNet applied to each channel, and against doing nothing.

    python -m experiments.colour                                   # CPU-sized defaults below
    python -m experiments.colour --train_size=90000 --test_size=10000 --epochs=18   # paper-sized

For each level in --noise_levels (default 0 and 1 %) the data are the embedded colour
images (dead leaves with a colour per shape), diffused by vector-valued Perona-Malik (one
diffusivity from the mean over channels of |grad u_c|^2: protocols.COLOUR_PM_COUPLING)
with the Sect. 5.2 parameters, plus noise. Three runs (the preset 'perona_malik' on the
synthetic images, with these sizes):
  colour DiffNet, channel_mixing 'none': each channel its own five maps per layer;
  colour DiffNet, channel_mixing 'full': one stencil per pair of channels (Remark 4);
  grey DiffNet: trained on the grey images with the same physics and noise, then applied
      to each channel of the colour test images (each channel scaled to maximum 1 and back);
and the input itself. All are scored on the same colour test images: PSNR per image over
all three channels, and SSIM (mean over channels).

Writes <out_dir>/results.json (per level and method: test PSNR mean and std, SSIM, the
run) and the runs in <out_dir>/runs/ (README, "Run folders"): the same command again
reuses finished runs.
"""

from absl import flags

from experiments import cli

FLAGS = flags.FlagValues()
flags.DEFINE_list("noise_levels", ["0", "0.01"], "Noise levels, fractions of the image "
                  "maximum.", flag_values=FLAGS)
flags.DEFINE_integer("train_size", 1000, "Training images (each run).", flag_values=FLAGS)
flags.DEFINE_integer("test_size", 200, "Test images.", flag_values=FLAGS)
flags.DEFINE_integer("epochs", 5, "Training epochs (each run).", flag_values=FLAGS)
cli.define_flags(FLAGS, "layers", "estimator_depth", "width", "batch_size", "lr_init",
                 "lr_final", "seed", "out_dir", "data_dir", "overwrite", "verbose")
METHODS = ("input", "grey DiffNet per channel", "colour DiffNet (none)", "colour DiffNet (full)")


def study_specs(base, level, coupling):
    """{method: RunSpec} of one noise level (base: the preset with the flags applied;
    coupling: the colour data's Perona-Malik coupling)."""
    data = {"noise": level, "source": "synthetic"}
    colour = dict(data, channels=3, pm_coupling=coupling)
    return {
        "grey DiffNet per channel": base.replace(data=data),
        "colour DiffNet (none)": base.replace(data=colour, model={"channel_mixing": "none"}),
        "colour DiffNet (full)": base.replace(data=colour, model={"channel_mixing": "full"}),
    }


def main(argv):
    del argv
    from diffnet_tf import datasets, files, protocols, runs, spec, training
    from diffnet_tf.restoration import restore_channels

    datasets.use_classic_xla_cpu_emitter()
    values = FLAGS.flag_values_dict()
    verbose = cli.verbosity(values["verbose"])
    base = cli.spec_from_flags(spec.preset("perona_malik"), values)
    cli.check_folders(values, "out_dir", "data_dir")
    out_dir = cli.output_root(values, "colour")
    results = {}
    for level in cli.parse_noise_levels(values["noise_levels"]):
        specs = study_specs(base, level, protocols.COLOUR_PM_COUPLING)
        colour_data = specs["colour DiffNet (none)"].data
        inputs, targets = datasets.make_pairs(colour_data, "test", colour_data.test_size,
                                              values["data_dir"], verbose=verbose)
        scores = {"input": training.image_quality(targets, inputs)}
        for method, run_spec in specs.items():
            print(f"noise {level:g}, {method}: {run_spec.folder_name}")
            result = runs.execute(run_spec, out_dir / "runs", values["data_dir"],
                                  values["overwrite"], verbose)
            model = result.model or runs.RunFolder(out_dir / "runs", run_spec).load_model()
            outputs = (restore_channels(model, inputs) if run_spec.data.channels == 1
                       else model.predict(inputs, verbose=0))
            scores[method] = dict(training.image_quality(targets, outputs), run=str(result.path))
        results[f"{level:g}"] = scores
        for method in METHODS:
            print(f"noise {level:g}: {method}: PSNR {scores[method]['psnr_mean']:.2f} +- "
                  f"{scores[method]['psnr_std']:.2f} dB, SSIM {scores[method]['ssim_mean']:.4f}")
    files.write_json(out_dir / "results.json", results)
    print(f"Wrote {out_dir / 'results.json'}")


if __name__ == "__main__":
    cli.start(main, FLAGS)
