"""Training and evaluation of the network a `spec.RunSpec` describes: the model, the loss,
the learning-rate schedule, the per-epoch backup a run resumes from, divergence, `fit` and
`evaluate`. Keras APIs only: it runs on every backend.
"""

import contextlib
import logging
import math
import re
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from diffnet_tf import losses, metrics, models, pipeline
from diffnet_tf.files import read_json, replace_atomically, write_json

_log = logging.getLogger(__name__)


def learning_rate_schedule(lr_init, lr_final, total_steps):
    """Geometric decay from lr_init at step 0 to lr_final at `total_steps` (Sect. 5:
    "a gradual decrease"; the released code halved the rate every ~10k steps)."""
    return keras.optimizers.schedules.ExponentialDecay(
        lr_init, decay_steps=max(total_steps, 1), decay_rate=lr_final / lr_init
    )


def compile_model(model, train, steps_per_epoch):
    """Adam with the geometric decay over the whole run, the spec's loss, PSNR as metric.

    Args:
        model: a Keras model.
        train: a `spec.TrainSpec`.
        steps_per_epoch: optimizer steps per epoch.
    """
    schedule = learning_rate_schedule(train.lr_init, train.lr_final,
                                      train.epochs * steps_per_epoch)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=losses.LOSSES[train.loss],
                  metrics=[metrics.ImageMetric("psnr")])
    return model


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, raising at once (so the last good backup is kept) with a
    message that names the likely causes (as spec fields: a program adds the flags it has,
    `diffnet_tf.cli.spec_flags.flag_message`) and what is kept.

    Args:
        backup_dir: the run's backup folder, for the message.
    """

    def __init__(self, backup_dir):
        super().__init__(raise_error=True)
        self.backup_dir = Path(backup_dir)

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as error:
            optimizer = self.model.optimizer
            lr = float(ops.convert_to_numpy(optimizer.learning_rate))
            layers = getattr(self.model, "diffusion_layers", [])
            dts = [round(float(ops.convert_to_numpy(layer.dt)), 4) for layer in layers]
            kept = (f"The last completed epoch is kept in {self.backup_dir}; a run with the "
                    "same spec resumes from it." if latest_backup(self.backup_dir) else
                    "No epoch was completed, so nothing was kept.")
            dt_hint = (f" or, for DiffNet, a learned time step left the stable range (dt per "
                       f"layer: {dts}; try a smaller model.dt_init)" if layers else "")
            raise TrainingDiverged(
                f"Training diverged: the loss became {logs.get('loss')} at step "
                f"{int(ops.convert_to_numpy(optimizer.iterations))}. Likely causes: the "
                f"learning rate is too high (now {lr:.3g}; try a lower train.lr_init)"
                f"{dt_hint}. {kept}"
            ) from error


_BACKUP = re.compile(r"epoch-(\d{4,})\.weights\.h5")


def backups(backup_dir):
    """The epoch backups in a folder, newest first: a list of (epoch, path)."""
    found = [(int(m.group(1)), path) for path in Path(backup_dir).glob("epoch-*.weights.h5")
             if (m := _BACKUP.fullmatch(path.name))]
    return sorted(found, reverse=True)


def latest_backup(backup_dir):
    """The newest backup's path, or None."""
    found = backups(backup_dir)
    return found[0][1] if found else None


class EpochBackup(keras.callbacks.Callback):
    """Saves the model's and the optimizer's state after every epoch, atomically.

    Each epoch is one file, backup_dir/epoch-NNNN.weights.h5 (the epoch number is part of
    the file, so weights and epoch can never disagree), written to a temporary file and
    renamed; epoch-NNNN.json beside it holds the training time so far. The newest `keep`
    epochs stay, so a damaged newest file leaves an older one to fall back to.

    Args:
        backup_dir: the folder (created).
        train_seconds: training time of earlier sessions, carried on.
        keep: how many epochs to keep (>= 2).
    """

    def __init__(self, backup_dir, train_seconds=0.0, keep=2):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.train_seconds = train_seconds
        self.keep = keep
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        path = self.backup_dir / f"epoch-{epoch + 1:04d}.weights.h5"
        seconds = self.train_seconds + time.perf_counter() - self.started
        write_json(path.with_name(f"epoch-{epoch + 1:04d}.json"),
                   {"epoch": epoch + 1, "train_seconds": seconds})
        replace_atomically(path, lambda temporary: self.model.save_weights(temporary))
        for _, old in backups(self.backup_dir)[self.keep :]:
            old.unlink()
            old.with_name(old.name.replace(".weights.h5", ".json")).unlink(missing_ok=True)


