"""The tf.data pipeline that feeds (input, target) pairs to training on TensorFlow.

TensorFlow is imported inside `make_dataset`, which says what to do without it (on the
other backends, pass the arrays to model.fit).
"""

from diffnet_tf import protocols


def make_dataset(inputs, targets, batch_size=protocols.BATCH_SIZE, shuffle=False, seed=0,
                 first_epoch=0):
    """A tf.data pipeline of (input, target) batches (TensorFlow only).

    Shuffled, it yields epoch after epoch without end, each epoch's batches in that epoch's
    own order, drawn from (seed, epoch) alone by a stateless generator: a run resumed at
    epoch k sees the orders an uninterrupted run sees from epoch k on, and a run on several
    replicas the orders of a one-device run, however many iterators Keras makes (it makes
    one more under a tf.distribute strategy, to build the model). Pass
    steps_per_epoch = ceil(N / batch_size) to model.fit, so that Keras keeps one iterator;
    an epoch's last batch is the smaller one. Not shuffled, it is one pass in order.

    tf.data's autotuning is off and two batches are prefetched: with autotuning on, as in
    the pipeline Keras builds from NumPy arrays, tearing down an epoch's iterator waits on
    the autotune thread, and the next epoch's first step stalled for 6-12 s on 2 CPU cores
    (measured; the same step time otherwise).

    Args:
        inputs, targets: (N, H, W, C) arrays.
        batch_size: images per batch (the paper's: 16).
        shuffle: a new order every epoch, repeating without end.
        seed: seed of the orders.
        first_epoch: the epoch (from 0) the shuffled pipeline starts with.

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
    count = len(inputs)

    def epoch_batches(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.argsort(tf.random.stateless_uniform([count], seed=key), stable=True)
        return tf.data.Dataset.from_tensor_slices(tf.cast(order, tf.int64)).batch(batch_size)

    if shuffle:
        ds = tf.data.Dataset.counter(first_epoch).flat_map(epoch_batches)
    else:
        ds = tf.data.Dataset.range(count).batch(batch_size)
    ds = ds.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(2)
