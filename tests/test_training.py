"""Training: the loss, the schedule, the config, resuming, divergence, TensorBoard output."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from diffnet_tf import physics
from diffnet_tf.training import (
    TrainConfig,
    TrainingDiverged,
    evaluate,
    l2norm_loss,
    learning_rate_schedule,
    train,
)


def tiny_config(**overrides):
    values = dict(num_layers=2, estimator_depth=2, width=4, epochs=2, batch_size=4,
                  lr_init=1e-2, lr_final=1e-3, train_size=8, val_size=4, image_size=16)
    values.update(overrides)
    return TrainConfig(**values)


def tiny_problem(n=8, size=16, seed=0):
    target = np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)
    target = np.asarray(physics.heat(target, 1.0))
    return np.array(physics.perona_malik(target)), np.array(target)


def test_l2norm_loss_is_the_unsquared_frobenius_norm_over_the_batch_size():
    y_true = np.random.default_rng(0).normal(size=(4, 5, 6, 1)).astype(np.float32)
    y_pred = np.random.default_rng(1).random((4, 5, 6, 1)).astype(np.float32)
    expected = np.linalg.norm(np.maximum(y_true, 0) - y_pred) / 4
    np.testing.assert_allclose(float(l2norm_loss(y_true, y_pred)), expected, rtol=1e-5)


def test_schedule_decays_geometrically_from_first_to_last_rate():
    schedule = learning_rate_schedule(2e-3, 4e-6, total_steps=1000)
    rates = np.array([float(schedule(step)) for step in (0, 500, 1000)])
    np.testing.assert_allclose(rates, [2e-3, np.sqrt(2e-3 * 4e-6), 4e-6], rtol=1e-4)


def test_config_round_trips_through_json_and_rejects_bad_values(tmp_path):
    config = tiny_config(model="unet", noise=0.01)
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        TrainConfig(model="resnet")
    with pytest.raises(ValueError, match="0 < lr_final <= lr_init"):
        TrainConfig(lr_init=1e-4, lr_final=1e-3)
    with pytest.raises(ValueError, match="epochs >= 1. Received 0"):
        TrainConfig(epochs=0)


def event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_train_writes_the_run_folder_and_tensorboard_summaries(tmp_path):
    x, y = tiny_problem()
    model, history = train(tiny_config(), (x, y), (x[:4], y[:4]), tmp_path,
                           preview=(x[:2], y[:2]), verbose=0)
    for name in ("config.json", "model.keras", "best.keras"):
        assert (tmp_path / name).exists()
    assert not (tmp_path / "backup").exists()  # removed once the run finished
    tags = event_tags(tmp_path / "tensorboard")
    assert {"epoch_loss", "epoch_psnr", "epoch_learning_rate"} <= tags
    assert {"images/input", "images/output", "images/target", "images/residual"} <= tags
    assert {"filters/layer_1/top", "filters/layer_2/centre", "smoothing/layer_1", "dt/layer_2"} <= tags
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(x), model(x), atol=1e-6)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_an_interrupted_run_resumes_at_the_next_epoch(tmp_path):
    x, y = tiny_problem()
    config = tiny_config(epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, (x, y), (x[:4], y[:4]), tmp_path, verbose=0, callbacks=[Interrupt()])
    assert (tmp_path / "backup").exists()
    record = RecordEpochs()
    train(config, (x, y), (x[:4], y[:4]), tmp_path, verbose=0, callbacks=[record])
    assert record.epochs == [1, 2]  # epoch index 1 is the second epoch


def test_divergence_stops_with_a_message_naming_learning_rate_and_dt(tmp_path):
    x, y = tiny_problem()
    y[0, 0, 0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match=r"learning rate is too high.*dt per layer: \[.*best checkpoint"):
        train(tiny_config(), (x, y), (x[:4], y[:4]), tmp_path, verbose=0)


def test_evaluate_reports_model_and_do_nothing_baseline():
    x, y = tiny_problem()
    identity = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    result = evaluate(identity, x, y)
    assert result["model"] == result["input"]
    assert set(result["model"]) == {"psnr_mean", "psnr_std", "psnr_batch", "relative_l2_mean", "ssim_mean"}
    assert np.isfinite(result["input"]["psnr_mean"])


def test_a_trained_model_loads_in_a_fresh_process_with_its_loss(tmp_path):
    import subprocess
    import sys

    x, y = tiny_problem()
    model, _ = train(tiny_config(epochs=1), (x, y), (x[:4], y[:4]), tmp_path, verbose=0)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import keras, numpy as np, diffnet_tf\n"
        f"m = keras.saving.load_model({str(tmp_path / 'model.keras')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(x), atol=1e-6)
