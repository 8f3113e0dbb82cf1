"""Tests of diffnet_tf.summaries: event files read back with TensorBoard's own reader (no
TensorFlow), the panels' fixed colour scales, and the callback inside model.fit on the
current backend (run this file also with KERAS_BACKEND=jax)."""

import io
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

pytest.importorskip("tensorboard", reason="diffnet_tf.summaries writes with the tensorboard package")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from diffnet_tf.models import DiffNet  # noqa: E402
from diffnet_tf.summaries import (  # noqa: E402
    MIN_TILE,
    SummaryWriter,
    TensorBoardLogger,
    diverging_image,
    filter_panel,
    grey_image,
    sample_panel,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


def colour_area(image, colour):
    """How many pixels of `image` have exactly `colour`."""
    return int(np.all(image == np.asarray(colour, np.uint8), axis=-1).sum())


# SummaryWriter -----------------------------------------------------------------------------


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


def test_writers_opened_together_write_separate_files(tmp_path):
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


# Colour scales ------------------------------------------------------------------------------


def test_grey_scale_is_fixed_not_stretched():
    dim = np.array([[[0.2], [0.4]]])  # a dark image stays dark: no min-max stretching
    np.testing.assert_array_equal(grey_image(dim)[..., 0], [[51, 102]])
    np.testing.assert_array_equal(grey_image(np.array([[[-0.5], [1.5]]]))[..., 0], [[0, 255]])
    np.testing.assert_array_equal(grey_image(np.array([[[1.0, 0.0, 0.5]]])), [[[255, 0, 128]]])


def test_grey_image_rejects_other_channel_counts():
    with pytest.raises(ValueError, match=r"Expected an \(H, W, 1\) or \(H, W, 3\) image"):
        grey_image(np.zeros((4, 4, 2)))


def test_diverging_colours_show_the_sign():
    negative, zero, positive = diverging_image(np.array([[-0.5, 0.0, 0.5]]), 1.0)[0].astype(int)
    assert negative[2] > negative[0] + 50  # blue
    assert positive[0] > positive[2] + 50  # red
    assert np.ptp(zero) <= 5 and zero.min() > 230  # neutral: near white
    # +v and -v are mirror colours of each other
    assert not np.array_equal(negative, positive)


def test_diverging_scale_is_fixed_not_the_data_range():
    small = diverging_image(np.array([[0.02, 0.01]]), 0.1)
    large = diverging_image(np.array([[0.02, 5.0]]), 0.1)
    np.testing.assert_array_equal(small[0, 0], large[0, 0])
    np.testing.assert_array_equal(large[0, 1], diverging_image(np.array([[0.1]]), 0.1)[0, 0])


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_diverging_rejects_a_bad_scale(scale):
    with pytest.raises(ValueError, match="Expected scale to be a positive number. Received"):
        diverging_image(np.zeros((2, 2)), scale)


# Panels ------------------------------------------------------------------------------------


def triple(height, width, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random((height, width, channels), dtype=np.float32) for _ in range(3))


def test_sample_panel_grows_by_one_tile_height_and_four_tile_widths():
    base = sample_panel(*triple(96, 96))
    wider = sample_panel(*triple(100, 120))
    assert base.dtype == np.uint8 and base.shape[-1] == 3
    assert wider.shape[0] - base.shape[0] == 100 - 96
    assert wider.shape[1] - base.shape[1] == 4 * (120 - 96)


def test_sample_panel_enlarges_small_images():
    assert sample_panel(*triple(8, 8)).shape == sample_panel(*triple(MIN_TILE, MIN_TILE)).shape


@pytest.mark.parametrize("residual", [0.02, -0.02, 0.0])
def test_sample_panel_shows_the_residual_sign_on_a_fixed_scale(residual):
    target = np.full((MIN_TILE, MIN_TILE, 1), 0.5, np.float32)
    panel = sample_panel(target, target - residual, target, residual_scale=0.05)
    tile = MIN_TILE * MIN_TILE
    own = diverging_image(np.array([[residual]]), 0.05)[0, 0]
    assert colour_area(panel, own) >= tile  # the residual tile (plus a bar row or two)
    if residual:
        mirror = diverging_image(np.array([[-residual]]), 0.05)[0, 0]
        assert colour_area(panel, mirror) < tile / 10  # only in the colour bar
    # the same residual in an image whose other residuals are larger keeps its colour
    target[0, 0] = 0.5 + 0.4
    assert colour_area(sample_panel(target, target - residual, target, 0.05), own) >= tile - 1


def test_sample_panel_shows_colour_images_in_colour():
    red = np.zeros((MIN_TILE, MIN_TILE, 3), np.float32)
    red[..., 0] = 1.0
    panel = sample_panel(red, red, red)
    assert colour_area(panel, (255, 0, 0)) == 3 * MIN_TILE * MIN_TILE


def test_sample_panel_rejects_mismatched_shapes():
    inputs, output, target = triple(8, 8)
    with pytest.raises(ValueError, match="Expected input, output and target of the same shape"):
        sample_panel(inputs, output[:4], target)


def test_sample_panel_rejects_a_bad_residual_scale():
    with pytest.raises(ValueError, match="Expected residual_scale to be a positive number"):
        sample_panel(*triple(8, 8), residual_scale=0)


def constant_filters(values, size=MIN_TILE, copies=1):
    return np.tile(np.asarray(values, np.float32), (size, size, copies))


def test_filter_panel_shows_each_map_and_the_smoothing_part():
    zeta = (0.4, -0.4, 0.2, 0.0, -0.2)  # S = 0.4 - 0.4 + 0.2 + 0.0 + 0.2 = 0.4
    panel = filter_panel(constant_filters(zeta), scale=1.0)
    tile = MIN_TILE * MIN_TILE

    def area(value):
        return colour_area(panel, diverging_image(np.array([[value]]), 1.0)[0, 0])

    assert tile * 2 <= area(0.4) < tile * 3  # zeta_1 and S
    assert tile <= area(-0.4) < tile * 2
    assert tile <= area(0.2) < tile * 2
    assert tile <= area(-0.2) < tile * 2
    assert tile <= area(0.0) < tile * 2


def test_filter_panel_scale_is_fixed():
    zeta = constant_filters((0.3, 0.3, 0.3, 0.3, 0.3))
    zeta[0, 0] = 5.0  # one large value elsewhere does not change the others' colour
    colour = diverging_image(np.array([[0.3]]), 1.0)[0, 0]
    assert colour_area(filter_panel(zeta, 1.0), colour) >= 5 * MIN_TILE * MIN_TILE - 5


def test_filter_panel_shows_the_first_stencil_of_position_grouped_maps():
    zeta = constant_filters((0.4, -0.4, 0.2, 0.0, -0.2))
    grouped = np.full(zeta.shape[:2] + (45,), 0.9, np.float32)  # 5 C^2 maps, C = 3
    grouped[..., ::9] = zeta  # position k of stencil (0, 0) is map 9 k
    np.testing.assert_array_equal(filter_panel(grouped), filter_panel(zeta))


@pytest.mark.parametrize("shape", [(8, 8, 4), (8, 8, 0), (8, 8), (2, 8, 8, 5)])
def test_filter_panel_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"Expected filter maps of shape \(H, W, 5 \* n\)"):
        filter_panel(np.zeros(shape))


