"""The benchmark's machinery (experiments.benchmark is its command): timing of training
steps and inference, Perona-Malik pair generation against a sparse reference, peak
training memory, the target checks, the table and the JSON record.
"""

import dataclasses
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

from diffnet_tf import datasets, physics, protocols, runs, spec
from diffnet_tf.models import DiffNet, UNet
from experiments import cli
from experiments.benchmark_references import (ComputeFloor, OriginalDiffNet, have_scipy,
                                              sparse_perona_malik)

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAMES = ("diffnet", "diffnet_zero", "original", "floor", "unet")
LABELS = {
    "diffnet": "DiffNet-5 (neumann)",
    "diffnet_zero": "DiffNet-5 (zero)",
    "original": "original formulation (zero)",
    "floor": "compute floor (5 estimators, no update)",
    "unet": "U-Net",
}
MEMORY_MODELS = ("diffnet", "unet")
QUICK = dict(repeats=3, warmup=1, pm_images=1000, sparse_images=2)
FULL = dict(repeats=15, warmup=2, pm_images=3000, sparse_images=8)
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
    "pair_generation": "library: diffnet_tf.datasets.pairs_from_images('pm_inverse', 4 "
                       "steps, dt 0.1, lambda 0.2, boundary 'neumann'); reference: "
                       "sparse_perona_malik per image (SciPy operator rebuilt every step, "
                       "float64, the released script's zero exterior)",
    "paper_protocol_hours": f"{PAPER_STEPS:,} training steps (Sect. 5.2: 90,000 images x 18 "
                            "epochs, batch 16) x the median training step",
    "peak_training_memory": "peak RSS (VmHWM; ru_maxrss without /proc) of a fresh process "
                            "over its first training steps minus its peak after the "
                            "imports and the data; MiB",
}
CONTENDED = 0.75  # a repetition with cores_used under this x the figure's best was disturbed
BUSY_CORES = 0.25  # other programs using more cores than this on average: a busy machine
TARGETS = dict(floor_ratio=1.10, original_ratio=1.0, unet_ratio=4.0, pm_rate=5000.0,
               sparse_ratio=50.0)


@dataclasses.dataclass
class Settings:
    """What a benchmark run measures; see the flags of the same names."""

    repeats: int = FULL["repeats"]
    warmup: int = FULL["warmup"]
    image_size: int = protocols.STL10_SIDE
    batch_size: int = protocols.BATCH_SIZE
    inference_batch_size: int = 64
    jit_compile: str = "auto"
    unet_filters: int = protocols.UNET_FILTERS
    pm_images: int = FULL["pm_images"]
    sparse_images: int = FULL["sparse_images"]
    memory: bool = True
    seed: int = 0


def make_model(name, image_size, unet_filters=protocols.UNET_FILTERS):
    """One of MODEL_NAMES, built for (None, image_size, image_size, 1) inputs."""
    model = {
        "diffnet": lambda: DiffNet(),
        "diffnet_zero": lambda: DiffNet(boundary="zero"),
        "original": lambda: OriginalDiffNet(),
        "floor": lambda: ComputeFloor(),
        "unet": lambda: UNet(base_filters=unet_filters),
    }[name]()
    model.build((None, image_size, image_size, 1))
    return model


def compile_for_training(model, jit_compile):
    """Adam + MSE, the same for every model; `jit_compile` as in Model.compile."""
    jit = {"auto": "auto", "true": True, "false": False}[jit_compile]
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit)
    return model


def random_images(n, size, seed):
    """float32 (n, size, size, 1) uniform images in [0, 1): timing does not depend on them."""
    return np.random.default_rng(seed).random((n, size, size, 1), dtype=np.float32)


# ---------------------------------------------------------------- timing


def _timed(function, *args):
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)  # train_on_batch / predict_on_batch return host values: synchronous
    return time.perf_counter() - wall, time.process_time() - cpu