def restore_backup(model, backup_dir):
    """Loads the newest readable epoch backup into a compiled model and its optimizer.

    A damaged file (empty, truncated, not HDF5) is named in a note and skipped for the one
    before it; with none readable the model keeps its initial state.

    Returns:
        (epoch, train_seconds, notes): the epochs already done (0 without a backup), the
        training time they took, and a list of messages for the user.
    """
    found = backups(backup_dir)
    if not found:
        return 0, 0.0, []
    model.optimizer.build(model.trainable_variables)
    variables = model.weights + model.optimizer.variables
    initial = [ops.convert_to_numpy(v) for v in variables]
    notes = []
    for epoch, path in found:
        try:
            model.load_weights(path)
        except Exception as error:  # h5py's OSError, a truncated or mismatched file
            notes.append(f"The backup {path} could not be read ({type(error).__name__}: "
                         f"{error}); falling back to the one before it.")
            continue
        record = path.with_name(f"epoch-{epoch:04d}.json")
        seconds = read_json(record)["train_seconds"] if record.exists() else 0.0
        return epoch, seconds, notes
    for variable, value in zip(variables, initial):
        variable.assign(value)
    notes.append(f"No backup in {backup_dir} could be read: training starts from scratch.")
    return 0, 0.0, notes


def training_input(inputs, targets, batch_size, seed):
    """fit's training data: on TensorFlow a shuffled tf.data pipeline without autotuning
    (`pipeline.make_dataset`: Keras' own pipeline of NumPy arrays stalls at each epoch's
    start), elsewhere the arrays, which Keras shuffles itself.

    Returns:
        A dict of model.fit arguments (x, y, batch_size).
    """
    if keras.backend.backend() == "tensorflow":
        return {"x": pipeline.make_dataset(inputs, targets, batch_size, shuffle=True, seed=seed),
                "shuffle": False}
    return {"x": inputs, "y": targets, "batch_size": batch_size}


def fit(spec, pairs, backup_dir, verbose=1, callbacks=(), strategy=None):
    """Trains the network of `spec` on `pairs`, resuming from `backup_dir` if it holds epochs.

    Args:
        spec: a `spec.RunSpec`.
        pairs: a `pairs.RunPairs` (train for fitting, validation for the validation
            loss and early stopping).
        backup_dir: the folder of the per-epoch backup (`EpochBackup`).
        verbose: Keras' progress output (0 silent, 1 progress bar, 2 one line per epoch).
        callbacks: extra Keras callbacks (e.g. TensorBoard logging).
        strategy: a tf.distribute strategy to build and train the model under, or None.

    Returns:
        (model, summary, notes): the trained model (the best epoch's weights with early
        stopping), a dict with epochs_trained, best_epoch, stopped_early, train_seconds and
        final_loss, and the notes of `restore_backup` (also warned before training starts).

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
    """
    keras.utils.set_random_seed(spec.train.seed)
    x, y = (np.concatenate([a] * spec.train.epoch_repeats) if spec.train.epoch_repeats > 1
            else a for a in pairs.train)
    steps_per_epoch = math.ceil(len(x) / spec.train.batch_size)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = models.build_model(spec)
        model.build((None, None, None, spec.data.channels))
        compile_model(model, spec.train, steps_per_epoch)
    initial_epoch, seconds, notes = restore_backup(model, backup_dir)
    for note in notes:  # now, not when training is over: what resumes is known at once
        warnings.warn(note, stacklevel=2)
    if initial_epoch and verbose:
        _log.info("Resuming from the backup in %s: %d of %d epochs done.", backup_dir,
                  initial_epoch, spec.train.epochs)
    stopper, backup = None, EpochBackup(backup_dir, seconds)
    all_callbacks = [StopOnDivergence(backup_dir), backup]
    if spec.train.patience is not None:
        stopper = keras.callbacks.EarlyStopping(patience=spec.train.patience,
                                                restore_best_weights=True)
        all_callbacks.append(stopper)
    history = {}
    if initial_epoch < spec.train.epochs:
        history = model.fit(**training_input(x, y, spec.train.batch_size, spec.train.seed),
                            validation_data=pairs.validation, epochs=spec.train.epochs,
                            initial_epoch=initial_epoch, callbacks=all_callbacks + list(callbacks),
                            verbose=verbose).history
        seconds = backup.train_seconds + time.perf_counter() - backup.started
    stopped = bool(stopper and stopper.stopped_epoch)
    summary = {
        "epochs_trained": stopper.stopped_epoch + 1 if stopped else spec.train.epochs,
        "best_epoch": stopper.best_epoch + 1 if stopper and history else None,
        "stopped_early": stopped,
        "epochs_this_session": len(history.get("loss", [])),
        "train_seconds": round(seconds, 1),
        "final_loss": history["loss"][-1] if history.get("loss") else None,
    }
    return model, summary, notes


def evaluate(model, inputs, targets, batch_size=64):
    """Image quality of a model's outputs and, as the do-nothing baseline, of its inputs.

    Args:
        model: a Keras model mapping (B, H, W, C) to (B, H, W, C).
        inputs: (N, H, W, C) array.
        targets: (N, H, W, C) array.
        batch_size: images per prediction batch.

    Returns:
        {'model': metrics.image_quality(targets, outputs), 'input': metrics.image_quality(
        targets, inputs)}.
    """
    outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    return {"model": metrics.image_quality(targets, outputs),
            "input": metrics.image_quality(targets, inputs)}
