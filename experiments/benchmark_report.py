"""The benchmark's record: the machine and device, the issue's target checks, the
contention note, the projected hours of the paper's protocol, the tables and the JSON's
file name.
"""

import math
import os
import platform
from pathlib import Path

from diffnet_tf import hardware, protocols
from experiments.benchmark_references import have_scipy
from experiments.benchmark_timing import precision_of

LABELS = {
    "diffnet": "DiffNet-5 (neumann)",
    "diffnet_zero": "DiffNet-5 (zero)",
    "original": "original formulation (zero)",
    "floor": "compute floor (5 estimators, no update)",
    "unet": "U-Net",
    "diffnet_fast": "DiffNet-5 (neumann)",
    "unet_fast": "U-Net",
}
PAPER_STEPS = math.ceil(protocols.TRAIN_IMAGES / protocols.BATCH_SIZE) * protocols.PM_EPOCHS
METHODS = {
    "timing": "median of the timed repetitions after untimed warm-up rounds; models take "
              "turns within each round; train: model.train_on_batch (Adam, MSE), inference: "
              "model.predict_on_batch; CPU time = this process's (time.process_time); "
              "other_programs_cores = (machine busy time from /proc/stat - ours) / wall",
    "compute_floor": "the five 4-layer FilterEstimators in sequence, each fed the first "
                     "filter map (channel 0) of the one before; no stencil update, no dt; "
                     "final ReLU",
    "original_formulation": "the released TF1 code's update: zero row/column concatenated "
                            "to a cropped copy for each shift, each filter channel sliced "
                            "and reshaped to (B, H, W, 1) separately; same estimators",
    "pair_generation": "library: diffnet_tf.pairs.pairs_from_images('pm_inverse', 4 "
                       "steps, dt 0.1, lambda 0.2, boundary 'neumann'); reference: "
                       "sparse_perona_malik per image (SciPy operator rebuilt every step, "
                       "float64, the released script's zero exterior)",
    "paper_protocol_hours": f"{PAPER_STEPS:,} training steps (Sect. 5.2: 90,000 images x 18 "
                            "epochs, batch 16) x the median training step",
    "precision": "every call of a model inside precision.matrix_precision of its row's "
                 "precision: 'float32' (true float32, the protocols' default) or 'fast' (the "
                 "device's default: TF32 on NVIDIA GPUs since Ampere; on a CPU the same "
                 "computation as float32, so the rows differ by timing noise alone)",
    "cells": "benchmark_cells' docstring: smoke cells launched locally and on a local Ray "
             "cluster one at a time; overhead_per_cell_s = (Ray launch wall - local launch "
             "wall) / cells, ray.init timed apart; fresh_worker_cell_s = the first cell's "
             "wall on Ray - locally",
    "projection": "benchmark_projection's docstring: a cell = its most training steps x "
                  "its class's seconds per step + a per-cell cost; cells longest first onto "
                  "the least-loaded device; the sources are in projection.sources",
    "peak_training_memory": "peak RSS (VmHWM; ru_maxrss without /proc) of a fresh process "
                            "over its first training steps minus its peak after the "
                            "imports and the data; MiB",
}
BUSY_CORES = 0.25  # other programs using more cores than this on average: a busy machine
TARGETS = dict(floor_ratio=1.10, original_ratio=1.0, unet_ratio=4.0, pm_rate=5000.0,
               sparse_ratio=50.0)


def machine_info():
    """Platform, CPUs, accelerators, backend and versions (hardware.machine), for the JSON."""
    found = hardware.machine()
    versions = found.pop("versions")
    if have_scipy():
        import scipy

        versions["scipy"] = scipy.__version__
    return {"machine": dict(found, platform=platform.platform(),
                            load_average_at_start=os.getloadavg()),
            "backend": found.pop("backend"), "device": device_name(found), "versions": versions}


def device_name(machine):
    """What the figures were timed on: the accelerators the backend sees, else the CPU."""
    if machine["accelerators"]:
        return ", ".join(machine["accelerators"])
    return f"{machine['processor']} ({machine['cpu_count']} CPUs, no GPU)"


def _check(measured, comparison, limit, cpu_ratio=None):
    ok = measured <= limit if comparison == "<=" else measured >= limit
    check = {"measured": measured, "target": f"{comparison} {limit:g}", "pass": bool(ok)}
    if cpu_ratio is not None:
        check["cpu_time_ratio"] = cpu_ratio
    return check


