"""Training: the loss, the schedule, the per-epoch backup and resuming, divergence,
evaluation and saved models."""

import logging
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from diffnet_tf import physics, spec
from diffnet_tf.backup import EpochBackup, backup_size, backups
from diffnet_tf.files import WriteFailed
from diffnet_tf.models import DiffNet, UNet
from diffnet_tf.pairs import RunPairs
from diffnet_tf.precision import current_precision
from diffnet_tf.training import (
    TrainingDiverged,
    compile_model,
    evaluate,
    fit,
    learning_rate_schedule,
    unusual_data,
)
from diffnet_tf.losses import l2norm_loss
from diffnet_tf.saving import load_model, save_model


def tiny_spec(**train):
    return spec.protocol("perona_malik").replace(
        data=dict(source="synthetic", image_size=16, train_size=8, val_size=4, test_size=4),
        model=dict(num_layers=2, estimator_depth=2, width=4),
        train=dict(dict(epochs=2, batch_size=4, lr_init=1e-2, lr_final=1e-3), **train))


def tiny_pairs(n=8, size=16, seed=0):
    target = np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)
    target = np.array(physics.heat(target, 1.0))
    inputs = np.array(physics.perona_malik(target))
    return RunPairs((inputs, target), (inputs[:4], target[:4]), (inputs[:4], target[:4]))


def test_l2norm_loss_is_the_unsquared_frobenius_norm_over_the_batch_size():
    y_true = np.random.default_rng(0).normal(size=(4, 5, 6, 1)).astype(np.float32)
    y_pred = np.random.default_rng(1).random((4, 5, 6, 1)).astype(np.float32)
    expected = np.linalg.norm(np.maximum(y_true, 0) - y_pred) / 4
    np.testing.assert_allclose(float(l2norm_loss(y_true, y_pred)), expected, rtol=1e-5)


def test_schedule_decays_geometrically_from_first_to_last_rate():
    schedule = learning_rate_schedule(2e-3, 4e-6, total_steps=1000)
    rates = np.array([float(schedule(step)) for step in (0, 500, 1000)])
    np.testing.assert_allclose(rates, [2e-3, np.sqrt(2e-3 * 4e-6), 4e-6], rtol=1e-4)


class Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the end of epoch `epoch` (0-based), after the backup."""

    def __init__(self, epoch=0):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.mark.slow
def test_an_interrupted_fit_resumes_at_the_next_epoch_with_its_weights(tmp_path, caplog):
    pairs, run_spec = tiny_pairs(), tiny_spec(epochs=3)
    with pytest.raises(KeyboardInterrupt):
        fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[Interrupt(0)])
    assert [epoch for epoch, _ in backups(tmp_path)] == [1]
    record = RecordEpochs()
    caplog.set_level(logging.INFO, logger="diffnet_tf")
    model, summary, notes = fit(run_spec, pairs, tmp_path, verbose=2, callbacks=[record])
    assert record.epochs == [1, 2] and notes == []  # epoch index 1 is the second epoch
    logged = [r.getMessage() for r in caplog.records if r.name == "diffnet_tf.training"]
    assert logged == [f"Resuming from the backup in {tmp_path}: 1 of 3 epochs done."]
    assert summary["epochs_trained"] == 3 and summary["epochs_this_session"] == 2
    assert int(model.optimizer.iterations) == 6  # counting on from the backup: 3 x 2 steps
    straight, _, _ = fit(run_spec, pairs, tmp_path / "straight", verbose=0)
    for resumed, uninterrupted in zip(model.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-7)
    assert [epoch for epoch, _ in backups(tmp_path)] == [3, 2]  # the last two kept


@pytest.mark.slow
@pytest.mark.parametrize("damage", [b"", b"not an HDF5 file", "truncate"])
def test_a_damaged_newest_backup_falls_back_to_the_one_before(tmp_path, damage):
    pairs, run_spec = tiny_pairs(), tiny_spec(epochs=4)
    with pytest.raises(KeyboardInterrupt):
        fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[Interrupt(1)])
    newest = tmp_path / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000] if damage == "truncate" else damage)
    record, warned_at_start = RecordEpochs(), []
    with pytest.warns(UserWarning, match="falling back") as warned:
        record.on_train_begin = lambda logs=None: warned_at_start.append(
            sum("falling back" in str(w.message) for w in warned))
        _, _, notes = fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[record])
    assert warned_at_start == [1]  # told before training, not when it is over
    assert record.epochs == [1, 2, 3]  # resumed after epoch 1, not stuck, not from scratch
    assert len(notes) == 1 and str(newest) in notes[0] and "falling back" in notes[0]


@pytest.mark.slow
def test_no_readable_backup_starts_from_scratch_with_a_note(tmp_path):
    pairs, run_spec = tiny_pairs(), tiny_spec()
    (tmp_path / "epoch-0001.weights.h5").write_bytes(b"")
    record = RecordEpochs()
    with pytest.warns(UserWarning, match="could not be read|starts from scratch"):
        model, _, notes = fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[record])
    assert record.epochs == [0, 1] and "starts from scratch" in notes[-1]
    assert np.isfinite(keras.ops.convert_to_numpy(model(pairs.test[0]))).all()


@pytest.mark.slow
def test_a_kill_while_the_backup_is_written_leaves_the_previous_backup_whole(tmp_path):
    pairs, run_spec = tiny_pairs(), tiny_spec(epochs=3)

    class KilledWhileSaving(EpochBackup):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # the second epoch's backup: die half way through the write
                def half(path):
                    open(path, "wb").write(b"\x89HDF partial")
                    raise KeyboardInterrupt
                self.model.save_weights = half
            super().on_epoch_end(epoch, logs)

    from diffnet_tf import training
    real = training.EpochBackup
    training.EpochBackup = KilledWhileSaving
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(run_spec, pairs, tmp_path, verbose=0)
    finally:
        training.EpochBackup = real
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001.json",
                                                          "epoch-0001.weights.h5",
                                                          "epoch-0002.json"]
    record = RecordEpochs()
    _, _, notes = fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[record])
    assert record.epochs == [1, 2] and notes == []


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch_and_says_when(tmp_path):
    pairs = tiny_pairs()
    run_spec = tiny_spec(epochs=30, patience=1, lr_init=0.5, lr_final=0.5)  # unstable: stops
    model, summary, _ = fit(run_spec, pairs, tmp_path, verbose=0)
    assert summary["stopped_early"] and summary["epochs_trained"] < 30
    assert 1 <= summary["best_epoch"] < summary["epochs_trained"]


@pytest.mark.slow
def test_divergence_stops_with_a_message_naming_learning_rate_dt_and_the_backup(tmp_path):
    pairs = tiny_pairs()
    pairs.train[1][0, 0, 0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match=r"train\.lr_init\).*dt per layer: \[.*"
                                               r"model\.dt_init\)\. No epoch was completed"):
        fit(tiny_spec(), pairs, tmp_path, verbose=0)


def test_evaluate_reports_model_and_do_nothing_baseline():
    pairs = tiny_pairs()
    identity = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    result = evaluate(identity, *pairs.train)
    assert result["model"] == result["input"]
    assert set(result["model"]) == {"psnr_mean", "psnr_std", "psnr_batch", "psnr_batch16_mean",
                                    "psnr_batch16_min", "psnr_batch16_max", "relative_l2_mean",
                                    "relative_l2_set", "ssim_mean"}
    assert np.isfinite(result["input"]["psnr_mean"])


def test_evaluate_predicts_in_true_float32():
    seen = []

    def record(x):  # runs when predict traces the model
        seen.append(current_precision())
        return x

    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Lambda(record)])
    seen.clear()
    evaluate(model, *tiny_pairs().train)
    assert seen and set(seen) == {"float32"}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "fast"])
def test_fit_trains_in_the_specs_precision_and_records_it(tmp_path, precision):
    seen, outside = [], current_precision()

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(current_precision())

    _, summary, _ = fit(tiny_spec(epochs=1, precision=precision), tiny_pairs(), tmp_path,
                        verbose=0, callbacks=[Record()])
    assert set(seen) == {"float32" if precision == "float32" else outside}
    assert summary["precision"] == precision and current_precision() == outside


@pytest.mark.slow
def test_a_saved_model_loads_in_a_fresh_process_with_its_loss(tmp_path):
    pairs = tiny_pairs()
    model, _, _ = fit(tiny_spec(epochs=1), pairs, tmp_path / "backup", verbose=0)
    save_model(model, tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", pairs.test[0])
    script = (
        "import keras, numpy as np, diffnet_tf\n"
        f"m = keras.saving.load_model({str(tmp_path / 'model.keras')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(pairs.test[0]), atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip"])
def test_a_damaged_model_file_is_named_as_not_a_valid_keras_file(tmp_path, content):
    (tmp_path / "model.keras").write_bytes(content)
    with pytest.raises(ValueError, match="model.keras' is not a valid .keras file") as raised:
        load_model(tmp_path / "model.keras")
    assert "not found" not in str(raised.value)  # Keras' own message says "File not found"
    with pytest.raises(FileNotFoundError, match="No saved model at"):
        load_model(tmp_path / "missing.keras")


def test_saving_a_model_is_atomic(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Identity()])
    save_model(model, tmp_path / "model.keras")
    before = (tmp_path / "model.keras").read_bytes()

    def dies_half_way(path):
        open(path, "wb").write(b"PK partial")
        raise KeyboardInterrupt

    model.save = dies_half_way
    with pytest.raises(KeyboardInterrupt):
        save_model(model, tmp_path / "model.keras")
    assert (tmp_path / "model.keras").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temporary left


# ---------------------------------------------------------------- full disks, data settings


@pytest.mark.parametrize("model", [
    DiffNet(num_layers=2, estimator_depth=2, width=4), UNet(base_filters=2, levels=2)])
def test_the_backup_size_bounds_the_backup_file(tmp_path, model):
    model.build((None, None, None, 1))
    compile_model(model, tiny_spec().train, steps_per_epoch=1)
    model.optimizer.build(model.trainable_variables)
    model.save_weights(tmp_path / "epoch.weights.h5")
    written = (tmp_path / "epoch.weights.h5").stat().st_size
    assert written <= backup_size(model) <= 2 * written + 65536  # enough, not far more


def full_after(calls):
    """shutil.disk_usage as on a disk that is full after its first `calls` calls."""
    real, seen = shutil.disk_usage, []

    def usage(path):
        seen.append(path)
        return real(path)._replace(free=0) if len(seen) > calls else real(path)

    return usage


@pytest.mark.slow
def test_a_full_disk_at_an_epoch_end_keeps_the_backup_and_a_rerun_resumes(tmp_path,
                                                                          monkeypatch):
    pairs, run_spec = tiny_pairs(), tiny_spec(epochs=3)
    monkeypatch.setattr(shutil, "disk_usage", full_after(1))
    with pytest.raises(WriteFailed, match=r"Could not write '.*epoch-0002.weights.h5': No "
                                          r"space left on device \(0 bytes free"):
        fit(run_spec, pairs, tmp_path, verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001.json",
                                                          "epoch-0001.weights.h5"]
    monkeypatch.undo()
    record = RecordEpochs()
    fit(run_spec, pairs, tmp_path, verbose=0, callbacks=[record])
    assert record.epochs == [1, 2]


@pytest.mark.slow
def test_a_real_full_disk_raises_write_failed_where_h5py_would_crash(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        with pytest.raises(WriteFailed, match="epoch-0001.weights.h5': No space left"):
            fit(tiny_spec(epochs=1), tiny_pairs(), folder, verbose=0)
        assert not any(p.name.endswith(".h5") for p in folder.iterdir())
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_divergence_message_names_data_settings_beyond_the_papers():
    assert unusual_data(tiny_spec().replace(data={"noise": 0.1}).data) == []
    (cause,) = unusual_data(tiny_spec().replace(data={"noise": 0.5}).data)
    assert "DataSpec.noise is 0.5, the paper's largest 0.1" in cause


@pytest.mark.slow
def test_an_epoch_that_ends_diverged_is_not_backed_up(tmp_path):
    pairs = tiny_pairs()
    validation = tuple(a.copy() for a in pairs.validation)  # a finite training loss, an
    validation[1][0, 0, 0, 0] = np.inf                      # infinite validation loss
    pairs = RunPairs(pairs.train, validation, pairs.test)
    run_spec = tiny_spec().replace(data={"noise": 0.5})
    with pytest.raises(TrainingDiverged, match=r"the val loss became inf at step 2\. Likely "
                                               r"causes: the noise is far above the paper's"):
        fit(run_spec, pairs, tmp_path, verbose=0)
    assert backups(tmp_path) == []


def test_a_saved_model_loads_for_inference_whatever_it_was_compiled_with(tmp_path):
    def unregistered_loss(y_true, y_pred):
        return keras.ops.mean(abs(y_true - y_pred))

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(optimizer="adam", loss=unregistered_loss)
    model.save(tmp_path / "mine.keras")
    with pytest.raises(TypeError, match="unregistered_loss"):  # Keras' own load compiles
        keras.saving.load_model(tmp_path / "mine.keras")
    x = np.random.default_rng(0).random((2, 4, 4, 1)).astype(np.float32)
    loaded = load_model(tmp_path / "mine.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