def summarize(timings, images):
    """Median, spread and throughput of repeated (wall, CPU) timings of one figure.

    The wall-clock median is the figure. The process's CPU time per repetition barely moves
    when other programs compete for the cores (only the wall time grows), so it comes along
    with `cores_used` = CPU / wall; a repetition using under CONTENDED x the figure's best
    cores_used ran while something else held a core, and is counted in 'contended'.
    """
    wall, cpu = np.asarray(timings, np.float64).reshape(-1, 2).T
    q25, median, q75 = np.percentile(wall, [25, 50, 75])
    cores = cpu / wall
    return {
        "median_s": float(median),
        "min_s": float(wall.min()),
        "max_s": float(wall.max()),
        "iqr_s": float(q75 - q25),
        "images": int(images),
        "images_per_s": float(images / median),
        "cpu_median_s": float(np.median(cpu)),
        "cores_used_median": float(np.median(cores)),
        "contended": int(np.sum(cores < CONTENDED * cores.max())),
        "repeats_s": [float(t) for t in wall],
        "cpu_repeats_s": [float(t) for t in cpu],
    }


def time_models(models, settings):
    """Training-step and inference times of every model, round robin.

    Args:
        models: dict name -> compiled Keras model.
        settings: a Settings.

    Returns:
        dict name -> {'train': summary, 'inference': summary} (see `summarize`).
    """
    size, seed = settings.image_size, settings.seed
    x, y = random_images(settings.batch_size, size, seed), random_images(
        settings.batch_size, size, seed + 1)
    x_infer = random_images(settings.inference_batch_size, size, seed + 2)
    train = {name: [] for name in models}
    infer = {name: [] for name in models}
    progbar = keras.utils.Progbar(settings.warmup + settings.repeats, unit_name="round",
                                  verbose=cli.verbosity(None))  # no control codes in a file
    for round_index in range(settings.warmup + settings.repeats):
        for name, model in models.items():
            timing = _timed(model.train_on_batch, x, y)
            if round_index >= settings.warmup:
                train[name].append(timing)
        for name, model in models.items():
            timing = _timed(model.predict_on_batch, x_infer)
            if round_index >= settings.warmup:
                infer[name].append(timing)
        progbar.add(1)
    return {
        name: {
            "train": summarize(train[name], settings.batch_size),
            "inference": summarize(infer[name], settings.inference_batch_size),
        }
        for name in models
    }


# ---------------------------------------------------------------- Perona-Malik pairs


def time_pair_generation(settings):
    """Images/s of the library's pair generation and of the sparse per-image reference.

    Returns:
        dict with 'library' (summary) and 'sparse_reference': a summary plus
        'max_abs_difference_to_library_original' (against `physics.perona_malik` with the
        same boundary convention), or None with a 'note' when SciPy is missing.
    """
    size, repeats, warmup = settings.image_size, settings.repeats, settings.warmup
    images = random_images(settings.pm_images, size, settings.seed)
    data = spec.preset("perona_malik").data  # Sect. 5.2's physics, no noise

    def generate():
        datasets.pairs_from_images(images, data)

    for _ in range(warmup):
        generate()
    result = {"library": summarize([_timed(generate) for _ in range(repeats)], len(images)),
              "sparse_reference": None}
    if not have_scipy():
        result["note"] = "install scipy to run the sparse reference"
        return result
    few = images[: settings.sparse_images, ..., 0]

    def reference():
        return np.stack([sparse_perona_malik(image) for image in few])

    expected = keras.ops.convert_to_numpy(
        physics.perona_malik(few[..., None], convention="original"))[..., 0]
    difference = float(np.abs(reference() - expected).max())  # also the warm-up
    result["sparse_reference"] = summarize([_timed(reference) for _ in range(repeats)],
                                           len(few))
    result["sparse_reference"]["max_abs_difference_to_library_original"] = difference
    return result