def target_checks(models, pairs):
    """The issue's targets, each with its measured ratio (or rate) and pass/fail.

    Ratios are of median training-step wall times from the same run: DiffNet / floor,
    original / DiffNet (zero), U-Net / DiffNet (= DiffNet's throughput / U-Net's); each
    also as the ratio of median CPU times, which other programs on the machine barely move.
    """
    def ratio(numerator, denominator, key="median_s"):
        return models[numerator]["train"][key] / models[denominator]["train"][key]

    checks = {}
    for name, (numerator, denominator, comparison, limit) in {
        "1_diffnet_step_over_floor": ("diffnet", "floor", "<=", "floor_ratio"),
        "2_original_step_over_diffnet_zero": ("original", "diffnet_zero", ">=", "original_ratio"),
        "3_diffnet_over_unet_train_throughput": ("unet", "diffnet", ">=", "unet_ratio"),
    }.items():
        checks[name] = _check(ratio(numerator, denominator), comparison, TARGETS[limit],
                              ratio(numerator, denominator, "cpu_median_s"))
    if pairs is not None:
        library, reference = pairs["library"], pairs["sparse_reference"]
        checks["4a_pm_pairs_images_per_s"] = _check(
            library["images_per_s"], ">=", TARGETS["pm_rate"])
        if reference:
            checks["4b_pm_pairs_over_sparse_reference"] = _check(
                library["images_per_s"] / reference["images_per_s"], ">=",
                TARGETS["sparse_ratio"],
                (reference["cpu_median_s"] / reference["images"])
                / (library["cpu_median_s"] / library["images"]))
    return checks


def contention_note(models, pairs, others=None):
    """A warning when other programs took CPU during the timing.

    Args:
        models, pairs: the timings (see `time_models`, `time_pair_generation`).
        others: dict phase -> cores other programs used on average (None: unknown).
    """
    figures = {f"{name} {measure}": summary for name, by_measure in models.items()
               for measure, summary in by_measure.items()}
    if pairs is not None:
        figures["pair generation"] = pairs["library"]
    reasons = [f"other programs used {cores:.2f} cores during the {phase}"
               for phase, cores in (others or {}).items()
               if cores is not None and cores > BUSY_CORES]
    reasons += [f"{label}: {s['contended']}/{len(s['repeats_s'])} repetitions lost a core"
                for label, s in figures.items() if s["contended"] > 0.25 * len(s["repeats_s"])]
    if not reasons:
        return None
    return ("the machine was busy (" + "; ".join(reasons) + "): wall-time figures are "
            "inflated and their ratios noisy, the CPU-time ratios are not; re-run on a quiet "
            "machine for clean figures")


def paper_protocol_hours(models, batch_size):
    """Projected hours of the paper's Perona-Malik protocol (Sect. 5.2: 90,000 images x 18
    epochs of batch 16 = 101,250 steps) at each model's median training step; None unless
    the steps were timed at the paper's batch size."""
    if batch_size != protocols.BATCH_SIZE:
        return None
    return {name: PAPER_STEPS * figures["train"]["median_s"] / 3600
            for name, figures in models.items()}


