"""The STL-10 images: the binary route, the tfds routes (tfds' mock data, TensorFlow only),
grey and colour, the 90 / 10 split by content and the errors. Nothing is downloaded."""

import sys
import time

import numpy as np
import pytest

from diffnet_tf import protocols
from diffnet_tf.stl10 import stl10_images
from stl10_files import SIDE, image_ids, tagged_images, write_stl10_binary


def test_binary_file_reads_upright_grey_images_split_90_10(tmp_path):
    write_stl10_binary(tmp_path, tagged_images(20))
    train = stl10_images("train", data_dir=tmp_path)
    test = stl10_images("test", data_dir=str(tmp_path))
    assert train.shape == (18, SIDE, SIDE, 1) and test.shape == (2, SIDE, SIDE, 1)
    assert train.dtype == np.float32
    brightest = 0.5870 * 255  # green, rgb2gray's weights
    for image in np.concatenate([train, test])[..., 0]:
        assert image.max() == 1
        np.testing.assert_allclose(image[:10, :30], 0.2989 * 200 / brightest, rtol=1e-5)
        assert image[10:, :].max() <= 1 and image[:10, 30:].max() == 0  # not transposed
        np.testing.assert_allclose(image[90, :].max(), 0.1140 * 255 / brightest, rtol=1e-5)
    train_ids, test_ids = image_ids(train), image_ids(test)
    assert sorted(train_ids + test_ids) == list(range(20))  # disjoint, nothing lost
    np.testing.assert_array_equal(train, stl10_images("train", data_dir=tmp_path))
    np.testing.assert_array_equal(train[:5], stl10_images("train", tmp_path, n=5))


def test_split_does_not_depend_on_the_file_order(tmp_path):
    rgb = tagged_images(20)
    write_stl10_binary(tmp_path / "a", rgb)
    write_stl10_binary(tmp_path / "b", rgb[::-1])
    for split in protocols.SPLITS:
        np.testing.assert_array_equal(stl10_images(split, tmp_path / "a"),
                                      stl10_images(split, tmp_path / "b"))


def test_rejects_a_truncated_binary_file(tmp_path):
    path = write_stl10_binary(tmp_path, tagged_images(2))
    with open(path, "r+b") as file:
        file.truncate(3 * SIDE * SIDE + 100)
    with pytest.raises(ValueError, match="truncated"):
        stl10_images("train", data_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [({"split": "validation"}, "Unknown split"),
                                           ({"split": "train", "n": 19}, "n <= 18"),
                                           ({"split": "train", "channels": 2}, "channels")])
def test_rejects_bad_arguments(tmp_path, kwargs, match):
    write_stl10_binary(tmp_path, tagged_images(20))
    with pytest.raises(ValueError, match=match):
        stl10_images(data_dir=tmp_path, **kwargs)


def test_without_any_source_fails_fast_naming_the_routes(tmp_path):
    begin = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        stl10_images("train", data_dir=tmp_path)
    assert time.monotonic() - begin < 10
    message = str(error.value)
    for expected in ("unlabeled_X.bin", "prepared", "stl10_binary.tar.gz", "manual",
                     "download=True", "--dataset=synthetic"):
        assert expected in message


def mock_stl10_rgb(tfds):
    builder = tfds.builder("stl10")
    ds = builder.as_dataset(split="unlabelled", shuffle_files=False)
    return np.stack([example["image"] for example in tfds.as_numpy(ds)])


@pytest.mark.parametrize("route", ["prepared", "manual"])
def test_tfds_routes_match_the_binary_route(tmp_path, route):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds routes need tfds and TF")
    tfds_dir = tmp_path / "tfds"
    marker = {"prepared": tfds_dir / "stl10" / "1.0.0" / "dataset_info.json",
              "manual": tfds_dir / "downloads" / "manual" / "stl10_binary.tar.gz"}[route]
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    with tfds.testing.mock_data(num_examples=20):
        rgb = mock_stl10_rgb(tfds)
        train = stl10_images("train", data_dir=tmp_path)
        test = stl10_images("test", data_dir=tmp_path)
    assert train.shape == (18, SIDE, SIDE, 1) and test.shape == (2, SIDE, SIDE, 1)
    np.testing.assert_allclose(np.concatenate([train, test]).max(axis=(1, 2, 3)), 1.0)
    write_stl10_binary(tmp_path / "binary", rgb)
    np.testing.assert_array_equal(train, stl10_images("train", tmp_path / "binary"))
    np.testing.assert_array_equal(test, stl10_images("test", tmp_path / "binary"))


def test_colour_keeps_rgb_scaled_to_max_one_over_its_channels(tmp_path):
    write_stl10_binary(tmp_path, tagged_images(20))
    colour = stl10_images("train", tmp_path, channels=3)
    grey = stl10_images("train", tmp_path)
    assert colour.shape == (18, SIDE, SIDE, 3)
    np.testing.assert_allclose(colour.max(axis=(1, 2, 3)), 1.0)
    np.testing.assert_allclose(colour[:, :10, :30, 0], 200 / 255, rtol=1e-6)  # red block
    # the same images in the same order: grey is the luma of the colour, rescaled
    luma = colour @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    np.testing.assert_allclose(grey[..., 0], luma / luma.max(axis=(1, 2), keepdims=True), atol=1e-6)


def test_the_tfds_routes_without_tfds_say_what_to_install_and_what_else_works(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    manual = tmp_path / "tfds" / "downloads" / "manual" / "stl10_binary.tar.gz"
    manual.parent.mkdir(parents=True)
    manual.write_bytes(b"")
    with pytest.raises(ImportError, match="need tensorflow-datasets and TensorFlow.*unlabeled_X"):
        stl10_images("train", data_dir=tmp_path)
