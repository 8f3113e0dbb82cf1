"""Tests of the image sources, the (input, target) pairs, their cache and a run's data.
Tiny images, nothing downloaded: STL-10 comes from a binary file the tests write in its
layout, or from tfds' mock data (TensorFlow only)."""

import dataclasses
import sys
import time

import numpy as np
import pytest
from keras import ops

from diffnet_tf import datasets, physics, protocols, spec

SIDE = protocols.STL10_SIDE


def pm_data(**overrides):
    """The Sect. 5.2 data on small synthetic images, with overrides."""
    values = dict(source="synthetic", image_size=16, train_size=8, val_size=2, test_size=4)
    return dataclasses.replace(spec.preset("perona_malik").data, **{**values, **overrides})


def disc_data(**overrides):
    values = dict(image_size=16, train_size=8, val_size=2, test_size=4)
    return dataclasses.replace(spec.preset("deconvolution").data, **{**values, **overrides})


def physics_of(data, clean):
    """The diffused images of `data`'s physics, straight from diffnet_tf.physics."""
    if data.heat_time is not None:
        return ops.convert_to_numpy(physics.heat(clean, data.heat_time))
    return ops.convert_to_numpy(physics.perona_malik(
        clean, data.pm_steps, data.pm_dt, data.pm_lambda, data.pm_convention,
        data.pm_diffusivity, data.pm_coupling))


def write_stl10_binary(root, rgb):
    """Writes (N, 96, 96, 3) uint8 images as STL-10 does: per image the three channels, each
    in column-major (Fortran) order."""
    path = root / "stl10_binary" / "unlabeled_X.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as file:
        for image in rgb:
            for channel in range(3):
                file.write(image[:, :, channel].tobytes(order="F"))
    return path


def tagged_images(count):
    """Images with an upright pattern (a red block 10 rows x 30 columns at the top left), a
    green pixel (the brightest grey) and a blue tag pixel whose column is the image's id."""
    rgb = np.zeros((count, SIDE, SIDE, 3), np.uint8)
    rgb[:, :10, :30, 0] = 200
    rgb[:, 50, 60, 1] = 255
    for i in range(count):
        rgb[i, 90, i, 2] = 255
    return rgb


def image_ids(grey):
    return [int(np.argmax(image[90, :, 0])) for image in grey]


# ---------------------------------------------------------------- synthetic and discs


def test_stl10_binary_reads_upright_grey_images_split_90_10(tmp_path):
    rgb = tagged_images(20)
    write_stl10_binary(tmp_path, rgb)
    train = datasets.stl10_images("train", data_dir=tmp_path)
    test = datasets.stl10_images("test", data_dir=str(tmp_path))
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
    np.testing.assert_array_equal(train, datasets.stl10_images("train", data_dir=tmp_path))
    np.testing.assert_array_equal(train[:5], datasets.stl10_images("train", tmp_path, n=5))


def test_stl10_split_does_not_depend_on_the_file_order(tmp_path):
    rgb = tagged_images(20)
    write_stl10_binary(tmp_path / "a", rgb)
    write_stl10_binary(tmp_path / "b", rgb[::-1])
    for split in datasets.SPLITS:
        np.testing.assert_array_equal(datasets.stl10_images(split, tmp_path / "a"),
                                      datasets.stl10_images(split, tmp_path / "b"))


def test_stl10_rejects_a_truncated_binary_file(tmp_path):
    path = write_stl10_binary(tmp_path, tagged_images(2))
    with open(path, "r+b") as file:
        file.truncate(3 * SIDE * SIDE + 100)
    with pytest.raises(ValueError, match="truncated"):
        datasets.stl10_images("train", data_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [({"split": "validation"}, "Unknown split"),
                                           ({"split": "train", "n": 19}, "n <= 18")])
def test_stl10_rejects_bad_arguments(tmp_path, kwargs, match):
    write_stl10_binary(tmp_path, tagged_images(20))
    with pytest.raises(ValueError, match=match):
        datasets.stl10_images(data_dir=tmp_path, **kwargs)


