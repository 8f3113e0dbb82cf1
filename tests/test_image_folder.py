"""A folder of images as a data source (diffnet_tf/image_folder.py), through pairs, the
spec and the command line (--dataset=folder --images=DIR)."""

import dataclasses
import re
import subprocess
import sys

import numpy as np
import pytest
from absl import app

from diffnet_tf import image_folder, image_io, pair_cache, pairs, spec
from diffnet_tf.cli import programs
from diffnet_tf.cli.spec_flags import spec_from_flags

SIZE = 8


def write_folder(folder, count=10, shape=(17, 26, 3)):
    """`count` colour PNGs (each 2x3 patches of SIZE, a remainder dropped), each file's
    content distinct (file k is bright where its column index is k mod 4): returns them."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for k in range(count):
        image = rng.random(shape).astype(np.float32) * 0.5 + 0.1 * (k % 5)
        image_io.write_image(folder / f"img{k:02d}.png", image, bit_depth=16)
        images.append(image_io.read_image(folder / f"img{k:02d}.png")[0])
    (folder / "notes.txt").write_text("not an image")
    return images


def folder_data(folder, **fields):
    values = dict(source="folder", image_size=SIZE, train_size=8, val_size=4, test_size=4,
                  images=str(folder), images_digest=image_folder.folder_digest(folder))
    return dataclasses.replace(spec.protocol("perona_malik").data, **{**values, **fields})


def test_patches_are_cut_row_by_row_and_scaled_to_maximum_one(tmp_path):
    images = write_folder(tmp_path / "f")
    grey = image_folder.folder_images(tmp_path / "f", "train", SIZE)
    assert grey.shape == (9 * 6, SIZE, SIZE, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey.max(axis=(1, 2, 3)), 1, rtol=1e-6)
    luma = images[0] @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    second = luma[:SIZE, SIZE : 2 * SIZE]  # the first row's second patch of the first file
    np.testing.assert_allclose(grey[1, ..., 0], second / second.max(), rtol=1e-5)
    colour = image_folder.folder_images(tmp_path / "f", "test", SIZE, channels=3)
    last = images[-1][SIZE : 2 * SIZE, 2 * SIZE : 3 * SIZE]  # the test file's last patch
    np.testing.assert_allclose(colour[-1], last / last.max(), rtol=1e-5)


def test_no_patch_of_a_test_file_is_trained_on(tmp_path):
    images = write_folder(tmp_path / "f", count=20)
    train = image_folder.folder_images(tmp_path / "f", "train", SIZE, channels=3)
    test = image_folder.folder_images(tmp_path / "f", "test", SIZE, channels=3)
    assert len(train) == 18 * 6 and len(test) == 2 * 6  # the last 2 of 20 files by name
    held_out_patches = [image_folder.patches(images[k], SIZE, "") for k in (18, 19)]
    for held_out in np.concatenate(held_out_patches):
        scaled = held_out / held_out.max()
        assert not np.any(np.all(np.isclose(train, scaled, atol=1e-6), axis=(1, 2, 3)))
        assert np.any(np.all(np.isclose(test, scaled, atol=1e-6), axis=(1, 2, 3)))


def test_the_split_follows_the_file_names_not_the_folder_order(tmp_path):
    write_folder(tmp_path / "f")
    files = image_folder.split_files(tmp_path / "f", "test")
    assert [path.name for path in files] == ["img09.png"]
    assert image_folder.split_files(tmp_path / "f", "train")[-1].name == "img08.png"


def test_the_content_is_in_the_cache_key_and_the_path_is_not(tmp_path):
    write_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    data_a, data_b = folder_data(tmp_path / "a"), folder_data(tmp_path / "b")
    assert pair_cache.cache_key(data_a, "train") == pair_cache.cache_key(data_b, "train")
    image_io.write_image(tmp_path / "b" / "img03.png", np.full((17, 26), 0.3, np.float32))
    changed = folder_data(tmp_path / "b")
    assert pair_cache.cache_key(changed, "train") != pair_cache.cache_key(data_a, "train")


def test_a_spec_without_a_folder_keeps_its_digest():
    synthetic = spec.protocol("perona_malik").replace(data={"source": "synthetic"})
    assert "images" not in synthetic.to_dict()["data"]
    assert spec.RunSpec.from_dict(synthetic.to_dict()) == synthetic


def test_make_pairs_serves_the_folders_patches_and_notices_changed_content(tmp_path):
    write_folder(tmp_path / "f")
    data = folder_data(tmp_path / "f", noise=0.0)
    inputs, targets = pairs.make_pairs(data, "test", 4, tmp_path / "data", verbose=0)
    clean = image_folder.folder_images(tmp_path / "f", "test", SIZE, n=4)
    np.testing.assert_array_equal(targets, clean)
    assert inputs.shape == clean.shape and not np.allclose(inputs, targets)  # diffused
    image_io.write_image(tmp_path / "f" / "img00.png", np.full((17, 26), 0.3, np.float32))
    with pytest.raises(ValueError, match="Received changed content"):
        pairs.make_pairs(data, "train", 4, tmp_path / "data", cache=False, verbose=0)


def flags(folder, **extra):
    values = {name: programs.PROGRAMS["perona_malik"].default(name)
              for name in programs.PROGRAMS["perona_malik"].flags}
    values.update(dataset="folder", images=str(folder), image_size=SIZE, train_size=8,
                  val_size=4, test_size=4)
    values.update(extra)
    return values


def folder_error(folder, **extra):
    """The one-line usage error --dataset=folder --images=folder ends with."""
    with pytest.raises(app.UsageError) as raised:
        spec_from_flags(programs.protocol_spec("perona_malik", "diffnet"), flags(folder, **extra))
    message = str(raised.value)
    assert "\n" not in message
    return message


def make_bad_folder(tmp_path, case):
    folder = tmp_path / "bad"
    write_folder(folder)
    if case == "empty":
        for path in folder.glob("*.png"):
            path.unlink()
    elif case == "unreadable":
        (folder / "img04.png").write_bytes(b"not a png")
    elif case == "small":
        image_io.write_image(folder / "img05.png", np.full((SIZE - 1, 40), 0.5, np.float32))
    elif case == "grey for colour":
        image_io.write_image(folder / "img06.png", np.full((20, 20), 0.5, np.float32))
    return folder


@pytest.mark.parametrize("case, expected", [
    ("empty", r"Expected image files \(.*\) in the folder '.*bad'\. Received none"),
    ("unreadable", r"Could not read an image from '.*bad/img04\.png'"),
    ("small", r"Expected images of at least 8x8 pixels .* Received 7x40 in '.*bad/img05\.png'"),
    ("grey for colour", r"Expected a colour .* in '.*bad/img06\.png'"),
])
def test_each_bad_folder_ends_with_one_line_naming_the_file(tmp_path, case, expected):
    folder = make_bad_folder(tmp_path, case)
    extra = {"channels": 3} if case == "grey for colour" else {}
    assert re.search(expected, folder_error(folder, **extra))


def test_a_missing_folder_too_few_files_or_patches_are_named(tmp_path):
    assert "no such folder" in folder_error(tmp_path / "nowhere")
    write_folder(tmp_path / "few", count=5)
    assert "Expected at least 6 image files" in folder_error(tmp_path / "few")
    write_folder(tmp_path / "f")
    message = folder_error(tmp_path / "f", test_size=100)
    assert "Expected at most 6 test patches" in message and "(--test_size)" in message


def test_the_flags_make_a_folder_spec_with_its_absolute_path_and_digest(tmp_path, monkeypatch):
    write_folder(tmp_path / "f")
    monkeypatch.chdir(tmp_path)
    run_spec = spec_from_flags(programs.protocol_spec("perona_malik", "diffnet"), flags("f"))
    assert run_spec.data.images == str(tmp_path / "f")
    assert run_spec.data.images_digest == image_folder.folder_digest(tmp_path / "f")
    assert run_spec.folder_name.startswith("diffnet_pm_inverse_folder_")
    assert "--images" in folder_error(tmp_path / "f", dataset="synthetic")


@pytest.mark.slow
def test_perona_malik_trains_and_evaluates_on_a_folder(tmp_path):
    write_folder(tmp_path / "photos", count=12, shape=(48, 48, 3))  # 9 patches of 16
    command = [sys.executable, "-m", "experiments.perona_malik", "--dataset=folder",
               f"--images={tmp_path / 'photos'}", "--image_size=16", "--train_size=40",
               "--val_size=9", "--test_size=9", "--epochs=1", "--layers=2", "--batch_size=8",
               "--verbose=0", f"--out_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path / 'data'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (metrics,) = (tmp_path / "runs").glob("*folder*/metrics.json")
    assert "psnr" in metrics.read_text().lower()
