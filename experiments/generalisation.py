"""Sect. 6.1, Fig. 10: test PSNR against the training-set size, DiffNet and the U-Net.

    python -m experiments.generalisation                          # the paper's study, STL-10
    python -m experiments.generalisation --problem=forward        # the forward problem
    python -m experiments.generalisation --noise=0.01             # inversion with 1% noise
    python -m experiments.generalisation --dataset=synthetic --sizes=10,50,100,500,1000 \\
        --epochs=3 --epoch_images=200 --patience=1 --val_size=50 --test_size=100  # CPU

Every (model, size) cell trains on the first `size` images of the train split with the
Perona-Malik protocol of Sect. 5.2 (`--epochs` is an upper bound) and stops early once the
validation loss has not improved for `--patience` epochs, keeping the weights of the best
epoch (the paper "aborted the procedure when the networks started to clearly overfit").

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

Writes <out_dir>/<problem>_<dataset>_<pm_boundary>_noise<level>/:
results.json (one entry per finished cell: test PSNR mean and std, the input's PSNR, the
images used, epochs trained, the best epoch, the configuration), fig10_psnr_vs_size.png,
and one run folder per cell, <model>_n<size>/ (see experiments/common.py; best.keras is
deleted, model.keras holds the best epoch's weights). A cell is written to results.json as
soon as it finishes: the same command again skips finished cells (an interrupted study
loses at most the cell in flight, which resumes from its last finished epoch, its early
stopping's memory starting anew) and refuses cells whose stored configuration differs.
"""

import dataclasses
import json
import math
import os

import keras
from absl import app, flags

from diffnet_tf import plotting
from diffnet_tf.training import MODELS
from experiments import common, perona_malik  # perona_malik: --problem, --noise, --dataset

flags.DEFINE_list("sizes", ["10", "50", "100", "500", "1000", "5000", "10000", "50000", "90000"],
                  "Training-set sizes (the paper's range: 10 ... 90,000).")
flags.DEFINE_list("models", ["diffnet", "unet"], "Networks to compare: diffnet, unet.")
flags.DEFINE_integer("patience", 3, "Early stopping: epochs without a lower validation loss "
                     "before a cell stops (the best epoch's weights are kept).")
flags.DEFINE_integer("epoch_images", 5000, "Smaller training sets are repeated within an "
                     "epoch until it shows at least this many images.")

FLAGS = flags.FLAGS
TRAIN_POOL = 90_000  # images of the train split (Sect. 5.2)
PAPER = dict(perona_malik.PAPER)  # 18 epochs (here an upper bound), val 500, test 10,000
RESULTS = "results.json"


def parse_sizes(values):
    """The --sizes list as sorted unique ints in 1..90,000."""
    try:
        sizes = sorted({int(v) for v in values})
    except ValueError:
        raise ValueError(f"Expected --sizes to be integers. Received {values}.") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > TRAIN_POOL:
        raise ValueError(f"Expected --sizes between 1 and {TRAIN_POOL:,} (the train split). "
                         f"Received {values}.")
    return sizes


def parse_models(values):
    """The --models list, each one of training.MODELS."""
    unknown = [m for m in values if m not in MODELS]
    if not values or unknown:
        raise ValueError(f"Expected --models from {list(MODELS)}. Received {values}.")
    return list(dict.fromkeys(values))


def positive(name, value):
    if value < 1:
        raise ValueError(f"Expected --{name} >= 1. Received {value}.")
    return value


def cell_plan(size, val_size, epoch_images):
    """(training images, repeats per epoch) of a cell: the training set shrinks so that
    size + val_size fit in the train split, and is repeated to fill `epoch_images`."""
    train_images = min(size, TRAIN_POOL - val_size)
    return train_images, max(1, math.ceil(epoch_images / train_images))


def load_results(path):
    if not os.path.exists(path):
        return {"cells": {}}
    with open(path) as f:
        return json.load(f)


def write_results(path, results):
    """Writes results.json atomically: an interruption leaves the old or the new file."""
    common.write_json(path + ".tmp", results)
    os.replace(path + ".tmp", path)


def stored_cell(results, key, identity):
    """The finished cell `key`, or None; raises if it was made with another configuration."""
    cell = results["cells"].get(key)
    if cell is not None and cell["identity"] != identity:
        changed = ", ".join(f"{k}: stored {cell['identity'].get(k)!r}, now {v!r}"
                            for k, v in sorted(identity.items()) if v != cell["identity"].get(k))
        raise ValueError(f"Cell {key} in {RESULTS} was trained with other settings ({changed})."
                         " Use another --out_dir, or delete the file to start again.")
    return cell


