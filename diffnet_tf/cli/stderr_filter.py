"""TensorFlow's and XLA's start-up lines, dropped from the process's stderr.

TensorFlow's C++ code writes them to file descriptor 2 as it is imported (C++ logging
before absl::InitializeLog, CPU features, the CUDA probe of a TensorFlow built for GPUs)
and at the first computations (XLA's host service, the first compilations' notices):
they say nothing about a run. `filter_stderr` copies every other line through. Standard
library only: `diffnet_tf/__init__.py` uses it while it imports Keras.
"""

import atexit
import contextlib
import os
import re
import sys
import threading

STARTUP_NOISE = [
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"service\.cc:\d+\] XLA service 0x[0-9a-f]+ initialized for platform Host",
    r"service\.cc:\d+\]\s+StreamExecutor \[\d+\]: Host",
    r"device_compiler\.h:\d+\] Compiled cluster using XLA!",
    r"dump_mlir_util\.cc:\d+\] disabling MLIR crash reproducer",
    # JAX's probe for a TPU runtime at its first computation, where libtpu is not installed
    r"xla_bridge\.py:\d+\] Unable to initialize backend 'tpu': .*libtpu\.so: cannot open",
]
# The failed CUDA probe is noise only on a machine without an NVIDIA driver.
NO_GPU_NOISE = [r"cuda_platform\.cc:\d+\] failed call to cuInit: .*\(303\)"]


def startup_noise():
    """The compiled pattern of STARTUP_NOISE (and NO_GPU_NOISE without an NVIDIA driver)."""
    gpu = os.path.exists("/proc/driver/nvidia/version")
    return re.compile("|".join(STARTUP_NOISE + ([] if gpu else NO_GPU_NOISE)))


def filter_stderr(pattern):
    """Copies every line written to file descriptor 2 to the real stderr, except the lines
    matching `pattern`, until the returned function is called (a pipe read by a thread).

    File descriptor 2 rather than sys.stderr, because TensorFlow's C++ code writes there.

    Returns:
        stop(): puts the real stderr back and copies the lines still in the pipe; None
        when file descriptor 2 is not open (nothing to filter).
    """
    try:
        saved = os.dup(2)
    except OSError:
        return None
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not pattern.search(line.decode(errors="replace")):
                    os.write(saved, line)

    thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    thread.start()

    def stop():  # the pipe's last writer closes: the thread copies the rest and ends
        sys.stderr.flush()
        os.dup2(saved, 2)
        thread.join(timeout=5)
        if not thread.is_alive():  # else a child process still holds the pipe: keep it
            os.close(saved)

    return stop


@contextlib.contextmanager
def startup_lines_dropped():
    """Drops the start-up lines written to stderr inside the `with` block."""
    stop = filter_stderr(startup_noise())
    try:
        yield
    finally:
        if stop is not None:
            stop()


def drop_startup_lines_until_exit():
    """Drops the start-up lines written to stderr from now until the process exits."""
    stop = filter_stderr(startup_noise())
    if stop is not None:
        atexit.register(stop)
