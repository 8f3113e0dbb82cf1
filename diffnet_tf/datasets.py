"""Image sources, (input, target) pairs and tf.data pipelines for the paper's experiments.

Sources, each returning float32 images (n, size, size, 1) in [0, 1], every image scaled to
maximum 1 except the discs, which keep their contrast (Sect. 5):
    `stl10_images`: the 100,000 unlabelled STL-10 images in grey (Sect. 5.2), read from the
        extracted binary file, a prepared tfds dataset, or a tfds archive placed by hand.
    `synthetic_images`: the embedded default, a dead-leaves model of natural images, so that
        everything runs with no download.
    `discs`: discs of random radius, position and contrast on a zero background (Sect. 5.1).

Every source is a pool of 100,000 images split 90% 'train' / 10% 'test' (disjoint, fixed).
`make_pairs` turns the first n images of a split into (input, target) pairs for a problem,
batched through `diffnet_tf.physics` and cached under `data_dir/cache/`; `make_dataset` wraps
the pairs in a shuffled, batched, prefetched `tf.data.Dataset`.

Importing this module asks XLA:CPU for its classic loop emitter (unless XLA_FLAGS already
chooses): on TF 2.21 it runs the Perona-Malik solver about 4x faster than the default.
"""

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from diffnet_tf import physics
from diffnet_tf.checks import check_choice, check_count, check_image_batch, check_image_size
from diffnet_tf.synthetic import discs, scale_to_max_one, synthetic_images

_XLA_CPU_FLAG = "--xla_cpu_use_fusion_emitters=false"
if tf.__version__.startswith("2.21.") and "xla_cpu_use_fusion_emitters" not in os.environ.get(
    "XLA_FLAGS", ""
):  # read once, at the process's first XLA compilation
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_CPU_FLAG}".strip()

SPLITS = ("train", "test")
SOURCES = ("synthetic", "stl10", "discs")
PROBLEMS = ("pm_inverse", "pm_forward", "heat_inverse")
DEFAULT_SOURCE = {"pm_inverse": "synthetic", "pm_forward": "synthetic", "heat_inverse": "discs"}
POOL_SIZE = 100_000  # images of each generated source, like STL-10's unlabelled set
TEST_FRACTION = 0.1  # 90,000 train / 10,000 test (Sect. 5.2)
DISC_SPLIT_SIZES = {"train": 1024, "test": 128}  # the disc experiment's default (Sect. 5.1)
STL10_SIDE = 96
GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)  # ITU-R 601, as rgb2gray
CHUNK = 1000  # images per batch through the physics solvers
CACHE_FORMAT = 2  # bump when the generated numbers change
_NOISE_STREAM = 7  # separates the noise random streams from the image streams



def _split_range(split, total):
    """(first index, count) of a split in a source of `total` images (90% / 10%)."""
    check_choice(split, SPLITS, "split")
    n_test = int(round(total * TEST_FRACTION))
    return (0, total - n_test) if split == "train" else (total - n_test, n_test)


# ---------------------------------------------------------------- STL-10


def _stl10_rgb(root, download):
    """All unlabelled STL-10 images as uint8 (N, 96, 96, 3), from the first route that works."""
    binary = root / "stl10_binary" / "unlabeled_X.bin"
    tfds_dir = root / "tfds"
    manual = tfds_dir / "downloads" / "manual" / "stl10_binary.tar.gz"
    if binary.exists():  # route 1
        image_bytes = 3 * STL10_SIDE**2
        if binary.stat().st_size % image_bytes:
            raise ValueError(
                f"Expected {binary} to hold whole 3x96x96 uint8 images ({image_bytes} bytes "
                f"each). Received {binary.stat().st_size} bytes: a truncated file?"
            )
        raw = np.memmap(binary, np.uint8, mode="r").reshape(-1, 3, STL10_SIDE, STL10_SIDE)
        return raw.transpose(0, 3, 2, 1)  # channel-major, column-major -> (N, row, col, RGB)
    if download or manual.exists() or any((tfds_dir / "stl10").glob("*/dataset_info.json")):
        import tensorflow_datasets as tfds  # routes 2-4, imported only when needed

        builder = tfds.builder("stl10", data_dir=str(tfds_dir))
        builder.download_and_prepare(
            download_dir=str(tfds_dir / "downloads"),
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual.parent)),
        )
        ds = builder.as_dataset(split="unlabelled", shuffle_files=False)
        batches = tfds.as_numpy(ds.map(lambda example: example["image"]).batch(CHUNK))
        return np.concatenate(list(batches))
    raise FileNotFoundError(
        f"STL-10 not found under {root}. Expected one of: (1) the extracted binary file "
        f"{binary}; (2) a tfds 'stl10' dataset prepared under {tfds_dir}; (3) the archive "
        f"stl10_binary.tar.gz placed in {manual.parent}. Or pass download=True to let tfds "
        "download 2.6 GB, or use the embedded images instead (--dataset=synthetic)."
    )


