"""(input, target) pairs from each source through the physics, their noise, the split, the
cache as make_pairs uses it, and a run's pairs. Tiny images; STL-10 from a binary file the
tests write."""

import dataclasses
import logging

import numpy as np
import pytest
from keras import ops

from diffnet_tf import pair_cache, pairs, physics, protocols, spec
from diffnet_tf.stl10 import stl10_images
from diffnet_tf.synthetic import disc_images, synthetic_images
from stl10_files import SIDE, tagged_images, write_stl10_binary


def pm_data(**overrides):
    """The Sect. 5.2 data on small synthetic images, with overrides."""
    values = dict(source="synthetic", image_size=16, train_size=8, val_size=2, test_size=4)
    return dataclasses.replace(spec.protocol("perona_malik").data, **{**values, **overrides})


def disc_data(**overrides):
    values = dict(image_size=16, train_size=8, val_size=2, test_size=4)
    return dataclasses.replace(spec.protocol("deconvolution").data, **{**values, **overrides})


def physics_of(data, clean):
    """The diffused images of `data`'s physics, straight from diffnet_tf.physics."""
    if data.heat_time is not None:
        return ops.convert_to_numpy(physics.heat(clean, data.heat_time))
    return ops.convert_to_numpy(physics.perona_malik(
        clean, data.pm_steps, data.pm_dt, data.pm_lambda, data.pm_convention,
        data.pm_diffusivity, data.pm_coupling))


def cache_files(root):
    return sorted((root / "cache").glob("*.pairs")) if (root / "cache").exists() else []


def said(caplog):
    """The messages diffnet_tf.pairs logged."""
    return [r.getMessage() for r in caplog.records if r.name == "diffnet_tf.pairs"]


def no_generation(*args, **kwargs):
    raise AssertionError("generated although cached")


# ---------------------------------------------------------------- pairs of each source


def test_pm_pairs_come_from_the_physics(tmp_path):
    data = pm_data()
    clean = synthetic_images(4, size=16)
    inputs, targets = pairs.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, clean)
    np.testing.assert_allclose(inputs, physics_of(data, clean), atol=1e-6)
    data = pm_data(problem="pm_forward", pm_convention="original", pm_steps=2)
    inputs, targets = pairs.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(inputs, clean)
    np.testing.assert_allclose(targets, physics_of(data, clean), atol=1e-6)


def test_heat_pairs_blur_discs(tmp_path):
    inputs, targets = pairs.make_pairs(disc_data(), "test", n=3, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, disc_images(3, 16, start=90_000))
    np.testing.assert_allclose(inputs, physics.heat(targets, t=1.0), atol=1e-6)


def test_disc_pairs_are_cached_per_max_discs(tmp_path):
    one, four = (pairs.make_pairs(disc_data(max_discs=m), n=8, data_dir=tmp_path,
                                  verbose=0)[1] for m in (1, 4))
    np.testing.assert_array_equal(one, disc_images(8, 16, max_discs=1))
    np.testing.assert_array_equal(four, disc_images(8, 16, max_discs=4))
    assert len(cache_files(tmp_path)) == 2 and not np.array_equal(one, four)


def test_colour_pairs_use_colour_images_and_shared_perona_malik(tmp_path):
    data = pm_data(channels=3, pm_coupling="shared")
    inputs, targets = pairs.make_pairs(data, n=3, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(targets, synthetic_images(3, 16, channels=3))
    np.testing.assert_allclose(inputs, physics_of(data, targets), atol=1e-6)


def test_stl10_pairs_say_what_they_make_and_come_from_the_cache_after(tmp_path, monkeypatch,
                                                                      caplog):
    caplog.set_level(logging.INFO, logger="diffnet_tf")
    write_stl10_binary(tmp_path, tagged_images(20))
    data = pm_data(source="stl10", image_size=SIDE, noise=0.01)
    kwargs = dict(data_dir=tmp_path, verbose=2)
    inputs, targets = pairs.make_pairs(data, "test", **kwargs)  # the whole split
    assert said(caplog) == [f"Making 2 test pairs (pm_inverse, stl10), cached in "
                            f"{pair_cache.cache_path(tmp_path, data, 'test')}"]
    np.testing.assert_array_equal(targets, stl10_images("test", tmp_path))
    train = pairs.make_pairs(data, "train", n=2, **kwargs)
    noise = [pair[0] - physics_of(data, pair[1]) for pair in (train, (inputs, targets))]
    assert not np.allclose(noise[0], noise[1], atol=1e-3)  # train and test noise differ
    monkeypatch.setattr(pairs, "_generate", no_generation)  # from now on only the cache answers
    caplog.clear()
    cached = pairs.make_pairs(data, "test", **kwargs)
    assert said(caplog) == []  # nothing made, nothing said
    for got, expected in zip(cached, (inputs, targets)):
        np.testing.assert_array_equal(got, expected)


def test_silent_pairs_say_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="diffnet_tf")
    pairs.make_pairs(pm_data(), n=2, data_dir=tmp_path, verbose=0)
    assert said(caplog) == []


