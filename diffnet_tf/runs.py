"""Run folders: one spec each, one process at a time, nothing finished ever lost.

    <root>/<spec.folder_name>/        e.g. runs/perona_malik/diffnet_pm_inverse_..._n1000-3f2a9c01be
        spec.json       the RunSpec, written first; the folder's name holds its digest
        .lock           flock'ed by the process running the folder; names that process
                        (host, Slurm job or Ray task: folder_lock)
        backend.json    the Keras backend (and versions) the run is made under
        worker.log      a launcher worker's output (diffnet_tf.launch), if one ran it
        backup/         the last two epochs' state while training (backup.EpochBackup)
        model.keras     the trained model; written when training is over
        training.json   how training went
        figures/        the run's figures
        tensorboard/    noise<noise>-n<train size>/train/ and .../validation/ event files
        metrics.json    test and train quality; written last: the run is finished

Every file is written atomically (temporary file, then rename), in the order above, and the
backup is removed only after metrics.json exists, so a kill at any instant loses at most
the epoch in flight: the same spec again resumes from the backup, or, once model.keras
exists, just evaluates it; a finished run is reported, not retrained (docs/DESIGN.md).
"""

import dataclasses
import importlib.util
import logging
import shutil
from pathlib import Path

from diffnet_tf import backup, baselines, hardware, saving, training
from diffnet_tf.files import (DamagedFile, check_writable_folder, make_folder, read_json,
                              remove_temporaries, write_json)
from diffnet_tf.folder_lock import FolderLock, RunFolderBusy  # runs.RunFolderBusy: public
from diffnet_tf.pairs import run_pairs
from diffnet_tf.spec import RunSpec

PREVIEW_IMAGES = 4  # validation samples written to TensorBoard every epoch
_log = logging.getLogger(__name__)


class BackendMismatch(RuntimeError):
    """The folder's run was made under another Keras backend."""


class RunFolder:
    """The folder of one run spec under `root`, locked while open (a context manager).

    Args:
        root: the folder holding run folders (e.g. runs/perona_malik).
        spec: a RunSpec.
    """

    def __init__(self, root, spec):
        self.root = Path(root)
        self.spec = spec
        self.path = self.root / spec.folder_name
        self._lock = FolderLock(self.path / ".lock")

    def __enter__(self):
        check_writable_folder(self.root, "output folder")
        make_folder(self.path)
        self._lock.acquire()  # RunFolderBusy naming the holder
        try:
            for folder in (self.path, self.backup_dir):  # a killed writer's partial files
                remove_temporaries(folder)
            self._check_spec()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _check_spec(self):
        path = self.path / "spec.json"
        if not path.exists():
            write_json(path, self.spec.to_dict())
        elif RunSpec.load(path) != self.spec:
            raise ValueError(f"{path} holds another spec than this run's, though the folder "
                             "is named after this one's digest: was it edited by hand? Move "
                             "the folder away and run again.")

    def close(self):
        self._lock.release()

    @property
    def backend(self):
        """The Keras backend the folder's run was made under (backend.json); None for a
        folder made before runs recorded it, which the next process to open it claims."""
        path = self.path / "backend.json"
        return read_json(path)["backend"] if path.exists() else None

    def claim_backend(self):
        """Records this process's backend and versions in backend.json, or raises
        BackendMismatch when the run was made under another: a run is never reused or
        resumed under another backend (their numbers differ)."""
        made, current = self.backend, hardware.backend_record()
        if made is None:
            write_json(self.path / "backend.json", current)
        elif made != current["backend"]:
            raise BackendMismatch(
                f"The run in {self.path} was made under the {made} backend, not this "
                f"process's {current['backend']}: a run is never reused or resumed under "
                f"another backend. Run with KERAS_BACKEND={made}, or with --overwrite "
                "(overwrite=True in runs.execute) to train it again, or another --out_dir.")

    @property
    def backup_dir(self):
        return self.path / "backup"

    @property
    def completed(self):
        """metrics.json and model.keras exist under a spec.json equal to this spec, made
        under this process's Keras backend (or one not recorded: `backend`)."""
        stored = self.path / "spec.json"
        return ((self.path / "metrics.json").exists() and (self.path / "model.keras").exists()
                and stored.exists() and RunSpec.load(stored) == self.spec
                and self.backend in (None, hardware.backend_record()["backend"]))

    @property
    def finished(self):
        """The run is complete and its outputs load (`check_outputs`): a study may reuse it."""
        if not self.completed:
            return False
        try:
            self.check_outputs()
        except DamagedFile:
            return False
        return True

    def check_outputs(self):
        """Raises a DamagedFile, naming the file and what to do, unless a completed run's
        model.keras is a whole archive and its metrics.json parses (no model is built)."""
        try:
            saving.check_archive(self.path / "model.keras")
        except DamagedFile as error:
            raise DamagedFile(f"The finished run in {self.path} is damaged: {error} Run again "
                              "with --overwrite (overwrite=True in runs.execute) to train it "
                              "again, or delete the folder.") from error
        self.metrics()  # its own DamagedFile: deleted, the run is evaluated again

    def metrics(self):
        return read_json(self.path / "metrics.json")

    def load_model(self):
        return saving.load_model(self.path / "model.keras")

    def clear(self):
        """Removes everything but spec.json, .lock and worker.log (to train the run again)."""
        for entry in self.path.iterdir():
            if entry.name in ("spec.json", ".lock", "worker.log"):
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def remove_if_untrained(self):
        """Removes the folder when it holds nothing a rerun would use (no epoch backup, no
        model.keras): a run that failed before its first epoch leaves no folder that looks
        like a run."""
        if not (backup.backups(self.backup_dir) or (self.path / "model.keras").exists()):
            shutil.rmtree(self.path, ignore_errors=True)


