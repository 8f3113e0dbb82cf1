"""Tests of the image sources, the (input, target) pairs, their cache and the tf.data
pipelines. Tiny images, nothing downloaded: STL-10 comes from a binary file the tests write
in its layout, or from tfds' mock data."""

import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from diffnet_tf import datasets, physics

SIDE = datasets.STL10_SIDE


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


def mock_stl10_rgb():
    builder = tfds.builder("stl10")
    ds = builder.as_dataset(split="unlabelled", shuffle_files=False)
    return np.stack([example["image"] for example in tfds.as_numpy(ds)])


@pytest.mark.parametrize("route", ["prepared", "manual"])
def test_stl10_through_tfds_matches_the_binary_route(tmp_path, route):
    tfds_dir = tmp_path / "tfds"
    marker = {"prepared": tfds_dir / "stl10" / "1.0.0" / "dataset_info.json",
              "manual": tfds_dir / "downloads" / "manual" / "stl10_binary.tar.gz"}[route]
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    with tfds.testing.mock_data(num_examples=20):
        rgb = mock_stl10_rgb()
        train = datasets.stl10_images("train", data_dir=tmp_path)
        test = datasets.stl10_images("test", data_dir=tmp_path)
    assert train.shape == (18, SIDE, SIDE, 1) and test.shape == (2, SIDE, SIDE, 1)
    np.testing.assert_allclose(np.concatenate([train, test]).max(axis=(1, 2, 3)), 1.0)
    write_stl10_binary(tmp_path / "binary", rgb)
    np.testing.assert_array_equal(train, datasets.stl10_images("train", tmp_path / "binary"))
    np.testing.assert_array_equal(test, datasets.stl10_images("test", tmp_path / "binary"))


# ---------------------------------------------------------------- pairs


