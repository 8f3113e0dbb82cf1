"""Run folders: one spec each, one process at a time, nothing finished lost at any kill.
Each test is a scenario a user met (issue "Runs you can trust"), on tiny runs."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest

from diffnet_tf import metrics, runs, saving, spec, training
from diffnet_tf.files import DamagedFile, replace_atomically, write_json
from diffnet_tf.pairs import run_pairs

pytestmark = pytest.mark.slow  # every test here trains


def tiny(**sections):
    base = spec.protocol("perona_malik").replace(
        data=dict(source="synthetic", image_size=16, train_size=8, val_size=2, test_size=4),
        model=dict(num_layers=1, estimator_depth=2, width=4),
        train=dict(epochs=2, batch_size=4, lr_init=2e-3, lr_final=1e-3))
    return base.replace(**sections)


class Epochs(keras.callbacks.Callback):
    """Records the epochs a fit runs; raises KeyboardInterrupt after epoch `stop` (0-based)."""

    def __init__(self, stop=None):
        super().__init__()
        self.stop, self.epochs = stop, []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop:
            raise KeyboardInterrupt


@pytest.fixture
def watch(monkeypatch):
    """watch(stop=None) -> an Epochs callback added to the next fits of runs.execute."""

    real = runs._logging_callbacks

    def install(stop=None):
        callback = Epochs(stop)
        monkeypatch.setattr(runs, "_logging_callbacks",
                            lambda *args: real(*args) + [callback])
        return callback

    return install


def execute(run_spec, tmp_path, **kwargs):
    return runs.execute(run_spec, tmp_path / "runs", tmp_path / "data", verbose=0, **kwargs)


def test_runs_that_differ_in_any_setting_never_share_a_folder(tmp_path):
    first = execute(tiny(train={"lr_init": 2e-3}), tmp_path)
    stored = (first.path / "metrics.json").read_text(), (first.path / "model.keras").read_bytes()
    second = execute(tiny(train={"lr_init": 1e-4, "lr_final": 1e-5}), tmp_path)
    assert second.path != first.path and not second.reused
    assert ((first.path / "metrics.json").read_text(),
            (first.path / "model.keras").read_bytes()) == stored
    for result in (first, second):
        assert spec.RunSpec.load(result.path / "spec.json").folder_name == result.path.name


def test_an_interrupted_run_started_with_other_settings_does_not_resume_it(tmp_path, watch):
    first = tiny(train={"epochs": 4})
    watch(stop=1)
    with pytest.raises(KeyboardInterrupt):
        execute(first, tmp_path)
    folder = tmp_path / "runs" / first.folder_name
    backup = sorted(p.name for p in (folder / "backup").iterdir())
    other = tiny(train={"epochs": 4, "seed": 1}, model={"boundary": "zero", "num_layers": 2})
    record = watch()
    result = execute(other, tmp_path)
    assert record.epochs == [0, 1, 2, 3]  # from scratch, in its own folder
    assert result.path.name == other.folder_name and len(result.metrics["dt"]) == 2
    assert sorted(p.name for p in (folder / "backup").iterdir()) == backup  # untouched
    record = watch()
    execute(first, tmp_path)
    assert record.epochs == [2, 3]  # the first run resumes its own epochs


def test_a_kill_after_training_before_the_model_is_saved_loses_no_epoch(tmp_path, watch,
                                                                        monkeypatch):
    run_spec = tiny()
    real_save = saving.save_model

    def killed_while_saving(model, path):
        open(path.with_name(".model.tmp.keras"), "wb").write(b"PK")  # a partial temp
        raise KeyboardInterrupt

    monkeypatch.setattr(saving, "save_model", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        execute(run_spec, tmp_path)
    folder = tmp_path / "runs" / run_spec.folder_name
    assert not (folder / "model.keras").exists() and (folder / "backup").exists()
    monkeypatch.setattr(saving, "save_model", real_save)
    record = watch()
    result = execute(run_spec, tmp_path)
    assert record.epochs == []  # both epochs came from the backup
    assert result.metrics["epochs_trained"] == 2 and not (folder / "backup").exists()


def test_a_kill_between_the_model_and_its_training_record_keeps_the_best_epoch(tmp_path,
                                                                                 monkeypatch):
    run_spec = tiny(train={"epochs": 4, "patience": 1, "lr_init": 0.5, "lr_final": 0.5})
    monkeypatch.setattr(runs, "write_json", lambda path, data: (_ for _ in ()).throw(
        KeyboardInterrupt) if path.name == "training.json" else write_json(path, data))
    with pytest.raises(KeyboardInterrupt):
        execute(run_spec, tmp_path)
    monkeypatch.undo()
    folder = tmp_path / "runs" / run_spec.folder_name
    saved = (folder / "model.keras").read_bytes()
    monkeypatch.setattr(training, "fit", None)  # no training: the saved model is final
    result = execute(run_spec, tmp_path)
    assert (folder / "model.keras").read_bytes() == saved
    assert result.metrics["epochs_trained"] >= 1 and (folder / "training.json").exists()
    assert result.metrics["devices"] is None  # not in the backup: unknown, not guessed


def test_a_kill_after_the_model_is_saved_only_evaluates_it(tmp_path, monkeypatch):
    run_spec = tiny()
    monkeypatch.setattr(runs, "_evaluate", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        execute(run_spec, tmp_path)
    monkeypatch.undo()
    folder = tmp_path / "runs" / run_spec.folder_name
    saved = (folder / "model.keras").read_bytes()
    monkeypatch.setattr(training, "fit", None)  # training again would fail
    result = execute(run_spec, tmp_path)
    assert (folder / "model.keras").read_bytes() == saved and result.metrics["parameters"] > 0


def test_a_finished_run_is_reported_without_work_and_overwrite_trains_it_again(tmp_path,
                                                                               monkeypatch):
    run_spec = tiny()
    first = execute(run_spec, tmp_path)
    monkeypatch.setattr(runs, "run_pairs", None)  # no data may be made
    again = execute(run_spec, tmp_path)
    assert again.reused and again.metrics == first.metrics and again.model is None
    monkeypatch.undo()
    (first.path / "figures").mkdir(exist_ok=True)
    (first.path / "figures" / "stale.png").write_bytes(b"x")
    retrained = execute(run_spec, tmp_path, overwrite=True)
    assert not retrained.reused and not (first.path / "figures" / "stale.png").exists()
    assert (first.path / "spec.json").exists()


def test_a_second_process_on_a_run_folder_fails_at_once_naming_the_holder(tmp_path):
    run_spec = tiny()
    with runs.RunFolder(tmp_path, run_spec):
        with pytest.raises(runs.RunFolderBusy, match=f"{run_spec.folder_name} is in use by "
                                                     f"process {os.getpid()}"):
            runs.RunFolder(tmp_path, run_spec).__enter__()
    with runs.RunFolder(tmp_path, run_spec):  # released on exit
        pass


def test_a_dead_holders_lock_does_not_block(tmp_path):
    run_spec = tiny()
    (tmp_path / "spec.json").write_text(run_spec.to_json())
    script = textwrap.dedent(f"""
        import os, signal, sys
        from diffnet_tf import runs, spec
        folder = runs.RunFolder({str(tmp_path)!r}, spec.RunSpec.load({str(tmp_path / "spec.json")!r}))
        folder.__enter__()
        print("holding", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL and "holding" in done.stdout
    with runs.RunFolder(tmp_path, run_spec) as folder:  # kill -9 released it
        assert "process" in (folder.path / ".lock").read_text()


def test_a_killed_writers_partial_files_are_removed_when_the_folder_is_opened(tmp_path):
    run_spec = tiny()
    folder = tmp_path / run_spec.folder_name
    (folder / "backup").mkdir(parents=True)
    partial = []

    def killed(temporary):  # the temporary file replace_atomically writes, left by a kill -9
        temporary.write_bytes(b"partial")
        partial.append(temporary.with_name(temporary.name.replace(str(os.getpid()), "4242")))
        temporary.rename(partial[-1])
        raise KeyboardInterrupt

    for path in (folder / "model.keras", folder / "training.json",
                 folder / "backup" / "epoch-0002.weights.h5"):
        with pytest.raises(KeyboardInterrupt):
            replace_atomically(path, killed)
    kept = folder / "backup" / "epoch-0001.weights.h5"
    kept.write_bytes(b"a whole backup")
    assert all(path.exists() for path in partial)
    with runs.RunFolder(tmp_path, run_spec):
        assert not any(path.exists() for path in partial) and kept.exists()
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "backup", "spec.json"]