def _content_order(rgb):
    """Indices sorting images by a hash of their pixels: the same order whatever the route."""
    keys = np.empty(len(rgb), np.uint64)
    for i in range(0, len(rgb), CHUNK):
        chunk = np.ascontiguousarray(rgb[i : i + CHUNK])
        keys[i : i + len(chunk)] = [
            int.from_bytes(hashlib.sha256(image).digest()[:8], "big") for image in chunk
        ]
    return np.argsort(keys, kind="stable")


def stl10_images(split, data_dir="data", n=None, download=False):
    """The unlabelled STL-10 images in grey, as the paper used them (Sect. 5.2).

    The RGB images are converted with the ITU-R 601 luma weights of MATLAB's rgb2gray
    (0.2989 R + 0.5870 G + 0.1140 B) and scaled to maximum 1. Sorted by a hash of their
    pixels, the first 90% form 'train', the rest 'test' (90,000 / 10,000 for the full set),
    so the split and its order are the same whichever route supplied the images.

    Routes, local first: (1) `data_dir/stl10_binary/unlabeled_X.bin`, read directly;
    (2) a tfds dataset prepared under `data_dir/tfds`; (3) tfds preparing it from
    `data_dir/tfds/downloads/manual/stl10_binary.tar.gz`; (4) tfds downloading it, only
    with `download=True`.

    Args:
        split: 'train' or 'test'.
        data_dir: dataset root (str or Path).
        n: the first n images of the split; None for all of them.
        download: allow tfds to download the archive when no local route works.

    Returns:
        float32 array (n, 96, 96, 1) in [0, 1], each image's maximum 1.

    Raises:
        FileNotFoundError: no route works; the message lists them.
    """
    check_choice(split, SPLITS, "split")
    rgb = _stl10_rgb(Path(data_dir), download)
    first, count = _split_range(split, len(rgb))
    n = count if n is None else check_count(n, maximum=count)
    wanted = _content_order(rgb)[first : first + n]  # in hash order
    by_position = np.argsort(wanted)  # read the source front to back
    out = np.empty((n, STL10_SIDE, STL10_SIDE, 1), np.float32)
    for i in range(0, n, CHUNK):
        rows = by_position[i : i + CHUNK]
        rgb_rows = np.asarray(rgb[wanted[rows]], np.float32)  # elementwise: layout-proof
        grey = sum(GREY_WEIGHTS[c] * rgb_rows[..., c] for c in range(3))
        out[rows, ..., 0] = scale_to_max_one(grey)
    return out


# ---------------------------------------------------------------- pairs and their cache

_perona_malik = tf.function(physics.perona_malik, jit_compile=True)  # one fused XLA kernel


def _physics_params(problem, noise, steps, dt, lam, boundary, t):
    """The parameters that change a problem's pairs, checked by a solve of a blank image."""
    check_choice(problem, PROBLEMS, "problem")
    if not noise >= 0:
        raise ValueError(f"Expected a noise level >= 0. Received noise={noise!r}.")
    blank = np.zeros((1, 8, 8, 1), np.float32)
    if problem == "heat_inverse":
        physics.heat(blank, t=t)
        return {"noise": float(noise), "t": float(t)}
    physics.perona_malik(blank, steps, dt, lam, boundary)
    return {"noise": float(noise), "steps": int(steps), "dt": float(dt), "lam": float(lam),
            "boundary": boundary}


def _solve(clean, problem, params):
    if problem == "heat_inverse":
        return physics.heat(clean, t=params["t"]).numpy()  # exact solution, Sect. 5.1
    keys = ("steps", "dt", "lam", "boundary")
    return _perona_malik(clean, *(params[key] for key in keys)).numpy()  # Sect. 5.2


