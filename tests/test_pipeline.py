"""What feeds training: the tf.data pipeline (TensorFlow) and EpochBatches (any backend):
batches, orders drawn from (seed, epoch), errors."""

import sys

import numpy as np
import pytest

from diffnet_tf.pipeline import EpochBatches, FollowEpochs, make_dataset


def epochs_of(ds, epochs, batches_per_epoch):
    """The first `epochs` epochs of a shuffled pipeline: per epoch, its batches' sizes and
    the order of its inputs (which are their own indices)."""
    batches = list(ds.take(epochs * batches_per_epoch).as_numpy_iterator())
    return [([len(x) for x, _ in batches[e * batches_per_epoch:(e + 1) * batches_per_epoch]],
             np.concatenate([x for x, _ in batches[e * batches_per_epoch:(e + 1) *
                                                   batches_per_epoch]]).ravel().tolist())
            for e in range(epochs)]


def test_each_shuffled_epoch_is_a_new_permutation_in_whole_batches():
    tf = pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    ds = make_dataset(inputs, -inputs, batch_size=4, shuffle=True, seed=3)
    assert isinstance(ds, tf.data.Dataset)
    epochs = epochs_of(ds, 3, 3)
    assert [sizes for sizes, _ in epochs] == [[4, 4, 2]] * 3  # the last batch is an epoch's
    assert all(sorted(order) == list(range(10)) for _, order in epochs)
    assert len({tuple(order) for _, order in epochs} | {tuple(range(10))}) == 4
    x, y = next(iter(ds))
    np.testing.assert_array_equal(y, -x)


def test_an_epochs_order_depends_on_the_seed_and_the_epoch_alone():
    """What makes a resumed run, and one on several replicas (whose Keras makes one more
    iterator), see the orders of an uninterrupted one-device run."""
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    ds = make_dataset(inputs, inputs, batch_size=4, shuffle=True, seed=3)
    from_start = epochs_of(ds, 4, 3)
    assert epochs_of(ds, 4, 3) == from_start  # a second iterator starts over
    resumed = make_dataset(inputs, inputs, batch_size=4, shuffle=True, seed=3, first_epoch=2)
    assert epochs_of(resumed, 2, 3) == from_start[2:]
    other_seed = make_dataset(inputs, inputs, batch_size=4, shuffle=True, seed=4)
    assert epochs_of(other_seed, 1, 3) != from_start[:1]


def test_make_dataset_keeps_the_order_without_shuffling():
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    batches = list(make_dataset(inputs, inputs, batch_size=2).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), inputs)


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_make_dataset_rejects_bad_batch_sizes(batch_size):
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    with pytest.raises(ValueError, match=f"batch_size to be an integer >= 1. Received {batch_size!r}"):
        make_dataset(np.zeros((2, 1, 1, 1)), np.zeros((2, 1, 1, 1)), batch_size=batch_size)


def test_without_tensorflow_it_says_what_works_instead(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed
    with pytest.raises(ImportError, match="needs TensorFlow. On other backends pass the arrays"):
        make_dataset(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 1)))


def _epoch(batches):
    """The (inputs, targets) batches of an EpochBatches' current epoch."""
    return [batches[i] for i in range(len(batches))]


def test_epoch_batches_show_every_pair_once_an_epoch_in_that_epochs_own_order():
    inputs = np.arange(10, dtype="float32").reshape(10, 1, 1, 1)
    batches = EpochBatches(inputs, -inputs, batch_size=4, seed=3)
    follow = FollowEpochs(batches)
    epochs = []
    for epoch in range(3):
        follow.on_epoch_begin(epoch)
        epochs.append(_epoch(batches))
    for epoch in epochs:
        assert [len(x) for x, _ in epoch] == [4, 4, 2]  # the last batch is the smaller one
        seen = np.concatenate([x for x, _ in epoch]).ravel()
        assert sorted(seen) == list(range(10))
        assert all(np.array_equal(y, -x) for x, y in epoch)  # pairs stay pairs
    orders = [np.concatenate([x for x, _ in epoch]).ravel() for epoch in epochs]
    assert not np.array_equal(orders[0], orders[1])
    resumed = EpochBatches(inputs, -inputs, batch_size=4, seed=3, epoch=2)  # a resumed run
    assert np.array_equal(np.concatenate([x for x, _ in _epoch(resumed)]).ravel(), orders[2])
    other_seed = EpochBatches(inputs, -inputs, batch_size=4, seed=4, epoch=2)
    assert not np.array_equal(np.concatenate([x for x, _ in _epoch(other_seed)]).ravel(),
                              orders[2])


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_epoch_batches_refuse_a_batch_size_that_is_not_a_positive_integer(batch_size):
    with pytest.raises(ValueError, match=f"batch_size to be an integer >= 1. Received {batch_size!r}"):
        EpochBatches(np.zeros((4, 1, 1, 1)), np.zeros((4, 1, 1, 1)), batch_size, seed=0)
