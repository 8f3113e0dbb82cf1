"""A Keras callback that writes a run's TensorBoard logs on every Keras backend: losses,
metrics, the learning rate, DiffNet's dt, and image panels of validation samples and
filter maps (`diffnet_tf.panels`), through `diffnet_tf.event_files.SummaryWriter`.

TensorBoard sorts groups (a tag's part before the first '/') by name, so the tag names set
what a user sees first:

    loss/epoch, loss/steps      train and validation loss per epoch; train loss every N steps
    psnr/epoch, psnr/steps      the same for each compiled metric (here PSNR)
    samples/1 ... samples/B     validation run: input | output | target | residual, per sample
    schedule/learning_rate      train run: the optimizer's learning rate per epoch
    time_step/layer_k           train run: DiffNet layer k's learned dt
    zeta/layer_k                validation run: layer k's five filter maps and S (Fig. 11)

A run killed mid-epoch and resumed logs the steps after its backup again: its writers begin
with TensorBoard's purge (`SummaryWriter(purge_step=...)`), so each step shows once, with
the values logged after the resume.
"""

import os
from pathlib import Path

import keras
import numpy as np
from keras import ops

from diffnet_tf.checks import check_integer, check_number
from diffnet_tf.event_files import SummaryWriter
from diffnet_tf.panels import filter_panel, sample_panel

# What each card shows, as TensorBoard displays it with the card (Markdown).
DESCRIPTIONS = {
    "epoch": "{name} per epoch: train run, the mean over the epoch's batches; validation run, "
             "over the validation set. x axis: epochs completed.",
    "steps": "Train {name}: the mean over the optimizer steps since the previous point (at "
             "most {n}; never across an epoch's start), recovered from Keras' batch logs, "
             "which hold the running mean of the epoch so far. x axis: optimizer steps.",
    "learning_rate": "The learning rate of the optimizer's next step, at the end of each "
                     "epoch. x axis: epochs completed.",
    "time_step": "Learned time step dt of layer {k} (eq. 4.6). x axis: epochs completed.",
    "samples": "Validation sample {i}: input, output and target on the fixed grey scale "
               "[0, 1] (clipped); the residual target - output (mean over colour channels) "
               "on the fixed scale ±{scale:g}: red where the output is too dark, blue where "
               "it is too bright. Slider: epochs completed.",
    "zeta": "Layer {k}'s filter maps zeta_1 ... zeta_5 (top, left, bottom, right, centre; "
            "eq. 4.7) for validation sample 1 and their smoothing part S = zeta_1 + zeta_2 + "
            "zeta_3 + zeta_4 - zeta_5 (eq. 2.26, Fig. 11), {scales} Slider: epochs completed.",
    "own_scales": "each on its own symmetric colour scale, stated by the colour bar beside "
                  "it: ±the 99th percentile of the map's |values| at that epoch, rounded up "
                  "to 1, 2, 3 or 5 times a power of ten. The maps' values range from about 0.01 "
                  "to 100 between layers, epochs and models, so no fixed scale shows them "
                  "all; the paper's Figs. 11-12 also show each map on its own scale. Compare "
                  "magnitudes by the bars' ticks, not by the colours.",
    "fixed_scale": "on the fixed scale ±{scale:g}.",
}
MAX_STEP_INTERVAL = 50  # optimizer steps between two points of a '/steps' curve, at most


