"""Tests of diffnet_tf.event_files: event files read back with TensorBoard's own reader
(no TensorFlow)."""

import itertools

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="diffnet_tf.event_files writes with the tensorboard package")
from tensorboard_reader import images, read_run, scalars, tags  # noqa: E402

from diffnet_tf import event_files  # noqa: E402
from diffnet_tf.event_files import SummaryWriter  # noqa: E402


def test_writer_round_trips_scalars_and_images(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    writer = SummaryWriter(str(tmp_path))
    for step, value in [(1, 0.5), (2, -3.25), (10, 1e-6)]:
        writer.scalar("loss/epoch", value, step, description="the loss")
    writer.image("samples/1", rgb, 3, description="a sample")
    writer.image("samples/1", rgb / 255.0, 4)
    writer.close()
    run = read_run(tmp_path)
    assert tags(run, "scalars") == ["loss/epoch"] and tags(run, "images") == ["samples/1"]
    steps, values = scalars(run, "loss/epoch")
    assert steps == [1, 2, 10]
    np.testing.assert_allclose(values, [0.5, -3.25, 1e-6], rtol=1e-7)
    assert run.SummaryMetadata("loss/epoch").summary_description == "the loss"
    written = images(run, "samples/1")
    assert [(step, width, height) for step, width, height, _ in written] == [(3, 7, 5), (4, 7, 5)]
    assert run.SummaryMetadata("samples/1").summary_description == "a sample"
    for *_, image in written:
        np.testing.assert_array_equal(image, rgb)  # PNG is lossless


def test_writers_opened_together_write_separate_files_read_in_opening_order(tmp_path,
                                                                          monkeypatch):
    # the 10th and 11th file of the process: their numbers gain a digit
    monkeypatch.setattr(event_files, "_FILE_NUMBERS", itertools.count(9))
    first, second = SummaryWriter(str(tmp_path)), SummaryWriter(str(tmp_path))
    first.scalar("a", 1.0, 1)
    second.scalar("a", 2.0, 2)
    first.close()
    second.close()
    assert len(list(tmp_path.iterdir())) == 2
    assert scalars(read_run(tmp_path), "a") == ([1, 2], [1.0, 2.0])


def test_writer_rejects_a_non_rgb_image(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected an \(H, W, 3\) RGB image. Received shape"):
        writer.image("x", np.zeros((4, 4, 1)), 0)
