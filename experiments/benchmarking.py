"""The benchmark's run (experiments.benchmark is its command): its settings, every
measurement in turn (benchmark_timing, benchmark_memory, benchmark_cells), the projections
of experiments.reproduce (benchmark_projection), and the printed tables and JSON record
(benchmark_report).
"""

import dataclasses
import datetime
import os
import time

import keras

from diffnet_tf import files, protocols
from experiments.benchmark_cells import measure_cells
from experiments.benchmark_memory import MEMORY_MODELS, peak_training_memory
from experiments.benchmark_projection import projections
from experiments.benchmark_report import (METHODS, contention_note, format_cells,
                                          format_checks, format_table, machine_info,
                                          output_path, paper_protocol_hours, target_checks)
from experiments.benchmark_timing import (MODEL_NAMES, compile_for_training, make_model,
                                          other_programs_cores, time_models,
                                          time_pair_generation)

QUICK = dict(repeats=3, warmup=1, pm_images=1000, sparse_images=2, cells=2)
FULL = dict(repeats=15, warmup=2, pm_images=3000, sparse_images=8, cells=4)


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
    cells: int = FULL["cells"]
    seed: int = 0


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


def measure(settings):
    """Every measurement of a run: models, pair generation, memory, reproduce's cells
    (with settings.cells) and the projections from them.

    Returns:
        dict of JSON-ready results: parameters, jit_compile_resolved, models,
        other_programs_cores, pair_generation, peak_training_memory, cells, projection
        (both None without settings.cells), checks, notes, phase_s.
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
    cells = projection = None
    if settings.cells:
        cells = measure_cells(settings)
        projection = projections(cells)
        phases["cells"] = time.perf_counter() - started - sum(phases.values())
    busy = contention_note(results["models"], pairs, results["other_programs_cores"])
    results["paper_protocol_hours"] = paper_protocol_hours(results["models"],
                                                            settings.batch_size)
    return {**results, "pair_generation": pairs, "peak_training_memory": memory,
            "cells": cells, "projection": projection,
            "checks": target_checks(results["models"], pairs),
            "notes": ([busy] if busy else []) + notes, "phase_s": phases}


def run(settings, out_dir, quick):
    """Measures, prints the tables and checks, and writes the JSON; returns its path."""
    started = time.perf_counter()
    record = machine_info()
    print(f"Benchmark on {record['machine']['processor']} ({record['machine']['cpu_count']} "
          f"CPUs), backend {record['backend']}, {settings}")
    results = measure(settings)
    found = record["machine"]["accelerators"]
    results["notes"].append(
        "accelerators found: " + ", ".join(found) if found else
        "no GPU on this machine: every figure is CPU-only; the CPU targets are the ones "
        "checked; the 'fast' rows compute the same as the float32 ones here")
    table = format_table(results["models"], results["parameters"],
                         results["peak_training_memory"], results["pair_generation"],
                         results["paper_protocol_hours"], record["backend"], record["device"])
    if results["cells"]:
        table += "\n\n" + format_cells(results["cells"], results["projection"])
    print(f"\n{table}\n\n{format_checks(results['checks'])}")
    for note in results["notes"]:
        print(f"Note: {note}")
    record.update(date=datetime.datetime.now().isoformat(timespec="seconds"),
                  settings={"quick": quick, **dataclasses.asdict(settings)},
                  methods=METHODS, **results, table=table,
                  wall_time_s=time.perf_counter() - started)
    record["machine"]["load_average_at_end"] = os.getloadavg()
    path = output_path(out_dir, datetime.datetime.now())
    files.make_folder(path.parent)
    files.write_json(path, record)
    print(f"Wrote {path} ({record['wall_time_s']:.0f} s)")
    return path
