"""The tf.data pipeline that feeds (input, target) pairs to training on TensorFlow.

TensorFlow is imported inside `make_dataset`, which says what to do without it (on the
other backends, pass the arrays to model.fit).
"""

from diffnet_tf import protocols


def make_dataset(inputs, targets, batch_size=protocols.BATCH_SIZE, shuffle=False, seed=0):
    """A tf.data pipeline of (input, target) batches (TensorFlow only).

    tf.data's autotuning is off and two batches are prefetched: with autotuning on, as in
    the pipeline Keras builds from NumPy arrays, tearing down an epoch's iterator waits on
    the autotune thread, and the next epoch's first step stalled for 6-12 s on 2 CPU cores
    (measured; the same step time otherwise).

    Args:
        inputs, targets: (N, H, W, C) arrays.
        batch_size: images per batch (the paper's: 16).
        shuffle: reshuffle every epoch.
        seed: seed of the shuffling.

    Returns:
        A prefetched tf.data.Dataset of (inputs, targets) batches.
    """
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError("make_dataset builds a tf.data pipeline and needs TensorFlow. On "
                          "other backends pass the arrays to model.fit.") from error
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch_size. Received {batch_size!r}.")
    x, y = tf.constant(inputs), tf.constant(targets)
    ds = tf.data.Dataset.range(len(inputs))
    if shuffle:
        ds = ds.shuffle(max(len(inputs), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(2)
