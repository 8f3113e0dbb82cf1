"""Training and evaluation of the network a `spec.RunSpec` describes: the model, the loss,
the learning-rate schedule, divergence, `fit` (resuming from the per-epoch backup,
`diffnet_tf.backup`) and `evaluate`. Keras APIs only: it runs on every backend.
"""

import contextlib
import logging
import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from diffnet_tf import distribution, losses, metrics, models, pipeline, protocols
from diffnet_tf.precision import matrix_precision
from diffnet_tf.backup import EpochBackup, latest_backup, restore_backup

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


def unusual_data(data):
    """The data settings of a `spec.DataSpec` beyond the paper's, each as a cause for a
    divergence message (a list of strings, empty for the paper's settings)."""
    if data is None or data.noise <= protocols.LARGEST_NOISE:
        return []
    return [f"the noise is far above the paper's (DataSpec.noise is {data.noise:g}, the "
            f"paper's largest {protocols.LARGEST_NOISE:g}): try a smaller DataSpec.noise"]


class StopOnDivergence(keras.callbacks.Callback):
    """Raises TrainingDiverged when a step's loss or an epoch's loss or validation loss is
    NaN or infinite; before the backup, which so never keeps diverged weights (a last step
    can make them NaN after a finite loss). The message names the likely causes, data
    settings beyond the paper's first (as spec fields: a program adds its flags,
    `diffnet_tf.cli.spec_flags.flag_message`), and what is kept.

    Args:
        backup_dir: the run's backup folder, for the message.
        data: the run's `spec.DataSpec`, or None.
    """

    def __init__(self, backup_dir, data=None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.data = data

    def on_batch_end(self, batch, logs=None):
        self._check(logs, ("loss",))

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, ("loss", "val_loss"))

    def _check(self, logs, names):
        for name in names:
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(ops.convert_to_numpy(value))):
                raise TrainingDiverged(self._message(name, float(ops.convert_to_numpy(value))))

    def _message(self, name, value):
        optimizer = self.model.optimizer
        lr = float(ops.convert_to_numpy(optimizer.learning_rate))
        layers = getattr(self.model, "diffusion_layers", [])
        dts = [round(float(ops.convert_to_numpy(layer.dt)), 4) for layer in layers]
        kept = (f"The last completed epoch is kept in {self.backup_dir}; a run with the same "
                "spec resumes from it." if latest_backup(self.backup_dir) else
                "No epoch was completed, so nothing was kept.")
        causes = [*unusual_data(self.data),
                  f"the learning rate is too high (now {lr:.3g}; try a lower train.lr_init)"]
        if layers:
            causes.append(f"for DiffNet, a learned time step left the stable range (dt per "
                          f"layer: {dts}; try a smaller model.dt_init)")
        return (f"Training diverged: the {name.replace('_', ' ')} became {value} at step "
                f"{int(ops.convert_to_numpy(optimizer.iterations))}. Likely causes: "
                f"{'; or '.join(causes)}. {kept}")


def training_input(inputs, targets, batch_size, seed, first_epoch=0):
    """fit's training data, each epoch in its own order of (seed, epoch), so that a resumed
    or mirrored run sees the orders of an uninterrupted one-device run: on TensorFlow a
    tf.data pipeline without autotuning (`pipeline.make_dataset`: Keras' own pipeline of
    NumPy arrays stalls at each epoch's start), elsewhere `pipeline.EpochBatches`.

    Returns:
        (a dict of model.fit arguments: x, steps_per_epoch on TensorFlow, shuffle; the
        callbacks fit needs with them).
    """
    if keras.backend.backend() == "tensorflow":
        return {"x": pipeline.make_dataset(inputs, targets, batch_size, shuffle=True,
                                           seed=seed, first_epoch=first_epoch),
                "steps_per_epoch": math.ceil(len(inputs) / batch_size), "shuffle": False}, []
    batches = pipeline.EpochBatches(inputs, targets, batch_size, seed, first_epoch)
    return {"x": batches, "shuffle": False}, [pipeline.FollowEpochs(batches)]


