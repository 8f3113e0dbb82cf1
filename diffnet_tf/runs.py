"""Run folders: one spec each, one process at a time, nothing finished ever lost.

    <root>/<spec.folder_name>/        e.g. runs/perona_malik/diffnet_pm_inverse_..._n1000-3f2a9c01be
        spec.json       the RunSpec, written first; the folder's name holds its digest
        .lock           flock'ed by the process running the folder; names that process
        backup/         the last two epochs' state while training (training.EpochBackup)
        model.keras     the trained model; written when training is over
        training.json   how training went
        figures/        the run's figures
        tensorboard/    train/ and validation/ event files
        metrics.json    test and train quality; written last: the run is finished

Every file is written atomically (temporary file, then rename), in the order above, and the
backup is removed only after metrics.json exists, so a kill at any instant loses at most
the epoch in flight: the same spec again resumes from the backup, or, once model.keras
exists, just evaluates it; a finished run is reported, not retrained (docs/DESIGN.md).
"""

import dataclasses
import fcntl
import importlib.util
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from diffnet_tf import saving, training
from diffnet_tf.files import check_writable_folder, read_json, remove_temporaries, write_json
from diffnet_tf.pairs import run_pairs
from diffnet_tf.spec import RunSpec

PREVIEW_IMAGES = 4  # validation samples written to TensorBoard every epoch
_log = logging.getLogger(__name__)


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


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
        self._lock = None

    def __enter__(self):
        check_writable_folder(self.root, "output folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire()
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

    def _acquire(self):
        """flock on .lock: held until close or the process's death (the kernel releases a
        dead holder's lock, so it never blocks anyone)."""
        descriptor = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 4096).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise RunFolderBusy(
                f"The run folder {self.path} is in use by {holder}. One process at a time "
                "may run a folder: wait for it to finish, or stop it, then start again "
                "(it resumes where the other stopped).") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, (f"process {os.getpid()} on {socket.gethostname()} since "
                              f"{time.strftime('%Y-%m-%d %H:%M:%S')} "
                              f"({' '.join(sys.argv)})").encode())
        self._lock = descriptor

    def _check_spec(self):
        path = self.path / "spec.json"
        if not path.exists():
            write_json(path, self.spec.to_dict())
        elif RunSpec.load(path) != self.spec:
            raise ValueError(f"{path} holds another spec than this run's, though the folder "
                             "is named after this one's digest: was it edited by hand? Move "
                             "the folder away and run again.")

    def close(self):
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    @property
    def backup_dir(self):
        return self.path / "backup"

    @property
    def finished(self):
        """metrics.json and model.keras exist under a spec.json equal to this spec: the run is
        complete, and a study may reuse it."""
        stored = self.path / "spec.json"
        return ((self.path / "metrics.json").exists() and (self.path / "model.keras").exists()
                and stored.exists() and RunSpec.load(stored) == self.spec)

    def metrics(self):
        return read_json(self.path / "metrics.json")

    def load_model(self):
        return saving.load_model(self.path / "model.keras")

    def clear(self):
        """Removes everything but spec.json and .lock (to train the run again)."""
        for entry in self.path.iterdir():
            if entry.name in ("spec.json", ".lock"):
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


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
    """(path, RunSpec) of every finished run folder directly under `root`."""
    for spec_path in sorted(Path(root).glob("*/spec.json")):
        folder = spec_path.parent
        if (folder / "metrics.json").exists() and (folder / "model.keras").exists():
            yield folder, RunSpec.load(spec_path)


def machine():
    """Where a run trains: processor, cores, accelerators, Keras backend and versions."""
    import platform

    import keras

    processor = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            processor = next((line.split(":", 1)[1].strip() for line in cpuinfo
                              if line.startswith("model name")), processor)
    except OSError:
        pass
    backend = keras.backend.backend()
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    for package in ("numpy", "tensorflow", "jax", "torch", "diffnet_tf"):
        if package in sys.modules:
            versions[package] = sys.modules[package].__version__
    return {"processor": processor, "cpu_count": os.cpu_count(),
            "accelerators": _accelerators(backend), "backend": backend, "versions": versions}


def _accelerators(backend):
    """The accelerators the backend sees, each as its id and model ('cuda:0 NVIDIA H200'),
    empty on a CPU-only machine."""
    if backend == "jax":
        import jax

        return [f"{d} {d.device_kind}" for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [f"cuda:{i} {torch.cuda.get_device_name(i)}"
                for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    found = [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
    return [f"{d.name} {tf.config.experimental.get_device_details(d).get('device_name', '')}"
            .strip() for d in found]


def _logging_callbacks(log_dir, preview):
    """TensorBoard logging of loss, PSNR, learning rate, images and filters; with the
    tensorboard package absent (it is optional without TensorFlow), a logged warning."""
    if importlib.util.find_spec("tensorboard") is None:
        _log.warning("TensorBoard logging is off: the tensorboard package is not installed "
                     "(pip install tensorboard).")
        return []
    from diffnet_tf.summaries import TensorBoardLogger  # needs tensorboard

    return [TensorBoardLogger(log_dir, preview=preview)]


def execute(spec, root, data_dir="data", overwrite=False, verbose=1, figures=None,
            strategy=None, download=False, pools=None):
    """Runs `spec` in its folder under `root`: train (or resume), evaluate, write figures.

    Args:
        spec: a RunSpec.
        root: the folder holding run folders.
        data_dir: dataset root (STL-10, the pair cache).
        overwrite: train again even if the run has finished (its outputs are deleted).
        verbose: Keras' progress output (0 silent, 1 progress bar, 2 a line per epoch).
        figures: optional figures(spec, model, pairs, figures_dir) writing the run's
            figures.
        strategy: optional tf.distribute strategy.
        download: let tfds download STL-10.
        pools: optional (train pool, test pool) of pairs (see `pairs.run_pairs`).

    Returns:
        A RunResult.

    Raises:
        RunFolderBusy: another process runs the same spec.
        training.TrainingDiverged: the loss became NaN or infinite (the backup is kept).
    """
    with RunFolder(root, spec) as folder:
        if folder.finished and not overwrite:
            return RunResult(folder.path, folder.metrics(), reused=True)
        if overwrite:
            folder.clear()
        pairs = run_pairs(spec.data, data_dir, verbose, download, pools)
        model, summary = _trained_model(spec, folder, pairs, verbose, strategy)
        metrics = _evaluate(model, pairs, summary)
        if figures is not None:
            (folder.path / "figures").mkdir(exist_ok=True)
            figures(spec, model, pairs, folder.path / "figures")
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
        spec, pairs, folder.backup_dir, verbose,
        callbacks=_logging_callbacks(folder.path / "tensorboard", preview), strategy=strategy)
    saving.save_model(model, model_path)
    write_json(record, dict(summary, machine=machine()))
    return model, summary


def _summary_of_backup(spec, folder):
    """What training.json would hold, from the newest epoch backup (its best epoch is not
    known: None)."""
    epoch, path = training.backups(folder.backup_dir)[0]
    seconds = read_json(path.with_name(f"epoch-{epoch:04d}.json"))["train_seconds"]
    summary = {"epochs_trained": epoch, "best_epoch": None,
               "stopped_early": epoch < spec.train.epochs, "epochs_this_session": 0,
               "train_seconds": round(seconds, 1), "final_loss": None, "machine": machine()}
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
