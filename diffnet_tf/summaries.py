"""TensorBoard logging on every Keras backend: an event-file writer that needs only the
`tensorboard` package (no TensorFlow), the image panels a user looks at, and a Keras
callback that writes losses, metrics, the learning rate and DiffNet's dt and filter maps.

TensorBoard sorts groups (a tag's part before the first '/') by name, so the tag names set
what a user sees first:

    loss/epoch, loss/steps      train and validation loss per epoch; train loss every N steps
    psnr/epoch, psnr/steps      the same for each compiled metric (here PSNR)
    samples/1 ... samples/B     validation run: input | output | target | residual, per sample
    schedule/learning_rate      train run: the optimizer's learning rate per epoch
    time_step/layer_k           train run: DiffNet layer k's learned dt
    zeta/layer_k                validation run: layer k's five filter maps and S (Fig. 11)

Every colour scale is fixed, so epochs, layers and runs compare: images on the grey scale
[0, 1] (clipped), the signed residual target - output and the filter maps on symmetric
diverging scales (blue negative, white zero, red positive), each drawn as a colour bar with
ticks inside the image.
"""

import functools
import io
import itertools
import math
import os
import socket
import time

import keras
import matplotlib
import numpy as np
from keras import ops
from PIL import Image, ImageDraw, ImageFont
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.io import gfile
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from diffnet_tf.analysis import decompose_filters

DIVERGING_COLOURS = "RdBu_r"  # blue negative, near-white zero, red positive
MIN_TILE = 96  # smaller images are enlarged (nearest neighbour) to at least this side
GAP = 6  # pixels between tiles
TITLE_HEIGHT = 18  # pixels above each tile for its title
BAR_WIDTH = 10  # colour bar width in pixels
FONT_SIZE = 14
FILTER_TITLES = ("zeta_1 (top)", "zeta_2 (left)", "zeta_3 (bottom)", "zeta_4 (right)",
                 "zeta_5 (centre)", "S (smoothing)")
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
            "zeta_3 + zeta_4 - zeta_5 (eq. 2.26, Fig. 11), on the fixed scale ±{scale:g}. "
            "Slider: epochs completed.",
}
_FILE_NUMBERS = itertools.count()  # tells apart event files opened in the same second


class SummaryWriter:
    """Writes scalar and image summaries to an event file under `log_dir` with the
    `tensorboard` package alone (no TensorFlow), on any Keras backend.

    Values are written as tensors with the scalar and image plugins' metadata, as
    tf.summary writes them (TensorBoard's fast loader shows descriptions only in this
    form; its EventAccumulator reads them as Tensors). Each write goes to the file at
    once, so TensorBoard sees it without a flush. Files are written through the
    tensorboard package's own file layer: local folders (tested), and s3:// or fsspec
    URLs where that layer supports them (untested here).

    Args:
        log_dir: folder of the event file (created); one folder is one run in TensorBoard.
    """

    def __init__(self, log_dir):
        gfile.makedirs(log_dir)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_FILE_NUMBERS)}")
        self.log_dir = log_dir
        self._records = RecordWriter(gfile.GFile(os.path.join(log_dir, name), "wb"))
        self._tags = set()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalar(self, tag, value, step, description=None):
        """Writes one point of the curve `tag`.

        Args:
            tag: the card's name; its part before the first '/' is its group.
            value: a number.
            step: the x coordinate (an integer).
            description: Markdown shown with the card (stored with the tag's first point).
        """
        metadata = scalar_metadata.create_summary_metadata(tag, description or "")
        self._summary(tag, np.float32(value), metadata, step)

    def image(self, tag, image, step, description=None):
        """Writes one image (PNG) of the card `tag`.

        Args:
            tag: the card's name.
            image: (H, W, 3) uint8, or (H, W, 3) float in [0, 1].
            step: the step the image belongs to (TensorBoard's slider).
            description: Markdown shown with the card (stored with the tag's first image).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"Expected an (H, W, 3) RGB image. Received shape {image.shape}.")
        if image.dtype != np.uint8:
            image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG", compress_level=1)  # fast; small enough
        height, width = image.shape[:2]
        data = np.array([str(width).encode(), str(height).encode(), png.getvalue()], object)
        metadata = image_metadata.create_summary_metadata(tag, description or "")
        self._summary(tag, data, metadata, step)

    def _summary(self, tag, data, metadata, step):
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(data))
        if tag not in self._tags:  # TensorBoard reads a tag's metadata from its first value
            value.metadata.CopyFrom(metadata)
            self._tags.add(tag)
        summary = summary_pb2.Summary(value=[value])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event):
        self._records.write(event.SerializeToString())

    def flush(self):
        self._records.flush()

    def close(self):
        self._records.close()


def grey_image(image):
    """RGB colours of an image on the fixed grey scale [0, 1]: 0 black, 1 white, values
    outside clipped; a 3-channel image keeps its colours.

    Args:
        image: (H, W, 1) or (H, W, 3) floats.

    Returns:
        (H, W, 3) uint8.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected an (H, W, 1) or (H, W, 3) image. Received shape {image.shape}."
        )
    rgb = np.broadcast_to(image, image.shape[:2] + (3,))
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _diverging_table():
    """255 RGB colours of the diverging map; entry 127 is exactly its middle (zero)."""
    colours = matplotlib.colormaps[DIVERGING_COLOURS](np.linspace(0.0, 1.0, 255))
    return np.round(colours[:, :3] * 255).astype(np.uint8)


