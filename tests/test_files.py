"""Files whole or absent: the one atomic writer, the removal of what a killed writer left
(for every writer that goes through it), JSON reads and writable-folder checks."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from diffnet_tf import files, image_io, pair_cache


def test_replace_atomically_writes_the_new_file_in_place_of_the_old(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    files.replace_atomically(path, lambda temporary: Path(temporary).write_text("new"))
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_text("old")
    seen = []

    def interrupted(temporary):
        seen.append(temporary)
        Path(temporary).write_text("part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.replace_atomically(path, interrupted)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert "".join(seen[0].suffixes).endswith(".weights.h5")  # the writer sees path's suffixes


WRITERS = {  # each writer of the package that goes through replace_atomically
    "pair cache": ("pairs.npz", lambda path: pair_cache.save(
        path, np.zeros((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 1), np.float32), True)),
    "PNG": ("photo.restored.png", lambda path: image_io.write_image(path, np.zeros((2, 2)))),
    "npy": ("image.npy", lambda path: image_io.write_image(path, np.zeros((2, 2)))),
    "JSON": ("metrics.json", lambda path: files.write_json(path, {"a": 1})),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_remove_temporaries_finds_what_a_killed_writer_left_and_nothing_else(tmp_path,
                                                                             monkeypatch,
                                                                             writer):
    name, write = WRITERS[writer]
    kept = [tmp_path / n for n in ("spec.json", "epoch-0002.weights.h5", "a.1234.png", name)]
    for path in kept:
        path.write_bytes(b"whole")
    left = []

    def killed(temporary, target):  # as if kill -9 struck process 4242 before its rename
        temporary = Path(temporary)
        left.append(temporary.with_name(temporary.name.replace(f".{os.getpid()}.", ".4242.")))
        shutil.copy(temporary, left[-1])
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / name)
    monkeypatch.undo()
    assert left[0].exists() and left[0] != tmp_path / name
    assert files.remove_temporaries(tmp_path) == left
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_remove_temporaries_of_a_missing_folder_is_nothing(tmp_path):
    assert files.remove_temporaries(tmp_path / "absent") == []


def test_json_round_trips_and_a_damaged_file_is_named(tmp_path):
    path = tmp_path / "a.json"
    files.write_json(path, {"psnr": [30.5, None], "name": "x"})
    assert files.read_json(path) == {"psnr": [30.5, None], "name": "x"}
    path.write_text("{")
    with pytest.raises(files.DamagedFile, match=f"{path} is not valid JSON"):
        files.read_json(path)


def test_check_writable_folder_accepts_a_new_folder_and_refuses_a_file(tmp_path):
    assert files.check_writable_folder(tmp_path / "new" / "sub", "output folder") == (
        tmp_path / "new" / "sub")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="the output folder .* to be a folder. .* is a file"):
        files.check_writable_folder(tmp_path / "file" / "sub", "output folder")
