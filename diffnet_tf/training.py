"""Training and evaluation: the paper's protocols (Sect. 5) as a `TrainConfig`, the loss,
the learning-rate schedule, callbacks for TensorBoard, resuming and divergence, `train()`
and `evaluate()`.

Run folder written by `train` (DESIGN.md, "Run outputs"): config.json, model.keras,
best.keras (lowest validation loss), tensorboard/{train,validation}/, backup/ (only while
a run is unfinished: starting it again with the same folder resumes it).
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from diffnet_tf import metrics
from diffnet_tf.analysis import decompose_filters
from diffnet_tf.checks import BOUNDARIES, check_choice
from diffnet_tf.models import DiffNet, UNet

MODELS = ("diffnet", "unet")
LOSSES = ("l2norm", "mse")
FILTER_NAMES = ("top", "left", "bottom", "right", "centre")

# Learning rates of the paper (Sect. 5): (lr_init, lr_final) per model and problem family.
PAPER_LEARNING_RATES = {
    ("diffnet", "pm"): (2e-3, 4e-6),
    ("unet", "pm"): (5e-4, 2e-5),
    ("diffnet", "heat"): (4e-4, 1e-6),
    ("unet", "heat"): (5e-4, 2e-5),
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved as config.json.

    Defaults are the paper's Perona-Malik protocol for DiffNet (Sect. 5.2): 5 layers with
    4-layer estimators, 18 epochs, batch 16, Adam from 2e-3 decreasing geometrically to
    4e-6, the released code's l2-norm loss.

    Attributes:
        model: 'diffnet' or 'unet'.
        num_layers, estimator_depth, width, boundary, dt_init, final_relu: DiffNet's
            arguments (`diffnet_tf.models.DiffNet`).
        unet_filters: channels of the U-Net's first level (64 in the paper).
        epochs: passes over the training set.
        batch_size: images per optimizer step.
        lr_init, lr_final: Adam's learning rate at the first and after the last step.
        loss: 'l2norm' (||relu(target) - output||_2 / batch size, the released code) or
            'mse'.
        seed: seeds weights, shuffling and noise.
        problem, dataset, noise, train_size, val_size, test_size, image_size, max_discs:
            what the data were, recorded for the run's config.json (the experiment makes
            them); max_discs is the most discs per image of dataset 'discs'.
    """

    model: str = "diffnet"
    num_layers: int = 5
    estimator_depth: int = 4
    width: int = 32
    boundary: str = "neumann"
    dt_init: float = 0.2
    final_relu: bool = True
    unet_filters: int = 64
    epochs: int = 18
    batch_size: int = 16
    lr_init: float = 2e-3
    lr_final: float = 4e-6
    loss: str = "l2norm"
    seed: int = 0
    problem: str = "pm_inverse"
    dataset: str = "stl10"
    noise: float = 0.0
    train_size: int = 90_000
    val_size: int = 500
    test_size: int = 10_000
    image_size: int = 96
    max_discs: int = 1

    def __post_init__(self):
        check_choice(self.model, MODELS, "model")
        check_choice(self.loss, LOSSES, "loss")
        check_choice(self.boundary, BOUNDARIES, "boundary")
        for name in ("epochs", "batch_size", "train_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1. Received {getattr(self, name)}.")
        if not 0 < self.lr_final <= self.lr_init:
            raise ValueError(
                "Expected 0 < lr_final <= lr_init. "
                f"Received lr_init={self.lr_init}, lr_final={self.lr_final}."
            )

    def save(self, path):
        with open(path, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=2)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(**json.load(f))


def build_model(config):
    """The model a `TrainConfig` describes."""
    if config.model == "unet":
        return UNet(base_filters=config.unet_filters, final_relu=config.final_relu)
    return DiffNet(
        num_layers=config.num_layers,
        estimator_depth=config.estimator_depth,
        width=config.width,
        boundary=config.boundary,
        dt_init=config.dt_init,
        final_relu=config.final_relu,
    )


