"""Image sources, (input, target) pairs, their cache, and the data of a run.

Sources, each returning float32 images (n, size, size, C) in [0, 1], every image scaled to
maximum 1 over its channels except the discs, which keep their contrast (Sect. 5):
    `stl10_images`: the 100,000 unlabelled STL-10 images, grey (Sect. 5.2) or colour, read
        from the extracted binary file, a prepared tfds dataset, or a tfds archive placed by
        hand (the tfds routes need TensorFlow).
    `synthetic_images`: the embedded default, a dead-leaves model of natural images, so that
        everything runs with no download.
    `discs`: discs of random radius, position and contrast on a zero background (Sect. 5.1).

Every source is a pool of 100,000 images split 90% 'train' / 10% 'test' (disjoint, fixed).
`make_pairs` turns the first n images of a split into (input, target) pairs as a
`spec.DataSpec` describes them, batched through the physics compiled by the active Keras
backend and cached under `data_dir/cache/`; `run_pairs` gives a run's training, validation
and test pairs; `make_dataset` wraps pairs in a tf.data pipeline (TensorFlow only).

On TensorFlow 2.21's CPU, XLA's default loop emitter runs the Perona-Malik solver about 4x
slower than the classic one: call `use_classic_xla_cpu_emitter()` before the first
compilation (the experiments do).
"""

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np

from diffnet_tf import physics, problems, protocols
from diffnet_tf.checks import check_choice, check_count, check_image_batch
from diffnet_tf.files import check_writable_folder
from diffnet_tf.synthetic import GREY_WEIGHTS, discs, scale_to_max_one, synthetic_images

SPLITS = ("train", "test")
CHUNK = 1000  # images per batch through the physics solvers
CACHE_FORMAT = 3  # bump when the generated numbers change
XLA_CPU_FLAG = "--xla_cpu_use_fusion_emitters=false"


def use_classic_xla_cpu_emitter():
    """Asks XLA:CPU for its classic loop emitter, unless XLA_FLAGS already chooses.

    On TensorFlow 2.21 it runs the Perona-Malik solver about 4x faster than the default.
    XLA reads XLA_FLAGS once, at the process's first compilation: call this before it.
    """
    if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_CPU_FLAG}".strip()


def _split_range(split, total):
    """(first index, count) of a split in a source of `total` images (90% / 10%)."""
    check_choice(split, SPLITS, "split")
    n_test = int(round(total * protocols.TEST_FRACTION))
    return (0, total - n_test) if split == "train" else (total - n_test, n_test)


# ---------------------------------------------------------------- STL-10


def _stl10_rgb(root, download):
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
        return _stl10_rgb_from_tfds(tfds_dir, manual, download)  # routes 2-4
    raise FileNotFoundError(
        f"STL-10 not found under {root}. Expected one of: (1) the extracted binary file "
        f"{binary}; (2) a tfds 'stl10' dataset prepared under {tfds_dir}; (3) the archive "
        f"stl10_binary.tar.gz placed in {manual.parent}. Or let tfds download 2.6 GB "
        "(download=True; --download on the command line), or use the embedded images "
        "instead (--dataset=synthetic)."
    )


def _stl10_rgb_from_tfds(tfds_dir, manual, download):
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
    return np.concatenate(list(tfds.as_numpy(ds.map(lambda example: example["image"]).batch(CHUNK))))


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
    'test' (90,000 / 10,000 for the full set), so the split and its order are the same
    whichever route supplied the images.

    Routes, local first: (1) `data_dir/stl10_binary/unlabeled_X.bin`, read with NumPy;
    (2) a tfds dataset prepared under `data_dir/tfds`; (3) tfds preparing it from
    `data_dir/tfds/downloads/manual/stl10_binary.tar.gz`; (4) tfds downloading it, only
    with `download=True`. Routes 2-4 need TensorFlow and tensorflow-datasets.

    Args:
        split: 'train' or 'test'.
        data_dir: dataset root (str or Path).
        n: the first n images of the split; None for all of them.
        download: allow tfds to download the archive when no local route works.
        channels: 1 (grey) or 3 (RGB).

    Returns:
        float32 array (n, 96, 96, channels) in [0, 1], each image's maximum 1.

    Raises:
        FileNotFoundError: no route works; the message lists them.
    """
    check_choice(split, SPLITS, "split")
    check_choice(channels, (1, 3), "channels")
    rgb = _stl10_rgb(Path(data_dir), download)
    first, count = _split_range(split, len(rgb))
    n = count if n is None else check_count(n, maximum=count)
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


# ---------------------------------------------------------------- pairs and their cache


def _compile(function):
    """`function` compiled by the active Keras backend (XLA on TensorFlow and JAX)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