def test_pm_pairs_come_from_the_physics(tmp_path):
    clean = datasets.synthetic_images(4, size=16)
    inputs, targets = datasets.make_pairs("pm_inverse", n=4, size=16, data_dir=tmp_path,
                                          verbose=0)
    np.testing.assert_array_equal(targets, clean)
    np.testing.assert_allclose(inputs, physics.perona_malik(clean), atol=1e-6)
    inputs, targets = datasets.make_pairs("pm_forward", n=4, size=16, boundary="original",
                                          steps=2, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(inputs, clean)
    expected = physics.perona_malik(clean, steps=2, boundary="original")
    np.testing.assert_allclose(targets, expected, atol=1e-6)


def test_heat_pairs_blur_discs(tmp_path):
    inputs, targets = datasets.make_pairs("heat_inverse", "test", n=3, size=16,
                                          data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, datasets.discs(3, 16, start=90_000))
    np.testing.assert_allclose(inputs, physics.heat(targets, t=1.0), atol=1e-6)


def test_disc_pairs_are_cached_per_max_discs(tmp_path):
    one, four = (datasets.make_pairs("heat_inverse", n=8, size=16, max_discs=m,
                                     data_dir=tmp_path, verbose=0)[1] for m in (1, 4))
    np.testing.assert_array_equal(one, datasets.discs(8, 16, max_discs=1))
    np.testing.assert_array_equal(four, datasets.discs(8, 16, max_discs=4))
    assert len(list((tmp_path / "cache").iterdir())) == 2 and not np.array_equal(one, four)


def test_max_discs_is_refused_for_other_sources(tmp_path):
    with pytest.raises(ValueError, match="max_discs applies to dataset='discs' only"):
        datasets.make_pairs("pm_inverse", n=2, size=16, max_discs=4, data_dir=tmp_path)


def test_stl10_pairs_and_their_cache(tmp_path, monkeypatch):
    write_stl10_binary(tmp_path, tagged_images(20))
    kwargs = dict(dataset="stl10", noise=0.01, data_dir=tmp_path, verbose=0)
    inputs, targets = datasets.make_pairs("pm_inverse", "test", **kwargs)  # the whole split
    np.testing.assert_array_equal(targets, datasets.stl10_images("test", tmp_path))
    train = datasets.make_pairs("pm_inverse", "train", n=2, **kwargs)
    noise = [pair[0] - physics.perona_malik(pair[1]).numpy() for pair in (train, (inputs, targets))]
    assert not np.allclose(noise[0], noise[1], atol=1e-3)  # train and test noise differ
    monkeypatch.setattr(datasets, "_generate", None)  # from now on only the cache answers
    cached = datasets.make_pairs("pm_inverse", "test", **kwargs)
    for got, expected in zip(cached, (inputs, targets)):
        np.testing.assert_array_equal(got, expected)


def test_paper_default_sizes_of_the_disc_splits(tmp_path):
    train = datasets.make_pairs("heat_inverse", size=8, data_dir=tmp_path, verbose=0)[0]
    test = datasets.make_pairs("heat_inverse", "test", size=8, data_dir=tmp_path, verbose=0)[0]
    assert (len(train), len(test)) == (1024, 128)


def test_train_and_test_images_are_disjoint(tmp_path):
    train = datasets.make_pairs("pm_inverse", "train", n=5, size=16, data_dir=tmp_path,
                                verbose=0)[1]
    test = datasets.make_pairs("pm_inverse", "test", n=5, size=16, data_dir=tmp_path,
                               verbose=0)[1]
    np.testing.assert_array_equal(test, datasets.synthetic_images(5, 16, start=90_000))
    assert not {image.tobytes() for image in train} & {image.tobytes() for image in test}


def test_noise_is_seeded_per_image_with_sigma_relative_to_the_maximum(tmp_path):
    kwargs = dict(size=32, noise=0.01, cache=False, verbose=0, data_dir=tmp_path)
    inputs, targets = datasets.make_pairs("pm_inverse", n=6, seed=5, **kwargs)
    clean = physics.perona_malik(targets).numpy()
    residual = (inputs - clean)[..., 0]
    sigma = 0.01 * clean.max(axis=(1, 2, 3))
    np.testing.assert_allclose(residual.std(axis=(1, 2)), sigma, rtol=0.1)
    np.testing.assert_allclose(inputs[:4], datasets.make_pairs("pm_inverse", n=4, seed=5,
                                                               **kwargs)[0], atol=1e-6)
    assert not np.allclose(inputs, datasets.make_pairs("pm_inverse", n=6, seed=6, **kwargs)[0])


def test_pairs_from_images_batches_in_padded_chunks(monkeypatch):
    monkeypatch.setattr(datasets, "CHUNK", 3)
    images = datasets.synthetic_images(7, size=16)
    inputs, targets = datasets.pairs_from_images(images, "pm_forward", noise=0.001, seed=2)
    np.testing.assert_array_equal(images, datasets.synthetic_images(7, size=16))  # untouched
    np.testing.assert_allclose(targets, physics.perona_malik(images), atol=1e-6)
    tail = datasets.pairs_from_images(images[5:], "pm_forward", noise=0.001, seed=2, start=5)
    np.testing.assert_allclose(inputs[5:], tail[0], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"problem": "pm_backward"}, "Unknown problem"), ({"split": "val"}, "Unknown split"),
     ({"dataset": "mnist"}, "Unknown dataset"), ({"n": 90_001}, "n <= 90000"),
     ({"n": -1}, "non-negative"), ({"noise": -0.1}, "noise level"),
     ({"dt": 0.3}, "Unstable"), ({"boundary": "periodic"}, "Unknown boundary"),
     ({"dataset": "stl10", "size": 32}, "96x96"), ({"size": 5}, "size >= 8"),
     ({"problem": "heat_inverse", "t": -1.0}, "diffusion time")],
)
def test_make_pairs_rejects_bad_arguments(tmp_path, kwargs, match):
    kwargs = {"problem": "pm_inverse", "n": 2, "size": 16, **kwargs}
    with pytest.raises(ValueError, match=match):
        datasets.make_pairs(data_dir=tmp_path, verbose=0, **kwargs)


