"""The unlabelled STL-10 images (Sect. 5.2): four routes to the same pixels, one order.

The 100,000 unlabelled images come from the first route that works, local first:
(1) `data_dir/stl10_binary/unlabeled_X.bin`, read with NumPy; (2) a tfds dataset prepared
under `data_dir/tfds`; (3) tfds preparing it from the archive placed by hand in
`data_dir/tfds/downloads/manual/`; (4) tfds downloading it, only when asked. Sorted by a
hash of their pixels, they are split 90 % / 10 % (`protocols.split_range`), so the split and
its order do not depend on the route. Routes 2-4 need TensorFlow and tensorflow-datasets,
imported inside the function that needs them.
"""

import hashlib
from pathlib import Path

import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_choice, check_integer
from diffnet_tf.synthetic import GREY_WEIGHTS, scale_to_max_one

CHUNK = 1000  # images read, hashed and converted at a time


def _rgb(root, download):
    """All unlabelled STL-10 images as uint8 (N, 96, 96, 3), from the first route that works."""
    side = protocols.STL10_SIDE
    binary = root / "stl10_binary" / "unlabeled_X.bin"
    tfds_dir = root / "tfds"
    manual = tfds_dir / "downloads" / "manual" / "stl10_binary.tar.gz"
    if binary.exists():  # route 1
        image_bytes = 3 * side**2
        if binary.stat().st_size % image_bytes:
            raise ValueError(
                f"Expected {binary} to hold whole 3x96x96 uint8 images ({image_bytes} bytes "
                f"each). Received {binary.stat().st_size} bytes: a truncated file?"
            )
        raw = np.memmap(binary, np.uint8, mode="r").reshape(-1, 3, side, side)
        return raw.transpose(0, 3, 2, 1)  # channel-major, column-major -> (N, row, col, RGB)
    if download or manual.exists() or any((tfds_dir / "stl10").glob("*/dataset_info.json")):
        return _rgb_from_tfds(tfds_dir, manual, download)  # routes 2-4
    raise FileNotFoundError(
        f"STL-10 not found under {root}. Expected one of: (1) the extracted binary file "
        f"{binary}; (2) a tfds 'stl10' dataset prepared under {tfds_dir}; (3) the archive "
        f"stl10_binary.tar.gz placed in {manual.parent}. Or let tfds download 2.6 GB "
        "(download=True; --download on the command line), or use the embedded images "
        "instead (--dataset=synthetic)."
    )


def _rgb_from_tfds(tfds_dir, manual, download):
    """Routes 2-4: tfds reads its prepared dataset, prepares it from the archive in `manual`'s
    folder, or (only with `download`) downloads it first."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "The tfds routes to STL-10 (a prepared dataset, the archive, a download) need "
            "tensorflow-datasets and TensorFlow, which are not installed. Install them, or "
            "extract stl10_binary/unlabeled_X.bin from the archive into the data folder "
            "(read with NumPy alone; see data/README.md)."
        ) from error
    builder = tfds.builder("stl10", data_dir=str(tfds_dir))
    builder.download_and_prepare(
        download_dir=str(tfds_dir / "downloads"),
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual.parent)),
    )
    ds = builder.as_dataset(split="unlabelled", shuffle_files=False)
    images = ds.map(lambda example: example["image"]).batch(CHUNK)
    return np.concatenate(list(tfds.as_numpy(images)))


def _content_order(rgb):
    """Indices sorting images by a hash of their pixels: the same order whatever the route."""
    keys = np.empty(len(rgb), np.uint64)
    for i in range(0, len(rgb), CHUNK):
        chunk = np.ascontiguousarray(rgb[i : i + CHUNK])
        keys[i : i + len(chunk)] = [
            int.from_bytes(hashlib.sha256(image).digest()[:8], "big") for image in chunk
        ]
    return np.argsort(keys, kind="stable")


def stl10_images(split, data_dir="data", n=None, download=False, channels=1):
    """The unlabelled STL-10 images, in grey as the paper used them (Sect. 5.2), or colour.

    Grey: the RGB images converted with the ITU-R 601 luma weights of MATLAB's rgb2gray
    (0.2989 R + 0.5870 G + 0.1140 B). Each image is scaled to maximum 1 (over its
    channels). Sorted by a hash of their pixels, the first 90% form 'train', the rest
    'test' (90,000 / 10,000 for the full set), whichever route supplied them.

    Args:
        split: 'train' or 'test'.
        data_dir: dataset root (str or Path), searched by the routes of the module docstring.
        n: the first n images of the split; None for all of them.
        download: allow tfds to download the archive when no local route works.
        channels: 1 (grey) or 3 (RGB).

    Returns:
        float32 array (n, 96, 96, channels) in [0, 1], each image's maximum 1.

    Raises:
        FileNotFoundError: no route works; the message lists them.
    """
    check_choice(split, protocols.SPLITS, "split")  # before reading anything
    check_choice(channels, (1, 3), "channels")
    rgb = _rgb(Path(data_dir), download)
    first, count = protocols.split_range(split, len(rgb))
    n = count if n is None else check_integer(n, "n", maximum=count)
    wanted = _content_order(rgb)[first : first + n]  # in hash order
    by_position = np.argsort(wanted)  # read the source front to back
    side = protocols.STL10_SIDE
    out = np.empty((n, side, side, channels), np.float32)
    for i in range(0, n, CHUNK):
        rows = by_position[i : i + CHUNK]
        rgb_rows = np.asarray(rgb[wanted[rows]], np.float32)  # elementwise: layout-proof
        if channels == 1:
            rgb_rows = sum(GREY_WEIGHTS[c] * rgb_rows[..., c] for c in range(3))[..., None]
        out[rows] = scale_to_max_one(rgb_rows)
    return out
