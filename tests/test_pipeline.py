"""The tf.data pipeline of training (TensorFlow only): batches, seeded shuffling, errors."""

import sys

import numpy as np
import pytest

from diffnet_tf.pipeline import make_dataset


def test_make_dataset_batches_and_shuffles_with_a_seed():
    tf = pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    ds = make_dataset(inputs, -inputs, batch_size=4, shuffle=True, seed=3)
    assert isinstance(ds, tf.data.Dataset)
    batches = list(ds.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    order = np.concatenate([x for x, _ in batches]).ravel()
    assert sorted(order) == list(range(10)) and list(order) != list(range(10))
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]).ravel(), -order)
    again = np.concatenate([x for x, _ in make_dataset(
        inputs, -inputs, batch_size=4, shuffle=True, seed=3).as_numpy_iterator()]).ravel()
    np.testing.assert_array_equal(order, again)


def test_make_dataset_keeps_the_order_without_shuffling():
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    batches = list(make_dataset(inputs, inputs, batch_size=2).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), inputs)


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_make_dataset_rejects_bad_batch_sizes(batch_size):
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    with pytest.raises(ValueError, match=f"positive integer batch_size. Received {batch_size!r}"):
        make_dataset(np.zeros((2, 1, 1, 1)), np.zeros((2, 1, 1, 1)), batch_size=batch_size)


def test_without_tensorflow_it_says_what_works_instead(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed
    with pytest.raises(ImportError, match="needs TensorFlow. On other backends pass the arrays"):
        make_dataset(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 1)))
