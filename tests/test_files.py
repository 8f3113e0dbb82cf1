"""Files whole or absent: the one atomic writer, the removal of what a killed writer left
(for every writer that goes through it), JSON reads and writable-folder checks."""

import contextlib
import errno
import os
import shutil
import subprocess
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
    assert sorted(p for p in tmp_path.iterdir() if p.suffix != ".lock") == sorted(kept)


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


# ---------------------------------------------------------------- failed writes


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_names_the_path_and_the_reason_and_leaves_the_old_file(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    monkeypatch.setattr(os, "fsync", no_space)  # the disk filled as the file was written
    with pytest.raises(files.WriteFailed) as raised:
        files.write_json(path, {"a": 1})
    assert str(raised.value) == f"Could not write '{path}': No space left on device."
    assert raised.value.errno == errno.ENOSPC and isinstance(raised.value, OSError)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_path_that_is_a_folder_is_not_written_over(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(files.WriteFailed, match=r"Could not write '.*out.png': Is a directory"):
        files.replace_atomically(tmp_path / "out.png", lambda t: Path(t).write_text("x"))
    assert (tmp_path / "out.png").is_dir() and len(list(tmp_path.iterdir())) == 1


def test_a_folder_that_cannot_be_made_names_itself(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(files.WriteFailed, match=r"Could not write '.*file/sub': Not a directory"):
        files.make_folder(tmp_path / "file" / "sub")
    assert files.make_folder(tmp_path / "new" / "sub").is_dir()


def test_too_little_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    files.check_free_space(tmp_path / "a.h5", 1)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(files.WriteFailed, match=r"'.*a.h5': No space left on device \(1,000 "
                                                r"bytes free, about 5,000 needed\)"):
        files.check_free_space(tmp_path / "a.h5", 5000)


def figure(path):
    from diffnet_tf import plotting

    plotting.alpha_vs_noise([0.0, 0.01], [0.1, 0.2], path)


def keras_model(path):
    import keras

    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)


def saved_model(path):
    import keras

    from diffnet_tf import saving

    saving.save_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), path)


EVERY_WRITER = dict(WRITERS, figure=("fig13.png", figure), model=("model.keras", saved_model))


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a full file system: a tiny tmpfs filled up where this process may mount
    one (root on Linux), else None."""
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        yield None
        return
    try:
        with open(folder / "filler", "wb") as filler:
            with contextlib.suppress(OSError):
                filler.write(b"x" * 65536 * 2)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("writer", list(EVERY_WRITER))
def test_every_writer_on_a_full_disk_raises_write_failed_and_leaves_nothing(full_disk, writer,
                                                                           tmp_path, monkeypatch):
    name, write = EVERY_WRITER[writer]
    if full_disk is None:  # no mount allowed: the disk fills at the writer's fsync
        monkeypatch.setattr(os, "fsync", no_space)
    folder = full_disk or tmp_path
    with pytest.raises(files.WriteFailed, match=f"Could not write '{folder / name}': No space"):
        write(folder / name)
    assert not (folder / name).exists() and files.remove_temporaries(folder) == []


@pytest.mark.parametrize("writer", list(EVERY_WRITER))
def test_every_writer_in_a_read_only_folder_raises_write_failed(tmp_path, writer, monkeypatch):
    name, write = EVERY_WRITER[writer]

    def read_only(source, target):
        raise OSError(errno.EROFS, "Read-only file system", str(source))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(files.WriteFailed) as raised:
        write(tmp_path / name)
    assert str(raised.value) == f"Could not write '{tmp_path / name}': Read-only file system."
    assert not (tmp_path / name).exists() and files.remove_temporaries(tmp_path) == []
