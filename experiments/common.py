"""What every study shares: the run flags (absl flags are global, so they are defined once,
here), and `run`, which trains, evaluates and writes a run folder (DESIGN.md, "Run outputs").

Flags whose default is None take the study's paper value.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import flags

from diffnet_tf import training

flags.DEFINE_integer("train_size", None, "Training images: the first N of the train split.")
flags.DEFINE_integer("test_size", None, "Test images: the first N of the test split.")
flags.DEFINE_integer("val_size", None, "Validation images (the first N of the test split), "
                     "for TensorBoard and best.keras only; reported figures use the final model.")
flags.DEFINE_integer("epochs", None, "Training epochs.")
flags.DEFINE_integer("batch_size", 16, "Images per optimizer step.")
flags.DEFINE_float("lr_init", None, "Adam's first learning rate.")
flags.DEFINE_float("lr_final", None, "Adam's last learning rate (geometric decay).")
flags.DEFINE_integer("layers", None, "DiffNet diffusion layers.")
flags.DEFINE_integer("estimator_depth", 4, "Convolutions per DiffNet filter estimator.")
flags.DEFINE_enum("boundary", "neumann", ["neumann", "zero"],
                  "DiffNet's stencil boundary: the paper's zero Neumann, or the released code's zeros.")
flags.DEFINE_integer("unet_filters", 64, "U-Net channels at the first level (paper: 64).")
flags.DEFINE_integer("seed", 0, "Seed of the data, noise, weights and shuffling.")
flags.DEFINE_string("out_dir", None, "Where the run folders go.")
flags.DEFINE_string("data_dir", "data", "Dataset root: STL-10 and the pair cache.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored"],
                  "tf.distribute strategy: 'mirrored' trains on all local GPUs.")
flags.DEFINE_integer("verbose", 1, "Keras progress: 0 silent, 1 bar, 2 a line per epoch.")

FLAGS = flags.FLAGS
PREVIEW_IMAGES = 4


def resolve(value, default):
    """A flag's value, or the study's paper default when the flag was left at None."""
    return default if value is None else value


def config_from_flags(model, problem, dataset, noise, paper, image_size=96, max_discs=1):
    """The TrainConfig of the shared flags; where a flag is unset, the study's paper value.

    Args:
        model: 'diffnet' or 'unet'.
        problem: 'pm_inverse', 'pm_forward' or 'heat_inverse'.
        dataset: the image source's name.
        noise: the noise level.
        paper: the study's defaults: num_layers, epochs, train_size, val_size, test_size.
        image_size: the images' side, recorded in config.json.
        max_discs: the most discs per image (dataset 'discs'), recorded in config.json.
    """
    lr_init, lr_final = training.PAPER_LEARNING_RATES[(model, problem.split("_")[0])]
    return training.TrainConfig(
        model=model,
        num_layers=resolve(FLAGS.layers, paper["num_layers"]),
        estimator_depth=FLAGS.estimator_depth,
        boundary=FLAGS.boundary,
        unet_filters=FLAGS.unet_filters,
        epochs=resolve(FLAGS.epochs, paper["epochs"]),
        batch_size=FLAGS.batch_size,
        lr_init=resolve(FLAGS.lr_init, lr_init),
        lr_final=resolve(FLAGS.lr_final, lr_final),
        seed=FLAGS.seed,
        problem=problem,
        dataset=dataset,
        noise=noise,
        train_size=resolve(FLAGS.train_size, paper["train_size"]),
        val_size=resolve(FLAGS.val_size, paper["val_size"]),
        test_size=resolve(FLAGS.test_size, paper["test_size"]),
        image_size=image_size,
        max_discs=max_discs,
    )


def strategy_from_flags():
    return tf.distribute.MirroredStrategy() if FLAGS.strategy == "mirrored" else None


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def run(config, train_pairs, test_pairs, run_dir, strategy=None, verbose=1, validation=None,
        callbacks=(), repeat=1):
    """Trains `config` on `train_pairs`, evaluates it and writes the run folder.

    Args:
        config: a training.TrainConfig (val_size and test_size are taken from it).
        train_pairs: (inputs, targets) arrays (N, H, W, 1) for training.
        test_pairs: (inputs, targets) arrays of the test split; unless `validation` is
            given, the first val_size double as validation data (monitoring only:
            metrics.json evaluates the final model).
        run_dir: the run folder.
        strategy: optional tf.distribute strategy.
        verbose: Keras progress output.
        validation: optional (inputs, targets) validation arrays, instead of the first
            val_size test pairs (e.g. for early stopping, which must not see the test set).
        callbacks: extra Keras callbacks for training (e.g. keras.callbacks.EarlyStopping).
        repeat: how many times each training image is shown per epoch (the arrays are
            repeated; a small training set then gets more optimizer steps per epoch).

    Returns:
        (model, metrics): the trained model and the dict written to metrics.json.
    """
    os.makedirs(os.path.join(run_dir, "figures"), exist_ok=True)
    if validation is None:
        validation = tuple(a[: config.val_size] for a in test_pairs)
    preview = tuple(a[:PREVIEW_IMAGES] for a in validation)
    fit_pairs = train_pairs if repeat == 1 else tuple(np.concatenate([a] * repeat)
                                                      for a in train_pairs)
    start = time.time()
    model, history = training.train(config, fit_pairs, validation, run_dir, preview=preview,
                                    verbose=verbose, callbacks=callbacks, strategy=strategy)
    train_seconds = time.time() - start
    evaluated = min(len(train_pairs[0]), len(test_pairs[0]))
    test = training.evaluate(model, *test_pairs)
    train = training.evaluate(model, *(a[:evaluated] for a in train_pairs))
    metrics = {
        "test": test["model"],
        "test_input": test["input"],
        "train": train["model"],
        "train_input": train["input"],
        "train_images_evaluated": evaluated,
        "parameters": int(model.count_params()),
        "train_wall_time_s": round(train_seconds, 1),
        "epochs_this_session": len(history.history.get("loss", [])),
        "epoch_repeats": repeat,
        "final_loss": history.history["loss"][-1] if history.history.get("loss") else None,
        "dataset": config.dataset,
        "train_size": len(train_pairs[0]),
        "test_size": len(test_pairs[0]),
    }
    if hasattr(model, "trace"):
        metrics["dt"] = [float(np.asarray(layer.dt)) for layer in model.diffusion_layers]
    write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return model, metrics


def summary_line(name, metrics):
    return (f"{name}: test PSNR {metrics['test']['psnr_mean']:.2f} +- "
            f"{metrics['test']['psnr_std']:.2f} dB (input {metrics['test_input']['psnr_mean']:.2f}"
            f" dB), train PSNR {metrics['train']['psnr_mean']:.2f} dB, "
            f"{metrics['parameters']:,} parameters, {metrics['train_wall_time_s']:.0f} s training")