@dataclasses.dataclass
class RunResult:
    """What `execute` did.

    Attributes:
        path: the run folder.
        metrics: the contents of metrics.json.
        reused: the run had finished before; nothing was trained or evaluated.
        model: the trained model (None when reused: see `RunFolder.load_model`).
    """

    path: Path
    metrics: dict
    reused: bool
    model: object = None


def finished_runs(root):
    """(path, RunSpec) of every finished run folder directly under `root` (its outputs
    there, and they load: `RunFolder.check_outputs`)."""
    for spec_path in sorted(Path(root).glob("*/spec.json")):
        run_spec = RunSpec.load(spec_path)
        if spec_path.parent.name == run_spec.folder_name and RunFolder(root, run_spec).finished:
            yield spec_path.parent, run_spec


def _logging_callbacks(tensorboard_dir, data, preview):
    """TensorBoard logging of loss, PSNR, learning rate, images and filters; with the
    tensorboard package absent (it is optional without TensorFlow), a logged warning."""
    if importlib.util.find_spec("tensorboard") is None:
        _log.warning("TensorBoard logging is off: the tensorboard package is not installed "
                     "(pip install tensorboard).")
        return []
    from diffnet_tf.summaries import TensorBoardLogger, labelled_log_dir  # need tensorboard

    return [TensorBoardLogger(labelled_log_dir(tensorboard_dir, data), preview=preview)]


