"""The whole paper with one command: every experiment as cells, run by any executor, and
REPORT.md setting every result of the paper beside this run's.

    python -m experiments.reproduce --scale=smoke                  # minutes, 2 CPU cores
    python -m experiments.reproduce --scale=cpu                    # about two hours
    python -m experiments.reproduce --scale=paper --download       # the paper's protocols
    python -m experiments.reproduce --scale=paper --executor=ray --ray_address=auto \\
        --gpus_per_cell=1                                          # a Ray cluster
    python -m experiments.reproduce --scale=paper --executor=slurm --slurm_partition=gpu \\
        --gpus_per_cell=1 --cpus_per_cell=8 --slurm_time=600       # a Slurm job array
    python -m experiments.reproduce --only=discs,perona_malik      # some experiments
    python -m experiments.reproduce --scale=paper --precision=fast # TF32 where a GPU has it

The experiments (experiments/reproduce_cells.py): discs (Sect. 5.1), perona_malik (Sect.
5.2: DiffNet and the U-Net at noise 0, 0.1 % and 1 %; Figs. 6-9), generalisation (Sect.
6.1: Fig. 10's four panels, a DiffNet and a U-Net per training-set size) and
interpretation (Sect. 6.2: one DiffNet per noise level of Figs. 11-13). `--scale=paper`
runs the paper's protocols on STL-10; `cpu` and `smoke` the same experiments on the
embedded synthetic images with smaller images, sets and epochs (their numbers test the
pipeline, not the paper's values).

Writes <out_dir>/<scale>/ (<scale>_fast/ with --precision=fast): runs/ (one run folder per cell; a spec two experiments share is
one run), figures/ and REPORT.md (every result of protocols.PAPER_RESULTS beside this run's,
the difference, and each run's machine, backend, precision, epochs, steps and time). Cells
are runs: the same command again collects the finished ones and runs only the others.
"""

import shlex
import sys
import time
from pathlib import Path

from absl import app

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import executor

FLAGS = programs.flag_values("reproduce")


def parse_only(values):
    """The --only list (default: every experiment), each one of EXPERIMENTS."""
    from experiments import reproduce_cells

    chosen = values or list(reproduce_cells.EXPERIMENTS)
    unknown = [name for name in chosen if name not in reproduce_cells.EXPERIMENTS]
    if unknown:
        raise app.UsageError(f"Expected --only from {', '.join(reproduce_cells.EXPERIMENTS)}. "
                             f"Received {','.join(chosen)}.")
    return chosen


def main(argv):
    del argv
    from diffnet_tf import files
    from diffnet_tf.launch import launcher
    from experiments import reproduce_cells, reproduce_figures, reproduce_report

    started = time.monotonic()
    values, verbose = startup.begin("reproduce", FLAGS)
    scale, precision = values["scale"], values["precision"]
    planned = reproduce_cells.plan(scale, parse_only(values["only"]), precision)
    cells = reproduce_cells.unique_cells(planned)
    out_dir = Path(values["out_dir"]) / (f"{scale}_fast" if precision == "fast" else scale)
    root = out_dir / "runs"
    print(f"Reproducing {', '.join(planned)} at scale '{scale}': {len(cells)} runs -> {root}")
    outcomes = launcher.launch(cells, root, executor(values, out_dir), values["data_dir"],
                               values["overwrite"], values["download"], verbose)
    launcher.check_finished(outcomes)
    trained = sum(o.status == "trained" for o in outcomes.values())
    print(f"{trained} runs trained, {len(cells) - trained} finished before; making the "
          "figures and REPORT.md")
    figures, alpha = reproduce_figures.figures(planned, root, out_dir / "figures",
                                               values["data_dir"], values["download"],
                                               reproduce_cells.SCALES[scale].alpha_samples)
    text = reproduce_report.report(
        planned, cells, root, figures, reproduce_report.measured(planned, root, alpha), scale,
        " ".join(["python -m experiments.reproduce", *map(shlex.quote, sys.argv[1:])]),
        time.monotonic() - started)
    files.replace_atomically(out_dir / "REPORT.md",
                             lambda temporary: Path(temporary).write_text(text))
    print(f"Wrote {out_dir / 'REPORT.md'}")


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