# The callback in model.fit -----------------------------------------------------------------


def psnr(y_true, y_pred):
    """PSNR of each image in dB for images in [0, 1]."""
    return -10.0 * ops.log10(ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3)))


def tiny_fit(model, log_dir, learning_rate, epochs=2, update_every=4):
    """Fits `model` on 12 random 16x16 images, batch 2 (6 steps per epoch), in order."""
    rng = np.random.default_rng(1)
    x = rng.random((12, 16, 16, 1), dtype=np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    model.compile(keras.optimizers.SGD(learning_rate), loss="mse",
                  metrics=[keras.metrics.MeanMetricWrapper(psnr, name="psnr")])
    logger = TensorBoardLogger(str(log_dir), preview=(x[:2], y[:2]), update_every=update_every)
    history = model.fit(x, y, batch_size=2, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(x[:4], y[:4]), callbacks=[logger])
    return x, y, history.history


@pytest.mark.slow
def test_logger_writes_epochs_steps_learning_rate_and_diffnet_filters(tmp_path):
    # A tiny learning rate keeps the weights (and so each batch's loss) practically fixed,
    # so the step curves can be checked against losses computed batch by batch.
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-9, decay_steps=1, decay_rate=0.5)
    model = DiffNet(num_layers=2, estimator_depth=2, width=4)
    x, y, history = tiny_fit(model, tmp_path, schedule)
    train, validation = read_run(tmp_path / "train"), read_run(tmp_path / "validation")

    assert tags(train, "scalars") == [
        "loss/epoch", "loss/steps", "psnr/epoch", "psnr/steps", "schedule/learning_rate",
        "time_step/layer_1", "time_step/layer_2"]
    assert tags(validation, "scalars") == ["loss/epoch", "psnr/epoch"]
    assert tags(validation, "images") == [
        "samples/1", "samples/2", "zeta/layer_1", "zeta/layer_2"]
    for run, prefix in ((train, ""), (validation, "val_")):
        for name in ("loss", "psnr"):
            steps, logged = scalars(run, f"{name}/epoch")
            assert steps == [1, 2]
            np.testing.assert_allclose(logged, history[prefix + name], rtol=1e-6)

    # Step curves: points at steps 4, 8, 12; the mean over batches 1-4 of epoch 1, then
    # 1-2 and 3-6 of epoch 2 (a window never crosses an epoch's start).
    outputs = ops.convert_to_numpy(model(x))
    batch_loss = ((outputs - y) ** 2).reshape(6, -1).mean(axis=1)
    batch_psnr = ops.convert_to_numpy(psnr(y, outputs)).reshape(6, 2).mean(axis=1)
    for name, per_batch in (("loss", batch_loss), ("psnr", batch_psnr)):
        steps, logged = scalars(train, f"{name}/steps")
        assert steps == [4, 8, 12]
        expected = [per_batch[:4].mean(), per_batch[:2].mean(), per_batch[2:].mean()]
        np.testing.assert_allclose(logged, expected, rtol=1e-4)

    steps, rates = scalars(train, "schedule/learning_rate")  # evaluated at 6 and 12 steps
    assert steps == [1, 2]
    np.testing.assert_allclose(rates, [1e-9 * 0.5**6, 1e-9 * 0.5**12], rtol=1e-5)
    for k, layer in enumerate(model.diffusion_layers, start=1):
        _, dts = scalars(train, f"time_step/layer_{k}")
        np.testing.assert_allclose(dts[-1], ops.convert_to_numpy(layer.dt), rtol=1e-6)

    samples = images(validation, "samples/2")
    assert [step for step, *_ in samples] == [1, 2]
    np.testing.assert_array_equal(samples[-1][-1], sample_panel(x[1], outputs[1], y[1]))
    trace = model.trace(x[:1])
    layer_1 = images(validation, "zeta/layer_1")[-1][-1]
    caption = f"layer 1\ndt = {trace['dt'][0]:.4g}"
    np.testing.assert_array_equal(layer_1, filter_panel(trace["filters"][0][0], 2.0, caption))


