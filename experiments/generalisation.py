"""Sect. 6.1, Fig. 10: test PSNR against the training-set size, DiffNet and the U-Net.

    python -m experiments.generalisation                          # the paper's study, STL-10
    python -m experiments.generalisation --problem=forward        # the forward problem
    python -m experiments.generalisation --noise=0.01             # inversion with 1% noise
    python -m experiments.generalisation --dataset=synthetic --sizes=10,50,100,500,1000 \\
        --epochs=2 --epoch_images=200 --patience=1 --val_size=50 --test_size=100  # CPU
    python -m experiments.generalisation --executor=ray --gpus_per_cell=1  # a cell per GPU
    python -m experiments.generalisation --executor=slurm --slurm_partition=gpu \\
        --gpus_per_cell=1 --cpus_per_cell=4 --slurm_time=600    # a Slurm job array

Every (model, size) cell is a run (the protocols 'generalisation' and 'generalisation_unet'
of diffnet_tf/protocols.py, with the cell's training-set size): the Perona-Malik protocol
of Sect. 5.2 (`--epochs` is an upper bound), stopped once the validation loss has not
improved for `--patience` epochs, keeping the weights of the best epoch (the paper
"aborted the procedure when the networks started to clearly overfit").

Choices the paper leaves open:
- Validation (for early stopping only) takes the `--val_size` train-split images right
  after a cell's training images, never test images, so no choice is made on the reported
  data. The train split has 90,000 images: where size + val_size exceeds it (the paper's
  largest size, 90,000), the cell trains on the first 90,000 - val_size images instead
  (89,500 by default); results.json records the images actually used.
- Epoch budget: an epoch of the paper's protocol on 10 images is a single optimizer step.
  A training set smaller than `--epoch_images` is therefore repeated within each epoch
  until an epoch shows at least that many images; sets of at least `--epoch_images`
  images follow the paper's protocol unchanged. Early stopping and the learning-rate
  decay count these (longer) epochs.

Writes <out_dir>/<problem>_<dataset>_noise<level>/: one run folder per cell (README, "Run
folders"), results.json (per cell of this command: test PSNR mean and std, the input's,
the images used, epochs trained, the best epoch, the run folder) and
fig10_psnr_vs_size.png. Cells are runs: the same command again skips finished cells and
resumes an interrupted one from its last finished epoch (its early stopping's memory
starting anew); a cell with any other setting is another run in another folder.

`--executor` chooses where the cells run (diffnet_tf.launch): one after another in this
process (local), as Ray tasks or as a Slurm job array, several at once. The training and
test pairs every cell shares are made once first, here, and each cell reads its own from
the pair cache. A cell that fails is reported and the others go on; results.json and the
figure are written once every cell has finished.
"""

from pathlib import Path

from absl import app

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.arguments import executor
from diffnet_tf.cli.report import count
from diffnet_tf.cli.spec_flags import network_values, spec_from_flags

FLAGS = programs.flag_values("generalisation")
MODELS = tuple(programs.PROGRAMS["generalisation"].protocols)  # diffnet, unet


def parse_sizes(values, largest):
    """The --sizes list as sorted unique ints in 1..largest."""
    try:
        sizes = sorted({int(v) for v in values})
    except ValueError:
        raise app.UsageError(f"Expected --sizes to be integers. Received {values}.") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > largest:
        raise app.UsageError(f"Expected --sizes between 1 and {largest:,} (the train split). "
                             f"Received {values}.")
    return sizes


def parse_models(values):
    """The --models list, each one of MODELS, without repeats."""
    unknown = [m for m in values if m not in MODELS]
    if not values or unknown:
        raise app.UsageError(f"Expected --models from {list(MODELS)}. Received {values}.")
    return list(dict.fromkeys(values))


def positive(name, value):
    if value < 1:
        raise app.UsageError(f"Expected --{name} >= 1. Received {value}.")
    return value


def plan_line(key, cell):
    """What a cell trains: 'diffnet_n10: 10 training images x500 per epoch, 500
    validation, at most 18 epochs'."""
    repeats = cell.train.epoch_repeats
    return (f"{key}: {cell.data.train_size} training images"
            f"{f' x{repeats} per epoch' if repeats > 1 else ''}, {cell.data.val_size} "
            f"validation, at most {count(cell.train.epochs, 'epoch')}")


def main(argv):
    del argv
    from diffnet_tf import files, plotting, protocols, runs
    from diffnet_tf.launch import launcher
    from experiments.studies import cell_record, fig10_curves, fig10_title, study_cells

    values, verbose = startup.begin("generalisation", FLAGS)
    sizes = parse_sizes(values["sizes"], protocols.TRAIN_IMAGES)
    patience = positive("patience", values["patience"])
    epoch_images = positive("epoch_images", values["epoch_images"])
    bases = {model: spec_from_flags(
        programs.protocol_spec("generalisation", model, values["problem"]).replace(
            train={"patience": patience}), network_values(values, model))
        for model in parse_models(values["models"])}
    cells = study_cells(bases, sizes, epoch_images, protocols.TRAIN_IMAGES)
    data = next(iter(cells.values())).data
    study_dir = Path(values["out_dir"]) / f"{data.problem}_{data.source}_noise{data.noise:g}"
    runner = executor(values, study_dir)
    print(f"Generalisation ({study_dir.name}): {len(cells)} cells -> {study_dir}")
    for key, cell in cells.items():
        print(plan_line(key, cell))
    outcomes = launcher.launch(cells, study_dir, runner, values["data_dir"],
                               values["overwrite"], values["download"], verbose)
    launcher.check_finished(outcomes)
    records = {}
    for key, cell in cells.items():
        records[key] = cell_record(key, cell, runs.RunFolder(study_dir, cell))
        print(f"{key}: test PSNR {records[key]['test']['psnr_mean']:.2f} dB (input "
              f"{records[key]['test_input']['psnr_mean']:.2f} dB), best epoch "
              f"{records[key]['best_epoch']} of {records[key]['epochs_trained']}"
              f"{' (finished earlier)' if outcomes[key].status == 'reused' else ''}")
    files.write_json(study_dir / "results.json", {"cells": records})
    figure = plotting.psnr_vs_training_size(
        fig10_curves(records), study_dir / "fig10_psnr_vs_size.png",
        next(iter(records.values()))["test_input"]["psnr_mean"], fig10_title(data))
    print(f"Wrote {figure} and {study_dir / 'results.json'}")


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