def execute(spec, root, data_dir="data", overwrite=False, verbose=1, figures=None,
            strategy=None, download=False, pools=None):
    """Runs `spec` in its folder under `root`: train (or resume), evaluate, write figures.
    A run that fails before its first epoch is backed up removes its folder.

    Args:
        spec: a RunSpec.
        root: the folder holding run folders.
        data_dir: dataset root (STL-10, the pair cache).
        overwrite: train again even if the run has finished (its outputs are deleted).
        verbose: Keras' progress output (0 silent, 1 progress bar, 2 a line per epoch).
        figures: optional figures(spec, model, pairs, figures_dir) writing the run's
            figures.
        strategy: optional `distribution.strategy` (several devices for the run).
        download: let tfds download STL-10.
        pools: optional (train pool, test pool) of pairs (see `pairs.run_pairs`).

    Returns:
        A RunResult.

    Raises:
        RunFolderBusy: another process runs the same spec.
        BackendMismatch: the run was made under another Keras backend.
        training.TrainingDiverged: the loss became NaN or infinite (the backup is kept).
        files.DamagedFile: a finished run's model.keras or metrics.json does not load.
        files.WriteFailed: a file could not be written (a full disk: the backup is kept).
    """
    with RunFolder(root, spec) as folder:
        if overwrite:
            folder.clear()
        folder.claim_backend()
        if folder.completed:
            folder.check_outputs()
            return RunResult(folder.path, folder.metrics(), reused=True)
        try:
            pairs = run_pairs(spec.data, data_dir, verbose, download, pools)
            model, summary = _trained_model(spec, folder, pairs, verbose, strategy)
        except BaseException:
            folder.remove_if_untrained()
            raise
        metrics = _evaluate(model, pairs, summary) | baselines.classical_baseline(spec.data, pairs)
        if figures is not None:
            figures(spec, model, pairs, make_folder(folder.path / "figures"))
        write_json(folder.path / "metrics.json", metrics)
        shutil.rmtree(folder.backup_dir, ignore_errors=True)
        return RunResult(folder.path, metrics, reused=False, model=model)


def _trained_model(spec, folder, pairs, verbose, strategy):
    """The folder's model.keras if training had finished, else a model trained (or resumed)
    and saved. model.keras is written first (with early stopping it holds the best epoch,
    which no backup has), then training.json; a kill between the two leaves the summary to
    be rebuilt from the backup."""
    model_path, record = folder.path / "model.keras", folder.path / "training.json"
    if model_path.exists():
        summary = read_json(record) if record.exists() else _summary_of_backup(spec, folder)
        return saving.load_model(model_path), summary
    preview = tuple(a[:PREVIEW_IMAGES] for a in pairs.validation)
    model, summary, _ = training.fit(  # fit warns of a damaged backup as it starts
        spec, pairs, folder.backup_dir, verbose, strategy=strategy,
        callbacks=_logging_callbacks(folder.path / "tensorboard", spec.data, preview))
    saving.save_model(model, model_path)
    write_json(record, dict(summary, machine=hardware.machine()))
    return model, summary


def _summary_of_backup(spec, folder):
    """What training.json would hold, from the newest epoch backup (its best epoch and the
    devices it trained on are not known: None)."""
    epoch, path = backup.backups(folder.backup_dir)[0]
    seconds = read_json(path.with_name(f"epoch-{epoch:04d}.json"))["train_seconds"]
    summary = {"epochs_trained": epoch, "best_epoch": None, "precision": spec.train.precision,
               "stopped_early": epoch < spec.train.epochs, "epochs_this_session": 0,
               "train_seconds": round(seconds, 1), "final_loss": None, "devices": None,
               "machine": hardware.machine()}
    write_json(folder.path / "training.json", summary)
    return summary


def _evaluate(model, pairs, summary):
    """metrics.json's contents: test and train quality, the inputs' own, the model."""
    evaluated = min(len(pairs.train[0]), len(pairs.test[0]))
    test = training.evaluate(model, *pairs.test)
    train = training.evaluate(model, *(a[:evaluated] for a in pairs.train))
    metrics = {
        "test": test["model"], "test_input": test["input"],
        "train": train["model"], "train_input": train["input"],
        "train_images_evaluated": evaluated, "test_images": len(pairs.test[0]),
        "parameters": int(model.count_params()), **summary,
    }
    if hasattr(model, "diffusion_layers"):
        metrics["dt"] = [float(layer.dt.numpy()) for layer in model.diffusion_layers]
    return metrics
