"""The scripts in examples/ run as a user runs them, on tiny sizes (fresh interpreters)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffnet_tf import image_io

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each starts a fresh interpreter with TensorFlow


def run_example(name, *args, cwd):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_training_on_a_folder_with_model_fit(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(6):
        image_io.write_image(tmp_path / "images" / f"{k}.png", rng.random((32, 32, 3)))
    out = run_example("train_on_your_images.py", tmp_path / "images", "--size", 16,
                      "--epochs", 1, "--layers", 1, "--out", tmp_path / "m.keras", cwd=tmp_path)
    assert "test PSNR: input" in out and "(4 patches of 16x16)" in out
    assert (tmp_path / "m.keras").is_file()


def test_restoring_a_photograph_with_a_preset_keeps_its_depth(tmp_path):
    photo = np.linspace(0.1, 0.9, 24 * 30 * 3, dtype=np.float32).reshape(24, 30, 3)
    image_io.write_image(tmp_path / "photo.png", photo, bit_depth=16)
    run_example("restore_a_photograph.py", tmp_path / "photo.png", tmp_path / "out.png",
                cwd=tmp_path)
    restored, found = image_io.read_image(tmp_path / "out.png")
    assert restored.shape == (24, 30, 3) and found.bit_depth == 16


def test_drawing_filter_maps(tmp_path):
    out = run_example("draw_filter_maps.py", "--size", 16, "--out", tmp_path / "f.png",
                      cwd=tmp_path)
    assert "(5 layers)" in out and image_io.read_image(tmp_path / "f.png")[0].shape[-1] == 3
