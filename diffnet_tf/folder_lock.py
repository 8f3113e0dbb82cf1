"""One process per run folder: an flock on its .lock file, which names the holder (process,
host, Slurm job or Ray task, command) for the message another process gets.

flock works across the clients of an NFS mount (Linux emulates it with whole-file byte-range
locks) unless it is mounted with local_lock=flock or all; Lustre needs the `flock` mount
option (its `localflock` locks within one node only). The kernel releases a dead holder's
lock (on NFS once the server recovers the dead client's lease).
"""

import fcntl
import os
import socket
import sys
import time

from diffnet_tf.files import writing


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


def holder_job():
    """The cluster job this process runs as ('Slurm job 1234_5', 'Ray task 16310a...',
    'submitit job 4242'), or None outside one."""
    environ = os.environ
    if "SLURM_ARRAY_JOB_ID" in environ:
        return f"Slurm job {environ['SLURM_ARRAY_JOB_ID']}_{environ.get('SLURM_ARRAY_TASK_ID')}"
    if "SLURM_JOB_ID" in environ:
        return f"Slurm job {environ['SLURM_JOB_ID']}"
    if "SUBMITIT_LOCAL_JOB_ID" in environ:
        return f"submitit job {environ['SUBMITIT_LOCAL_JOB_ID']}"
    ray = sys.modules.get("ray")  # imported only where Ray runs this process
    task = ray.get_runtime_context().get_task_id() if ray and ray.is_initialized() else None
    return f"Ray task {task}" if task else None


def holder():
    """Who holds a folder: 'process 4242 on node7 since 2026-12-07 10:00:00 (Slurm job
    1234_5)', with the command instead of the job outside one (a worker's command line is
    its engine's, which names nothing)."""
    return (f"process {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} ({holder_job() or ' '.join(sys.argv)})")


class FolderLock:
    """An exclusive flock on `path` (the run folder's .lock), held until `release` or the
    process's death; the file names the holder while it holds it.

    Args:
        path: the lock file (made where missing).
    """

    def __init__(self, path):
        self.path = path
        self._descriptor = None

    def acquire(self):
        """Takes the lock at once, or raises RunFolderBusy naming the holder."""
        with writing(self.path):
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            named = os.read(descriptor, 4096).decode(errors="replace").strip()
            os.close(descriptor)
            raise RunFolderBusy(
                f"The run folder {self.path.parent} is in use by {named or 'another process'}. "
                "One process at a time may run a folder: wait for it to finish, or stop it, "
                "then start again (it resumes where the other stopped).") from None
        self._descriptor = descriptor
        try:
            with writing(self.path):
                os.ftruncate(descriptor, 0)
                os.write(descriptor, holder().encode())
        except BaseException:
            self.release()
            raise

    def release(self):
        if self._descriptor is not None:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None
