"""Tests of diffnet_tf.event_files: event files read back with TensorBoard's own reader
(no TensorFlow)."""

import itertools
import os
import re

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="diffnet_tf.event_files writes with the tensorboard package")
from tensorboard_reader import images, read_run, scalars, tags  # noqa: E402

from diffnet_tf import event_files  # noqa: E402
from diffnet_tf.event_files import SummaryWriter  # noqa: E402
from diffnet_tf.files import WriteFailed  # noqa: E402


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


def test_a_purge_step_voids_the_runs_later_events_of_every_tag(tmp_path):
    """A process killed after step 10 and resumed from step 5: TensorBoard's reader shows
    each step once, the resumed values from step 6 on, for every tag of the run (also
    those the resumed process has not written again). TensorBoard takes a run's first
    start marker for its first session, so the first writer has one too."""
    first_colour, second_colour = (np.full((2, 2, 3), c, np.uint8) for c in (10, 200))
    killed = SummaryWriter(str(tmp_path), purge_step=1)  # never closed: the process was killed
    for step in range(1, 11):
        killed.scalar("loss/steps", step, step)
        killed.scalar("loss/epoch", 100 + step, step)
    killed.image("samples/1", first_colour, 3)
    killed.image("samples/1", first_colour, 9)
    resumed = SummaryWriter(str(tmp_path), purge_step=6)
    for step in range(6, 13):
        resumed.scalar("loss/steps", -step, step)
    resumed.image("samples/1", second_colour, 9)
    resumed.close()
    run = read_run(tmp_path)
    assert scalars(run, "loss/steps") == (list(range(1, 13)), [1, 2, 3, 4, 5] + list(range(-6, -13, -1)))
    assert scalars(run, "loss/epoch") == ([1, 2, 3, 4, 5], [101, 102, 103, 104, 105])
    shown = images(run, "samples/1")
    assert [step for step, *_ in shown] == [3, 9]
    np.testing.assert_array_equal(shown[1][-1], second_colour)


def test_a_writer_without_purge_step_keeps_what_was_written_before(tmp_path):
    first = SummaryWriter(str(tmp_path))
    first.scalar("a", 1.0, 1)
    first.close()
    second = SummaryWriter(str(tmp_path))
    second.scalar("a", 2.0, 2)
    second.close()
    assert scalars(read_run(tmp_path), "a") == ([1, 2], [1.0, 2.0])


@pytest.mark.parametrize("purge_step", [-1, 2.5, True])
def test_writer_rejects_a_bad_purge_step(tmp_path, purge_step):
    with pytest.raises(ValueError, match=f"Expected purge_step to be an integer >= 0. Received {purge_step}"):
        SummaryWriter(str(tmp_path), purge_step=purge_step)


def test_a_failed_write_names_the_event_file_and_the_reason(tmp_path):
    writer = SummaryWriter(str(tmp_path / "train"))
    os.remove(writer.path)
    os.mkdir(writer.path)  # the next write meets a folder where its file was
    with pytest.raises(WriteFailed, match=rf"Could not write '{re.escape(writer.path)}': Is a directory"):
        writer.scalar("loss/epoch", 1.0, 1)


def test_a_log_dir_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    log_dir = str(tmp_path / "taken" / "train")
    with pytest.raises(WriteFailed, match=rf"Could not write '{re.escape(log_dir)}': "):
        SummaryWriter(log_dir)