def test_pairs_from_images_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        datasets.pairs_from_images(np.zeros((2, 16, 16, 3), np.float32))


# ---------------------------------------------------------------- cache


def cache_files(root):
    return sorted((root / "cache").glob("*")) if (root / "cache").exists() else []


def test_cache_is_written_once_and_serves_smaller_requests(tmp_path, monkeypatch):
    kwargs = dict(size=16, noise=0.01, data_dir=tmp_path, verbose=0)
    first = datasets.make_pairs("pm_inverse", n=6, **kwargs)
    (path,) = cache_files(tmp_path)
    assert path.suffix == ".npz"

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although cached")

    monkeypatch.setattr(datasets, "_generate", no_generation)
    for n in (6, 3):
        for got, expected in zip(datasets.make_pairs("pm_inverse", n=n, **kwargs), first):
            np.testing.assert_array_equal(got, expected[:n])
    monkeypatch.undo()
    other = datasets.make_pairs("pm_inverse", n=6, **{**kwargs, "noise": 0.02})
    assert len(cache_files(tmp_path)) == 2 and not np.array_equal(other[0], first[0])
    bigger = datasets.make_pairs("pm_inverse", n=8, **kwargs)  # regenerates, replaces
    np.testing.assert_allclose(bigger[0][:6], first[0], atol=1e-6)
    assert len(cache_files(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_cache_is_detected_and_regenerated(tmp_path, damage):
    kwargs = dict(n=4, size=16, data_dir=tmp_path, verbose=0)
    expected = datasets.make_pairs("pm_forward", **kwargs)
    (path,) = cache_files(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # one changed pixel deep inside the arrays: the zip still opens
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="Corrupted cache file"):
        got = datasets.make_pairs("pm_forward", **kwargs)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert datasets._load_cache(path) is not None  # rewritten, valid again


def test_interrupted_generation_leaves_no_cache_file(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CHUNK", 2)
    calls = []

    def interrupted(clean, problem, params):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return clean

    monkeypatch.setattr(datasets, "_solve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        datasets.make_pairs("pm_inverse", n=5, size=16, data_dir=tmp_path, verbose=0)
    assert cache_files(tmp_path) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        datasets.make_pairs("pm_inverse", n=2, size=16, data_dir=tmp_path, verbose=0)
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------- tf.data


def dataset_arrays(ds):
    batches = list(ds.as_numpy_iterator())
    return [np.concatenate([batch[k] for batch in batches]) for k in (0, 1)], batches


def test_make_dataset_batches_and_shuffles_with_a_seed(tmp_path):
    kwargs = dict(n=10, batch_size=4, size=16, data_dir=tmp_path, verbose=0)
    inputs, targets = datasets.make_pairs("pm_inverse", "train", **{
        k: v for k, v in kwargs.items() if k != "batch_size"})
    ds = datasets.make_dataset("pm_inverse", "train", shuffle_seed=3, **kwargs)
    assert ds.element_spec[0].shape.as_list() == [None, 16, 16, 1]
    (x, y), batches = dataset_arrays(ds)
    assert [len(batch[0]) for batch in batches] == [4, 4, 2]
    order = [int(np.flatnonzero((targets == image).all(axis=(1, 2, 3)))[0]) for image in y]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    np.testing.assert_array_equal(x, inputs[order])
    (x_again, _), _ = dataset_arrays(datasets.make_dataset("pm_inverse", "train",
                                                           shuffle_seed=3, **kwargs))
    np.testing.assert_array_equal(x, x_again)
    (x_test, y_test), _ = dataset_arrays(datasets.make_dataset("pm_inverse", "test", **kwargs))
    np.testing.assert_array_equal(y_test, datasets.synthetic_images(10, 16, start=90_000))
    assert isinstance(ds, tf.data.Dataset)


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_make_dataset_rejects_bad_batch_sizes(tmp_path, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        datasets.make_dataset("pm_inverse", n=2, size=16, batch_size=batch_size,
                              data_dir=tmp_path, verbose=0)