@keras.saving.register_keras_serializable(package="diffnet_tf")
def l2norm_loss(y_true, y_pred):
    """The released code's loss: ||relu(y_true) - y_pred||_2 / batch size (Frobenius norm
    over the whole batch, not squared).

    Args:
        y_true: (B, H, W, 1) targets.
        y_pred: (B, H, W, 1) outputs.

    Returns:
        scalar loss.
    """
    residual = ops.relu(y_true) - y_pred
    batch_size = ops.cast(ops.shape(y_true)[0], residual.dtype)
    return ops.sqrt(ops.sum(ops.square(residual))) / batch_size


def learning_rate_schedule(lr_init, lr_final, total_steps):
    """Geometric decay from lr_init at step 0 to lr_final at `total_steps` (Sect. 5:
    "a gradual decrease"; the released code halved the rate every ~10k steps)."""
    return keras.optimizers.schedules.ExponentialDecay(
        lr_init, decay_steps=max(total_steps, 1), decay_rate=lr_final / lr_init
    )


def _display(images):
    """Each image min-max scaled to [0, 1] for tf.summary.image."""
    images = np.asarray(images, np.float32)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    return (images - low) / np.where(span > 0, span, 1.0)


class ImageSummaries(keras.callbacks.Callback):
    """Writes a fixed validation batch to TensorBoard after every epoch: input, output,
    target and residual images and, for DiffNet, every layer's five filter maps, its
    smoothing part S = sum_{i=1..4} zeta_i - zeta_5 (Fig. 11) and its learned dt.

    Args:
        log_dir: folder of the event file (e.g. run/tensorboard/validation).
        inputs: (B, H, W, 1) fixed validation inputs (keep B small, e.g. 4).
        targets: (B, H, W, 1) their targets.
    """

    def __init__(self, log_dir, inputs, targets):
        super().__init__()
        self.log_dir = log_dir
        self.inputs = np.asarray(inputs, np.float32)
        self.targets = np.asarray(targets, np.float32)
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.log_dir)
        outputs = np.asarray(self.model.predict_on_batch(self.inputs))
        n = len(self.inputs)
        with self.writer.as_default(step=epoch):
            for name, images in (
                ("input", self.inputs),
                ("output", outputs),
                ("target", self.targets),
                ("residual", np.abs(self.targets - outputs)),
            ):
                tf.summary.image(f"images/{name}", _display(images), max_outputs=n)
            if hasattr(self.model, "trace"):
                self._write_filters(self.model.trace(self.inputs[:1]))
        self.writer.flush()

    def _write_filters(self, trace):
        for k, (zeta, dt) in enumerate(zip(trace["filters"], trace["dt"]), start=1):
            for i, name in enumerate(FILTER_NAMES):
                tf.summary.image(f"filters/layer_{k}/{name}", _display(zeta[..., i : i + 1]))
            smoothing, _ = decompose_filters(zeta)
            tf.summary.image(f"smoothing/layer_{k}", _display(smoothing[..., None]))
            tf.summary.scalar(f"dt/layer_{k}", dt)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, raising at once (so the last good backup and the best
    checkpoint are kept) with a message that names the likely causes.

    Args:
        checkpoint: path of the best checkpoint, for the message.
    """

    def __init__(self, checkpoint):
        super().__init__(raise_error=True)
        self.checkpoint = checkpoint

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as error:
            optimizer = self.model.optimizer
            lr = float(ops.convert_to_numpy(optimizer.learning_rate))
            layers = getattr(self.model, "diffusion_layers", [])
            dts = [round(float(ops.convert_to_numpy(layer.dt)), 4) for layer in layers]
            raise TrainingDiverged(
                f"Training diverged: the loss became {logs.get('loss')} at step "
                f"{int(optimizer.iterations)}. Likely causes: the learning rate is too "
                f"high (now {lr:.3g}; try a lower --lr_init) or, for DiffNet, a learned "
                f"time step left the stable range (dt per layer: {dts}; try a smaller "
                f"--dt_init). The best checkpoint so far is kept at {self.checkpoint}; "
                "the last completed epoch is kept in the run's backup/ folder."
            ) from error


def _num_batches(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        batches = int(data.cardinality())
        if batches < 0:
            raise ValueError(
                "Expected a tf.data.Dataset of known length (batched, not repeated). "
                f"Received cardinality {batches}."
            )
        return batches
    return math.ceil(len(data[0]) / batch_size)


def _as_fit_arguments(data):
    return {"x": data} if isinstance(data, tf.data.Dataset) else {"x": data[0], "y": data[1]}


def train(
    config,
    train_data,
    validation_data,
    out_dir,
    preview=None,
    verbose=1,
    callbacks=(),
    strategy=None,
):
    """Trains the model `config` describes, resuming an unfinished run in `out_dir`.

    Args:
        config: a TrainConfig.
        train_data: a batched tf.data.Dataset of (input, target), or an (inputs, targets)
            pair of (N, H, W, 1) arrays (then shuffled and batched by Keras).
        validation_data: the same kinds, for the validation loss and the best checkpoint.
        out_dir: the run folder (created).
        preview: optional (inputs, targets) arrays of a few validation images written to
            TensorBoard every epoch (images, filters, dt).
        verbose: Keras' progress output (0 silent, 1 progress bar, 2 one line per epoch).
        callbacks: extra Keras callbacks.
        strategy: a tf.distribute strategy to build and train the model under (e.g.
            MirroredStrategy over several GPUs), or None for the default.

    Returns:
        (model, history): the trained model (also saved as out_dir/model.keras) and the
        Keras History (its .history dict holds the losses per epoch).

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
    """
    os.makedirs(out_dir, exist_ok=True)
    config.save(os.path.join(out_dir, "config.json"))
    keras.utils.set_random_seed(config.seed)
    total_steps = config.epochs * _num_batches(train_data, config.batch_size)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = build_model(config)
        model.build((None, None, None, 1))  # BackupAndRestore restores into built models only
        model.compile(
            optimizer=keras.optimizers.Adam(
                learning_rate_schedule(config.lr_init, config.lr_final, total_steps)
            ),
            loss=l2norm_loss if config.loss == "l2norm" else "mse",
            metrics=[metrics.ImageMetric("psnr")],
        )
    best = os.path.join(out_dir, "best.keras")
    all_callbacks = [
        StopOnDivergence(best),
        keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup")),
        keras.callbacks.ModelCheckpoint(best, monitor="val_loss", save_best_only=True),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
    ]
    if preview is not None:
        log_dir = os.path.join(out_dir, "tensorboard", "validation")
        all_callbacks.append(ImageSummaries(log_dir, *preview))
    history = model.fit(
        **_as_fit_arguments(train_data),
        validation_data=validation_data,
        epochs=config.epochs,
        batch_size=None if isinstance(train_data, tf.data.Dataset) else config.batch_size,
        callbacks=all_callbacks + list(callbacks),
        verbose=verbose,
    )
    model.save(os.path.join(out_dir, "model.keras"))
    return model, history


def image_quality(targets, estimates):
    """PSNR (per-image mean and std, and the released code's form over the whole set),
    relative l2 error and SSIM of `estimates` against `targets`, as plain floats."""
    per_image = np.asarray(metrics.psnr(targets, estimates))
    return {
        "psnr_mean": float(per_image.mean()),
        "psnr_std": float(per_image.std()),
        "psnr_batch": float(metrics.batch_psnr(targets, estimates)),
        "relative_l2_mean": float(np.mean(metrics.relative_l2(targets, estimates))),
        "ssim_mean": float(np.mean(metrics.ssim(targets, estimates))),
    }


def evaluate(model, inputs, targets, batch_size=64):
    """Image quality of a model's outputs and, as the do-nothing baseline, of its inputs.

    Args:
        model: a Keras model mapping (B, H, W, 1) to (B, H, W, 1).
        inputs: (N, H, W, 1) array.
        targets: (N, H, W, 1) array.
        batch_size: images per prediction batch.

    Returns:
        {'model': image_quality(targets, outputs), 'input': image_quality(targets, inputs)}.
    """
    outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    return {"model": image_quality(targets, outputs), "input": image_quality(targets, inputs)}
