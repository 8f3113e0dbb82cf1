"""What feeds (input, target) pairs to training: each epoch in its own order, drawn from
(seed, epoch) alone, so that a resumed run sees the batches of an uninterrupted one.

    make_dataset    a tf.data pipeline (TensorFlow: Keras' pipeline of arrays stalls)
    EpochBatches    a keras.utils.PyDataset of the arrays (every other backend), with
                    FollowEpochs, the callback that tells it Keras' epoch

TensorFlow is imported inside `make_dataset`, which says what to do without it.
"""

import math

import keras
import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_integer


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
    batch_size = check_integer(batch_size, "batch_size", minimum=1)
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


def epoch_order(count, seed, epoch):
    """The order of an epoch's `count` pairs for `EpochBatches`: a permutation drawn from
    (seed, epoch) alone (NumPy's default generator)."""
    return np.random.default_rng([seed, epoch]).permutation(count)


class EpochBatches(keras.utils.PyDataset):
    """(input, target) batches of arrays for model.fit on any backend, each epoch in the
    order `epoch_order(N, seed, epoch)`; the epoch's last batch is the smaller one. Keras
    calls the dataset's own epoch hooks also when it peeks at a batch to build the model,
    so the epoch comes from Keras' training loop instead: pass `FollowEpochs(batches)`
    among fit's callbacks (and shuffle=False: the order is this dataset's).

    Args:
        inputs, targets: (N, H, W, C) arrays.
        batch_size: images per batch.
        seed: seed of the orders.
        epoch: the epoch (from 0) training starts at (a resumed run's initial_epoch).
    """

    def __init__(self, inputs, targets, batch_size, seed, epoch=0):
        super().__init__()
        batch_size = check_integer(batch_size, "batch_size", minimum=1)
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.seed, self.epoch = batch_size, seed, epoch
        self._order = (None, None)  # (epoch, its order)

    def __len__(self):
        return math.ceil(len(self.inputs) / self.batch_size)

    def __getitem__(self, index):
        if self._order[0] != self.epoch:
            self._order = (self.epoch, epoch_order(len(self.inputs), self.seed, self.epoch))
        picked = self._order[1][index * self.batch_size:(index + 1) * self.batch_size]
        return self.inputs[picked], self.targets[picked]


class FollowEpochs(keras.callbacks.Callback):
    """Sets an `EpochBatches`' epoch to the one Keras' training loop begins."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch
