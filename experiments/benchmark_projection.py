"""The benchmark's projection (experiments.benchmark is its command): the wall time of
`python -m experiments.reproduce` from per-cell costs, on 1, 8 and 64 GPUs for
--scale=paper and on this machine for --scale=cpu.

A cell's cost = its training steps (`cell_steps`: the most it can take; Fig. 10's cells
stop early with their patience, so theirs is an upper bound) x the seconds per step of its
class (`cost_class`: architecture, image shape, batch, precision) + a cost per cell (the
launcher's overhead, or the fixed work of a cell). The cells are then scheduled longest
first, each onto the least-loaded device (LPT: within 4/3 of the best schedule); the
launcher's own order (the plan's: a free device takes the next cell) is given beside it.
What runs before any cell (pair preparation, Ray's start-up) adds once. The sum of the
cells is the time on one device; the longest cell is the floor for any number.

    paper  per-step seconds from GPU_MEASUREMENTS.md (GPU_STEPS below, the only place they
           are written), x FLOAT32_FACTOR for the protocols' true-float32 cells; per cell:
           the launcher's overhead measured on Ray (benchmark_cells), a fresh worker's.
    cpu    per-step seconds this benchmark measures on this machine (benchmark_timing.
           time_cell_steps); per cell: the fixed work of a cell measured here; cells one
           after another (the local executor), after the measured pair preparation.
"""

import dataclasses
import heapq
import math

from diffnet_tf import pair_cache, pairs
from experiments import reproduce_cells

DEVICES = (1, 8, 64)
CHECK_CELL, CHECK_EPOCHS = "perona_malik/diffnet_noise0", 1  # the cpu projection's check


@dataclasses.dataclass(frozen=True)
class Sourced:
    """A figure and where it comes from (file, section, run)."""

    value: float
    source: str


MEASURED_ON = ("GPU_MEASUREMENTS.md (shared notes of 2026-11-26: one NVIDIA H200, JAX "
               "backend, diffnet_tf at commit 4285598, Keras model.fit, JAX's default "
               "matrix precision)")
# Seconds per training step of each model class (`model_class`) on that GPU: a whole
# model.fit's time / its steps, so compilation and the per-epoch evaluation are included.
GPU_STEPS = {
    "DiffNet-5/4x32 96x96x1 batch 16": Sourced(
        457 / 101_250, "table 'Perona-Malik inversion', run 'noise-free, 90,000 x 18 "
        "epochs': DiffNet 457 s for 101,250 steps"),
    "U-Net 5x64 96x96x1 batch 16": Sourced(
        323 / 33_750, "table 'Perona-Malik inversion', run 'noise-free, 30,000 x 18 "
        "epochs': U-Net 323 s for 33,750 steps"),
    "DiffNet-3/4x32 64x64x1 batch 16": Sourced(
        155 / 64_000, "table 'Disc deconvolution', run '4e-4 -> 1e-6 (the paper's)': "
        "1,000 epochs of 1,024 images, 155 s for 64,000 steps"),
}
FLOAT32_FACTOR = Sourced(
    7.42 / 4.43, "section 'Speed', line 'Matrix precision': DiffNet-5 at batch 16, "
    "'highest' (true float32) 7.42 ms against JAX's default 4.43 ms per step; measured "
    "for DiffNet-5 only, applied to every class")
GPU_PAIRS_PER_S = {problem: Sourced(11_500, "section 'Speed': Perona-Malik pair "
                                    "generation on the GPU, 11,500 images/s with the "
                                    "host transfers") for problem in ("pm_inverse", "pm_forward")}


RAY_MISSING = "not measured: ray not installed"  # each Ray figure of the cells section


class MissingStepTime(LookupError):
    """A cell's model class has no per-step figure: it would cost nothing, silently."""


def model_class(spec):
    """What sets a training step's cost: 'DiffNet-5/4x32 96x96x1 batch 16' (layers/estimator
    depth x width) or 'U-Net 5x64 ...' (levels x first filters), image shape and batch."""
    m, d = spec.model, spec.data
    name = (f"DiffNet-{m.num_layers}/{m.estimator_depth}x{m.width}" if m.kind == "diffnet"
            else f"U-Net {m.unet_levels}x{m.unet_filters}")
    return f"{name} {d.image_size}x{d.image_size}x{d.channels} batch {spec.train.batch_size}"