def _add_noise(images, level, seed, start):
    """In place: white Gaussian noise, sigma = level x the image's maximum (as
    `physics.add_noise`), drawn per image from (seed, start + i) so it never depends on n."""
    if not level:
        return
    sigma = level * images.max(axis=(1, 2, 3))

    def add(block):  # NumPy releases the GIL here: blocks run on all cores
        for i in block:
            rng = np.random.Generator(np.random.SFC64([seed, _NOISE_STREAM, start + i]))
            images[i] += sigma[i] * rng.standard_normal(images.shape[1:], dtype=np.float32)

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(add, np.array_split(np.arange(len(images)), workers)))


def _generate(n, image_shape, clean_chunk, problem, params, seed, start, verbose):
    """Pairs for n images, CHUNK at a time; clean_chunk(i, m) gives images i .. i + m - 1."""
    inputs = np.empty((n, *image_shape, 1), np.float32)
    targets = np.empty_like(inputs)
    clean_out, solved_out = (inputs, targets) if problem == "pm_forward" else (targets, inputs)
    progbar = keras.utils.Progbar(n, verbose=verbose, unit_name="image")
    batch = min(n, CHUNK)  # the last chunk is padded to it: one compiled shape
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        clean = clean_out[i : i + m] = clean_chunk(i, m)
        if m < batch:
            clean = np.concatenate([clean, np.zeros((batch - m, *image_shape, 1), np.float32)])
        solved_out[i : i + m] = _solve(clean, problem, params)[:m]
        _add_noise(inputs[i : i + m], params["noise"], seed, start + i)
        progbar.add(m)
    return inputs, targets


def pairs_from_images(images, problem="pm_inverse", noise=0.0, steps=4, dt=0.1, lam=0.2,
                      boundary="neumann", t=1.0, seed=0, start=0, verbose=0):
    """(input, target) pairs for a problem from clean images, batched through the physics.

    Problems: 'pm_inverse' (input = Perona-Malik diffused + noise, target = clean; Sect.
    5.2), 'pm_forward' (input = clean + noise, target = diffused; Sect. 6) and
    'heat_inverse' (input = heat equation to time t + noise, target = clean; Sect. 5.1).

    Args:
        images: (n, H, W, 1) float array of clean images, each scaled to maximum 1.
        problem: one of PROBLEMS.
        noise: noise level, sigma = noise x the noised image's maximum (0.01 = 1%).
        steps, dt, lam, boundary: Perona-Malik explicit steps, step size, contrast lambda
            and boundary ('neumann' or 'original'); see `physics.perona_malik`.
        t: diffusion time of 'heat_inverse'.
        seed: noise seed; image i's noise depends only on (seed, start + i).
        start: pool index of the first image.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.

    Returns:
        (inputs, targets): two float32 arrays (n, H, W, 1).
    """
    params = _physics_params(problem, noise, steps, dt, lam, boundary, t)
    images = np.asarray(images, np.float32)
    check_image_batch(images, "images")
    return _generate(len(images), images.shape[1:3], lambda i, m: images[i : i + m], problem,
                     params, seed, check_count(start, "start"), verbose)


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
    except Exception as error:  # truncated zip, missing member, bad header, ...
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