def diverging_image(values, scale):
    """RGB colours of signed values on the fixed symmetric scale [-scale, scale]: blue
    negative, near-white zero, red positive; values outside are clipped.

    Args:
        values: (H, W) floats.
        scale: positive half-width of the scale.

    Returns:
        (H, W, 3) uint8.
    """
    _check_scale(scale, "scale")
    fraction = np.clip(np.asarray(values, np.float32) / scale, -1.0, 1.0)
    return _diverging_table()[np.rint((fraction + 1.0) * 127).astype(np.int32)]


def sample_panel(inputs, output, target, residual_scale=0.05):
    """One image of one sample: input | output | target | residual side by side.

    Input, output and target are on the fixed grey scale [0, 1] (clipped; colour images
    in colour), the residual target - output on the fixed diverging scale
    [-residual_scale, residual_scale] (for colour images, its mean over the channels).
    Each scale is drawn as a colour bar with ticks. Images whose longer side is below 96
    pixels are enlarged by an integer factor (nearest neighbour).

    Args:
        inputs: (H, W, C) network input, C = 1 or 3.
        output: (H, W, C) network output.
        target: (H, W, C) ground truth.
        residual_scale: positive half-width of the residual's scale.

    Returns:
        (H', W', 3) uint8 image.
    """
    shapes = {np.shape(inputs), np.shape(output), np.shape(target)}
    if len(shapes) != 1:
        raise ValueError(
            "Expected input, output and target of the same shape (H, W, C). "
            f"Received shapes {np.shape(inputs)}, {np.shape(output)}, {np.shape(target)}."
        )
    _check_scale(residual_scale, "residual_scale")
    residual = np.mean(np.asarray(target, np.float32) - np.asarray(output, np.float32), axis=-1)
    zoom = _zoom(residual.shape)
    grey = [_enlarge(grey_image(image), zoom) for image in (inputs, output, target)]
    height = grey[0].shape[0]
    return _layout([[
        ("input", grey[0], ()),
        ("output", grey[1], ()),
        ("target", grey[2], ()),
        ("", grey_image(_bar(1.0, 0.0, height)[..., None]), ("1", "0.5", "0")),
        ("target - output", _enlarge(diverging_image(residual, residual_scale), zoom), ()),
        ("", diverging_image(_bar(residual_scale, -residual_scale, height), residual_scale),
         _signed_ticks(residual_scale)),
    ]])


def filter_panel(zeta, scale=1.0, caption=""):
    """One image of one layer's filter maps for one image: zeta_1 (top), zeta_2 (left),
    zeta_3 (bottom) in the first row, zeta_4 (right), zeta_5 (centre) and the smoothing
    part S = zeta_1 + zeta_2 + zeta_3 + zeta_4 - zeta_5 (eq. 2.26, Fig. 11) in the second,
    all on the fixed diverging scale [-scale, scale], drawn as a colour bar with ticks.

    Args:
        zeta: (H, W, 5 * n) filter maps grouped by stencil position (top, left, bottom,
            right, centre; `stencil.apply_stencil`): the first stencil's five maps are
            shown, zeta[..., k * n] (channel 0's, or channel 0 from channel 0 when
            coupled).
        scale: positive half-width of the colour scale.
        caption: text (lines separated by newlines) at the end of the first row.

    Returns:
        (H', W', 3) uint8 image.
    """
    zeta = np.asarray(zeta, np.float32)
    if zeta.ndim != 3 or zeta.shape[-1] == 0 or zeta.shape[-1] % 5:
        raise ValueError(
            "Expected filter maps of shape (H, W, 5 * n) (five maps per channel). "
            f"Received shape {zeta.shape}."
        )
    _check_scale(scale, "scale")
    first = zeta[..., :: zeta.shape[-1] // 5]  # the first stencil's five maps
    smoothing, _ = decompose_filters(first)
    maps = [first[..., k] for k in range(5)] + [smoothing]
    zoom = _zoom(smoothing.shape)
    tiles = [(title, _enlarge(diverging_image(m, scale), zoom), ())
             for title, m in zip(FILTER_TITLES, maps)]
    height = tiles[0][1].shape[0]
    blank = np.full((height, 1, 3), 255, np.uint8)  # the caption's column: its text only
    bar = diverging_image(_bar(scale, -scale, height), scale)
    return _layout([tiles[:3] + [(caption, blank, ())],
                    tiles[3:] + [("", bar, _signed_ticks(scale))]])


def _check_scale(scale, name):
    if isinstance(scale, bool) or not (
        isinstance(scale, (int, float, np.number)) and 0 < scale < math.inf
    ):
        raise ValueError(f"Expected {name} to be a positive number. Received {scale!r}.")


def _zoom(shape):
    """The integer enlargement that makes the longer side at least MIN_TILE pixels."""
    return max(1, math.ceil(MIN_TILE / max(shape[:2])))


def _enlarge(rgb, zoom):
    """Nearest-neighbour enlargement by an integer factor."""
    return np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)


