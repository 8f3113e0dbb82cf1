"""Files that are whole or absent: the package's one atomic writer (a temporary file in the
same folder, then a rename; models, backups, JSON, pair caches, images and figures all go
through it), the one error of every failed write (WriteFailed, naming the user's path and
the reason), the removal of the temporaries a killed writer left, JSON reads whose errors
name the file, and writable-folder and free-space checks. A leaf module."""

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

_TEMPORARY = re.compile(r"\.[^.]*\.\d+\.tmp(\..*)?")  # replace_atomically's: .model.81.tmp.keras


class WriteFailed(OSError):
    """A file or folder that could not be written (a full disk, a read-only folder, a path
    that is a folder): the message names the user's path, never a temporary's, and the
    reason. Every write of the package raises it in place of the OSError; the programs end
    it with its message and exit status 1.

    Args:
        path: the path the user chose (the final file or folder).
        error: the OSError met while writing it.
    """

    def __init__(self, path, error):
        reason = getattr(error, "strerror", None) or str(error)
        super().__init__(f"Could not write {str(path)!r}: {reason}.")
        self.errno = getattr(error, "errno", None)
        self.path = str(path)


@contextlib.contextmanager
def writing(path):
    """Within it, an OSError becomes a WriteFailed naming `path` (see WriteFailed)."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as error:
        raise WriteFailed(path, error) from error


def replace_atomically(path, write):
    """Calls write(temporary_path), then renames the temporary file to `path`.

    A kill at any instant leaves the old file or the new one, never a partial one. The
    temporary file sits in the same folder (a rename across file systems is not atomic)
    and keeps `path`'s suffixes, since some writers check them ('.keras', '.weights.h5').
    A failed write (a full disk, a read-only folder, `path` a folder) removes the
    temporary file and raises a WriteFailed naming `path`.

    Args:
        path: the final path.
        write: a function writing the file it is given.

    Raises:
        WriteFailed: the OSError met while writing, fsyncing or renaming.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name.split('.')[0]}.{os.getpid()}.tmp"
                               + "".join(path.suffixes))
    try:
        with writing(path):
            write(temporary)
            with open(temporary, "rb") as file:
                os.fsync(file.fileno())
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a read-only folder holds none
            temporary.unlink(missing_ok=True)
        raise


def make_folder(path):
    """Creates the folder `path` and its parents where missing; returns it as a Path.

    Raises:
        WriteFailed: it cannot be made (a file in the way, a read-only file system).
    """
    path = Path(path)
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_free_space(path, needed):
    """Raises a WriteFailed naming `path` unless the file system of its folder has `needed`
    bytes free: for writers that must not meet a full disk (h5py's C library may crash the
    process on one)."""
    free = shutil.disk_usage(Path(path).parent).free
    if free < needed:
        raise WriteFailed(path, OSError(errno.ENOSPC, f"No space left on device ({free:,} "
                                                      f"bytes free, about {needed:,} needed)"))


def remove_temporaries(folder):
    """Deletes the temporary files `replace_atomically` left in `folder` when its process
    was killed while writing (partial files; a U-Net's can be hundreds of MB). Call it only
    while holding the folder, so that no living writer's file is removed.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    found = [p for p in folder.iterdir() if _TEMPORARY.fullmatch(p.name)] if folder.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


class DamagedFile(ValueError):
    """A file that exists but cannot be read as what it should be; the message names it
    and what to do."""


def write_json(path, data):
    """Writes `data` as indented JSON, atomically."""

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)

    replace_atomically(path, write)


def read_json(path):
    """The JSON value stored at `path`; a damaged file raises a DamagedFile naming it."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedFile(f"{path} is not valid JSON ({error}). Delete it, or restore it from "
                         "a copy, and run again.") from error


def check_writable_folder(path, what):
    """Raises a ValueError unless `path` is a folder, or can be made one, that we may write.

    Checked before any long work, so a bad path fails at once and says what is wrong.

    Args:
        path: the folder.
        what: what it is for the message, e.g. 'output folder (--out_dir)'.

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"Expected the {what} {str(path)!r} to be a folder. {str(existing)!r} "
                         "is a file.")
    try:  # a file made and removed: os.access says yes to root on a read-only mount
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise ValueError(f"Expected the {what} {str(path)!r} to be writable. "
                         f"{str(existing)!r} is not ({error.strerror}).") from None
    return path
