"""The machine a run trains on, as training.json and the benchmark record it: processor,
cores, accelerators, the Keras backend and the versions of the packages in use."""

import importlib
import os
import sys


def machine():
    """Where a run trains: processor, cores, accelerators, Keras backend and versions."""
    import platform

    import keras

    processor = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            processor = next((line.split(":", 1)[1].strip() for line in cpuinfo
                              if line.startswith("model name")), processor)
    except OSError:
        pass
    backend = keras.backend.backend()
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    for package in ("numpy", "tensorflow", "jax", "torch", "diffnet_tf"):
        if package in sys.modules:
            versions[package] = sys.modules[package].__version__
    return {"processor": processor, "cpu_count": os.cpu_count(),
            "accelerators": accelerators(backend), "backend": backend, "versions": versions}


def backend_record():
    """What a run's numbers depend on beyond its spec: the Keras backend and the versions of
    Keras and of the backend's package, e.g. {'backend': 'jax', 'versions': {'keras':
    '3.15.1', 'jax': '0.10.2'}} (a run folder's backend.json)."""
    import keras

    backend = keras.backend.backend()
    versions = {"keras": keras.__version__}
    if backend in ("tensorflow", "jax", "torch"):
        versions[backend] = importlib.import_module(backend).__version__
    return {"backend": backend, "versions": versions}


def accelerators(backend):
    """The accelerators the backend sees, each as its id and model ('cuda:0 NVIDIA H200'),
    empty on a CPU-only machine."""
    if backend == "jax":
        import jax

        return [f"{d} {d.device_kind}" for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [f"cuda:{i} {torch.cuda.get_device_name(i)}"
                for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    found = [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
    return [f"{d.name} {tf.config.experimental.get_device_details(d).get('device_name', '')}"
            .strip() for d in found]
