"""A folder of your own images as an image source (DataSpec source 'folder').

Every PNG, JPEG, TIFF and .npy file directly in the folder (`image_io.FORMATS`; other files
and hidden files are ignored) is an image, converted as the paper converts STL-10 (Sect.
5.2): grey through the ITU-R 601 luma weights (`synthetic.GREY_WEIGHTS`) or colour, then
cut into non-overlapping `image_size` x `image_size` patches, row by row from the top left
(a remainder narrower than a patch is dropped), each patch scaled to maximum 1. The files,
sorted by name, are split as every pool is (`protocols.split_range`): the first 90 % are
'train', the rest 'test', so no patch of a test file is ever trained on. The folder's
content, not its path, identifies the data: `folder_digest` is in the DataSpec and so in
the pair cache's key. NumPy and image_io only.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

from diffnet_tf import image_io, protocols
from diffnet_tf.checks import check_choice, check_integer
from diffnet_tf.synthetic import GREY_WEIGHTS, scale_to_max_one


def image_files(folder):
    """The image files directly in `folder`, sorted by name (a list of Paths).

    Raises:
        ValueError: `folder` is no folder, or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"Expected a folder of images. Received {os.fspath(folder)!r}: "
                         f"{'a file' if folder.exists() else 'no such folder'}.")
    found = sorted(path for path in folder.iterdir()
                   if path.suffix.lower() in image_io.FORMATS and not path.name.startswith(".")
                   and path.is_file())
    if not found:
        raise ValueError(f"Expected image files ({', '.join(image_io.FORMATS)}) in the folder "
                         f"{os.fspath(folder)!r}. Received none: the folder has no image.")
    return found


def folder_digest(folder):
    """SHA-256 (hex) of the folder's image files: their names and bytes, in name order.
    Equal content, equal digest, wherever the folder lies."""
    digest = hashlib.sha256()
    for path in image_files(folder):
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def split_files(folder, split):
    """The image files of `split` ('train' or 'test'): the first 90 % by name, or the rest.

    Raises:
        ValueError: the folder is too small to hold a test file and a training file.
    """
    check_choice(split, protocols.SPLITS, "split")
    files = image_files(folder)
    test = protocols.split_range("test", len(files))[1]
    if test == 0 or test == len(files):
        raise ValueError(
            f"Expected at least 6 image files in the folder {os.fspath(folder)!r} (the last "
            f"{protocols.TEST_FRACTION:.0%} by name, rounded, are the test files; at least one "
            f"of each). Received {len(files)}.")
    first, count = protocols.split_range(split, len(files))
    return files[first : first + count]


def _converted(path, channels):
    """The image at `path` as float32 (H, W, channels): luma for grey, RGB for colour."""
    image, _ = image_io.read_image(path)
    if image.shape[-1] == channels:
        return image
    if channels == 1:
        return (image @ GREY_WEIGHTS)[..., None]
    raise ValueError(f"Expected a colour (3-channel) image for channels 3 in {os.fspath(path)!r}. "
                     f"Received a grey image.")


def patches(image, size, where):
    """The non-overlapping size x size patches of `image` (H, W, C), row by row: (n, size,
    size, C). `where` names the image in the error when it is smaller than a patch."""
    rows, columns = image.shape[0] // size, image.shape[1] // size
    if rows == 0 or columns == 0:
        raise ValueError(f"Expected images of at least {size}x{size} pixels (one patch of "
                         f"DataSpec.image_size). Received {image.shape[0]}x{image.shape[1]} "
                         f"in {where}.")
    cut = image[: rows * size, : columns * size]
    cut = cut.reshape(rows, size, columns, size, image.shape[-1]).swapaxes(1, 2)
    return cut.reshape(rows * columns, size, size, image.shape[-1])


def folder_images(folder, split, size, channels=1, n=None, digest=None):
    """The patches of a split's files, each scaled to maximum 1, in file then row order.

    Args:
        folder: the folder of images.
        split: 'train' or 'test'.
        size: the patches' side (DataSpec.image_size).
        channels: 1 (grey) or 3 (colour).
        n: the first n patches of the split; None for all of them.
        digest: the `folder_digest` the data were described with, checked when given.

    Returns:
        float32 (n, size, size, channels).

    Raises:
        ValueError: each naming the folder or the file: no folder, no image, fewer than 6
            images, a file that does not read, an image smaller than a patch, a grey image
            for colour, fewer patches than n, or content that no longer has `digest`.
    """
    check_choice(channels, (1, 3), "channels")
    check_integer(size, "size", minimum=1)
    if digest is not None and folder_digest(folder) != digest:
        raise ValueError(f"Expected the images of the folder {os.fspath(folder)!r} the run was "
                         f"described with (digest {digest[:12]}...). Received changed content: "
                         f"run the program again to describe the new images.")
    cut = [patches(_converted(path, channels), size, repr(os.fspath(path)))
           for path in split_files(folder, split)]
    pool = np.concatenate(cut)
    if n is not None and check_integer(n, "n") > len(pool):
        sizes = "DataSpec.test_size" if split == "test" else "DataSpec.train_size (+ val_size)"
        raise ValueError(f"Expected at most {len(pool)} {split} patches of {size}x{size} from "
                         f"the folder {os.fspath(folder)!r} ({len(cut)} file"
                         f"{'s' * (len(cut) != 1)}). Received a request for {n}: lower {sizes}.")
    return scale_to_max_one(pool[:n])
