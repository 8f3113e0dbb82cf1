"""Files that are whole or absent: the package's one atomic writer (a temporary file in the
same folder, then a rename; models, backups, JSON, pair caches and images all go through
it), the removal of the temporaries a killed writer left, JSON reads whose errors name the
file, and writable-folder checks. A leaf module."""

import json
import os
import re
import tempfile
from pathlib import Path

_TEMPORARY = re.compile(r"\.[^.]*\.\d+\.tmp(\..*)?")  # replace_atomically's: .model.81.tmp.keras


def replace_atomically(path, write):
    """Calls write(temporary_path), then renames the temporary file to `path`.

    A kill at any instant leaves the old file or the new one, never a partial one. The
    temporary file sits in the same folder (a rename across file systems is not atomic)
    and keeps `path`'s suffixes, since some writers check them ('.keras', '.weights.h5').

    Args:
        path: the final path.
        write: a function writing the file it is given.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name.split('.')[0]}.{os.getpid()}.tmp"
                               + "".join(path.suffixes))
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