def make_pairs(problem, split="train", dataset=None, n=None, size=None, noise=0.0, steps=4,
               dt=0.1, lam=0.2, boundary="neumann", t=1.0, seed=0, data_dir="data",
               cache=True, verbose=1, download=False, max_discs=1):
    """(input, target) pairs from the first n images of a split, cached (Sects. 5.1, 5.2).

    The cache file under `data_dir/cache/` is keyed by every parameter that changes the
    numbers except n: it holds the first images of the split, and a request for fewer is
    served from it. It is written atomically with a SHA-256 checksum; a corrupted file is
    reported (a warning), deleted and regenerated.

    Args:
        problem: 'pm_inverse', 'pm_forward' or 'heat_inverse' (see `pairs_from_images`).
        split: 'train' (90% of the pool) or 'test' (the other 10%).
        dataset: 'synthetic', 'stl10' or 'discs'; None: 'discs' for 'heat_inverse',
            'synthetic' otherwise.
        n: number of images, the first of the split; None: the whole split (for discs, the
            paper's 1024 train / 128 test).
        size: image side; None: 96 (STL-10 and synthetic; STL-10 takes no other) or 64
            (discs).
        noise, steps, dt, lam, boundary, t: the physics, see `pairs_from_images`
            (defaults: the paper's, no noise).
        seed: seed of the generated images and of the noise.
        data_dir: dataset root, holding STL-10 and the cache.
        cache: read and write the cache.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.
        download: let tfds download STL-10 if no local copy is found.
        max_discs: for 'discs', the most discs in one image (see `discs`; 1 is the paper's).

    Returns:
        (inputs, targets): two float32 arrays (n, size, size, 1).
    """
    params = _physics_params(problem, noise, steps, dt, lam, boundary, t)
    dataset = DEFAULT_SOURCE[problem] if dataset is None else dataset
    check_choice(dataset, SOURCES, "dataset")
    check_choice(split, SPLITS, "split")
    if dataset != "discs" and max_discs != 1:
        raise ValueError(f"max_discs applies to dataset='discs' only. Received "
                         f"dataset={dataset!r}, max_discs={max_discs!r}.")
    if dataset == "stl10" and size not in (None, STL10_SIDE):
        raise ValueError(f"Expected size None or 96 for STL-10 (96x96). Received size={size}.")
    size = check_image_size(size or (64 if dataset == "discs" else 96))
    first, count = _split_range(split, POOL_SIZE)
    whole_split = n is None
    if dataset == "discs" and n is None:
        n = DISC_SPLIT_SIZES[split]
    if n is not None:
        n = check_count(n, maximum=None if dataset == "stl10" else count)
    elif dataset != "stl10":
        n = count  # STL-10's split size is known once the source is read
    key = dict(format=CACHE_FORMAT, problem=problem, dataset=dataset, split=split, size=size,
               seed=seed, **params)
    if dataset == "discs":
        key["max_discs"] = max_discs
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(data_dir) / "cache" / f"{problem}_{dataset}_{split}_{size}px_{digest}.npz"
    stored = _load_cache(path) if cache else None
    if stored and (stored[2] if n is None else len(stored[0]) >= n):
        inputs, targets, _ = stored
        return (inputs, targets) if n in (None, len(inputs)) else (inputs[:n].copy(),
                                                                  targets[:n].copy())
    if dataset == "stl10":
        clean = stl10_images(split, data_dir, n, download)
        n, source = len(clean), (lambda i, m: clean[i : i + m])  # noqa: E731
    else:
        options = dict(max_discs=max_discs) if dataset == "discs" else {}
        generate = synthetic_images if dataset == "synthetic" else discs
        source = lambda i, m: generate(m, size, seed, start=first + i, **options)  # noqa: E731
    inputs, targets = _generate(n, (size, size), source, problem, params, seed, first, verbose)
    if cache:
        complete = whole_split if dataset == "stl10" else n == count
        _save_cache(path, inputs, targets, complete)
    return inputs, targets


def make_dataset(problem, split="train", n=None, batch_size=16, shuffle=None,
                 shuffle_seed=None, drop_remainder=False, **pair_options):
    """A tf.data pipeline of (input, target) batches from `make_pairs`.

    Args:
        problem: 'pm_inverse', 'pm_forward' or 'heat_inverse'.
        split: 'train' or 'test'.
        n: the first n images of the split (the training- or test-set size); None: all.
        batch_size: images per batch (the paper's: 16).
        shuffle: reshuffle every epoch; None: only for 'train'.
        shuffle_seed: seed of the shuffling; None: pair_options' seed (default 0).
        drop_remainder: drop a last, smaller batch.
        **pair_options: dataset, size, noise, steps, dt, lam, boundary, t, seed, data_dir,
            cache, verbose, download, as in `make_pairs`.

    Returns:
        A prefetched tf.data.Dataset of (inputs, targets), each (batch, size, size, 1)
        float32.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch_size. Received {batch_size!r}.")
    inputs, targets = make_pairs(problem, split, n=n, **pair_options)
    shuffle = split == "train" if shuffle is None else shuffle
    seed = pair_options.get("seed", 0) if shuffle_seed is None else shuffle_seed
    x, y = tf.constant(inputs), tf.constant(targets)
    ds = tf.data.Dataset.range(len(inputs))
    if shuffle:
        ds = ds.shuffle(max(len(inputs), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda i: (tf.gather(x, i), tf.gather(y, i)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
