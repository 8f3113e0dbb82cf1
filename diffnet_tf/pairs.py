"""(input, target) pairs: clean images through a problem's physics and noise (Sects. 5.1,
5.2), and the training, validation and test pairs of a run.

The clean images come from the `spec.DataSpec`'s source: 'stl10' (`stl10.stl10_images`),
'synthetic' (`synthetic.synthetic_images`, the embedded default), 'discs'
(`synthetic.disc_images`) or 'folder' (`image_folder.folder_images`, patches of your own
images). The generated sources are pools of 100,000 images, STL-10 has as many, a folder its
files' patches; each is split 90 % 'train' / 10 % 'test' (`protocols.split_range`; a
folder by file). The physics runs in batches of CHUNK images,
compiled by the active Keras backend (XLA on TensorFlow and JAX); `make_pairs` caches a
split's pairs in a `pair_cache` file.
"""

import dataclasses
import functools
import logging

import keras
import numpy as np

from diffnet_tf import image_folder, pair_cache, physics, problems, protocols
from diffnet_tf.checks import check_image_batch, check_integer
from diffnet_tf.files import check_writable_folder
from diffnet_tf.stl10 import stl10_images
from diffnet_tf.synthetic import disc_images, synthetic_images

CHUNK = 1000  # images per batch through the physics solvers
_READ_SOURCES = ("stl10", "folder")  # their split's size is known once they are read
_log = logging.getLogger(__name__)


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

        data = dataclasses.replace(spec.protocol("perona_malik").data, noise=0.01)
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
                     check_integer(start, "start"), verbose)


def _clean_images(data, split, n, first, data_dir, download):
    """(count, chunk) for the clean images of a split: chunk(i, m) gives images i .. i+m-1."""
    if data.source == "stl10":
        clean = stl10_images(split, data_dir, n, download, data.channels)
        return len(clean), lambda i, m: clean[i : i + m]
    if data.source == "folder":
        clean = image_folder.folder_images(data.images, split, data.image_size, data.channels,
                                           n, data.images_digest)
        return len(clean), lambda i, m: clean[i : i + m]
    if data.source == "discs":
        return n, lambda i, m: disc_images(m, data.image_size, data.seed, start=first + i,
                                           max_discs=data.max_discs)
    return n, lambda i, m: synthetic_images(m, data.image_size, data.seed, start=first + i,
                                            channels=data.channels)


def make_pairs(data, split="train", n=None, data_dir="data", cache=True, verbose=1,
               download=False):
    """(input, target) pairs of the first n images of a split, cached (Sects. 5.1, 5.2).

    The cache file under `data_dir/cache/` is keyed by `pair_cache.cache_key(data, split)`,
    every parameter that changes the numbers except n: it holds the first images of the
    split, and a request for fewer reads only those from it (and the SHA-256 digests of
    the chunks they lie in). It is written atomically; a corrupted file is reported (a
    warning), deleted and regenerated.

    Args:
        data: a `spec.DataSpec`: problem, source, image size, channels, physics, noise, seed.
        split: 'train' (90% of the pool) or 'test' (the other 10%).
        n: number of images, the first of the split; None: the whole split.
        data_dir: dataset root, holding STL-10 and the cache (a folder source's images lie
            at `data.images`).
        cache: read and write the cache.
        verbose: 0 silent, 1 progress bar, 2 one line at the end; with either, the pairs
            about to be made are logged (INFO, logger "diffnet_tf.pairs").
        download: let tfds download STL-10 if no local copy is found.

    Returns:
        (inputs, targets): two float32 arrays (n, size, size, channels).
    """
    path = pair_cache.cache_path(check_writable_folder(data_dir, "data folder"), data, split)
    first, count = protocols.split_range(split, protocols.POOL_SIZE)
    whole_split = n is None
    if n is not None:
        n = check_integer(n, "n", maximum=None if data.source in _READ_SOURCES else count)
    elif data.source not in _READ_SOURCES:
        n = count  # STL-10's and a folder's split size is known once the source is read
    found = pair_cache.load(path, n) if cache else None
    if found is not None and (n is not None or found[2]):  # n None: a complete file only
        return found[:2]
    n, clean_chunk = _clean_images(data, split, n, first, data_dir, download)
    if verbose:
        _log.info("Making %d %s pairs (%s, %s), cached in %s", n, split, data.problem,
                  data.source, path)
    inputs, targets = _generate(n, clean_chunk, data, first, verbose)
    if cache:
        complete = whole_split if data.source in _READ_SOURCES else n == count
        pair_cache.save(path, inputs, targets, complete)
    return inputs, targets


@dataclasses.dataclass(frozen=True)
class RunPairs:
    """A run's data: (inputs, targets) arrays (N, H, W, C) of each part."""

    train: tuple
    validation: tuple
    test: tuple


def pool_sizes(data):
    """{'train': n, 'test': m}: how many of each split's first pairs a run of `data` (a
    `spec.DataSpec`) reads: its training (and 'train_tail' validation) and test images."""
    tail = data.validation == "train_tail"
    return {"train": data.train_size + data.val_size * tail, "test": data.test_size}


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
    needed = pool_sizes(data)
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