def test_stl10_without_any_source_fails_fast_naming_the_routes(tmp_path):
    begin = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        datasets.stl10_images("train", data_dir=tmp_path)
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
def test_stl10_through_tfds_matches_the_binary_route(tmp_path, route):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds routes need tfds and TF")
    tfds_dir = tmp_path / "tfds"
    marker = {"prepared": tfds_dir / "stl10" / "1.0.0" / "dataset_info.json",
              "manual": tfds_dir / "downloads" / "manual" / "stl10_binary.tar.gz"}[route]
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    with tfds.testing.mock_data(num_examples=20):
        rgb = mock_stl10_rgb(tfds)
        train = datasets.stl10_images("train", data_dir=tmp_path)
        test = datasets.stl10_images("test", data_dir=tmp_path)
    assert train.shape == (18, SIDE, SIDE, 1) and test.shape == (2, SIDE, SIDE, 1)
    np.testing.assert_allclose(np.concatenate([train, test]).max(axis=(1, 2, 3)), 1.0)
    write_stl10_binary(tmp_path / "binary", rgb)
    np.testing.assert_array_equal(train, datasets.stl10_images("train", tmp_path / "binary"))
    np.testing.assert_array_equal(test, datasets.stl10_images("test", tmp_path / "binary"))


def test_stl10_in_colour_keeps_rgb_scaled_to_max_one_over_its_channels(tmp_path):
    rgb = tagged_images(20)
    write_stl10_binary(tmp_path, rgb)
    colour = datasets.stl10_images("train", tmp_path, channels=3)
    grey = datasets.stl10_images("train", tmp_path)
    assert colour.shape == (18, SIDE, SIDE, 3)
    np.testing.assert_allclose(colour.max(axis=(1, 2, 3)), 1.0)
    np.testing.assert_allclose(colour[:, :10, :30, 0], 200 / 255, rtol=1e-6)  # red block
    # the same images in the same order: grey is the luma of the colour, rescaled
    luma = colour @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    np.testing.assert_allclose(grey[..., 0], luma / luma.max(axis=(1, 2), keepdims=True), atol=1e-6)


# ---------------------------------------------------------------- pairs


def test_pm_pairs_come_from_the_physics(tmp_path):
    data = pm_data()
    clean = datasets.synthetic_images(4, size=16)
    inputs, targets = datasets.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, clean)
    np.testing.assert_allclose(inputs, physics_of(data, clean), atol=1e-6)
    data = pm_data(problem="pm_forward", pm_convention="original", pm_steps=2)
    inputs, targets = datasets.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(inputs, clean)
    np.testing.assert_allclose(targets, physics_of(data, clean), atol=1e-6)


def test_heat_pairs_blur_discs(tmp_path):
    inputs, targets = datasets.make_pairs(disc_data(), "test", n=3, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, datasets.discs(3, 16, start=90_000))
    np.testing.assert_allclose(inputs, physics.heat(targets, t=1.0), atol=1e-6)


def test_disc_pairs_are_cached_per_max_discs(tmp_path):
    one, four = (datasets.make_pairs(disc_data(max_discs=m), n=8, data_dir=tmp_path,
                                     verbose=0)[1] for m in (1, 4))
    np.testing.assert_array_equal(one, datasets.discs(8, 16, max_discs=1))
    np.testing.assert_array_equal(four, datasets.discs(8, 16, max_discs=4))
    assert len(list((tmp_path / "cache").iterdir())) == 2 and not np.array_equal(one, four)


def test_colour_pairs_use_colour_images_and_shared_perona_malik(tmp_path):
    data = pm_data(channels=3, pm_coupling="shared")
    inputs, targets = datasets.make_pairs(data, n=3, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, datasets.synthetic_images(3, 16, channels=3))
    np.testing.assert_allclose(inputs, physics_of(data, targets), atol=1e-6)


def test_stl10_pairs_and_their_cache(tmp_path, monkeypatch, capsys):
    write_stl10_binary(tmp_path, tagged_images(20))
    data = pm_data(source="stl10", image_size=SIDE, noise=0.01)
    kwargs = dict(data_dir=tmp_path, verbose=2)
    inputs, targets = datasets.make_pairs(data, "test", **kwargs)  # the whole split
    assert capsys.readouterr().out.startswith("Making 2 test pairs (pm_inverse, stl10)")
    np.testing.assert_array_equal(targets, datasets.stl10_images("test", tmp_path))
    train = datasets.make_pairs(data, "train", n=2, **kwargs)
    noise = [pair[0] - physics_of(data, pair[1]) for pair in (train, (inputs, targets))]
    assert not np.allclose(noise[0], noise[1], atol=1e-3)  # train and test noise differ
    monkeypatch.setattr(datasets, "_generate", None)  # from now on only the cache answers
    capsys.readouterr()
    cached = datasets.make_pairs(data, "test", **kwargs)
    assert capsys.readouterr().out == ""  # nothing made, nothing said
    for got, expected in zip(cached, (inputs, targets)):
        np.testing.assert_array_equal(got, expected)