def train_cell(config, pool, test_pairs, run_dir, repeat):
    """Trains one cell with early stopping on the images after its training set.

    Args:
        config: the cell's TrainConfig (train_size and val_size say what `pool` gives).
        pool: (inputs, targets) from the start of the train split, at least train_size +
            val_size images.
        test_pairs: (inputs, targets) of the test split.
        run_dir: the cell's run folder.
        repeat: times the training set is shown per epoch.

    Returns:
        dict: the cell's numbers for results.json.
    """
    n, m = config.train_size, config.val_size
    stopper = keras.callbacks.EarlyStopping(patience=FLAGS.patience, restore_best_weights=True,
                                            verbose=min(FLAGS.verbose, 1))
    _, metrics = common.run(config, tuple(a[:n] for a in pool), test_pairs, run_dir,
                            strategy=common.strategy_from_flags(), verbose=FLAGS.verbose,
                            validation=tuple(a[n : n + m] for a in pool), callbacks=[stopper],
                            repeat=repeat)
    best = os.path.join(run_dir, "best.keras")
    if os.path.exists(best):  # the same weights as model.keras (restore_best_weights)
        os.remove(best)
    keras.backend.clear_session()  # free the cell's graphs before the next one
    return dict(
        {k: metrics[k] for k in ("test", "test_input", "train", "parameters",
                                 "train_wall_time_s")},
        train_images=n, val_images=m, epoch_repeats=repeat,
        epochs_trained=stopper.stopped_epoch + 1 if stopper.stopped_epoch else config.epochs,
        best_epoch=stopper.best_epoch + 1,
        stopped_early=stopper.stopped_epoch > 0, run_dir=run_dir,
    )


def plot(results, study_dir, title):
    curves, input_psnr = {}, None
    for cell in results["cells"].values():
        sizes, means, stds = curves.setdefault(cell["identity"]["model"], ([], [], []))
        sizes.append(cell["size"])
        means.append(cell["test"]["psnr_mean"])
        stds.append(cell["test"]["psnr_std"])
        input_psnr = cell["test_input"]["psnr_mean"]
    return plotting.psnr_vs_training_size(
        curves, os.path.join(study_dir, "fig10_psnr_vs_size.png"), input_psnr, title)


def pending_cells(results, sizes, models, problem, val_size):
    """The (key, size, config, identity, repeats) of every cell not yet in `results`."""
    todo = []
    for size in sizes:
        train_images, repeat = cell_plan(size, val_size, FLAGS.epoch_images)
        for model in models:
            config = dataclasses.replace(
                common.config_from_flags(model, problem, FLAGS.dataset, FLAGS.noise, PAPER),
                train_size=train_images, val_size=val_size)
            identity = dict(dataclasses.asdict(config), pm_boundary=FLAGS.pm_boundary,
                            patience=FLAGS.patience, epoch_images=FLAGS.epoch_images)
            key = f"{model}_n{size}"
            if stored_cell(results, key, identity) is None:
                todo.append((key, size, config, identity, repeat))
    return todo


def main(argv):
    del argv
    if FLAGS.train_size is not None:
        raise ValueError("Expected --sizes, not --train_size, for the generalisation study. "
                         f"Received --train_size={FLAGS.train_size}.")
    sizes, models = parse_sizes(FLAGS.sizes), parse_models(FLAGS.models)
    positive("patience", FLAGS.patience)
    positive("epoch_images", FLAGS.epoch_images)
    val_size = positive("val_size", common.resolve(FLAGS.val_size, PAPER["val_size"]))
    problem = f"pm_{FLAGS.problem}"
    study = f"{problem}_{FLAGS.dataset}_{FLAGS.pm_boundary}_noise{FLAGS.noise:g}"
    out_dir = common.resolve(FLAGS.out_dir, os.path.join("runs", "generalisation"))
    study_dir = os.path.join(out_dir, study)
    os.makedirs(study_dir, exist_ok=True)
    results_path = os.path.join(study_dir, RESULTS)
    results = load_results(results_path)
    todo = pending_cells(results, sizes, models, problem, val_size)
    print(f"Generalisation ({study}): {len(sizes) * len(models) - len(todo)} of "
          f"{len(sizes) * len(models)} cells done -> {study_dir}")
    if todo:
        config = todo[0][2]
        pool = perona_malik.load_pairs(
            config, "train", min(max(c[2].train_size for c in todo) + val_size, TRAIN_POOL))
        test_pairs = perona_malik.load_pairs(config, "test", config.test_size)
    for i, (key, size, config, identity, repeat) in enumerate(todo, start=1):
        print(f"[{i}/{len(todo)}] {key}: {config.train_size} training images"
              f"{f' x{repeat} per epoch' if repeat > 1 else ''}, {val_size} validation, "
              f"at most {config.epochs} epochs")
        cell = train_cell(config, pool, test_pairs, os.path.join(study_dir, key), repeat)
        results["cells"][key] = dict(cell, size=size, identity=identity)
        write_results(results_path, results)
        print(common.summary_line(key, cell) + f", best epoch {cell['best_epoch']} of "
              f"{cell['epochs_trained']}")
    if results["cells"]:
        print(f"Wrote {plot(results, study_dir, study)} and {results_path}")


if __name__ == "__main__":
    app.run(main)
