"""The Ray executor: one Ray core task per cell (not Ray Tune: the run folders already are
the trials), holding the cell's CPUs and GPUs; a task whose worker dies (killed, a lost node)
is started again up to `retries` times, and resumes from its run's epoch backup.

It connects to the cluster at `address` (`ray start --head` on a machine, or inside a Slurm
allocation), or without one starts a cluster on this machine over its CPUs and GPUs (and
stops it at the end); a Ray already initialised in this process is used as it is. Ray sets
CUDA_VISIBLE_DEVICES of a task that holds GPUs, and runs each such task in a fresh worker
process, which frees the GPU's memory between cells.
"""

import math
import os
from pathlib import Path

from diffnet_tf.launch import ExecutorUnavailable, import_engine


def worker_environment():
    """The variables every worker gets: the Keras backend and XLA flags of this process,
    and the folder holding diffnet_tf on the Python path (a checkout not installed)."""
    import keras

    checkout = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p)
    return {"KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": path,
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def call(function, job):
    """A Ray task: `function(job)` (Ray's tasks are functions; `function` may be any
    callable)."""
    return function(job)


class RayExecutor:
    """Cells as Ray tasks.

    Args:
        address: the cluster's address ('auto', 'ray://host:10001', 'host:6379'), or None
            to start one here (unless RAY_ADDRESS names one).
        cpus_per_cell: the CPUs a cell's task holds (its threads are capped to them).
        gpus_per_cell: the GPUs it holds; None: 1 where the cluster has GPUs, else 0.
        retries: how often a task whose worker died is started again.
    """

    name = "ray"
    remote = True

    def __init__(self, address=None, cpus_per_cell=1, gpus_per_cell=None, retries=3):
        self.ray = import_engine("ray", "ray", self.name)
        self.address = address
        self.cpus_per_cell, self.gpus_per_cell, self.retries = cpus_per_cell, gpus_per_cell, retries
        self._slots = 1

    def run(self, function, jobs):
        """Yields (job.key, function(job)'s result, or the RayError that ended it) as each
        task ends."""
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, log_to_driver=False,
                     runtime_env={"env_vars": worker_environment()})
        try:
            task = ray.remote(num_cpus=self.cpus_per_cell, num_gpus=self._gpus(),
                              max_retries=self.retries)(call)
            shared = ray.put(function)
            keys = {task.remote(shared, job): job.key for job in jobs}
            pending = list(keys)
            while pending:
                (done,), pending = ray.wait(pending, num_returns=1)
                try:
                    yield keys[done], ray.get(done)
                except ray.exceptions.RayError as error:  # the worker died too often
                    yield keys[done], error
        finally:
            if started_here:
                ray.shutdown()

    def _gpus(self):
        """The GPUs per task; sets how many tasks the cluster runs at once (`running`).

        Raises:
            ExecutorUnavailable: the cluster has fewer CPUs or GPUs than one cell holds.
        """
        resources = self.ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        per_cell = self.gpus_per_cell if self.gpus_per_cell is not None else int(gpus > 0)
        self._slots = int(min(cpus // self.cpus_per_cell,
                              gpus // per_cell if per_cell else math.inf))
        if self._slots < 1:
            raise ExecutorUnavailable(f"Expected --cpus_per_cell <= {cpus:g} and --gpus_per_cell <= "
                             f"{gpus:g} (the Ray cluster's). Received {self.cpus_per_cell} "
                             f"and {per_cell}.")
        return per_cell

    def running(self, pending):
        """The pending tasks the cluster runs now (at most what its resources hold)."""
        return min(pending, self._slots)
