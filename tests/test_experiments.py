"""End-to-end smoke tests: each experiment's main on tiny sizes, under flagsaver."""

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from diffnet_tf import metrics
from experiments import deconvolution, perona_malik, restore

FLAGS = flags.FLAGS
TINY = dict(train_size=16, test_size=8, val_size=4, epochs=1, layers=2, batch_size=8,
            unet_filters=4, verbose=0)


@pytest.fixture(autouse=True)
def parsed_flags():
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()


def summary_tags(run_dir):
    tags = set()
    for path in glob.glob(os.path.join(run_dir, "tensorboard", "**", "events.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def run_perona_malik(tmp_path, **overrides):
    options = dict(TINY, dataset="synthetic", noise=0.01, out_dir=str(tmp_path / "runs"),
                   data_dir=str(tmp_path / "data"))
    options.update(overrides)
    with flagsaver.flagsaver(**options):
        perona_malik.main([])
    return glob.glob(str(tmp_path / "runs" / f"{options.get('model', 'diffnet')}_*"))[0]


def test_perona_malik_writes_every_promised_output_and_compares_models(tmp_path):
    diffnet_run = run_perona_malik(tmp_path)
    for name in ("config.json", "metrics.json", "model.keras", "best.keras",
                 "figures/reconstructions.png", "figures/samples.npz"):
        assert os.path.exists(os.path.join(diffnet_run, name)), name
    results = json.load(open(os.path.join(diffnet_run, "metrics.json")))
    assert results["parameters"] == 40_524 and results["train_size"] == 16
    assert {"psnr_mean", "psnr_std", "psnr_batch"} <= set(results["test_input"])
    tags = summary_tags(diffnet_run)
    assert {"images/output", "filters/layer_1/centre", "smoothing/layer_2", "dt/layer_1"} <= tags
    # the saved model reloads and reproduces the reported test PSNR
    from diffnet_tf import datasets
    inputs, targets = datasets.make_pairs("pm_inverse", "test", dataset="synthetic", n=8,
                                          noise=0.01, data_dir=str(tmp_path / "data"), verbose=0)
    model = keras.saving.load_model(os.path.join(diffnet_run, "model.keras"))
    psnr = np.asarray(metrics.psnr(targets, model.predict(inputs, verbose=0)))
    assert psnr.mean() == pytest.approx(results["test"]["psnr_mean"], abs=1e-3)

    unet_run = run_perona_malik(tmp_path, model="unet")
    assert os.path.exists(os.path.join(unet_run, "figures", "comparison.png"))


def test_perona_malik_fails_fast_without_stl10(tmp_path):
    with flagsaver.flagsaver(**TINY, dataset="stl10", out_dir=str(tmp_path / "runs"),
                             data_dir=str(tmp_path / "empty")):
        with pytest.raises(Exception, match="synthetic"):
            perona_malik.main([])


@pytest.mark.parametrize("max_discs", [1, 3])
def test_deconvolution_writes_figures_and_metrics(tmp_path, max_discs):
    with flagsaver.flagsaver(**TINY, out_dir=str(tmp_path / "runs"),
                             data_dir=str(tmp_path / "data"), max_discs=max_discs):
        deconvolution.main([])
    (run_dir,) = glob.glob(str(tmp_path / "runs" / f"*_discs{max_discs}_*"))
    assert json.load(open(os.path.join(run_dir, "config.json")))["max_discs"] == max_discs
    for name in ("metrics.json", "model.keras", "figures/fig4_disc_and_blur.png",
                 "figures/fig5_states.png", "figures/fig5_filters.png"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert json.load(open(os.path.join(run_dir, "metrics.json")))["parameters"] == 40_524


def saved_model(tmp_path, model):
    path = str(tmp_path / "model.keras")
    model(np.zeros((1, 16, 16, 1), np.float32))
    model.save(path)
    return path


@pytest.mark.parametrize("extension", [".png", ".npy", ".jpg"])
def test_restore_handles_non_square_images_of_unseen_size(tmp_path, extension):
    from diffnet_tf.models import DiffNet, UNet
    image = np.random.default_rng(0).random((37, 53)).astype(np.float32)
    source, target = str(tmp_path / f"in{extension}"), str(tmp_path / f"out{extension}")
    restore.write_image(source, image * 255 if extension != ".npy" else image,
                        255 if extension != ".npy" else None)
    for model in (DiffNet(num_layers=1, estimator_depth=2, width=4), UNet(base_filters=2, levels=3)):
        restore.main(restore.parse_flags(["restore", f"--model={saved_model(tmp_path, model)}",
                                          source, target]))
        out, _ = restore.read_image(target)
        assert out.shape == (37, 53)


def test_restore_converts_colour_to_grey_with_a_notice(tmp_path, capsys):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 1] = 200
    path = str(tmp_path / "colour.png")
    tf.io.write_file(path, tf.io.encode_png(rgb))
    grey, full_scale = restore.read_image(path)
    assert full_scale == 255 and grey == pytest.approx(np.full((20, 30), 0.5870 * 200))
    assert "converting to grey" in capsys.readouterr().out


@pytest.mark.parametrize("content, name, message", [
    (b"not an image", "broken.png", "Could not read an image from"),
    (b"", "notes.txt", r"ending in one of \.png"),
])
def test_restore_rejects_unreadable_files_clearly(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        restore.read_image(str(path))