# ---------------------------------------------------------------- peak memory


def _peak_rss_mib():
    """This process's peak resident set size so far, in MiB.

    Linux: VmHWM of /proc/self/status. Not ru_maxrss: Linux carries the parent's peak into
    a forked child's ru_maxrss, so a fresh process would start at the benchmark's own peak.
    Elsewhere ru_maxrss (KiB, or bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20


def memory_probe(name, image_size, batch_size, jit_compile, unet_filters, seed, steps=2):
    """Run in a fresh process: peak RSS growth over `steps` training steps of one model.

    Returns:
        dict with 'baseline_mib' (peak RSS after the imports and the data), 'peak_mib' and
        'growth_mib' = peak - baseline.
    """
    keras.utils.set_random_seed(seed)
    x = random_images(batch_size, image_size, seed)
    y = random_images(batch_size, image_size, seed + 1)
    baseline = _peak_rss_mib()
    model = compile_for_training(make_model(name, image_size, unet_filters), jit_compile)
    for _ in range(steps):
        model.train_on_batch(x, y)
    peak = _peak_rss_mib()
    return {"baseline_mib": baseline, "peak_mib": peak, "growth_mib": peak - baseline}


def peak_training_memory(name, settings):
    """`memory_probe` of one model in a fresh Python process (same interpreter, backend)."""
    arguments = dict(name=name, image_size=settings.image_size,
                     batch_size=settings.batch_size, jit_compile=settings.jit_compile,
                     unet_filters=settings.unet_filters, seed=settings.seed)
    code = ("import json, sys; from experiments.benchmarking import memory_probe; "
            "print(json.dumps(memory_probe(**json.loads(sys.argv[1]))))")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"The memory probe of {name!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def machine_info():
    """Platform, CPUs, accelerators, backend and versions (runs.machine), for the JSON."""
    found = runs.machine()
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


def _busy_cpu_seconds():
    """CPU-seconds every program on the machine has used since boot (Linux /proc/stat:
    user, nice, system, irq, softirq, steal), or None where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            user, nice, system, _, _, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def other_programs_cores(function, *args):
    """Runs function(*args); returns (its result, the cores other programs used meanwhile).

    Other programs' share = (the machine's busy CPU time - this process's) / wall time,
    averaged over the call; None where /proc/stat is missing.
    """
    wall, own, busy = time.perf_counter(), time.process_time(), _busy_cpu_seconds()
    result = function(*args)
    if busy is None:
        return result, None
    others = (_busy_cpu_seconds() - busy) - (time.process_time() - own)
    return result, max(0.0, others / (time.perf_counter() - wall))


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
        "inference img/s | step / floor | peak train MiB | paper protocol h |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in models.items():
        train, infer = figures["train"], figures["inference"]
        mib = f"{memory[name]['growth_mib']:.0f}" if name in memory else "-"
        lines.append(
            f"| {LABELS[name]} | {params[name]:,} | {1e3 * train['median_s']:.0f} "
            f"({1e3 * train['min_s']:.0f}-{1e3 * train['max_s']:.0f}) | "
            f"{train['images_per_s']:.1f} | {infer['images_per_s']:.1f} | "
            f"{train['median_s'] / floor:.3f} | {mib} | "
            f"{f'{hours[name]:.2f}' if name in hours else '-'} |")
    if pairs is not None:
        lines += ["", "| Perona-Malik pairs (4 steps) | images/s |", "|---|---:|",
                  f"| library, batched (datasets.pairs_from_images) | "
                  f"{pairs['library']['images_per_s']:,.0f} |"]
        sparse_ref = pairs.get("sparse_reference")
        lines.append("| per-image sparse reference (SciPy, as AnisoDiff2d) | "
                     + (f"{sparse_ref['images_per_s']:,.1f} |" if sparse_ref else
                        f"skipped: {pairs['note']} |"))
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


