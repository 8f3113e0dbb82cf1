"""The pair cache file: its key and path, the verified round trip, damage detected, and
writes that leave a whole file or none."""

import dataclasses

import numpy as np
import pytest

from diffnet_tf import pair_cache, spec


def data(**overrides):
    values = dict(source="synthetic", image_size=16, train_size=8, val_size=2, test_size=4)
    return dataclasses.replace(spec.protocol("perona_malik").data, **{**values, **overrides})


def arrays(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random((n, 4, 4, 1), dtype=np.float32) for _ in range(2))


def test_the_key_holds_what_changes_the_numbers_and_not_the_run_sizes(tmp_path):
    base = pair_cache.cache_path(tmp_path, data(), "train")
    for run_size in (dict(train_size=5), dict(val_size=1), dict(test_size=3),
                     dict(validation="train_tail")):
        assert pair_cache.cache_path(tmp_path, data(**run_size), "train") == base
    for field in (dict(noise=0.01), dict(seed=1), dict(pm_steps=2), dict(image_size=32)):
        assert pair_cache.cache_path(tmp_path, data(**field), "train") != base
    assert pair_cache.cache_path(tmp_path, data(), "test") != base
    assert base.parent == tmp_path / "cache"
    assert base.name.startswith("pm_inverse_synthetic_train_16px_") and base.suffix == ".npz"
    with pytest.raises(ValueError, match="Unknown split 'val'"):
        pair_cache.cache_key(data(), "val")


def test_the_heat_solver_and_the_physics_format_are_in_the_key(tmp_path):
    discs = spec.protocol("deconvolution").data
    paths = {solver: pair_cache.cache_path(tmp_path, dataclasses.replace(discs, heat_solver=solver),
                                           "test") for solver in ("exact", "explicit", "implicit")}
    assert len(set(paths.values())) == 3
    # Format 4: the physics is true float32 on every device; a cache a GPU made in TF32
    # before it (format 3) is not read.
    assert pair_cache.cache_key(discs, "test")["format"] == 4


@pytest.mark.parametrize("complete", [True, False])
def test_save_then_load_round_trips(tmp_path, complete):
    inputs, targets = arrays()
    path = tmp_path / "cache" / "pairs.npz"  # the folder is made
    pair_cache.save(path, inputs, targets, complete)
    loaded_inputs, loaded_targets, loaded_complete = pair_cache.load(path)
    np.testing.assert_array_equal(loaded_inputs, inputs)
    np.testing.assert_array_equal(loaded_targets, targets)
    assert loaded_complete is complete
    assert sorted(p.name for p in path.parent.iterdir()) == ["pairs.npz", "pairs.npz.lock"]


def test_a_missing_file_loads_as_none(tmp_path):
    assert pair_cache.load(tmp_path / "absent.npz") is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap"])
def test_a_damaged_file_is_reported_and_deleted(tmp_path, damage):
    path = tmp_path / "pairs.npz"
    inputs, targets = arrays()
    if damage == "swap":  # whole arrays, but not the ones the checksum was taken of
        pair_cache.save(path, *arrays(seed=1), True)
        with np.load(path) as stored:
            digest = stored["sha256"]
        np.savez(path, inputs=inputs, targets=targets, complete=True, sha256=digest)
    else:
        pair_cache.save(path, inputs, targets, True)
        raw = bytearray(path.read_bytes())
        if damage == "truncate":
            raw = raw[: len(raw) // 2]
        else:  # one changed byte inside the inputs: the zip still opens
            start = raw.find(inputs.tobytes())
            assert start > 0
            raw[start + 5] ^= 0xFF
        path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=f"Corrupted cache file {path}"):
        assert pair_cache.load(path) is None
    assert not path.exists()


def test_an_interrupted_save_keeps_the_old_file_and_leaves_no_other(tmp_path, monkeypatch):
    path = tmp_path / "pairs.npz"
    old = arrays(seed=1)
    pair_cache.save(path, *old, True)

    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        pair_cache.save(path, *arrays(), True)
    monkeypatch.undo()
    np.testing.assert_array_equal(pair_cache.load(path)[0], old[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.npz", "pairs.npz.lock"]