@functools.lru_cache(maxsize=8)
def _solver(data):
    """The forward map of `data`'s problem with its physics, compiled: clean -> diffused."""
    problem = problems.get(data.problem)
    return _compile(functools.partial(problem.physics.forward, data=data))


def _generate(n, clean_chunk, data, start, verbose):
    """Pairs for n images, CHUNK at a time; clean_chunk(i, m) gives images i .. i + m - 1."""
    problem = problems.get(data.problem)
    solve = _solver(data)
    inputs = targets = None
    progbar = keras.utils.Progbar(n, verbose=verbose, unit_name="image")
    batch = min(n, CHUNK)  # the last chunk is padded to it: one compiled shape
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        clean = clean_chunk(i, m)
        if inputs is None:
            inputs = np.empty((n, *clean.shape[1:]), np.float32)
            targets = np.empty_like(inputs)
        padded = np.concatenate([clean, np.zeros((batch - m, *clean.shape[1:]), np.float32)])
        diffused = keras.ops.convert_to_numpy(solve(padded))[:m]
        inputs[i : i + m], targets[i : i + m] = problem.pair(clean, diffused)
        inputs[i : i + m] = physics.add_noise(inputs[i : i + m], data.noise, data.seed, start + i)
        progbar.add(m)
    if inputs is None:
        inputs = np.empty((0, data.image_size, data.image_size, data.channels), np.float32)
        targets = inputs.copy()
    return inputs, targets


def pairs_from_images(images, data, start=0, verbose=0):
    """(input, target) pairs from your own clean images, with `data`'s physics and noise.

    Problems: 'pm_inverse' (input = Perona-Malik diffused + noise, target = clean; Sect.
    5.2), 'pm_forward' (input = clean + noise, target = diffused; Sect. 6) and
    'heat_inverse' (input = heat equation to time T + noise, target = clean; Sect. 5.1).

        data = dataclasses.replace(spec.preset("perona_malik").data, noise=0.01)
        inputs, targets = pairs_from_images(images, data)

    Args:
        images: (n, H, W, C) float array of clean images, each scaled to maximum 1, with
            C = data.channels (H and W need not be data.image_size).
        data: a `spec.DataSpec`; its problem, physics, noise and seed are used.
        start: pool index of the first image: image i's noise depends only on
            (data.seed, start + i).
        verbose: 0 silent, 1 progress bar, 2 one line at the end.

    Returns:
        (inputs, targets): two float32 arrays (n, H, W, C).
    """
    images = np.asarray(images, np.float32)
    check_image_batch(images, "images", channels=data.channels)
    return _generate(len(images), lambda i, m: images[i : i + m], data,
                     check_count(start, "start"), verbose)


def _digest(inputs, targets):
    h = hashlib.sha256(f"{inputs.shape} {targets.shape}".encode())
    for array in (inputs, targets):
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def _load_cache(path):
    """(inputs, targets, complete) from a verified cache file; None if absent or corrupted."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            inputs, targets = stored["inputs"], stored["targets"]
            digest, complete = str(stored["sha256"]), bool(stored["complete"])
        if _digest(inputs, targets) == digest:
            return inputs, targets, complete
        reason = "checksum mismatch"
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as error:  # damaged file
        reason = f"{type(error).__name__}: {error}"
    warnings.warn(f"Corrupted cache file {path} ({reason}); regenerating it.", stacklevel=3)
    path.unlink(missing_ok=True)
    return None


def _save_cache(path, inputs, targets, complete):
    """Writes atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, inputs=inputs, targets=targets, complete=complete,
                     sha256=_digest(inputs, targets))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cache_key(data, split):
    """What identifies a split's pairs: every DataSpec field that changes the numbers (not
    the run's sizes, which only say how many of the split's first images are used)."""
    check_choice(split, SPLITS, "split")
    fields = {k: v for k, v in dataclasses.asdict(data).items()
              if k not in ("train_size", "val_size", "test_size", "validation")}
    return dict(format=CACHE_FORMAT, split=split, **fields)


def _clean_images(data, split, n, first, data_dir, download):
    """(count, chunk) for the clean images of a split: chunk(i, m) gives images i .. i+m-1."""
    if data.source == "stl10":
        clean = stl10_images(split, data_dir, n, download, data.channels)
        return len(clean), lambda i, m: clean[i : i + m]
    if data.source == "discs":
        return n, lambda i, m: discs(m, data.image_size, data.seed, start=first + i,
                                     max_discs=data.max_discs)
    return n, lambda i, m: synthetic_images(m, data.image_size, data.seed, start=first + i,
                                            channels=data.channels)