def settings_from_values(values):
    """The Settings of the benchmark's parsed flags (a dict): --quick picks the defaults
    of the repetition counts, any flag set overrides them."""
    defaults = QUICK if values["quick"] else FULL
    chosen = {name: defaults[name] if values[name] is None else values[name] for name in defaults}
    fixed = {name: values[name] for name in ("inference_batch_size", "jit_compile", "memory")}
    defaults = {"batch_size": protocols.BATCH_SIZE, "unet_filters": protocols.UNET_FILTERS,
                "image_size": protocols.STL10_SIDE, "seed": 0}
    shared = {name: fallback if values[name] is None else values[name]
              for name, fallback in defaults.items()}
    return Settings(**shared, **fixed, **chosen)


def measure(settings, backend):
    """Every measurement of a run: models, pair generation, memory.

    Returns:
        dict of JSON-ready results: parameters, jit_compile_resolved, models,
        other_programs_cores, pair_generation, peak_training_memory, checks, notes, phase_s.
    """
    started = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    models = {name: compile_for_training(make_model(name, settings.image_size,
                                                    settings.unet_filters),
                                         settings.jit_compile)
              for name in MODEL_NAMES}
    results = {"parameters": {name: model.count_params() for name, model in models.items()},
               "jit_compile_resolved": {name: model.jit_compile for name, model in models.items()}}
    print(f"Timing {len(models)} models: {settings.warmup} warm-up + {settings.repeats} rounds")
    results["models"], others = other_programs_cores(time_models, models, settings)
    results["other_programs_cores"] = {"model timing": others}
    del models
    phases = {"models": time.perf_counter() - started}
    print("Timing Perona-Malik pair generation")
    pairs, others = other_programs_cores(time_pair_generation, settings)
    results["other_programs_cores"]["pair generation"] = others
    notes = [pairs["note"]] if "note" in pairs else []
    phases["pair_generation"] = time.perf_counter() - started - sum(phases.values())
    memory = {}
    if settings.memory:
        print("Measuring peak training memory in fresh processes")
        memory = {name: peak_training_memory(name, settings) for name in MEMORY_MODELS}
        phases["memory"] = time.perf_counter() - started - sum(phases.values())
    busy = contention_note(results["models"], pairs, results["other_programs_cores"])
    results["paper_protocol_hours"] = paper_protocol_hours(results["models"],
                                                            settings.batch_size)
    return {**results, "pair_generation": pairs, "peak_training_memory": memory,
            "checks": target_checks(results["models"], pairs),
            "notes": ([busy] if busy else []) + notes, "phase_s": phases}


def run(settings, out_dir, quick):
    """Measures, prints the tables and checks, and writes the JSON; returns its path."""
    started = time.perf_counter()
    record = machine_info()
    print(f"Benchmark on {record['machine']['processor']} ({record['machine']['cpu_count']} "
          f"CPUs), backend {record['backend']}, {settings}")
    results = measure(settings, record["backend"])
    found = record["machine"]["accelerators"]
    results["notes"].append(
        "accelerators found: " + ", ".join(found) if found else
        "no GPU on this machine: every figure is CPU-only; the CPU targets are the ones checked")
    table = format_table(results["models"], results["parameters"],
                         results["peak_training_memory"], results["pair_generation"],
                         results["paper_protocol_hours"], record["backend"], record["device"])
    print(f"\n{table}\n\n{format_checks(results['checks'])}")
    for note in results["notes"]:
        print(f"Note: {note}")
    record.update(date=datetime.datetime.now().isoformat(timespec="seconds"),
                  settings={"quick": quick, **dataclasses.asdict(settings)},
                  methods=METHODS, **results, table=table,
                  wall_time_s=time.perf_counter() - started)
    record["machine"]["load_average_at_end"] = os.getloadavg()
    path = output_path(out_dir, datetime.datetime.now())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"Wrote {path} ({record['wall_time_s']:.0f} s)")
    return path
