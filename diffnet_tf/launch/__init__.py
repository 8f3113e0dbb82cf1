"""A study's cells run by an executor: the plan ({key: RunSpec}) apart from its execution.

    from diffnet_tf.launch import launcher, local
    outcomes = launcher.launch(cells, "runs/study", local.LocalExecutor())

Modules: `launcher` (the driver: data made once, the cells run, progress, outcomes),
`worker` (what a process does with one cell), and the executors, each with `remote`,
`cpus_per_cell`, `run(function, jobs)` (yields (key, the function's result or the exception
that ended the job) as each job ends) and `running(pending)` (how many of the pending jobs
run now): `local` (one after another in this process), `ray_tasks` (Ray core tasks),
`slurm_jobs` (submitit job arrays). An engine is imported only when its executor is made.
"""

import importlib


class ExecutorUnavailable(RuntimeError):
    """The chosen executor cannot run the cells: its engine is not installed, the cluster
    has less than one cell needs, no Slurm here."""


def import_engine(module, extra, executor):
    """The engine's module (`ray`, `submitit`), or ExecutorUnavailable naming the extra to
    install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorUnavailable(f"--executor={executor} needs the {module} package, which is not "
                            f"installed: pip install 'diffnet_tf[{extra}]' (or pip install "
                            f"{module}).") from None
