"""The benchmark's memory figure: the peak resident memory a few training steps of one
model add, measured in a fresh Python process.
"""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import keras

import diffnet_tf
import experiments
from experiments.benchmark_timing import compile_for_training, make_model, random_images

MEMORY_MODELS = ("diffnet", "unet")


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


def probe_command(arguments):
    """The command that prints `memory_probe(**arguments)` as JSON from a fresh process.

    It runs this interpreter (so the same packages and backend) on the code of this very
    process: the folders `experiments` and `diffnet_tf` were imported from come first on
    the new process's sys.path, so it runs from any working directory, and a folder there
    with packages of the same names does not stand in for them.

    Args:
        arguments: dict of `memory_probe`'s arguments (JSON-ready).

    Returns:
        The argument list for subprocess.run.
    """
    folders = [str(Path(module.__file__).resolve().parents[1])
               for module in (experiments, diffnet_tf)]
    code = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
            "from experiments.benchmark_memory import memory_probe; "
            "print(json.dumps(memory_probe(**json.loads(sys.argv[2]))))")
    return [sys.executable, "-c", code, json.dumps(list(dict.fromkeys(folders))),
            json.dumps(arguments)]


def peak_training_memory(name, settings):
    """`memory_probe` of one model (one of MODEL_NAMES) with the benchmark's settings in a
    fresh Python process (`probe_command`)."""
    arguments = dict(name=name, image_size=settings.image_size,
                     batch_size=settings.batch_size, jit_compile=settings.jit_compile,
                     unet_filters=settings.unet_filters, seed=settings.seed)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(probe_command(arguments), env=environment, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"The memory probe of {name!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
