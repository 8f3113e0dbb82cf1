"""Sect. 6.2, Figs. 11-13: what DiffNet's learned filters do as the noise grows.

    python -m experiments.interpretation                           # the paper's protocol
    python -m experiments.interpretation --models_from=runs/perona_malik   # reuse runs
    python -m experiments.interpretation --dataset=synthetic --train_size=1000 \\
        --test_size=100 --epochs=4                                      # CPU-sized

For every level in `--noise_levels` (default 0.01%, 0.1%, 1%, 10% and noise-free) one
DiffNet inverts Perona-Malik diffusion with the protocol of Sect. 5.2 (the protocol
'interpretation' of diffnet_tf/protocols.py, with that noise level). Each is a run: a
finished run with exactly that spec is reused, from `--models_from` (a folder of
experiments.perona_malik runs, whose DiffNet runs of the same spec are the same runs) or
from this study's own runs in <out_dir>/models/; otherwise it is trained there. Each
layer's filters W(zeta) split into a mean-free part L and the smoothing
S = sum_{i=1..4} zeta_i - zeta_5 (eq. 2.26).

- Fig. 11: S of every layer for one test image (`--image_index`), one row per noise level.
- Fig. 12: the diagonal zeta_5 of the same, likewise. Every panel of a figure is on one
  signed scale, with its colour bar, so that layers and noise levels compare (the paper
  shows each on its own scale).
- Fig. 13: the estimate of alpha, the mean |S| over an image (Sect. 6.2), averaged over the
  first `--num_samples` test images, against the noise level on a log axis. The paper
  plots one curve and does not say how layers are combined: the black curve is the mean
  over layers (error bars: the standard deviation over images), thin lines are the single
  layers. Noise 0 cannot stand on a log axis: it is drawn unconnected, one decade left of
  the smallest positive level, at a tick labelled '0'.

Writes <out_dir>/: results.json (per level: alpha per layer, their mean and its standard
deviation over images, the learned dt per layer, the PSNR of the samples and of their
inputs, the run used), fig11_smoothing.png, fig12_diagonal.png, fig13_alpha_vs_noise.png,
and models/<run folder>/ for every model trained here. `--executor` chooses where the
levels still to train run (diffnet_tf.launch: here one after another, Ray tasks or a Slurm
job array); the figures are made here once every level's run has finished.
"""

import os
from pathlib import Path

from absl import app

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import executor, parse_noise_levels
from diffnet_tf.cli.spec_flags import spec_from_flags

FLAGS = programs.flag_values("interpretation")


def check_samples(num_samples, image_index, test_size):
    if not 1 <= num_samples <= test_size:
        raise app.UsageError(f"Expected 1 <= --num_samples <= --test_size ({test_size}). "
                             f"Received {num_samples}.")
    if not 0 <= image_index < test_size:
        raise app.UsageError(f"Expected 0 <= --image_index < --test_size ({test_size}). "
                             f"Received {image_index}.")


def run_folders(specs, models_from, own, overwrite):
    """{key: runs.RunFolder} of each level: the finished run in `models_from` with its spec
    (unless `overwrite`), else its folder under `own` (the study's models/)."""
    from diffnet_tf import runs

    folders = {}
    for key, run_spec in specs.items():
        elsewhere = models_from and runs.RunFolder(models_from, run_spec)
        reuse = elsewhere and elsewhere.finished and not overwrite
        folders[key] = elsewhere if reuse else runs.RunFolder(own, run_spec)
    return folders


def main(argv):
    del argv
    from diffnet_tf.files import write_json
    from experiments.studies import filter_figures
    from diffnet_tf.launch import launcher

    values, verbose = startup.begin("interpretation", FLAGS)
    levels = parse_noise_levels(values["noise_levels"])
    protocol = programs.protocol_spec("interpretation")
    specs = {f"noise{level:g}": spec_from_flags(protocol.replace(data={"noise": level}), values)
             for level in levels}
    num_samples, index = values["num_samples"], values["image_index"]
    data = next(iter(specs.values())).data
    check_samples(num_samples, index, data.test_size)
    if values["models_from"] and not os.path.isdir(values["models_from"]):
        raise app.UsageError(f"Expected --models_from to be a folder of run folders. Received "
                             f"{values['models_from']!r}, which is not a folder.")
    out_dir = Path(values["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)  # also when every run comes from --models_from
    folders = run_folders(specs, values["models_from"], out_dir / "models", values["overwrite"])
    cells = {key: specs[key] for key, folder in folders.items()
             if folder.root == out_dir / "models"}
    runner = executor(values, out_dir)
    for key, run_spec in cells.items():
        print(f"{key}: run {out_dir / 'models' / run_spec.folder_name}")
    outcomes = launcher.launch(cells, out_dir / "models", runner, values["data_dir"],
                               values["overwrite"], values["download"], verbose)
    launcher.check_finished(outcomes)
    results = filter_figures(specs, folders, num_samples, index, out_dir, values["data_dir"],
                             values["download"])
    for numbers in results.values():
        print(f"noise {numbers['noise']:g}: alpha {numbers['alpha_mean']:.4g} (per layer "
              f"{', '.join(f'{a:.3g}' for a in numbers['alpha_per_layer'])}), PSNR "
              f"{numbers['psnr_mean']:.2f} dB on {num_samples} test images ({numbers['run']})")
    write_json(out_dir / "results.json",
               dict(num_samples=num_samples, image_index=index, levels=results))
    print(f"Wrote Figs. 11-13 and results.json to {out_dir}")


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
