"""Tests of diffnet_tf.summaries: the TensorBoardLogger callback inside model.fit on the
current backend (run this file also with KERAS_BACKEND=jax), its logs read back with
TensorBoard's own reader."""

import os
import pathlib
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
from keras import ops

pytest.importorskip("tensorboard", reason="diffnet_tf.summaries writes with the tensorboard package")
from tensorboard_reader import images, read_run, scalars, tags  # noqa: E402

from diffnet_tf.models import DiffNet  # noqa: E402
from diffnet_tf.panels import filter_panel, sample_panel  # noqa: E402
from diffnet_tf.summaries import TensorBoardLogger, labelled_log_dir, own_stencils  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="module")
def diffnet_logs(tmp_path_factory):
    """A tiny DiffNet fitted for two epochs with the logger, and its two runs' logs.

    A tiny learning rate keeps the weights (and so each batch's loss) practically fixed,
    so the step curves can be checked against losses computed batch by batch."""
    log_dir = tmp_path_factory.mktemp("tensorboard")
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-9, decay_steps=1, decay_rate=0.5)
    model = DiffNet(num_layers=2, estimator_depth=2, width=4)
    x, y, history = tiny_fit(model, log_dir, schedule)
    return types.SimpleNamespace(model=model, x=x, y=y, history=history,
                                 train=read_run(log_dir / "train"),
                                 validation=read_run(log_dir / "validation"))


@pytest.mark.slow
def test_logger_writes_epochs_steps_learning_rate_and_diffnet_filters(diffnet_logs):
    model, x, y, history = diffnet_logs.model, diffnet_logs.x, diffnet_logs.y, diffnet_logs.history
    train, validation = diffnet_logs.train, diffnet_logs.validation
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
    np.testing.assert_array_equal(layer_1, filter_panel(trace["filters"][0][0], None, caption))
    description = validation.SummaryMetadata("zeta/layer_1").summary_description
    assert "each on its own symmetric colour scale" in description


@pytest.mark.slow
def test_a_fit_killed_mid_epoch_and_resumed_logs_each_step_once_with_the_later_values(tmp_path):
    """Epoch 1 done (its state kept, as a backup would), epoch 2 killed after 3 of its 6
    steps, then a new logger resumes from the end of epoch 1: every tag of both runs has
    each step once, the resumed values where the killed process had logged too."""
    x = np.random.default_rng(2).random((12, 8, 8, 1), dtype=np.float32)
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(keras.optimizers.SGD(0.05), loss="mse")
    fit = dict(x=x, y=x * 0.5, batch_size=2, shuffle=False, verbose=0,
               validation_data=(x[:2], x[:2] * 0.5))
    saved = {}

    class KillInEpochTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved["weights"] = self.model.get_weights()

        def on_train_batch_end(self, batch, logs=None):
            if saved and batch == 2:
                raise KeyboardInterrupt  # as kill -9: no on_train_end, no file closed

    with pytest.raises(KeyboardInterrupt):
        model.fit(**fit, epochs=2, callbacks=[
            TensorBoardLogger(str(tmp_path), preview=(x[:1], x[:1]), update_every=1),
            KillInEpochTwo()])
    model.set_weights(saved["weights"])
    model.optimizer.iterations.assign(6)  # the optimizer's step count after epoch 1
    fit["y"] = x * 0.4  # other losses than the killed process logged: the later ones show
    model.fit(**fit, epochs=3, initial_epoch=1, callbacks=[
        TensorBoardLogger(str(tmp_path), preview=(x[:1], x[:1]), update_every=1)])

    train, validation = read_run(tmp_path / "train"), read_run(tmp_path / "validation")
    for run in (train, validation):
        for tag in run.Tags()["tensors"]:
            steps = [event.step for event in run.Tensors(tag)]
            assert steps == sorted(set(steps)), (tag, steps)  # each step once, in order
    assert scalars(train, "loss/steps")[0] == list(range(1, 19))
    assert scalars(train, "loss/epoch")[0] == [1, 2, 3]
    assert [step for step, *_ in images(validation, "samples/1")] == [1, 2, 3]
    killed, resumed = (read_run(path) for path in sorted((tmp_path / "train").iterdir()))
    shown = scalars(train, "loss/steps")[1]
    assert scalars(killed, "loss/steps")[0] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert shown[:6] == scalars(killed, "loss/steps")[1][:6]
    assert shown[6:] == scalars(resumed, "loss/steps")[1]  # steps 7 ... 18
    assert shown[6:9] != scalars(killed, "loss/steps")[1][6:9]  # 7, 8, 9: not the killed ones


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


@pytest.mark.slow
def test_the_written_tag_groups_put_loss_and_psnr_first_and_samples_before_filters(
        diffnet_logs):
    """TensorBoard shows a tag in its group, the text before the first '/', and orders the
    groups by name: the groups of the tags the logger wrote, in that order."""
    written = [tag for run in (diffnet_logs.train, diffnet_logs.validation)
               for tag in run.Tags()["tensors"]]
    assert all("/" in tag for tag in written)  # none left outside a group
    groups = sorted({tag.split("/")[0] for tag in written})  # TensorBoard's order
    assert groups == ["loss", "psnr", "samples", "schedule", "time_step", "zeta"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_every": 0}, "Expected update_every to be an integer >= 1. Received 0"),
        ({"update_every": 2.5}, "Expected update_every to be an integer >= 1. Received 2.5"),
        ({"update_every": True}, "Expected update_every to be an integer >= 1. Received True"),
        ({"residual_scale": -1}, "Expected residual_scale > 0. Received -1"),
        ({"filter_scale": 0}, "Expected filter_scale > 0. Received 0"),
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
    cards = own_stencils(zeta, channels)
    assert [tag for tag, _, _ in cards] == (
        [""] if channels == 1 else [f"/channel_{c}" for c in range(channels)])
    for (_, chosen, _), expected in zip(cards, picks):
        assert chosen[0, 0].tolist() == expected


def test_a_runs_event_folders_end_with_the_data_settings_studies_vary():
    """TensorBoard's run list breaks a run's name (its event folder below --logdir) into
    lines only after '-' and cuts each after about 37 characters: the run folder's long
    name is cut, so the name ends with noise and training-set size in short lines."""
    folder = pathlib.Path("runs/perona_malik/diffnet_pm_inverse_synthetic_noise0.001_n1000-3f2a9c01be")
    log_dir = labelled_log_dir(folder / "tensorboard", types.SimpleNamespace(noise=0.001, train_size=1000))
    assert log_dir == folder / "tensorboard" / "noise0.001-n1000"
    lines = str(log_dir / "validation").replace("-", "-\n").splitlines()
    assert lines[1:] == ["3f2a9c01be/tensorboard/noise0.001-", "n1000/validation"]
    assert all(len(line) <= 37 for line in lines[1:])