# ---------------------------------------------------------------- the split and the noise


def test_whole_disc_splits_hold_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(protocols, "POOL_SIZE", 50)
    train = pairs.make_pairs(disc_data(image_size=8), data_dir=tmp_path, verbose=0)[0]
    test = pairs.make_pairs(disc_data(image_size=8), "test", data_dir=tmp_path, verbose=0)[0]
    assert (len(train), len(test)) == (45, 5)


def test_train_and_test_images_are_disjoint(tmp_path):
    train = pairs.make_pairs(pm_data(), "train", n=5, data_dir=tmp_path, verbose=0)[1]
    test = pairs.make_pairs(pm_data(), "test", n=5, data_dir=tmp_path, verbose=0)[1]
    np.testing.assert_array_equal(test, synthetic_images(5, 16, start=90_000))
    assert not {image.tobytes() for image in train} & {image.tobytes() for image in test}


def test_noise_is_seeded_per_image_with_sigma_relative_to_the_maximum(tmp_path):
    kwargs = dict(cache=False, verbose=0, data_dir=tmp_path)
    data = pm_data(image_size=32, noise=0.01, seed=5)
    inputs, targets = pairs.make_pairs(data, n=6, **kwargs)
    clean = physics_of(data, targets)
    residual = (inputs - clean)[..., 0]
    sigma = 0.01 * clean.max(axis=(1, 2, 3))
    np.testing.assert_allclose(residual.std(axis=(1, 2)), sigma, rtol=0.1)
    np.testing.assert_allclose(inputs[:4], pairs.make_pairs(data, n=4, **kwargs)[0], atol=1e-6)
    other_seed = dataclasses.replace(data, seed=6)
    assert not np.allclose(inputs, pairs.make_pairs(other_seed, n=6, **kwargs)[0])
    assert cache_files(tmp_path) == []  # cache=False writes nothing


def test_pairs_from_images_batches_in_padded_chunks(monkeypatch):
    monkeypatch.setattr(pairs, "CHUNK", 3)
    data = pm_data(problem="pm_forward", noise=0.001, seed=2)
    images = synthetic_images(7, size=16)
    inputs, targets = pairs.pairs_from_images(images, data)
    np.testing.assert_array_equal(images, synthetic_images(7, size=16))  # untouched
    np.testing.assert_allclose(targets, physics_of(data, images), atol=1e-6)
    tail = pairs.pairs_from_images(images[5:], data, start=5)
    np.testing.assert_allclose(inputs[5:], tail[0], atol=1e-6)


def test_pairs_from_images_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        pairs.pairs_from_images(np.zeros((2, 16, 16, 3), np.float32), pm_data())


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "Unknown split"),
                                           ({"n": 90_001}, "n <= 90000"),
                                           ({"n": -1}, "integer >= 0")])
def test_make_pairs_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pairs.make_pairs(pm_data(), data_dir=tmp_path, verbose=0, **{"n": 2, **kwargs})


@pytest.mark.parametrize("make_dir, match", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "sub", "is a file"),
])
def test_make_pairs_rejects_a_data_dir_that_is_a_file_before_any_work(tmp_path, make_dir,
                                                                      monkeypatch, match):
    monkeypatch.setattr(pairs, "_generate", no_generation)
    with pytest.raises(ValueError, match=f"data folder .*{match}"):
        pairs.make_pairs(pm_data(), n=2, data_dir=make_dir(tmp_path), verbose=0)


# ---------------------------------------------------------------- make_pairs and the cache


