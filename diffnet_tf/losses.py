"""The training losses, by the names a `spec.TrainSpec` uses: the released code's l2 norm
and the mean squared error. keras.ops only, so they run on every backend; registered with
Keras, so a model compiled with them reloads from its .keras file.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="diffnet_tf")
def l2norm_loss(y_true, y_pred):
    """The released code's loss: ||relu(y_true) - y_pred||_2 / batch size (Frobenius norm
    over the whole batch, not squared).

    Args:
        y_true: (B, H, W, C) targets.
        y_pred: (B, H, W, C) outputs.

    Returns:
        scalar loss.
    """
    residual = ops.subtract(ops.relu(y_true), y_pred)
    batch_size = ops.cast(ops.shape(y_true)[0], residual.dtype)
    return ops.sqrt(ops.sum(ops.square(residual))) / batch_size


# TrainSpec.loss -> what model.compile takes
LOSSES = {"l2norm": l2norm_loss, "mse": "mse"}