def test_an_output_folder_that_is_a_file_fails_before_any_data_are_made(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "run_pairs", None)
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(ValueError, match="output folder .*runs' is a file"):
        execute(tiny(), tmp_path)


def test_a_hand_edited_spec_is_refused(tmp_path):
    run_spec = tiny()
    with runs.RunFolder(tmp_path, run_spec) as folder:
        path = folder.path / "spec.json"
    values = json.loads(path.read_text())
    values["train"]["epochs"] = 7
    path.write_text(json.dumps(values))
    with pytest.raises(ValueError, match="holds another spec than this run's"):
        runs.RunFolder(tmp_path, run_spec).__enter__()


def test_a_finished_folder_counts_only_under_the_spec_it_was_named_for(tmp_path):
    run_spec = tiny()
    with runs.RunFolder(tmp_path, run_spec) as folder:
        (folder.path / "metrics.json").write_text("{}")
        with zipfile.ZipFile(folder.path / "model.keras", "w") as archive:
            archive.writestr("config.json", "{}")
    assert runs.RunFolder(tmp_path, run_spec).finished
    values = json.loads((folder.path / "spec.json").read_text())
    values["model"]["num_layers"] = 2  # a hand edit: the folder holds another run
    (folder.path / "spec.json").write_text(json.dumps(values))
    assert not runs.RunFolder(tmp_path, run_spec).finished  # a study does not reuse it