@pytest.mark.slow
def test_logger_writes_samples_for_a_model_without_trace(tmp_path):
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    x, y, _ = tiny_fit(model, tmp_path, 0.01, epochs=1, update_every=50)
    validation = read_run(tmp_path / "validation")
    assert tags(validation, "images") == ["samples/1", "samples/2"]
    outputs = ops.convert_to_numpy(model(x[:1]))
    np.testing.assert_array_equal(images(validation, "samples/1")[0][-1],
                                  sample_panel(x[0], outputs[0], y[0]))
    train = read_run(tmp_path / "train")
    assert tags(train, "scalars") == ["loss/epoch", "psnr/epoch", "schedule/learning_rate"]


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_epoch, interval", [(6, 1), (40, 4)])
def test_by_default_the_step_curves_get_about_ten_points_per_epoch(tmp_path, steps_per_epoch,
                                                                     interval):
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).random((steps_per_epoch, 8, 8, 1), dtype=np.float32)
    model.fit(x, x, batch_size=1, epochs=1, verbose=0, callbacks=[TensorBoardLogger(str(tmp_path))])
    steps, _ = scalars(read_run(tmp_path / "train"), "loss/steps")
    assert steps == list(range(interval, steps_per_epoch + 1, interval))


def test_tag_groups_put_loss_and_psnr_first_and_samples_before_filters():
    # TensorBoard orders groups (the text before the first '/') by name.
    groups = ["zeta", "time_step", "schedule", "samples", "psnr", "loss"]
    assert sorted(groups) == ["loss", "psnr", "samples", "schedule", "time_step", "zeta"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_every": 0}, "Expected update_every to be None or an integer >= 1. Received 0"),
        ({"update_every": 2.5}, "Expected update_every to be None or an integer >= 1. Received 2.5"),
        ({"residual_scale": -1}, "Expected residual_scale to be a positive number"),
        ({"filter_scale": 0}, "Expected filter_scale to be a positive number"),
        ({"preview": (np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 3)))},
         r"Expected preview \(inputs, targets\) of the same shape \(B, H, W, C\)"),
        ({"preview": (np.zeros((8, 8, 1)), np.zeros((8, 8, 1)))},
         r"Expected preview \(inputs, targets\) of the same shape \(B, H, W, C\)"),
    ],
)
def test_logger_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TensorBoardLogger(str(tmp_path), **kwargs)


