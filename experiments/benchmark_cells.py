"""The benchmark's cells section (experiments.benchmark is its command): what a cell of
experiments.reproduce costs beyond its training steps, measured in a temporary folder
(nothing under runs/ or data/ is read or written).

    launches      the first --cells smoke-scale Perona-Malik cells of reproduce_cells
                  (16x16 images, 2 epochs of 2 steps) run by the launcher twice, one cell at
                  a time: with the local executor, then with the Ray executor on a Ray
                  cluster started here over min(2, CPUs) CPUs, each cell holding them all
                  (so one runs at a time, with as many threads as the local run). A cell's
                  wall time runs from the end of the cell before it (for the first, from the
                  launch's call) to its end.
    ray_start_s   ray.init of that cluster (ray_stop_s: its ray.shutdown): once a program.
    overhead_per_cell_s   (the Ray launch's wall time - the local launch's) / cells, start-up
                  excluded: what running on Ray adds to a cell, on average over these cells.
    fresh_worker_cell_s   the first cell's wall time on Ray - its local one: a cell whose
                  Ray worker process starts for it (Python, the imports, a first
                  compilation). Ray gives every GPU task a fresh worker (max_calls=1), so
                  on GPUs every cell pays this: the paper projection adds it to each cell.
    reused_worker_cell_s  the same difference averaged over the later cells (Ray reuses a
                  CPU task's worker): scheduling, pickling, the worker's log; on a busy
                  machine the cells' own noise can make it negative.
    fixed_cell_s  the median time inside the local cells (worker.CellOutcome.seconds: pairs
                  read, model built and compiled, 4 steps, validation, test evaluation,
                  files written): the cpu projection adds it to each cell.
    cpu_data_s    launcher.prepare_pairs for every cell of --scale=cpu (its pair caches, as
                  reproduce makes them before any cell).
    check         one --scale=cpu cell cut to one epoch (benchmark_projection.check_cell)
                  run for real by the local executor: its time, to set beside the cpu
                  projection's figure for it.
Without Ray the launches run locally only and every Ray figure is RAY_MISSING.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from experiments import reproduce_cells
from experiments.benchmark_projection import RAY_MISSING, check_cell, representatives
from experiments.benchmark_timing import time_cell_steps


class TimedExecutor:
    """An executor as another (`inner`), recording the time each job ends: {key: seconds
    since `started`}."""

    def __init__(self, inner):
        self.inner, self.started, self.ended = inner, time.monotonic(), {}

    def __getattr__(self, name):  # name, remote, cpus_per_cell, running
        return getattr(self.inner, name)

    def run(self, function, jobs):
        for key, result in self.inner.run(function, jobs):
            self.ended[key] = time.monotonic() - self.started
            yield key, result


def timed_launch(cells, root, executor, data_dir):
    """Runs the cells with the launcher (one at a time); returns wall_s, and per cell
    cell_wall_s (from the previous cell's end) and in_cell_s (its CellOutcome.seconds).

    Raises:
        launcher.CellsUnfinished: a cell failed.
    """
    from diffnet_tf.launch import launcher

    timed = TimedExecutor(executor)
    outcomes = launcher.launch(cells, root, timed, data_dir, verbose=0)
    wall = time.monotonic() - timed.started
    launcher.check_finished(outcomes)
    ends = sorted(timed.ended.items(), key=lambda item: item[1])
    previous = [0.0] + [end for _, end in ends[:-1]]
    return {"wall_s": wall, "order": [key for key, _ in ends],
            "cell_wall_s": {key: end - start for (key, end), start in zip(ends, previous)},
            "in_cell_s": {key: outcome.seconds for key, outcome in outcomes.items()}}


def ray_launch(cells, root, data_dir, cpus):
    """timed_launch on a Ray cluster started here over `cpus` CPUs, with ray_start_s and
    ray_stop_s; None without Ray."""
    try:
        import ray
    except ImportError:
        return None
    from diffnet_tf.launch import ray_tasks

    started = time.monotonic()
    ray.init(address="local", num_cpus=cpus, num_gpus=0, include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": ray_tasks.worker_environment()})
    start = time.monotonic() - started
    try:
        result = timed_launch(cells, root, ray_tasks.RayExecutor(cpus_per_cell=cpus), data_dir)
    finally:
        stopping = time.monotonic()
        ray.shutdown()
    return dict(result, ray_start_s=start, ray_stop_s=time.monotonic() - stopping)


def overheads(local, ray):
    """The Ray figures of the docstring from the two launches (the same cells)."""
    if ray is None:
        return {name: RAY_MISSING for name in ("ray_start_s", "ray_stop_s",
                "overhead_per_cell_s", "fresh_worker_cell_s", "reused_worker_cell_s")}
    extra = {key: ray["cell_wall_s"][key] - local["cell_wall_s"][key] for key in ray["order"]}
    later = [extra[key] for key in ray["order"][1:]]
    return {"ray_start_s": ray["ray_start_s"], "ray_stop_s": ray["ray_stop_s"],
            "overhead_per_cell_s": (ray["wall_s"] - local["wall_s"]) / len(extra),
            "fresh_worker_cell_s": extra[ray["order"][0]],
            "reused_worker_cell_s": statistics.mean(later) if later else None}


def measure_cells(settings, cpus=None):
    """The figures of the docstring, and the per-step seconds of every cost class of
    --scale=cpu on this machine (`time_cell_steps`).

    Args:
        settings: the benchmark's Settings (cells: how many smoke cells to launch).
        cpus: the Ray cluster's CPUs (default min(2, CPUs)).

    Returns:
        dict (JSON-ready): cells, cpus, local, ray (None without Ray), the overheads,
        fixed_cell_s, smoke_data_s, cpu_step_seconds, cpu_data_s and check {cell, seconds}.
    """
    from diffnet_tf.launch import launcher, local

    cpus = cpus or min(2, os.cpu_count())
    smoke = reproduce_cells.unique_cells(reproduce_cells.plan("smoke", ("perona_malik",)))
    cells = dict(list(smoke.items())[: settings.cells])
    cpu_cells = reproduce_cells.unique_cells(reproduce_cells.plan("cpu"))
    with tempfile.TemporaryDirectory(prefix="diffnet_benchmark_cells_") as folder:
        folder = Path(folder)
        smoke_data = _timed(launcher.prepare_pairs, [c.data for c in cells.values()],
                            folder / "data", verbose=0)
        print(f"Launching {len(cells)} smoke cells locally, then on Ray ({cpus} CPUs)")
        local_run = timed_launch(cells, folder / "local", local.LocalExecutor(), folder / "data")
        ray_run = ray_launch(cells, folder / "ray", folder / "data", cpus)
        print("Timing the training steps of --scale=cpu's model classes")
        steps = time_cell_steps(representatives(cpu_cells), settings)
        print("Making --scale=cpu's pairs and running one of its cells")
        cpu_data = _timed(launcher.prepare_pairs, [c.data for c in cpu_cells.values()],
                          folder / "cpu_data", verbose=0)
        key, spec = check_cell()
        check = timed_launch({key: spec}, folder / "cpu", local.LocalExecutor(),
                             folder / "cpu_data")
    return {"cells": list(cells), "cpus": cpus, "local": local_run, "ray": ray_run,
            **overheads(local_run, ray_run),
            "fixed_cell_s": statistics.median(local_run["in_cell_s"].values()),
            "smoke_data_s": smoke_data, "cpu_step_seconds": steps, "cpu_data_s": cpu_data,
            "check": {"cell": key, "seconds": check["wall_s"]}}


def _timed(function, *args, **kwargs):
    """Seconds of one call."""
    started = time.monotonic()
    function(*args, **kwargs)
    return time.monotonic() - started