def test_whole_disc_splits_hold_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(protocols, "POOL_SIZE", 50)
    train = datasets.make_pairs(disc_data(image_size=8), data_dir=tmp_path, verbose=0)[0]
    test = datasets.make_pairs(disc_data(image_size=8), "test", data_dir=tmp_path, verbose=0)[0]
    assert (len(train), len(test)) == (45, 5)


def test_train_and_test_images_are_disjoint(tmp_path):
    train = datasets.make_pairs(pm_data(), "train", n=5, data_dir=tmp_path, verbose=0)[1]
    test = datasets.make_pairs(pm_data(), "test", n=5, data_dir=tmp_path, verbose=0)[1]
    np.testing.assert_array_equal(test, datasets.synthetic_images(5, 16, start=90_000))
    assert not {image.tobytes() for image in train} & {image.tobytes() for image in test}


def test_noise_is_seeded_per_image_with_sigma_relative_to_the_maximum(tmp_path):
    kwargs = dict(cache=False, verbose=0, data_dir=tmp_path)
    data = pm_data(image_size=32, noise=0.01, seed=5)
    inputs, targets = datasets.make_pairs(data, n=6, **kwargs)
    clean = physics_of(data, targets)
    residual = (inputs - clean)[..., 0]
    sigma = 0.01 * clean.max(axis=(1, 2, 3))
    np.testing.assert_allclose(residual.std(axis=(1, 2)), sigma, rtol=0.1)
    np.testing.assert_allclose(inputs[:4], datasets.make_pairs(data, n=4, **kwargs)[0], atol=1e-6)
    other_seed = dataclasses.replace(data, seed=6)
    assert not np.allclose(inputs, datasets.make_pairs(other_seed, n=6, **kwargs)[0])


def test_pairs_from_images_batches_in_padded_chunks(monkeypatch):
    monkeypatch.setattr(datasets, "CHUNK", 3)
    data = pm_data(problem="pm_forward", noise=0.001, seed=2)
    images = datasets.synthetic_images(7, size=16)
    inputs, targets = datasets.pairs_from_images(images, data)
    np.testing.assert_array_equal(images, datasets.synthetic_images(7, size=16))  # untouched
    np.testing.assert_allclose(targets, physics_of(data, images), atol=1e-6)
    tail = datasets.pairs_from_images(images[5:], data, start=5)
    np.testing.assert_allclose(inputs[5:], tail[0], atol=1e-6)


def test_run_pairs_split_validation_from_the_test_head_or_the_train_tail(tmp_path):
    head = datasets.run_pairs(pm_data(val_size=3), tmp_path, verbose=0)
    train = datasets.make_pairs(pm_data(), "train", n=11, data_dir=tmp_path, verbose=0)
    test = datasets.make_pairs(pm_data(), "test", n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(head.train[0], train[0][:8])
    np.testing.assert_array_equal(head.validation[1], test[1][:3])
    np.testing.assert_array_equal(head.test[1], test[1])
    tail = datasets.run_pairs(pm_data(val_size=3, validation="train_tail"), tmp_path, verbose=0)
    np.testing.assert_array_equal(tail.validation[1], train[1][8:11])  # never test images
    np.testing.assert_array_equal(tail.train[1], train[1][:8])
    pools = (tuple(a[:11] for a in train), test)
    given = datasets.run_pairs(pm_data(val_size=3, validation="train_tail"), pools=pools)
    np.testing.assert_array_equal(given.validation[0], tail.validation[0])
    with pytest.raises(ValueError, match="train pool of at least 11 pairs. Received 10"):
        datasets.run_pairs(pm_data(val_size=3, validation="train_tail"),
                           pools=(tuple(a[:10] for a in train), test))


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "Unknown split"),
                                           ({"n": 90_001}, "n <= 90000"),
                                           ({"n": -1}, "non-negative")])
def test_make_pairs_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.make_pairs(pm_data(), data_dir=tmp_path, verbose=0, **{"n": 2, **kwargs})