def format_table(models, params, memory, pairs, hours=None, backend=None, device=None):
    """The results as markdown tables, headed by the backend and device when given."""
    floor = models["floor"]["train"]["median_s"]
    hours = hours or {}
    lines = [f"Backend {backend} on {device}", ""] if backend else []
    lines += [
        "| model | parameters | train step ms (median, min-max) | train img/s | "
        "inference img/s | step / floor | peak train MiB | paper protocol h | precision |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, figures in models.items():
        train, infer = figures["train"], figures["inference"]
        mib = f"{memory[name]['growth_mib']:.0f}" if name in memory else "-"
        lines.append(
            f"| {LABELS[name]} | {params[name]:,} | {1e3 * train['median_s']:.0f} "
            f"({1e3 * train['min_s']:.0f}-{1e3 * train['max_s']:.0f}) | "
            f"{train['images_per_s']:.1f} | {infer['images_per_s']:.1f} | "
            f"{train['median_s'] / floor:.3f} | {mib} | "
            f"{f'{hours[name]:.2f}' if name in hours else '-'} | {precision_of(name)} |")
    if pairs is not None:
        lines += ["", "| Perona-Malik pairs (4 steps) | images/s |", "|---|---:|",
                  f"| library, batched (pairs.pairs_from_images) | "
                  f"{pairs['library']['images_per_s']:,.0f} |"]
        sparse_ref = pairs.get("sparse_reference")
        lines.append("| per-image sparse reference (SciPy, as AnisoDiff2d) | "
                     + (f"{sparse_ref['images_per_s']:,.1f} |" if sparse_ref else
                        f"skipped: {pairs['note']} |"))
    return "\n".join(lines)


def _seconds(value):
    """A measured figure in seconds, or the reason it was not measured."""
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_cells(measured, projected):
    """The cells section (`benchmark_cells`) and the projections (`benchmark_projection`)
    as markdown tables, with the projections' sources."""
    local = measured["local"]
    lines = [
        f"| launcher: {len(measured['cells'])} smoke cells, one at a time, "
        f"{measured['cpus']} CPUs | s |", "|---|---:|",
        f"| local launch, wall (inside the cells) | {local['wall_s']:.1f} "
        f"({sum(local['in_cell_s'].values()):.1f}) |",
        f"| Ray start-up: ray.init / ray.shutdown | {_seconds(measured['ray_start_s'])} / "
        f"{_seconds(measured['ray_stop_s'])} |",
        "| Ray overhead per cell: (Ray launch - local launch) / cells | "
        f"{_seconds(measured['overhead_per_cell_s'])} |",
        f"| a cell in a fresh Ray worker (the first; every GPU cell) | "
        f"{_seconds(measured['fresh_worker_cell_s'])} |",
        f"| a cell in a reused Ray worker (the later ones) | "
        f"{_seconds(measured['reused_worker_cell_s'])} |",
        f"| fixed work of a cell (median inside the local cells) | "
        f"{measured['fixed_cell_s']:.1f} |",
        f"| --scale=cpu pairs made (launcher.prepare_pairs) | {measured['cpu_data_s']:.1f} |",
        f"| --scale=cpu cell {projected['cpu_check']['cell']}: measured / projected | "
        f"{projected['cpu_check']['measured_s']:.1f} / "
        f"{projected['cpu_check']['projected_s']:.1f} |",
        "", "| reproduce, projected | cells | steps | 1 device h | 8 h | 64 h | sum of cells h "
        "| longest cell h |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = (("--scale=paper on GPUs, float32 (the protocols')", "paper", "hours"),
            ("the same in the launcher's order (not longest first)", "paper",
             "launcher_order_hours"),
            ("--scale=paper on GPUs, fast precision (as measured)", "paper_fast", "hours"),
            ("--scale=cpu on this machine, one cell after another", "cpu", "hours"))
    for label, name, which in rows:
        p = projected[name]
        hours = [f"{p[which][n]:.2f}" if n in p[which] else "-" for n in (1, 8, 64)]
        lines.append(f"| {label} | {p['cells']} | {p['steps']:,} | {' | '.join(hours)} | "
                     f"{p['sum_h']:.2f} | {p['longest_h']:.2f} ({p['longest_cell']}) |")
    lines += ["", "Seconds per training step used:"]
    lines += [f"- {name} [{label}]: {1e3 * seconds:.2f} ms" for name in ("paper", "cpu")
              for label, seconds in projected[name]["step_seconds"].items()]
    lines += ["", "Sources of the projections:"]
    for name, source in projected["sources"].items():
        items = source.items() if isinstance(source, dict) else [(None, source)]
        lines += [f"- {name}{f' [{label}]' if label else ''}: {text}" for label, text in items]
    return "\n".join(lines)


def format_checks(checks):
    lines = []
    for key, check in checks.items():
        verdict = "PASS" if check["pass"] else "FAIL"
        cpu = (f"; CPU-time ratio {check['cpu_time_ratio']:,.3f}"
               if "cpu_time_ratio" in check else "")
        lines.append(f"{verdict}  {key}: {check['measured']:,.3f} (target {check['target']}{cpu})")
    return "\n".join(lines)


def output_path(out_dir, now):
    """out_dir/<YYYY-MM-DD>.json, or with the time of day if that file exists."""
    path = Path(out_dir) / f"{now:%Y-%m-%d}.json"
    return path if not path.exists() else path.with_name(f"{now:%Y-%m-%d_%H%M%S}.json")
