"""TensorBoard's own reader (no TensorFlow) over the event files the tests write: the
tags, curves and images a user would see. It is the reader TensorBoard's server uses
without its fast loader (plugin_event_accumulator), which, unlike the older
event_accumulator, applies a restart's purge to tensor summaries (ours)."""

import io

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def read_run(folder):
    """TensorBoard's reader over one run folder, every event kept."""
    return EventAccumulator(str(folder), size_guidance={"tensors": 0}).Reload()


def tags(run, plugin):
    """The run's tags of one TensorBoard plugin ('scalars' or 'images'), sorted."""
    return sorted(tag for tag in run.Tags()["tensors"]
                  if run.SummaryMetadata(tag).plugin_data.plugin_name == plugin)


def scalars(run, tag):
    """(steps, values) of a scalar tag."""
    events = run.Tensors(tag)
    return [e.step for e in events], [tensor_util.make_ndarray(e.tensor_proto).item() for e in events]


def images(run, tag):
    """(step, width, height, decoded (H, W, 3) uint8 image) of each image of a tag."""
    found = []
    for event in run.Tensors(tag):
        width, height, png = tensor_util.make_ndarray(event.tensor_proto)
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        found.append((event.step, int(width), int(height), image))
    return found