class TensorBoardLogger(keras.callbacks.Callback):
    """Writes a run's TensorBoard logs on any Keras backend, under log_dir/train and
    log_dir/validation (Keras' run names, so runs compare).

    Per epoch (x axis: epochs completed): each value of Keras' epoch logs as
    '<name>/epoch' ('loss', 'psnr', ... in the train run; 'val_loss', ... as 'loss/epoch',
    ... in the validation run) and the learning rate as 'schedule/learning_rate' (train
    run; a schedule is evaluated at the optimizer's step count). Every `update_every`
    optimizer steps (x axis: steps): each train value as '<name>/steps', the mean over the
    steps since the previous point (never across an epoch boundary), recovered from
    Keras' batch logs, which hold the running mean of the epoch so far. That recovery
    weighs the batches equally, as Keras does for equal batch sizes.

    With a `preview`, per epoch in the validation run: one image per sample,
    'samples/<i>' (`sample_panel`), and for models with a `trace(x)` method (DiffNet)
    each layer's filter maps for the first preview image, 'zeta/layer_<k>'
    (`filter_panel`), and its learned dt, 'time_step/layer_<k>' (train run).

    Args:
        log_dir: the run's TensorBoard folder.
        preview: optional (inputs, targets), two (B, H, W, C) float arrays of a few
            validation images (keep B small, e.g. 4; C = 1 or 3).
        update_every: optimizer steps between two points of the '/steps' curves; None:
            about ten points per epoch, at most `MAX_STEP_INTERVAL` steps apart (the
            quick start's 63-step epochs get a point every 6 steps, the paper's 5,625-step
            epochs one every 50).
        residual_scale: half-width of the residuals' fixed colour scale.
        filter_scale: None: each filter map on its own colour scale
            (`panels.readable_scale`); a number: the half-width of one fixed scale for all.
    """

    def __init__(self, log_dir, preview=None, update_every=None, residual_scale=0.05,
                 filter_scale=None):
        super().__init__()
        if update_every is not None:
            check_integer(update_every, "update_every", minimum=1)
        check_number(residual_scale, "residual_scale", positive=True)
        if filter_scale is not None:
            check_number(filter_scale, "filter_scale", positive=True)
        self.log_dir = log_dir
        self.preview = None if preview is None else _check_preview(*preview)
        self.update_every = update_every
        self.residual_scale = residual_scale
        self.filter_scale = filter_scale
        self.writers = {}

    def on_train_begin(self, logs=None):
        steps = self.params.get("steps") or 10 * MAX_STEP_INTERVAL  # per epoch, from Keras
        self._interval = self.update_every or max(1, min(MAX_STEP_INTERVAL, steps // 10))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if not self.writers:
            self._open_writers(epoch)
        self._next_point = (self._epoch_start // self._interval + 1) * self._interval
        self._previous = (0, {})  # (batches of this epoch, their running means) at the last point

    def _open_writers(self, epoch):
        """Opens the two runs' writers as fit's first epoch begins, voiding what a killed
        process had logged from here on: in the validation run from the next epoch, in
        the train run from the next optimizer step, where its '/steps' curves resume. (Its
        epoch curves, written after each epoch's backup, repeat only when training resumes
        from an older backup because the newest is unreadable; TensorBoard's fast loader
        then still keeps each step's later value.)"""
        first_steps = {"train": self._epoch_start + 1, "validation": epoch + 1}
        self.writers = {run: SummaryWriter(os.path.join(self.log_dir, run), purge_step=step)
                        for run, step in first_steps.items()}

    def on_train_batch_end(self, batch, logs=None):
        # Steps are counted here: on JAX, reading self.model would sync its state each step.
        batches, means = batch + 1, _metric_logs(logs)
        step = self._epoch_start + batches
        if step < self._next_point:
            return
        self._next_point = (step // self._interval + 1) * self._interval
        done, done_means = self._previous
        for name, mean in means.items():
            window_mean = (batches * mean - done * done_means.get(name, 0.0)) / (batches - done)
            description = DESCRIPTIONS["steps"].format(name=name, n=self._interval)
            self.writers["train"].scalar(f"{name}/steps", window_mean, step, description)
        self._previous = (batches, means)

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        for name, value in _metric_logs(logs).items():
            run = "validation" if name.startswith("val_") else "train"
            name = name.removeprefix("val_")
            description = DESCRIPTIONS["epoch"].format(name=name)
            self.writers[run].scalar(f"{name}/epoch", value, step, description)
        learning_rate = ops.convert_to_numpy(self.model.optimizer.learning_rate)
        self.writers["train"].scalar(
            "schedule/learning_rate", learning_rate, step, DESCRIPTIONS["learning_rate"]
        )
        if self.preview is not None:
            self._write_preview(step)
        for writer in self.writers.values():
            writer.flush()

    def _write_preview(self, step):
        inputs, targets = self.preview
        trace = self.model.trace(inputs) if hasattr(self.model, "trace") else None
        outputs = trace["output"] if trace else np.asarray(self.model.predict_on_batch(inputs))
        validation = self.writers["validation"]
        for i, sample in enumerate(zip(inputs, outputs, targets), start=1):
            description = DESCRIPTIONS["samples"].format(i=i, scale=self.residual_scale)
            validation.image(f"samples/{i}", sample_panel(*sample, self.residual_scale), step,
                             description)
        if trace is None:
            return
        for k, (zeta, dt) in enumerate(zip(trace["filters"], trace["dt"]), start=1):
            self.writers["train"].scalar(
                f"time_step/layer_{k}", dt, step, DESCRIPTIONS["time_step"].format(k=k)
            )
            scales = (DESCRIPTIONS["own_scales"] if self.filter_scale is None else
                      DESCRIPTIONS["fixed_scale"].format(scale=self.filter_scale))
            description = DESCRIPTIONS["zeta"].format(k=k, scales=scales)
            for tag, maps, caption in own_stencils(zeta[0], inputs.shape[-1]):
                panel = filter_panel(maps, self.filter_scale, f"layer {k}{caption}\ndt = {dt:.4g}")
                validation.image(f"zeta/layer_{k}{tag}", panel, step, description)

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


def labelled_log_dir(tensorboard_dir, data):
    """A run's log_dir, `tensorboard_dir/noise<noise>-n<train size>`, e.g.
    runs/perona_malik/<run folder>/tensorboard/noise0.01-n1000. TensorBoard names a run by
    its event folder's path below --logdir; its run list breaks a name into lines only
    after '-' and cuts each line after about 37 characters, so the run folder's long
    readable name is cut. The data settings the studies vary end the name again, in short
    lines that show: '<digest>/tensorboard/noise0.01-', 'n1000/train'.

    Args:
        tensorboard_dir: the run folder's tensorboard/ folder.
        data: the run's `spec.DataSpec` (its noise and train_size).
    """
    return Path(tensorboard_dir) / f"noise{data.noise:g}-n{data.train_size}"


def own_stencils(zeta, channels):
    """(tag suffix, five maps (H, W, 5), caption) of each channel's own stencil: the one
    that updates channel c from itself, (c, c) when the channels are coupled; one card for
    a grey image. zeta: (H, W, 5 C) or (H, W, 5 C^2), grouped by position
    (`stencil.apply_stencil`); the coupled (c, d != c) maps are in `model.trace`."""
    if channels == 1:
        return [("", zeta, "")]
    stencils = zeta.shape[-1] // 5
    coupled = stencils == channels**2
    return [(f"/channel_{c}", zeta[..., (c * channels + c if coupled else c)::stencils],
             f", channel {c}") for c in range(channels)]


def _metric_logs(logs):
    """Keras' logs without a learning rate some callbacks add (written on its own)."""
    return {name: value for name, value in (logs or {}).items() if name != "learning_rate"}


def _check_preview(inputs, targets):
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, np.float32)
    if inputs.ndim != 4 or inputs.shape != targets.shape or inputs.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected preview (inputs, targets) of the same shape (B, H, W, C), C = 1 or 3. "
            f"Received shapes {inputs.shape} and {targets.shape}."
        )
    return inputs, targets
