"""The training losses, by the names a `spec.TrainSpec` uses: the released code's l2 norm
and the mean squared error. keras.ops only, so they run on every backend; registered with
Keras, so a model compiled with them reloads from its .keras file.

Both are functions of the whole batch's sum of squared residuals S and its image count N.
Under a tf.distribute strategy each replica sees its share of the batch, and Keras sums
the replicas' gradients and reads the loss as sum_k R v_k n_k / N from the R replicas'
values v_k; so each replica returns its share of the whole batch's loss
(`whole_batch_loss`), which the norm needs (it is no mean over images) and Keras' own MSE
lacks when an epoch's last batch splits unevenly (docs/DESIGN.md, "Several devices").
"""

import keras
from keras import ops

from diffnet_tf import distribution


def whole_batch_loss(loss, squares, images):
    """loss(S, N) of the whole batch, or under R replicas this replica's share of it: the
    loss at S_k plus the other replicas' squares held constant, whose gradients sum over
    the replicas to the whole loss's, its value scaled to loss / R.

    Args:
        loss: a function of (S, N) in keras.ops.
        squares: S_k, the sum of this replica's squared residuals (S with one replica).
        images: n_k, this replica's images, a float (N with one replica).

    Returns:
        a scalar.
    """
    replicas = distribution.replica_count()
    if replicas == 1:
        return loss(squares, images)
    others = distribution.replica_sum(ops.stop_gradient(squares)) - ops.stop_gradient(squares)
    share = loss(squares + others, distribution.replica_sum(images))
    return share - ops.stop_gradient(share) * (1 - 1 / replicas)


def _squares_and_images(y_true, y_pred):
    residual = ops.subtract(y_true, y_pred)
    return ops.sum(ops.square(residual)), ops.cast(ops.shape(y_true)[0], residual.dtype)


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
    squares, images = _squares_and_images(ops.relu(y_true), y_pred)
    return whole_batch_loss(lambda s, n: ops.sqrt(s) / n, squares, images)


@keras.saving.register_keras_serializable(package="diffnet_tf")
def mse_loss(y_true, y_pred):
    """The mean squared error over every pixel of the batch.

    Args:
        y_true: (B, H, W, C) targets.
        y_pred: (B, H, W, C) outputs.

    Returns:
        scalar loss.
    """
    squares, images = _squares_and_images(y_true, y_pred)
    shape = ops.convert_to_tensor(ops.shape(y_true), dtype="int32")
    pixels = ops.cast(ops.prod(shape[1:]), squares.dtype)
    return whole_batch_loss(lambda s, n: s / (n * pixels), squares, images)


# TrainSpec.loss -> what model.compile takes
LOSSES = {"l2norm": l2norm_loss, "mse": mse_loss}