def make_pairs(data, split="train", n=None, data_dir="data", cache=True, verbose=1,
               download=False):
    """(input, target) pairs of the first n images of a split, cached (Sects. 5.1, 5.2).

    The cache file under `data_dir/cache/` is keyed by `cache_key(data, split)`, every
    parameter that changes the numbers except n: it holds the first images of the split,
    and a request for fewer is served from it. It is written atomically with a SHA-256
    checksum; a corrupted file is reported (a warning), deleted and regenerated.

    Args:
        data: a `spec.DataSpec`: problem, source, image size, channels, physics, noise, seed.
        split: 'train' (90% of the pool) or 'test' (the other 10%).
        n: number of images, the first of the split; None: the whole split.
        data_dir: dataset root, holding STL-10 and the cache.
        cache: read and write the cache.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.
        download: let tfds download STL-10 if no local copy is found.

    Returns:
        (inputs, targets): two float32 arrays (n, size, size, channels).
    """
    key = cache_key(data, split)
    first, count = _split_range(split, protocols.POOL_SIZE)
    whole_split = n is None
    if n is not None:
        n = check_count(n, maximum=None if data.source == "stl10" else count)
    elif data.source != "stl10":
        n = count  # STL-10's split size is known once the source is read
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = (check_writable_folder(data_dir, "data folder") / "cache"
            / f"{data.problem}_{data.source}_{split}_{data.image_size}px_{digest}.npz")
    stored = _load_cache(path) if cache else None
    if stored and (stored[2] if n is None else len(stored[0]) >= n):
        inputs, targets, _ = stored
        return (inputs, targets) if n in (None, len(inputs)) else (inputs[:n].copy(),
                                                                  targets[:n].copy())
    n, clean_chunk = _clean_images(data, split, n, first, data_dir, download)
    if verbose:
        print(f"Making {n} {split} pairs ({data.problem}, {data.source}), cached in {path}",
              flush=True)
    inputs, targets = _generate(n, clean_chunk, data, first, verbose)
    if cache:
        complete = whole_split if data.source == "stl10" else n == count
        _save_cache(path, inputs, targets, complete)
    return inputs, targets


@dataclasses.dataclass(frozen=True)
class RunPairs:
    """A run's data: (inputs, targets) arrays (N, H, W, C) of each part."""

    train: tuple
    validation: tuple
    test: tuple


def run_pairs(data, data_dir="data", verbose=1, download=False, pools=None):
    """The training, validation and test pairs of a run (`spec.DataSpec`).

    Training: the first train_size images of the train split. Test: the first test_size of
    the test split. Validation ('test_head'): the first val_size test images, for
    monitoring only; ('train_tail'): the val_size train images after the training set.

    Args:
        data: a `spec.DataSpec`.
        data_dir, verbose, download: as in `make_pairs`.
        pools: optional (train pool, test pool) already made by `make_pairs` with an equal
            cache key, each at least as long as `data` needs (a study's cells share them).

    Returns:
        A RunPairs.
    """
    tail = data.validation == "train_tail"
    needed = {"train": data.train_size + data.val_size * tail, "test": data.test_size}
    if pools is None:
        pools = [make_pairs(data, split, n, data_dir, verbose=verbose, download=download)
                 for split, n in needed.items()]
    for (split, n), pool in zip(needed.items(), pools):
        if len(pool[0]) < n:
            raise ValueError(f"Expected a {split} pool of at least {n} pairs. Received "
                             f"{len(pool[0])}.")
    train_pool, test_pool = pools
    train = tuple(a[: data.train_size] for a in train_pool)
    test = tuple(a[: data.test_size] for a in test_pool)
    if tail:
        validation = tuple(a[data.train_size : data.train_size + data.val_size]
                           for a in train_pool)
    else:
        validation = tuple(a[: data.val_size] for a in test_pool)
    return RunPairs(train, validation, test)


def make_dataset(inputs, targets, batch_size=protocols.BATCH_SIZE, shuffle=False, seed=0):
    """A tf.data pipeline of (input, target) batches (TensorFlow only).

    tf.data's autotuning is off and two batches are prefetched: with autotuning on, as in
    the pipeline Keras builds from NumPy arrays, tearing down an epoch's iterator waits on
    the autotune thread, and the next epoch's first step stalled for 6-12 s on 2 CPU cores
    (measured; the same step time otherwise).

    Args:
        inputs, targets: (N, H, W, C) arrays.
        batch_size: images per batch (the paper's: 16).
        shuffle: reshuffle every epoch.
        seed: seed of the shuffling.

    Returns:
        A prefetched tf.data.Dataset of (inputs, targets) batches.
    """
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError("make_dataset builds a tf.data pipeline and needs TensorFlow. On "
                          "other backends pass the arrays to model.fit.") from error
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch_size. Received {batch_size!r}.")
    x, y = tf.constant(inputs), tf.constant(targets)
    ds = tf.data.Dataset.range(len(inputs))
    if shuffle:
        ds = ds.shuffle(max(len(inputs), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(2)
