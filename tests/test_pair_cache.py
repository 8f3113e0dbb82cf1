"""The pair cache file: its key and path, the checked round trip, a read of the first n
pairs that reads only their chunks, damage detected (the size and header on every load, a
chunk's digest when a read reaches it), and writes that leave a whole file or none."""

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


def damage(path, at):
    """Flips the bits of the byte at offset `at` of the file `path`."""
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


def offset_of(path, array):
    """Where the bytes of `array` start in the file `path`."""
    start = path.read_bytes().find(array.tobytes())
    assert start > 0
    return start


def test_the_key_holds_what_changes_the_numbers_and_not_the_run_sizes(tmp_path):
    base = pair_cache.cache_path(tmp_path, data(), "train")
    for run_size in (dict(train_size=5), dict(val_size=1), dict(test_size=3),
                     dict(validation="train_tail")):
        assert pair_cache.cache_path(tmp_path, data(**run_size), "train") == base
    for field in (dict(noise=0.01), dict(seed=1), dict(pm_steps=2), dict(image_size=32)):
        assert pair_cache.cache_path(tmp_path, data(**field), "train") != base
    assert pair_cache.cache_path(tmp_path, data(), "test") != base
    assert base.parent == tmp_path / "cache"
    assert base.name.startswith("pm_inverse_synthetic_train_16px_") and base.suffix == ".pairs"
    with pytest.raises(ValueError, match="Unknown split 'val'"):
        pair_cache.cache_key(data(), "val")


def test_the_heat_solver_and_the_physics_format_are_in_the_key(tmp_path):
    discs = spec.protocol("deconvolution").data
    paths = {solver: pair_cache.cache_path(tmp_path, dataclasses.replace(discs, heat_solver=solver),
                                           "test") for solver in ("exact", "explicit", "implicit")}
    assert len(set(paths.values())) == 3
    # Format 4: the physics is true float32 on every device; a cache a GPU made in TF32
    # before it (format 3) is not read. Format 5: the chunked layout read n pairs at a time.
    assert pair_cache.cache_key(discs, "test")["format"] == 5


@pytest.mark.parametrize("complete", [True, False])
def test_save_then_load_round_trips(tmp_path, complete):
    inputs, targets = arrays()
    path = tmp_path / "cache" / "pairs.pairs"  # the folder is made
    pair_cache.save(path, inputs, targets, complete)
    loaded_inputs, loaded_targets, loaded_complete = pair_cache.load(path)
    np.testing.assert_array_equal(loaded_inputs, inputs)
    np.testing.assert_array_equal(loaded_targets, targets)
    assert loaded_complete is complete
    assert sorted(p.name for p in path.parent.iterdir()) == ["pairs.pairs", "pairs.pairs.lock"]
    assert path.stat().st_size % 4096 == 2 * inputs.nbytes % 4096  # arrays on a page


def test_the_arrays_start_on_a_page_and_read_as_raw_float32(tmp_path):
    inputs, targets = arrays(n=5)
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, inputs, targets, True)
    stored = np.memmap(path, "<f4", "r", offset=4096, shape=(2, 5, 4, 4, 1))
    np.testing.assert_array_equal(stored[0], inputs)
    np.testing.assert_array_equal(stored[1], targets)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 7])
def test_a_read_of_n_returns_the_first_n_pairs_in_new_arrays_of_n(tmp_path, monkeypatch, n):
    monkeypatch.setattr(pair_cache, "CHUNK", 3)
    inputs, targets = arrays(n=7)
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, inputs, targets, False)
    got_inputs, got_targets, complete = pair_cache.load(path, n)
    np.testing.assert_array_equal(got_inputs, inputs[:n])
    np.testing.assert_array_equal(got_targets, targets[:n])
    for got in (got_inputs, got_targets):  # n pairs the caller owns, not a view of the pool
        assert got.shape == (n, 4, 4, 1) and got.dtype == np.float32
        assert got.base is None and got.flags.writeable and got.flags.c_contiguous
    assert complete is False


def test_a_read_of_more_than_stored_is_none_and_keeps_the_file(tmp_path, recwarn):
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, *arrays(n=3), True)
    assert pair_cache.load(path, 4) is None
    assert path.exists() and not recwarn.list


def test_a_read_of_n_checks_only_the_chunks_it_reads(tmp_path, monkeypatch):
    """Reads of n pairs never touch a chunk beyond theirs: a byte damaged in pair 6 (the
    third chunk of 3) is unseen by reads of 6 or fewer, and found by the first read that
    reaches it, which deletes the file."""
    monkeypatch.setattr(pair_cache, "CHUNK", 3)
    inputs, targets = arrays(n=8)
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, inputs, targets, True)
    damage(path, offset_of(path, targets[6]) + 2)
    for n in (2, 3, 6):
        np.testing.assert_array_equal(pair_cache.load(path, n)[1], targets[:n])
    with pytest.warns(UserWarning, match=rf"Corrupted cache file {path} \(checksum mismatch "
                                         r"in pairs 6 to 7\)"):
        assert pair_cache.load(path, 7) is None
    assert not path.exists()


