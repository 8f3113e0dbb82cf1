"""Sect. 5.2: invert (or learn) Perona-Malik diffusion with DiffNet or the U-Net baseline.

    python -m experiments.perona_malik --noise=0.01                   # the paper's protocol
    python -m experiments.perona_malik --dataset=synthetic --noise=0.01 \\
        --train_size=1000 --test_size=200 --epochs=5                   # CPU-sized, no download

With no flags but --noise it runs the paper's full protocol on STL-10 (the protocols
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

from pathlib import Path

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import strategy
from diffnet_tf.cli.report import count, report
from diffnet_tf.cli.spec_flags import spec_from_flags

FLAGS = programs.flag_values("perona_malik")
OTHER_MODEL = {"diffnet": "unet", "unet": "diffnet"}


def main(argv):
    del argv
    from diffnet_tf import run_figures, runs

    values, verbose = startup.begin("perona_malik", FLAGS)
    run_spec = spec_from_flags(
        programs.protocol_spec("perona_malik", values["model"], values["problem"]), values)
    root = Path(values["out_dir"])
    data = run_spec.data
    print(f"Perona-Malik {values['problem']} problem, noise {data.noise:g}, "
          f"{run_spec.model.kind} on {data.source}: {data.train_size} training / "
          f"{data.test_size} test images, {count(run_spec.train.epochs, 'epoch')}")
    result = runs.execute(run_spec, root, values["data_dir"], values["overwrite"],
                          verbose, figures=run_figures.reconstructions,
                          strategy=strategy(values["strategy"]), download=values["download"])
    for folder, other in runs.finished_runs(root):
        if other.data == data and other.model.kind == OTHER_MODEL[run_spec.model.kind]:
            run_figures.comparison(result.path, folder, result.path / "figures" / "comparison.png")
    report(result)


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