def fit(spec, pairs, backup_dir, verbose=1, callbacks=(), strategy=None):
    """Trains the network of `spec` on `pairs`, resuming from `backup_dir` if it holds epochs.

    Args:
        spec: a `spec.RunSpec`.
        pairs: a `pairs.RunPairs` (train for fitting, validation for the validation
            loss and early stopping).
        backup_dir: the folder of the per-epoch backup (`EpochBackup`).
        verbose: Keras' progress output (0 silent, 1 progress bar, 2 one line per epoch).
        callbacks: extra Keras callbacks (e.g. TensorBoard logging).
        strategy: a `distribution.strategy` to build, restore and train the model under
            (several devices), or None for one device.

    Returns:
        (model, summary, notes): the trained model (the best epoch's weights with early
        stopping), a dict with epochs_trained, best_epoch, stopped_early, train_seconds,
        final_loss, precision (training ran under `precision.matrix_precision` of
        spec.train.precision) and devices, and the notes of `restore_backup` (also warned
        before training starts).

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
        ValueError: the replicas of a mirrored strategy cannot share the first batch of
            training or of validation equally (`distribution.check_first_batches`).
    """
    keras.utils.set_random_seed(spec.train.seed)
    distribution.check_first_batches(strategy, {
        "training": min(spec.train.batch_size, len(pairs.train[0]) * spec.train.epoch_repeats),
        "validation": min(spec.train.batch_size, len(pairs.validation[0]))})
    with strategy.scope() if strategy else contextlib.nullcontext():
        model, summary, notes = _fit_in_scope(spec, pairs, backup_dir, verbose, callbacks)
    return model, dict(summary, devices=distribution.device_count(strategy)), notes


def _fit_in_scope(spec, pairs, backup_dir, verbose, callbacks):
    """`fit` inside its strategy's scope (Keras' DataParallel reads it while it trains):
    (model, summary without devices, notes)."""
    x, y = (np.concatenate([a] * spec.train.epoch_repeats) if spec.train.epoch_repeats > 1
            else a for a in pairs.train)
    model = models.build_model(spec)
    model.build((None, None, None, spec.data.channels))
    compile_model(model, spec.train, math.ceil(len(x) / spec.train.batch_size))
    initial_epoch, seconds, notes = restore_backup(model, backup_dir)
    for note in notes:  # now, not when training is over: what resumes is known at once
        warnings.warn(note, stacklevel=3)
    if initial_epoch and verbose:
        _log.info("Resuming from the backup in %s: %d of %d epochs done.", backup_dir,
                  initial_epoch, spec.train.epochs)
    stopper, backup = None, EpochBackup(backup_dir, seconds)
    all_callbacks = [StopOnDivergence(backup_dir, spec.data), backup]
    if spec.train.patience is not None:
        stopper = keras.callbacks.EarlyStopping(patience=spec.train.patience,
                                                restore_best_weights=True)
        all_callbacks.append(stopper)
    history = {}
    if initial_epoch < spec.train.epochs:
        fed, feeding = training_input(x, y, spec.train.batch_size, spec.train.seed,
                                      initial_epoch)
        with matrix_precision(spec.train.precision):
            history = model.fit(**fed, validation_data=pairs.validation,
                                validation_batch_size=spec.train.batch_size,
                                epochs=spec.train.epochs, initial_epoch=initial_epoch,
                                callbacks=feeding + all_callbacks + list(callbacks),
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
        "precision": spec.train.precision,
    }
    return model, summary, notes


def evaluate(model, inputs, targets, batch_size=64):
    """Image quality of a model's outputs and, as the do-nothing baseline, of its inputs;
    the outputs in true float32 whatever the precision it was trained in, so a run's
    figures do not depend on the device.

    Args:
        model: a Keras model mapping (B, H, W, C) to (B, H, W, C).
        inputs: (N, H, W, C) array.
        targets: (N, H, W, C) array.
        batch_size: images per prediction batch.

    Returns:
        {'model': metrics.image_quality(targets, outputs), 'input': metrics.image_quality(
        targets, inputs)}.
    """
    with matrix_precision("float32"):
        outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    return {"model": metrics.image_quality(targets, outputs),
            "input": metrics.image_quality(targets, inputs)}
