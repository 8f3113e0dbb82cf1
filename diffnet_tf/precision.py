"""The precision of training's matrix products and convolutions, per Keras backend.

    with matrix_precision("float32"):
        model.fit(...)

'float32' is true float32: on NVIDIA GPUs since Ampere, TensorFlow and JAX otherwise
round the inputs of float32 matrix products and convolutions to a 10-bit mantissa (TF32)
and PyTorch does in its convolutions. 'fast' leaves the device's default. On a CPU both are
the same. The physics never needs this: its products are exact on every device
(`spectral.exact_product`). What is backend-specific lives here alone (docs/DESIGN.md,
"Precision"); each backend is imported inside the branch that needs it.
"""

import contextlib

import keras

from diffnet_tf.checks import check_choice

PRECISIONS = ("float32", "fast")


@contextlib.contextmanager
def matrix_precision(precision):
    """A context in which the active backend computes float32 matrix products and
    convolutions at `precision` ('float32' or 'fast'); the previous setting is restored
    on exit. Functions compiled inside it keep its precision (JAX traces, TensorFlow's
    XLA and cuDNN kernels are chosen when they are built)."""
    check_choice(precision, PRECISIONS, "precision")
    backend = keras.backend.backend()
    if precision == "fast" or backend not in ("jax", "tensorflow", "torch"):
        yield
    elif backend == "jax":
        import jax

        with jax.default_matmul_precision("float32"):
            yield
    elif backend == "tensorflow":
        import tensorflow as tf

        before = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(before)
    else:
        import torch

        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def current_precision():
    """'float32' when the active backend computes true float32 matrix products and
    convolutions now, else 'fast' (a CPU-only machine counts as the setting it has)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "float32" if jax.config.jax_default_matmul_precision in (
            "float32", "highest") else "fast"
    if backend == "tensorflow":
        import tensorflow as tf

        return "fast" if tf.config.experimental.tensor_float_32_execution_enabled() else "float32"
    if backend == "torch":
        import torch

        allowed = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
        return "fast" if allowed else "float32"
    return "fast"