def cost_class(spec):
    """`model_class` and the training's matrix precision: 'DiffNet-5/4x32 ... , float32'."""
    return f"{model_class(spec)}, {spec.train.precision}"


def cell_steps(spec):
    """The most optimizer steps of a cell: ceil(train images x epoch repeats / batch) per
    epoch (as training.fit) x its epochs."""
    images = spec.data.train_size * spec.train.epoch_repeats
    return math.ceil(images / spec.train.batch_size) * spec.train.epochs


def representatives(cells):
    """{cost class: the first cell of it} of {key: RunSpec}: one model to time per class."""
    found = {}
    for cell in cells.values():
        found.setdefault(cost_class(cell), cell)
    return found


def gpu_step_seconds(cells):
    """{cost class: seconds per step on the GPU} of the cells' classes: GPU_STEPS's figure,
    x FLOAT32_FACTOR where the class trains in true float32.

    Raises:
        MissingStepTime: naming each model class of the cells without a GPU_STEPS figure.
    """
    missing = sorted({model_class(c) for c in cells.values()} - set(GPU_STEPS))
    if missing:
        raise MissingStepTime(f"Expected a GPU per-step figure for every model class of the "
                              f"cells (GPU_STEPS has {', '.join(GPU_STEPS)}). Received none "
                              f"for {'; '.join(missing)}.")
    return {label: GPU_STEPS[model_class(cell)].value
            * (FLOAT32_FACTOR.value if cell.train.precision == "float32" else 1.0)
            for label, cell in representatives(cells).items()}


def cell_costs(cells, step_seconds, per_cell_s=0.0):
    """{key: seconds} of {key: RunSpec}: cell_steps x step_seconds[cost_class] + per_cell_s.

    Raises:
        MissingStepTime: a cell's class has no entry in step_seconds (named, with the cell).
    """
    costs = {}
    for key, cell in cells.items():
        if cost_class(cell) not in step_seconds:
            raise MissingStepTime(f"Expected a per-step time for {cost_class(cell)} (cell "
                                  f"{key}). Received times for {', '.join(step_seconds)}.")
        costs[key] = cell_steps(cell) * step_seconds[cost_class(cell)] + per_cell_s
    return costs


def makespan(costs, devices, longest_first=True):
    """The time the cells take on `devices` devices, each cell, in turn, onto the device
    that frees first: longest first (LPT), or in the order of `costs` (the launcher's)."""
    order = sorted(costs.values(), reverse=True) if longest_first else list(costs.values())
    loads = [0.0] * devices
    for cost in order:
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads)


def pair_preparation_s(cells, pairs_per_s):
    """(seconds, unpriced) of making every pair cache the cells read, once and as long as
    the longest need (as launcher.prepare_pairs): {problem: Sourced images/s}; unpriced:
    the problems without a rate and their pairs, left out of the seconds."""
    longest = {}
    for cell in cells.values():
        for split, n in pairs.pool_sizes(cell.data).items():
            path = pair_cache.cache_path("data", cell.data, split)
            longest[path] = max(longest.get(path, (0, None))[0], n), cell.data.problem
    seconds, unpriced = 0.0, {}
    for n, problem in longest.values():
        if problem in pairs_per_s:
            seconds += n / pairs_per_s[problem].value
        else:
            unpriced[problem] = unpriced.get(problem, 0) + n
    return seconds, unpriced


def project(cells, step_seconds, per_cell_s=0.0, before_s=0.0, devices=DEVICES):
    """The projection of {key: RunSpec}: hours on each number of devices (LPT and the
    launcher's order), with `before_s` (what precedes every cell) added once.

    Returns:
        dict (JSON-ready): cells, steps, per_cell_s, before_s, step_seconds, sum_h,
        longest_h, longest_cell, hours {devices: h}, launcher_order_hours {devices: h}.
    """
    costs = cell_costs(cells, step_seconds, per_cell_s)
    longest = max(costs, key=costs.get)
    return {"cells": len(cells), "steps": sum(map(cell_steps, cells.values())),
            "per_cell_s": per_cell_s, "before_s": before_s, "step_seconds": step_seconds,
            "sum_h": sum(costs.values()) / 3600, "longest_h": costs[longest] / 3600,
            "longest_cell": longest,
            "hours": {n: (before_s + makespan(costs, n)) / 3600 for n in devices},
            "launcher_order_hours": {n: (before_s + makespan(costs, n, False)) / 3600
                                     for n in devices}}