def test_a_damaged_metrics_file_is_named(tmp_path):
    result = execute(tiny(), tmp_path)
    (result.path / "metrics.json").write_text("{")
    with pytest.raises(ValueError, match=f"{result.path / 'metrics.json'} is not valid JSON"):
        execute(tiny(), tmp_path)


def test_finished_runs_lists_only_finished_folders_with_their_specs(tmp_path, watch):
    done = execute(tiny(), tmp_path)
    watch(stop=0)
    with pytest.raises(KeyboardInterrupt):
        execute(tiny(train={"epochs": 3}), tmp_path)
    assert list(runs.finished_runs(tmp_path / "runs")) == [(done.path, tiny())]


def test_the_run_folder_holds_what_the_readme_promises(tmp_path):
    result = execute(tiny(), tmp_path, figures=lambda spec, model, pairs, folder: (
        folder / "figure.png").write_bytes(b"png"))
    names = {p.name for p in result.path.iterdir()}
    logged = {"tensorboard"} if importlib.util.find_spec("tensorboard") else set()
    assert names == {"spec.json", ".lock", "backend.json", "training.json", "model.keras",
                     "metrics.json", "figures"} | logged
    stored = result.metrics
    assert {"test", "test_input", "train", "train_input", "parameters", "epochs_trained",
            "train_seconds", "dt", "precision"} <= set(stored)
    assert stored["precision"] == "float32" and "test_tikhonov" not in stored  # Perona-Malik
    model = keras.saving.load_model(result.path / "model.keras")
    pairs = run_pairs(tiny().data, tmp_path / "data", verbose=0)
    outputs = model.predict(pairs.test[0], verbose=0)
    psnr = np.mean(keras.ops.convert_to_numpy(metrics.psnr(pairs.test[1], outputs)))
    assert psnr == pytest.approx(stored["test"]["psnr_mean"], abs=1e-3)


class DivergeAtOnce(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise training.TrainingDiverged("Training diverged: the loss became nan at step 1.")


@pytest.mark.parametrize("failure", ["data", "first epoch"])
def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path, monkeypatch,
                                                                  failure):
    if failure == "data":
        def no_data(*args, **kwargs):
            raise FileNotFoundError("STL-10 not found")

        monkeypatch.setattr(runs, "run_pairs", no_data)
        raised = FileNotFoundError
    else:
        real = runs._logging_callbacks
        monkeypatch.setattr(runs, "_logging_callbacks", lambda *args: (
            real(*args) + [DivergeAtOnce()]))
        raised = training.TrainingDiverged
    with pytest.raises(raised):
        execute(tiny(), tmp_path)
    assert list((tmp_path / "runs").iterdir()) == []  # no folder that looks like a run
    monkeypatch.undo()
    assert (execute(tiny(), tmp_path).path / "metrics.json").exists()  # and a rerun works


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_finished_run_whose_model_is_damaged_is_named_damaged_not_reused(tmp_path, damage):
    first = execute(tiny(), tmp_path)
    model = first.path / "model.keras"
    data = bytearray(model.read_bytes())
    if damage == "truncated":
        model.write_bytes(data[: len(data) // 2])
    else:  # one byte flipped inside the weights: the archive's checksums see it
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    with pytest.raises(DamagedFile, match=r"The finished run in .* is damaged: .*model.keras' "
                                          r"is not a valid .keras file.* --overwrite"):
        execute(tiny(), tmp_path)
    folder = runs.RunFolder(tmp_path / "runs", tiny())
    assert not folder.finished and list(runs.finished_runs(tmp_path / "runs")) == []
    assert (first.path / "metrics.json").exists()  # nothing removed: the user decides
    again = execute(tiny(), tmp_path, overwrite=True)
    assert not again.reused and saving.load_model(model).count_params() > 0