@pytest.mark.parametrize("make_dir, match", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "sub", "is a file"),
])
def test_make_pairs_rejects_a_data_dir_that_is_a_file_before_any_work(tmp_path, make_dir,
                                                                      monkeypatch, match):
    monkeypatch.setattr(datasets, "_generate", None)  # would fail if reached
    with pytest.raises(ValueError, match=f"data folder .*{match}"):
        datasets.make_pairs(pm_data(), n=2, data_dir=make_dir(tmp_path), verbose=0)


def test_pairs_from_images_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        datasets.pairs_from_images(np.zeros((2, 16, 16, 3), np.float32), pm_data())


# ---------------------------------------------------------------- cache


def cache_files(root):
    return sorted((root / "cache").glob("*")) if (root / "cache").exists() else []


def test_cache_is_written_once_and_serves_smaller_requests(tmp_path, monkeypatch):
    data = pm_data(noise=0.01)
    first = datasets.make_pairs(data, n=6, data_dir=tmp_path, verbose=0)
    (path,) = cache_files(tmp_path)
    assert path.suffix == ".npz"

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although cached")

    monkeypatch.setattr(datasets, "_generate", no_generation)
    for n in (6, 3):
        for got, expected in zip(datasets.make_pairs(data, n=n, data_dir=tmp_path, verbose=0),
                                 first):
            np.testing.assert_array_equal(got, expected[:n])
    # the run's sizes are not part of the key: another train_size reads the same file
    datasets.make_pairs(dataclasses.replace(data, train_size=5), n=6, data_dir=tmp_path,
                        verbose=0)
    monkeypatch.undo()
    other = datasets.make_pairs(dataclasses.replace(data, noise=0.02), n=6, data_dir=tmp_path,
                                verbose=0)
    assert len(cache_files(tmp_path)) == 2 and not np.array_equal(other[0], first[0])
    bigger = datasets.make_pairs(data, n=8, data_dir=tmp_path, verbose=0)  # regenerates
    np.testing.assert_allclose(bigger[0][:6], first[0], atol=1e-6)
    assert len(cache_files(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_cache_is_detected_and_regenerated(tmp_path, damage):
    data = pm_data(problem="pm_forward")
    expected = datasets.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    (path,) = cache_files(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:  # one changed pixel deep inside the arrays: the zip still opens
        raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="Corrupted cache file"):
        got = datasets.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert datasets._load_cache(path) is not None  # rewritten, valid again


def test_interrupted_generation_leaves_no_cache_file(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CHUNK", 2)
    calls = []

    def interrupted(data):
        def solve(clean):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return clean
        return solve

    monkeypatch.setattr(datasets, "_solver", interrupted)
    with pytest.raises(KeyboardInterrupt):
        datasets.make_pairs(pm_data(), n=5, data_dir=tmp_path, verbose=0)
    assert cache_files(tmp_path) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        datasets.make_pairs(pm_data(), n=2, data_dir=tmp_path, verbose=0)
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------- tf.data


def test_make_dataset_batches_and_shuffles_with_a_seed():
    tf = pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    inputs = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    ds = datasets.make_dataset(inputs, -inputs, batch_size=4, shuffle=True, seed=3)
    assert isinstance(ds, tf.data.Dataset)
    batches = list(ds.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    order = np.concatenate([x for x, _ in batches]).ravel()
    assert sorted(order) == list(range(10)) and list(order) != list(range(10))
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]).ravel(), -order)
    again = np.concatenate([x for x, _ in datasets.make_dataset(
        inputs, -inputs, batch_size=4, shuffle=True, seed=3).as_numpy_iterator()]).ravel()
    np.testing.assert_array_equal(order, again)


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_make_dataset_rejects_bad_batch_sizes(batch_size):
    pytest.importorskip("tensorflow", reason="make_dataset is a tf.data pipeline")
    with pytest.raises(ValueError, match="batch_size"):
        datasets.make_dataset(np.zeros((2, 1, 1, 1)), np.zeros((2, 1, 1, 1)), batch_size=batch_size)


def test_the_tensorflow_only_routes_say_what_to_install_and_what_else_works(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    manual = tmp_path / "tfds" / "downloads" / "manual" / "stl10_binary.tar.gz"
    manual.parent.mkdir(parents=True)
    manual.write_bytes(b"")
    with pytest.raises(ImportError, match="need tensorflow-datasets and TensorFlow.*unlabeled_X.bin"):
        datasets.stl10_images("train", data_dir=tmp_path)
    with pytest.raises(ImportError, match="needs TensorFlow. On other backends pass the arrays"):
        datasets.make_dataset(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 1)))