@pytest.mark.slow
def test_logger_works_without_tensorflow(tmp_path):
    """On JAX with TensorFlow made unimportable, a DiffNet fit writes readable logs."""
    script = textwrap.dedent(f"""
        import sys, types
        sys.modules["tensorflow"] = None  # `import tensorflow` now fails, as if not installed
        package = types.ModuleType("diffnet_tf")  # skip the package __init__ (it imports TF)
        package.__path__ = [{str(ROOT / "diffnet_tf")!r}]
        sys.modules["diffnet_tf"] = package
        import numpy as np
        from diffnet_tf.models import DiffNet
        from diffnet_tf.summaries import TensorBoardLogger
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
        model = DiffNet(num_layers=1, estimator_depth=1, width=2)
        model.compile("sgd", loss="mse")
        model.fit(x, x, batch_size=2, epochs=1, verbose=0,
                  callbacks=[TensorBoardLogger({str(tmp_path)!r}, preview=(x[:1], x[:1]))])
        tags = EventAccumulator({str(tmp_path / "validation")!r}).Reload().Tags()
        print(sorted(tags["tensors"]), sys.modules["tensorflow"])
    """)
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("['samples/1', 'zeta/layer_1'] None")


@pytest.mark.parametrize("maps, channels, picks", [(5, 1, [[0, 1, 2, 3, 4]]),
                                                   (15, 3, [[c, c + 3, c + 6, c + 9, c + 12] for c in range(3)]),
                                                   (45, 3, [[4 * c + 9 * k for k in range(5)] for c in range(3)])])
def test_each_channel_gets_its_own_stencils_maps(maps, channels, picks):
    """Position k of channel c's own stencil is map k C + c (channelwise) or
    k C^2 + c C + c (coupled): the layout of stencil.apply_stencil."""
    zeta = np.broadcast_to(np.arange(maps, dtype=np.float32), (4, 4, maps))
    from diffnet_tf.summaries import own_stencils

    cards = own_stencils(zeta, channels)
    assert [tag for tag, _, _ in cards] == (
        [""] if channels == 1 else [f"/channel_{c}" for c in range(channels)])
    for (_, chosen, _), expected in zip(cards, picks):
        assert chosen[0, 0].tolist() == expected
