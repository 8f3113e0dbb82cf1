"""Several devices for one run: the strategies of --strategy and the replica sums a loss
that is not a mean over images needs.

    distributed = strategy("data_parallel")   # None for 'default'
    with distributed.scope():
        model = ...; model.compile(...); model.fit(...)

- 'mirrored': TensorFlow's MirroredStrategy over the local GPUs (or `devices`): each
  replica takes its share of every batch, the gradients are summed over replicas.
- 'data_parallel': Keras' DataParallel on JAX over the local devices: each batch is sharded
  over the devices and the step is one program on the whole batch. A batch whose size the
  device count does not divide (the last of an epoch: 89,500 pairs in batches of 16 leave
  12, which 8 GPUs do not divide) runs replicated on every device instead: exact, with no
  padding, so Keras weighs its loss by its true size (docs/DESIGN.md, "Several devices").

One host's devices only: several hosts train one cell per device (--executor=ray|slurm).
What is TensorFlow's or JAX's is imported inside the function that needs it.
"""

import contextlib

import keras

from diffnet_tf.checks import check_choice

STRATEGIES = ("default", "mirrored", "data_parallel")
_BACKENDS = {"mirrored": "tensorflow", "data_parallel": "jax"}


def strategy(name, devices=None):
    """The strategy `name` as an object with `.scope()`, or None for 'default'.

    Args:
        name: one of STRATEGIES.
        devices: the devices to use (e.g. ["/cpu:0", "/cpu:1"] or ["cpu:0", "cpu:1"]);
            None for all local GPUs (mirrored) or all local devices (data_parallel).

    Raises:
        ValueError: an unknown name, the strategy's backend is not Keras' backend, or
            JAX runs on several hosts.
    """
    check_choice(name, STRATEGIES, "strategy")
    if name == "default":
        return None
    backend = keras.backend.backend()
    if backend != _BACKENDS[name]:
        raise ValueError(f"Expected the {_BACKENDS[name]} backend for the strategy {name!r} "
                         f"(KERAS_BACKEND={_BACKENDS[name]}). Received the {backend} backend.")
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices)
    import jax

    if jax.process_count() > 1:
        raise ValueError(f"Expected one host for the strategy 'data_parallel': it runs on one "
                         f"host's devices. Received {jax.process_count()} JAX processes; use "
                         "--executor=ray or --executor=slurm to use several hosts, one cell "
                         "per device.")
    return ReplicatedRemainder(devices=devices or keras.distribution.list_devices())


def device_count(distributed):
    """The devices a `strategy` trains on (1 for None)."""
    if distributed is None:
        return 1
    if isinstance(distributed, keras.distribution.DataParallel):
        return int(distributed.device_mesh.devices.size)
    return int(distributed.num_replicas_in_sync)


def check_first_batches(distributed, batches):
    """Raises unless a MirroredStrategy's replicas share each first batch equally: Keras
    3.15 averages the first batch of training and of validation over the replicas (to
    build its metrics), which TensorFlow cannot do with unequal shares. Later batches may
    be shared unequally.

    Args:
        distributed: a `strategy`, or None.
        batches: {what: the images of its first batch}, e.g. {"training": 16}.
    """
    if distributed is None or isinstance(distributed, keras.distribution.DataParallel):
        return
    replicas = distributed.num_replicas_in_sync
    uneven = [f"{size} {what} images" for what, size in batches.items() if size % replicas]
    if uneven:
        raise ValueError(f"Expected first batches that the {replicas} replicas of the strategy "
                         f"'mirrored' share equally (Keras averages them over the replicas). "
                         f"Received a first batch of {' and of '.join(uneven)}: choose a "
                         f"TrainSpec.batch_size and DataSpec.val_size that {replicas} divides, "
                         "or the strategy 'data_parallel' (JAX).")


class ReplicatedRemainder(keras.distribution.DataParallel):
    """Keras' DataParallel, with a batch the device count does not divide replicated on
    every device instead of refused (its arrays cannot be split evenly)."""

    def get_data_layout(self, data_shape):
        if data_shape[0] % self.device_mesh.devices.size:
            return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)
        return super().get_data_layout(data_shape)

    @contextlib.contextmanager
    def scope(self):
        with super().scope(), _layout_of_every_batch():
            yield


@contextlib.contextmanager
def _layout_of_every_batch():
    """While it lasts, Keras' JAX training asks the distribution for the layout of every
    batch. Keras 3.15 asks for an epoch's first batch only and lays out the others alike,
    which fails on an indivisible last batch; the batch then goes through the function
    `train_on_batch` uses, which asks for each batch's layout."""
    from keras.src.backend.jax import trainer

    iterator = trainer.JAXEpochIterator
    before = iterator._get_distributed_iterator

    def every_batch(self, distribution):
        for data in self.data_adapter.get_jax_iterator():
            yield trainer._distribute_data(data)

    iterator._get_distributed_iterator = every_batch
    try:
        yield
    finally:
        iterator._get_distributed_iterator = before


def replica_count():
    """How many replicas compute the current step together: tf.distribute's replicas in
    sync inside a replica context, else 1 (every other backend sees the whole batch)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def replica_sum(value):
    """`value` summed over the replicas of the current step (the value itself with one)."""
    if replica_count() == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce("sum", value)
