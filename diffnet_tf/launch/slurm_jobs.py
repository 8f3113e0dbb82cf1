"""The Slurm executor: a study's cells as one Slurm job array through submitit (the launcher
of DETR, DeiT, DINO and many research repositories; no daemon), each cell a task with the
partition, time limit, CPUs and GPUs of the flags, at most `parallel` running at once. A
task stopped at its time limit or preempted is requeued (up to `retries` times) and resumes
from its run's epoch backup.

submitit pickles each job and writes its logs into `folder` (the study's <out_dir>/submitit/),
which, with the run folders, the data folder and the Python environment, must be on a
filesystem every node shares. The program waits for the array, so run it where it may stay
(a login node in tmux, or a small job); stopped, it loses nothing: the tasks go on, and the
same command later collects them (a task still running counts as running elsewhere).
"""

import shutil
import time

from diffnet_tf.launch import ExecutorUnavailable, import_engine

POLL_SECONDS = 2.0  # between two looks at the tasks' states


class Requeueable:
    """A cell function that submitit requeues when its task is stopped (time limit,
    preemption): the run resumes from its backup. submitit calls `checkpoint`."""

    def __init__(self, function):
        self.function = function

    def __call__(self, job):
        return self.function(job)

    def checkpoint(self, job):
        import submitit  # in the task, where submitit runs it

        return submitit.helpers.DelayedSubmission(self, job)


class SlurmExecutor:
    """Cells as the tasks of a Slurm job array.

    Args:
        folder: submitit's folder of pickles and logs (shared by every node).
        partition: the Slurm partition; None: the cluster's default.
        time_minutes: each task's time limit.
        parallel: the most tasks running at once; None: submitit's default (256).
        cpus_per_cell, gpus_per_cell: what each task holds (None GPUs: none).
        retries: how often a stopped task is requeued.
        cluster: 'slurm'; 'local' runs the tasks as local processes (submitit's
            LocalExecutor, all at once: for tests).
    """

    name = "slurm"
    remote = True

    def __init__(self, folder, partition=None, time_minutes=240, parallel=None,
                 cpus_per_cell=1, gpus_per_cell=None, retries=3, cluster="slurm"):
        self.submitit = import_engine("submitit", "slurm", self.name)
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ExecutorUnavailable("--executor=slurm needs Slurm, and there is no sbatch "
                                      "command here: run the program on a node of the "
                                      "cluster, or choose --executor=local or ray.")
        self.folder, self.cluster, self.retries = folder, cluster, retries
        self.partition, self.time_minutes, self.parallel = partition, time_minutes, parallel
        self.cpus_per_cell, self.gpus_per_cell = cpus_per_cell, gpus_per_cell
        self._pending = []

    def parameters(self):
        """submitit's AutoExecutor parameters of the flags (sbatch's --time, --partition,
        --cpus-per-task, --gpus-per-node, the array's %parallel)."""
        given = {"slurm_partition": self.partition, "slurm_array_parallelism": self.parallel}
        return {"name": "diffnet_tf", "timeout_min": self.time_minutes,
                "cpus_per_task": self.cpus_per_cell, "gpus_per_node": self.gpus_per_cell or 0,
                **{key: value for key, value in given.items() if value is not None}}

    def run(self, function, jobs):
        """Submits the jobs as one array and yields (job.key, function(job)'s result, or the
        error that ended its task) as each task ends."""
        executor = self.submitit.AutoExecutor(
            folder=self.folder, cluster=self.cluster,
            **{f"{self.cluster}_max_num_timeout": self.retries})
        executor.update_parameters(**self.parameters())
        tasks = executor.map_array(Requeueable(function), jobs)
        self._pending = list(zip(tasks, (job.key for job in jobs)))
        while self._pending:
            ended = [(task, key) for task, key in self._pending if task.done()]
            if not ended:
                time.sleep(POLL_SECONDS)
            for task, key in ended:
                self._pending.remove((task, key))
                try:
                    yield key, task.result()
                except Exception as error:  # the task failed or was stopped for good
                    yield key, error

    def running(self, pending):
        """The pending tasks Slurm runs now (its state RUNNING)."""
        return min(pending, sum(task.state == "RUNNING" for task, _ in self._pending))