def test_cache_is_written_once_and_serves_smaller_requests(tmp_path, monkeypatch):
    data = pm_data(noise=0.01)
    first = pairs.make_pairs(data, n=6, data_dir=tmp_path, verbose=0)
    (path,) = cache_files(tmp_path)
    assert path.suffix == ".pairs"
    monkeypatch.setattr(pairs, "_generate", no_generation)
    for n in (6, 3):
        for got, expected in zip(pairs.make_pairs(data, n=n, data_dir=tmp_path, verbose=0),
                                 first):
            np.testing.assert_array_equal(got, expected[:n])
    # the run's sizes are not part of the key: another train_size reads the same file
    pairs.make_pairs(dataclasses.replace(data, train_size=5), n=6, data_dir=tmp_path,
                     verbose=0)
    monkeypatch.undo()
    other = pairs.make_pairs(dataclasses.replace(data, noise=0.02), n=6, data_dir=tmp_path,
                             verbose=0)
    assert len(cache_files(tmp_path)) == 2 and not np.array_equal(other[0], first[0])
    bigger = pairs.make_pairs(data, n=8, data_dir=tmp_path, verbose=0)  # regenerates
    np.testing.assert_allclose(bigger[0][:6], first[0], atol=1e-6)
    assert len(cache_files(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupted_cache_is_regenerated(tmp_path, damage):
    data = pm_data(problem="pm_forward")
    expected = pairs.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    (path,) = cache_files(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:  # one changed pixel inside the arrays: the size and the header are whole
        raw[len(raw) - 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="Corrupted cache file"):
        got = pairs.make_pairs(data, n=4, data_dir=tmp_path, verbose=0)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert cache_files(tmp_path) == [path]  # rewritten, valid again


def test_a_request_for_n_reads_n_pairs_of_the_pool_and_no_more(tmp_path, monkeypatch):
    """A cell that needs the first n of a stored pool reads those alone: its arrays hold n
    pairs, and pool pairs beyond its chunks are never read (damage there goes unseen by
    it; the first request that reaches them finds it and makes the pool again)."""
    monkeypatch.setattr(pair_cache, "CHUNK", 4)
    data = pm_data(noise=0.01)
    pool = pairs.make_pairs(data, n=12, data_dir=tmp_path, verbose=0)
    (path,) = cache_files(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[raw.find(pool[1][10].tobytes()) + 3] ^= 0xFF  # a target of the last chunk
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(pairs, "_generate", no_generation)
    for n in (3, 8):
        got = pairs.make_pairs(data, n=n, data_dir=tmp_path, verbose=0)
        for array, expected in zip(got, pool):
            np.testing.assert_array_equal(array, expected[:n])
            assert array.base is None and array.nbytes == expected[:n].nbytes
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="checksum mismatch in pairs 8 to 11"):
        again = pairs.make_pairs(data, n=12, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(again[1], pool[1])
    assert pair_cache.stored_count(path) == (12, False)


def test_interrupted_generation_leaves_no_cache_file(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs, "CHUNK", 2)
    calls = []

    def interrupted(data):
        def solve(clean):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return clean
        return solve

    monkeypatch.setattr(pairs, "_solver", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pairs.make_pairs(pm_data(), n=5, data_dir=tmp_path, verbose=0)
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------- a run's pairs


def test_run_pairs_split_validation_from_the_test_head_or_the_train_tail(tmp_path):
    head = pairs.run_pairs(pm_data(val_size=3), tmp_path, verbose=0)
    train = pairs.make_pairs(pm_data(), "train", n=11, data_dir=tmp_path, verbose=0)
    test = pairs.make_pairs(pm_data(), "test", n=4, data_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(head.train[0], train[0][:8])
    np.testing.assert_array_equal(head.validation[1], test[1][:3])
    np.testing.assert_array_equal(head.test[1], test[1])
    tail = pairs.run_pairs(pm_data(val_size=3, validation="train_tail"), tmp_path, verbose=0)
    np.testing.assert_array_equal(tail.validation[1], train[1][8:11])  # never test images
    np.testing.assert_array_equal(tail.train[1], train[1][:8])
    pools = (tuple(a[:11] for a in train), test)
    given = pairs.run_pairs(pm_data(val_size=3, validation="train_tail"), pools=pools)
    np.testing.assert_array_equal(given.validation[0], tail.validation[0])
    with pytest.raises(ValueError, match="train pool of at least 11 pairs. Received 10"):
        pairs.run_pairs(pm_data(val_size=3, validation="train_tail"),
                        pools=(tuple(a[:10] for a in train), test))