def _bar(top, bottom, height):
    """(height, BAR_WIDTH) values from `top` to `bottom`, the body of a colour bar."""
    return np.repeat(np.linspace(top, bottom, height)[:, None], BAR_WIDTH, axis=1)


def _signed_ticks(scale):
    return (f"+{scale:g}", "0", f"-{scale:g}")


@functools.lru_cache(maxsize=1)
def _font():
    return ImageFont.load_default(size=FONT_SIZE)


def _layout(rows):
    """Draws rows of (title, (h, w, 3) uint8 tile, tick labels) on a white canvas.

    Every tile has the first tile's height; each has its title above it (a longer title
    widens its column), and tick labels (top to bottom, evenly spaced) to its right (a
    colour bar's).
    """
    font = _font()
    row_step = TITLE_HEIGHT + rows[0][0][1].shape[0] + GAP
    placed, width = [], 0
    for r, row in enumerate(rows):
        x, y = GAP, GAP + TITLE_HEIGHT + r * row_step
        for title, tile, ticks in row:
            placed.append((x, y, title, tile, ticks))
            labels = 2 + max(int(font.getlength(tick)) for tick in ticks) if ticks else 0
            title_width = max(int(font.getlength(line)) for line in title.split("\n"))
            x += max(tile.shape[1] + labels, title_width) + GAP
        width = max(width, x)
    canvas = Image.new("RGB", (width, GAP + len(rows) * row_step), "white")
    draw = ImageDraw.Draw(canvas)
    for x, y, title, tile, ticks in placed:
        canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (x, y))
        draw.multiline_text((x, y - TITLE_HEIGHT), title, fill="black", font=font, spacing=2)
        for i, tick in enumerate(ticks):
            tick_y = y + i * (tile.shape[0] - 1) / (len(ticks) - 1)
            draw.text((x + tile.shape[1] + 2, tick_y), tick, fill="black", font=font, anchor="lm")
    return np.asarray(canvas)



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
        filter_scale: half-width of the filter maps' fixed colour scale.
    """

    def __init__(self, log_dir, preview=None, update_every=None, residual_scale=0.05,
                 filter_scale=2.0):
        super().__init__()
        if update_every is not None and (isinstance(update_every, bool) or
                                         not isinstance(update_every, int) or update_every < 1):
            raise ValueError(
                f"Expected update_every to be None or an integer >= 1. Received {update_every!r}."
            )
        _check_scale(residual_scale, "residual_scale")
        _check_scale(filter_scale, "filter_scale")
        self.log_dir = log_dir
        self.preview = None if preview is None else _check_preview(*preview)
        self.update_every = update_every
        self.residual_scale = residual_scale
        self.filter_scale = filter_scale
        self.writers = {}

    def on_train_begin(self, logs=None):
        steps = self.params.get("steps") or 10 * MAX_STEP_INTERVAL  # per epoch, from Keras
        self._interval = self.update_every or max(1, min(MAX_STEP_INTERVAL, steps // 10))
        self.writers = {run: SummaryWriter(os.path.join(self.log_dir, run))
                        for run in ("train", "validation")}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        self._next_point = (self._epoch_start // self._interval + 1) * self._interval
        self._previous = (0, {})  # (batches of this epoch, their running means) at the last point

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
            description = DESCRIPTIONS["zeta"].format(k=k, scale=self.filter_scale)
            for tag, maps, caption in own_stencils(zeta[0], inputs.shape[-1]):
                panel = filter_panel(maps, self.filter_scale, f"layer {k}{caption}\ndt = {dt:.4g}")
                validation.image(f"zeta/layer_{k}{tag}", panel, step, description)

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


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