def test_a_damaged_pair_beyond_n_in_the_last_read_chunk_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(pair_cache, "CHUNK", 4)
    inputs, targets = arrays(n=8)
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, inputs, targets, True)
    damage(path, offset_of(path, inputs[3]))  # pair 3: in the chunk of a read of 2
    with pytest.warns(UserWarning, match="checksum mismatch in pairs 0 to 3"):
        assert pair_cache.load(path, 2) is None


def test_a_missing_file_loads_as_none(tmp_path):
    assert pair_cache.load(tmp_path / "absent.pairs") is None


def rewrite(path, change):
    """Replaces the file `path` by change(its bytes)."""
    path.write_bytes(change(path.read_bytes()))


DAMAGES = {  # found on every load, whatever n: the size and the header
    "truncated": lambda raw: raw[:-1],
    "extended": lambda raw: raw + b"\0",
    "header": lambda raw: raw.replace(b'"shape": [3', b'"shape": [2', 1),
    "not JSON": lambda raw: b"\xff" + raw[1:],
    "empty": lambda raw: b"",
}


@pytest.mark.parametrize("change", list(DAMAGES))
def test_a_damaged_size_or_header_is_found_on_a_read_of_any_n(tmp_path, change):
    path = tmp_path / "pairs.pairs"
    pair_cache.save(path, *arrays(), True)
    rewrite(path, DAMAGES[change])
    assert pair_cache.stored_count(path) is None
    with pytest.warns(UserWarning, match=f"Corrupted cache file {path}"):
        assert pair_cache.load(path, 0) is None
    assert not path.exists()


@pytest.mark.parametrize("swap", ["flip", "other arrays"])
def test_damaged_arrays_are_reported_and_deleted(tmp_path, swap):
    path = tmp_path / "pairs.pairs"
    inputs, targets = arrays()
    pair_cache.save(path, inputs, targets, True)
    if swap == "flip":
        damage(path, offset_of(path, inputs) + 5)
    else:  # whole arrays of the right size, but not the ones the digests were taken of
        rewrite(path, lambda raw: raw.replace(inputs.tobytes(), arrays(seed=1)[0].tobytes()))
    assert pair_cache.stored_count(path) == (3, True)  # the header alone is whole
    with pytest.warns(UserWarning, match=f"Corrupted cache file {path} .checksum mismatch"):
        assert pair_cache.load(path) is None
    assert not path.exists()


def test_an_old_format_file_is_not_read(tmp_path, monkeypatch):
    data_4 = data()
    monkeypatch.setattr(pair_cache, "FORMAT", 4)
    path_4 = pair_cache.cache_path(tmp_path, data_4, "train")
    pair_cache.save(path_4, *arrays(), True)  # a format 4 header
    monkeypatch.undo()
    path = pair_cache.cache_path(tmp_path, data_4, "train")
    assert path != path_4  # the format is in the key
    path_4.rename(path)
    with pytest.warns(UserWarning, match=r"\(format 4, expected 5\)"):
        assert pair_cache.load(path) is None
    np.savez(path.with_suffix(".npz"), inputs=arrays()[0], targets=arrays()[1], complete=True)
    path.with_suffix(".npz").rename(path)  # the .npz layout of format 4, under the name
    assert pair_cache.stored_count(path) is None
    with pytest.warns(UserWarning, match="unreadable header"):
        assert pair_cache.load(path) is None


def test_a_damaged_file_replaced_meanwhile_is_not_deleted(tmp_path, monkeypatch):
    """A reader that found damage deletes the file it read, never the whole one a writer
    has put in its place since."""
    path = tmp_path / "pairs.pairs"
    inputs, targets = arrays()
    pair_cache.save(path, inputs, targets, True)
    damage(path, offset_of(path, targets))
    real = pair_cache._read_checked

    def replaced_while_reading(*args):
        path.unlink()
        pair_cache.save(path, inputs, targets, True)
        return real(*args)

    monkeypatch.setattr(pair_cache, "_read_checked", replaced_while_reading)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert pair_cache.load(path) is None
    monkeypatch.undo()
    np.testing.assert_array_equal(pair_cache.load(path)[1], targets)


def test_save_refuses_inputs_and_targets_of_two_shapes(tmp_path):
    inputs, targets = arrays()
    with pytest.raises(ValueError, match=r"one shape .*\(3, 4, 4, 1\) and \(2, 4, 4, 1\)"):
        pair_cache.save(tmp_path / "pairs.pairs", inputs, targets[:2], True)


def test_an_interrupted_save_keeps_the_old_file_and_leaves_no_other(tmp_path, monkeypatch):
    path = tmp_path / "pairs.pairs"
    old = arrays(seed=1)
    pair_cache.save(path, *old, True)

    def half_written(temporary, header, arrays):
        with open(temporary, "wb") as file:
            file.write(header[:10])
        raise OSError("disk full")

    monkeypatch.setattr(pair_cache, "_write", half_written)
    with pytest.raises(OSError, match="disk full"):
        pair_cache.save(path, *arrays(), True)
    monkeypatch.undo()
    np.testing.assert_array_equal(pair_cache.load(path)[0], old[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.pairs", "pairs.pairs.lock"]