def check_cell():
    """(key, RunSpec): CHECK_CELL of --scale=cpu cut to CHECK_EPOCHS epochs, which the
    cells section runs for real to set beside the cpu projection's figure for it."""
    cell = reproduce_cells.unique_cells(reproduce_cells.plan("cpu"))[CHECK_CELL]
    return f"{CHECK_CELL}, {CHECK_EPOCHS} epoch(s)", cell.replace(train={"epochs": CHECK_EPOCHS})


def projections(measured):
    """The projections of --scale=paper (GPUs) and --scale=cpu (this machine) from the cells
    section's figures (`benchmark_cells.measure_cells`), and their sources.

    Returns:
        dict (JSON-ready): paper (the protocols' float32), paper_fast (every cell in the
        device's fast precision, as the GPU figures were measured), cpu, cpu_check
        {cell, measured_s, projected_s} and sources {figure: where it comes from}.
    """
    paper = reproduce_cells.unique_cells(reproduce_cells.plan("paper"))
    fast = {key: cell.replace(train={"precision": "fast"}) for key, cell in paper.items()}
    ray = isinstance(measured["fresh_worker_cell_s"], float)
    per_cell = measured["fresh_worker_cell_s"] if ray else 0.0
    before, unpriced = pair_preparation_s(paper, GPU_PAIRS_PER_S)
    before += measured["ray_start_s"] if ray else 0.0
    cpu = reproduce_cells.unique_cells(reproduce_cells.plan("cpu"))
    check, check_spec = check_cell()
    result = {
        "paper": project(paper, gpu_step_seconds(paper), per_cell, before),
        "paper_fast": project(fast, gpu_step_seconds(fast), per_cell, before),
        "cpu": project(cpu, measured["cpu_step_seconds"], measured["fixed_cell_s"],
                       measured["cpu_data_s"], devices=(1,)),
        "cpu_check": {"cell": check, "measured_s": measured["check"]["seconds"],
                      "projected_s": cell_costs({check: check_spec},
                                                measured["cpu_step_seconds"],
                                                measured["fixed_cell_s"])[check]}}
    return dict(result, sources=sources(paper, ray, unpriced))


def sources(paper, ray, unpriced):
    """{figure: its source} of the projections (`paper`: the paper's cells)."""
    steps = {label: f"GPU_MEASUREMENTS.md, {GPU_STEPS[model_class(cell)].source}"
             for label, cell in representatives(paper).items()}
    left_out = "; ".join(f"{problem}: {n:,} pairs" for problem, n in unpriced.items())
    return {
        "paper_measurements": MEASURED_ON,
        "paper_step_seconds": steps,
        "paper_float32_factor": f"{FLOAT32_FACTOR.value:.3f}: GPU_MEASUREMENTS.md, "
                                f"{FLOAT32_FACTOR.source}",
        "paper_before": "pair caches made once before any cell at "
                        f"{GPU_PAIRS_PER_S['pm_inverse'].value:,.0f} images/s "
                        f"(GPU_MEASUREMENTS.md, {GPU_PAIRS_PER_S['pm_inverse'].source})"
                        + (f"; not priced: {left_out}" if left_out else "")
                        + "; STL-10's download not included"
                        + ("; + Ray's start-up measured here" if ray else ""),
        "paper_per_cell": ("fresh_worker_cell_s: measured here, on this machine's CPUs "
                           "(a GPU task gets a fresh Ray worker)" if ray else
                           f"none, {RAY_MISSING}"),
        "paper_steps": "cell_steps: all epochs; Fig. 10's cells (generalisation/*) stop "
                       "early with their patience, so theirs are maxima",
        "cpu_step_seconds": "measured by this benchmark on this machine: the median "
                            "model.train_on_batch of each class (benchmark_timing."
                            "time_cell_steps)",
        "cpu_per_cell": "fixed_cell_s: the median time inside the local smoke cells, "
                        "measured here",
        "cpu_before": "cpu_data_s: launcher.prepare_pairs of every --scale=cpu cell, "
                      "measured here",
    }
