"""What a process does with one cell of a study: `runs.execute` on the cell's spec, and the
outcome the driver counts. A worker (a process of an engine: `CellJob.threads` set) also
caps TensorFlow's and XLA's threads to the cell's CPUs and appends its output (Keras'
lines, the library's log, TensorFlow's messages, a failure's traceback) to the run
folder's worker.log, so nothing of it reaches the driver's terminal.
"""

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from diffnet_tf import runs
from diffnet_tf.files import make_folder

LOG_NAME = "worker.log"
STATUSES = ("trained", "reused", "elsewhere", "failed")


@dataclasses.dataclass(frozen=True)
class CellJob:
    """One cell to run (pickled to a worker).

    Attributes:
        key: the cell's name in its study ('diffnet_n1000').
        spec: its RunSpec.
        root: the folder holding the study's run folders (on a filesystem every worker
            shares).
        data_dir, overwrite, download: as in `runs.execute`.
        verbose: Keras' progress (0, 1, 2): the program's own for a cell run in its
            process, 2 (a line per epoch, into worker.log) in a worker.
        threads: None: the cell runs in the program's process, its output the program's;
            else the CPUs of a worker, which caps its threads to them and writes worker.log.
    """

    key: str
    spec: object
    root: str
    data_dir: str = "data"
    overwrite: bool = False
    download: bool = False
    verbose: int = 2
    threads: int = None


@dataclasses.dataclass(frozen=True)
class CellOutcome:
    """How a cell ended: `status` one of STATUSES ('elsewhere': another process holds its
    folder, so it runs elsewhere), `message` a failure's or the holder's one line, and the
    seconds it took here."""

    status: str
    message: str = ""
    seconds: float = 0.0


def one_line(error):
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def run_cell(job):
    """Runs one cell (a CellJob): trains or resumes its run, or finds it finished.

    Returns:
        A CellOutcome; a busy folder is 'elsewhere', and any error (a diverged training,
        out of memory, a run made under another backend) 'failed' with its one line, so
        the study's other cells go on.
    """
    started = time.monotonic()
    try:
        with _worker_process(job) if job.threads else contextlib.nullcontext():
            status, message = _execute(job)
    except Exception as error:  # the worker's own set-up failed (worker.log not writable)
        status, message = "failed", one_line(error)
    return CellOutcome(status, message, round(time.monotonic() - started, 1))


def _execute(job):
    """(status, message) of `runs.execute` on the cell."""
    try:
        result = runs.execute(job.spec, job.root, job.data_dir, job.overwrite, job.verbose,
                              download=job.download)
        return ("reused" if result.reused else "trained"), ""
    except runs.RunFolderBusy as error:
        return "elsewhere", str(error)
    except Exception as error:  # reported, and the other cells go on
        if job.threads:
            traceback.print_exc()  # into worker.log
        return "failed", one_line(error)


def cap_threads(cpus):
    """Caps this process's compute threads to `cpus`: OpenMP's, TensorFlow's pools (set
    before its first operation; an engine's OMP_NUM_THREADS alone leaves TensorFlow at one
    thread per core) and, for one CPU, XLA:CPU's (read at its first compilation)."""
    os.environ.update(OMP_NUM_THREADS=str(cpus), TF_NUM_INTRAOP_THREADS=str(cpus),
                      TF_NUM_INTEROP_THREADS=str(cpus))
    if cpus == 1 and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_"
                                   "eigen=false intra_op_parallelism_threads=1").strip()
    if "tensorflow" in sys.modules:
        threading = sys.modules["tensorflow"].config.threading
        with contextlib.suppress(RuntimeError):  # a reused worker: capped by its first cell
            threading.set_intra_op_parallelism_threads(cpus)
            threading.set_inter_op_parallelism_threads(cpus)


@contextlib.contextmanager
def _worker_process(job):
    """A worker's cell: threads capped, file descriptors 1 and 2 (and the library's log)
    appended to <run folder>/worker.log, restored afterwards (an engine may reuse the
    process)."""
    cap_threads(job.threads)
    folder = make_folder(Path(job.root) / job.spec.folder_name)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    library = logging.getLogger("diffnet_tf")
    handler, level = logging.StreamHandler(sys.stderr), library.level
    with open(folder / LOG_NAME, "a", encoding="utf-8") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} cell {job.key}: process "
                  f"{os.getpid()} on {socket.gethostname()}, CPUs: {job.threads}\n")
        log.flush()
        for descriptor in (1, 2):
            os.dup2(log.fileno(), descriptor)
        library.addHandler(handler)
        library.setLevel(logging.INFO)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            library.removeHandler(handler)
            library.setLevel(level)
            for descriptor, copy in zip((1, 2), saved):
                os.dup2(copy, descriptor)
                os.close(copy)
