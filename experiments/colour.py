"""Colour Perona-Malik inversion (the paper's Remark 4): a colour DiffNet against the grey
DiffNet applied to each channel, and against doing nothing.

    python -m experiments.colour           # CPU-sized: 1000 / 200 images, 5 epochs per run
    python -m experiments.colour --train_size=90000 --test_size=10000 --epochs=18   # paper-sized

For each level in --noise_levels (default 0 and 1 %) the data are the embedded colour
images (dead leaves with a colour per shape), diffused by vector-valued Perona-Malik (one
diffusivity from the mean over channels of |grad u_c|^2: protocols.COLOUR_PM_COUPLING)
with the Sect. 5.2 parameters, plus noise. Three runs (the protocol 'perona_malik' on the
synthetic images, with these sizes):
  colour DiffNet, channel_mixing 'none': each channel its own five maps per layer;
  colour DiffNet, channel_mixing 'full': one stencil per pair of channels (Remark 4);
  grey DiffNet: trained on the grey images with the same physics and noise, then applied
      to each channel of the colour test images (each channel scaled to maximum 1 and back);
and the input itself. All are scored on the same colour test images: PSNR per image over
all three channels, and SSIM (mean over channels).

Writes <out_dir>/results.json (default runs/colour/) (per level and method: test PSNR mean and std, SSIM, the
run) and the runs in <out_dir>/runs/ (README, "Run folders"): the same command again
reuses finished runs. `--executor` chooses where the runs train (diffnet_tf.launch: here
one after another, Ray tasks or a Slurm job array); they are scored here once all finished.
"""

from pathlib import Path

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import executor, parse_noise_levels
from diffnet_tf.cli.spec_flags import spec_from_flags

FLAGS = programs.flag_values("colour")
METHODS = ("input", "grey DiffNet per channel", "colour DiffNet (none)", "colour DiffNet (full)")


def study_specs(base, level, coupling):
    """{method: RunSpec} of one noise level (base: the protocol with the flags applied;
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
    from diffnet_tf import files, metrics, pairs, protocols, runs
    from diffnet_tf.launch import launcher
    from diffnet_tf.restoration import restore_channels

    values, verbose = startup.begin("colour", FLAGS)
    base = spec_from_flags(programs.protocol_spec("colour"), values)
    out_dir = Path(values["out_dir"])
    levels = parse_noise_levels(values["noise_levels"])
    specs = {level: study_specs(base, level, protocols.COLOUR_PM_COUPLING) for level in levels}
    cells = {f"{method}, noise {level:g}": run_spec
             for level in levels for method, run_spec in specs[level].items()}
    runner = executor(values, out_dir)
    for key, run_spec in cells.items():
        print(f"{key}: {run_spec.folder_name}")
    outcomes = launcher.launch(cells, out_dir / "runs", runner, values["data_dir"],
                               values["overwrite"], verbose=verbose)
    launcher.check_finished(outcomes)
    results = {}
    for level in levels:
        colour_data = specs[level]["colour DiffNet (none)"].data
        inputs, targets = pairs.make_pairs(colour_data, "test", colour_data.test_size,
                                           values["data_dir"], verbose=verbose)
        scores = {"input": metrics.image_quality(targets, inputs)}
        for method, run_spec in specs[level].items():
            folder = runs.RunFolder(out_dir / "runs", run_spec)
            model = folder.load_model()
            outputs = (restore_channels(model, inputs) if run_spec.data.channels == 1
                       else model.predict(inputs, verbose=0))
            scores[method] = dict(metrics.image_quality(targets, outputs), run=str(folder.path))
        results[f"{level:g}"] = scores
        for method in METHODS:
            print(f"noise {level:g}: {method}: PSNR {scores[method]['psnr_mean']:.2f} +- "
                  f"{scores[method]['psnr_std']:.2f} dB, SSIM {scores[method]['ssim_mean']:.4f}")
    files.write_json(out_dir / "results.json", results)
    print(f"Wrote {out_dir / 'results.json'}")


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
