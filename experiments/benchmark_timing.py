"""The benchmark's timing (experiments.benchmark is its command): the models it times,
training steps and inference timed round robin, the training step of each model class of
experiments.reproduce's cells, Perona-Malik pair generation against a sparse reference, and
the cores other programs took meanwhile.
"""

import dataclasses
import os
import time

import keras
import numpy as np

from diffnet_tf import models, physics, protocols, spec
from diffnet_tf.cli.startup import verbosity
from diffnet_tf.models import DiffNet, UNet
from diffnet_tf.pairs import pairs_from_images
from diffnet_tf.precision import matrix_precision
from experiments.benchmark_references import (ComputeFloor, OriginalDiffNet, have_scipy,
                                              sparse_perona_malik)

# The *_fast rows are DiffNet-5 and the U-Net again, timed in the device's default matrix
# precision ('fast': TF32 on recent NVIDIA GPUs); every other row in true float32.
MODEL_NAMES = ("diffnet", "diffnet_zero", "original", "floor", "unet", "diffnet_fast",
               "unet_fast")
CONTENDED = 0.75  # a repetition with cores_used under this x the figure's best was disturbed


def precision_of(name):
    """The matrix precision model `name` is timed in (`precision.matrix_precision`)."""
    return "fast" if name.endswith("_fast") else protocols.PRECISION


def make_model(name, image_size, unet_filters=protocols.UNET_FILTERS):
    """One of MODEL_NAMES, built for (None, image_size, image_size, 1) inputs."""
    model = {
        "diffnet": lambda: DiffNet(),
        "diffnet_zero": lambda: DiffNet(boundary="zero"),
        "original": lambda: OriginalDiffNet(),
        "floor": lambda: ComputeFloor(),
        "unet": lambda: UNet(base_filters=unet_filters),
        "diffnet_fast": lambda: DiffNet(),
        "unet_fast": lambda: UNet(base_filters=unet_filters),
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
    """Training-step and inference times of every model, round robin, each in its matrix
    precision (`precision_of`; its functions are compiled in it, at the first round).

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
                                  verbose=verbosity(None))  # no control codes in a file
    for round_index in range(settings.warmup + settings.repeats):
        for timings, step, data in ((train, "train_on_batch", (x, y)),
                                    (infer, "predict_on_batch", (x_infer,))):
            for name, model in models.items():
                with matrix_precision(precision_of(name)):
                    timing = _timed(getattr(model, step), *data)
                if round_index >= settings.warmup:
                    timings[name].append(timing)
        progbar.add(1)
    return {
        name: {
            "train": summarize(train[name], settings.batch_size),
            "inference": summarize(infer[name], settings.inference_batch_size),
        }
        for name in models
    }


def time_cell_steps(classes, settings):
    """Median training-step seconds of one model per class, timed as `time_models` times
    (settings' repeats, warm-up, jit_compile) at the class's image size and batch.

    Args:
        classes: {label: a RunSpec of the class} (its model, image size, channels and
            batch; the precision is the device's default, the same as float32 on a CPU).
        settings: a Settings.

    Returns:
        {label: median seconds of model.train_on_batch}.
    """
    seconds = {}
    for label, cell in classes.items():
        model = models.build_model(cell)
        model.build((None, cell.data.image_size, cell.data.image_size, cell.data.channels))
        shaped = dataclasses.replace(settings, image_size=cell.data.image_size,
                                     batch_size=cell.train.batch_size)
        timed = time_models({label: compile_for_training(model, settings.jit_compile)}, shaped)
        seconds[label] = timed[label]["train"]["median_s"]
    return seconds


def time_pair_generation(settings):
    """Images/s of the library's pair generation and of the sparse per-image reference.

    Returns:
        dict with 'library' (summary) and 'sparse_reference': a summary plus
        'max_abs_difference_to_library_original' (against `physics.perona_malik` with the
        same boundary convention), or None with a 'note' when SciPy is missing.
    """
    size, repeats, warmup = settings.image_size, settings.repeats, settings.warmup
    images = random_images(settings.pm_images, size, settings.seed)
    data = spec.protocol("perona_malik").data  # Sect. 5.2's physics, no noise

    def generate():
        pairs_from_images(images, data)

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
