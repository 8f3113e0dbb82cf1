"""TensorBoard event files written with the `tensorboard` package alone (no TensorFlow),
so a run logs on every Keras backend; a resumed run's writer voids what the run had logged
from its resume step on (TensorBoard's purge)."""

import io
import itertools
import os
import socket
import time

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.io import gfile
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from diffnet_tf.checks import check_integer
from diffnet_tf.files import writing

# Tells apart event files opened in the same second; zero-padded, so that TensorBoard,
# which reads a run's files in the order of their names, reads them in opening order.
_FILE_NUMBERS = itertools.count()


class SummaryWriter:
    """Writes scalar and image summaries to an event file under `log_dir` with the
    `tensorboard` package alone (no TensorFlow), on any Keras backend.

    Values are written as tensors with the scalar and image plugins' metadata, as
    tf.summary writes them (TensorBoard's fast loader shows descriptions only in this
    form; its EventAccumulator reads them as Tensors). Each write goes to the file at
    once, so TensorBoard sees it without a flush. Files are written through the
    tensorboard package's own file layer: local folders (tested), and s3:// or fsspec
    URLs where that layer supports them (untested here). A failed write (a full disk, a
    read-only folder) raises `files.WriteFailed` naming the event file.

    With a `purge_step`, the file begins with TensorBoard's session start marker (a
    SessionLog START event at that step, as torch's `SummaryWriter(purge_step=...)` writes).
    TensorBoard takes a run's first marker for the start of its first session and each
    later one for a restart: it discards the events of every tag of the run (this folder)
    at steps >= purge_step read before the marker, so a run killed after step T + k and
    resumed from step T shows each step once, with the values logged after the resume.
    So give every writer of a run a purge_step, its first included. (TensorBoard's fast
    loader, its default where available, keeps only the later value of a step that a tag
    repeats, marker or not.)

    Args:
        log_dir: folder of the event file (created); one folder is one run in TensorBoard.
        purge_step: optional first step this writer will write; the run's earlier events
            at steps >= purge_step are void.
    """

    def __init__(self, log_dir, purge_step=None):
        if purge_step is not None:
            check_integer(purge_step, "purge_step", minimum=0)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_FILE_NUMBERS):06d}")
        self.log_dir = log_dir
        self.path = os.path.join(log_dir, name)
        with writing(log_dir):
            gfile.makedirs(log_dir)
        self._records = RecordWriter(gfile.GFile(self.path, "wb"))
        self._tags = set()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_step is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write(event_pb2.Event(wall_time=time.time(), step=int(purge_step),
                                        session_log=start))

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
        with writing(self.path):
            self._records.write(event.SerializeToString())

    def flush(self):
        with writing(self.path):
            self._records.flush()

    def close(self):
        with writing(self.path):
            self._records.close()
