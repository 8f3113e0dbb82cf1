"""The experiment programs as a user runs them: their flags (each program its own), the
checks at the edge, the run folders they write, and restore (diffnet_tf/cli/restore.py).
Each program's main is called with the arguments a user types, parsed by its own flag
registry."""

import errno
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
from absl import app, flags

from diffnet_tf import files, image_io, metrics, pairs, runs, spec
from diffnet_tf.cli import restore, startup
from diffnet_tf.cli.startup import parse
from experiments import deconvolution, generalisation, interpretation, perona_malik

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train_size=16", "--test_size=8", "--val_size=4", "--epochs=1", "--layers=2",
        "--batch_size=8", "--verbose=0"]


def run(module, *args):
    """module.main with argv parsed by the module's own flags, as `python -m` does."""
    return module.main(parse(module.FLAGS, ["prog", *args]))


def folders(tmp_path):
    return ["--out_dir", str(tmp_path / "runs"), "--data_dir", str(tmp_path / "data")]


def only_run(tmp_path, prefix=""):
    (path,) = glob.glob(str(tmp_path / "runs" / f"{prefix}*"))
    return path


@pytest.mark.slow
def test_perona_malik_writes_its_run_folder_reports_it_and_compares_models(tmp_path, capsys,
                                                                           monkeypatch):
    args = [*TINY, "--dataset=synthetic", "--noise=0.01", *folders(tmp_path)]
    run(perona_malik, *args)
    run_dir = only_run(tmp_path, "diffnet_")
    for name in ("spec.json", "metrics.json", "model.keras", "figures/reconstructions.png",
                 "figures/samples.npz"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    stored = spec.RunSpec.load(os.path.join(run_dir, "spec.json"))
    assert (stored.data.noise, stored.data.train_size, stored.model.num_layers) == (0.01, 16, 2)
    results = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert results["parameters"] == 40_524 and results["train_images_evaluated"] == 8
    # the saved model reloads and reproduces the reported test PSNR
    inputs, targets = pairs.make_pairs(stored.data, "test", 8, tmp_path / "data", verbose=0)
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    psnr = keras.ops.convert_to_numpy(metrics.psnr(targets, model.predict(inputs, verbose=0)))
    assert psnr.mean() == pytest.approx(results["test"]["psnr_mean"], abs=1e-3)
    printed = capsys.readouterr().out
    assert os.path.join(run_dir, "metrics.json") in printed
    assert ("tensorboard --logdir" in printed) == bool(importlib.util.find_spec("tensorboard"))

    run(perona_malik, *[a for a in args if a != "--layers=2"], "--model=unet",
        "--unet_filters=4")
    unet_dir = only_run(tmp_path, "unet_")
    assert os.path.exists(os.path.join(unet_dir, "figures", "comparison.png"))

    monkeypatch.setattr(runs, "run_pairs", None)  # the same command again: no work
    run(perona_malik, *args)
    assert "Finished earlier" in capsys.readouterr().out


def test_perona_malik_fails_fast_without_stl10(tmp_path):
    with pytest.raises(FileNotFoundError, match="--dataset=synthetic"):
        run(perona_malik, *TINY, "--dataset=stl10", *folders(tmp_path))


@pytest.mark.parametrize("args, message", [
    (["--noise=inf"], r"DataSpec.noise \(--noise\) to be a finite number. Received inf"),
    (["--noise=nan"], r"DataSpec.noise \(--noise\) to be a finite number. Received nan"),
    (["--noise=1e30"], r"DataSpec.noise \(--noise\) <= 1.0. Received 1e\+30"),
    (["--lr_init=inf"], r"TrainSpec.lr_init \(--lr_init\) to be a finite number"),
    (["--pm_dt=nan"], r"DataSpec.pm_dt \(--pm_dt\) to be a finite number. Received nan"),
    (["--pm_lambda=-1"], r"DataSpec.pm_lambda \(--pm_lambda\) > 0. Received -1"),
    (["--model=unet", "--layers=3"], r"ModelSpec.num_layers \(--layers\) to be None \(a U-Net\)"),
    (["--train_size=90001"], r"at most 90,000 training images"),
])
def test_perona_malik_refuses_bad_values_before_any_data_naming_the_flag(tmp_path, args,
                                                                          message, monkeypatch):
    monkeypatch.setattr(pairs, "make_pairs", None)
    with pytest.raises(app.UsageError, match=message):
        run(perona_malik, "--dataset=synthetic", *args, *folders(tmp_path))


@pytest.mark.parametrize("flag", ["out_dir", "data_dir"])
def test_a_folder_flag_naming_a_file_fails_before_any_data(tmp_path, flag, monkeypatch):
    monkeypatch.setattr(pairs, "make_pairs", None)
    (tmp_path / "file").write_text("x")
    args = dict(zip(["out_dir", "data_dir"], folders(tmp_path)[1::2]), **{flag: tmp_path / "file"})
    with pytest.raises(app.UsageError, match=f"folder of --{flag} .*file' to be a folder"):
        run(perona_malik, "--dataset=synthetic", *[f"--{k}={v}" for k, v in args.items()])


def test_a_folder_flag_we_may_not_write_fails_before_any_data(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs, "make_pairs", None)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: the check sees what a user's would
        real = tempfile.TemporaryFile

        def temporary_file(dir):
            if Path(dir) == locked:
                raise PermissionError(13, "Permission denied")
            return real(dir=dir)

        monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    with pytest.raises(app.UsageError, match=f"to be writable. '{locked}' is not"):
        run(perona_malik, "--dataset=synthetic", f"--out_dir={locked / 'runs'}")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_flag_on_a_read_only_file_system_fails_before_any_data(monkeypatch):
    # os.access says yes to root here: only a file made in the folder tells
    monkeypatch.setattr(pairs, "make_pairs", None)
    with pytest.raises(app.UsageError, match="'/proc' is not"):
        run(perona_malik, "--dataset=synthetic", "--out_dir=/proc/diffnet_runs")


@pytest.mark.parametrize("module, flag", [
    (interpretation, "--model=unet"), (interpretation, "--noise=0.5"),
    (interpretation, "--problem=forward"), (generalisation, "--train_size=100"),
    (deconvolution, "--noise=0.1"), (restore, "--epochs=3"),
])
def test_an_experiment_refuses_the_flags_it_does_not_use(module, flag):
    name = flag[2:].split("=")[0]
    with pytest.raises(flags.UnrecognizedFlagError, match=f"Unknown command line flag '{name}'"):
        parse(module.FLAGS, ["prog", flag])


def test_help_lists_the_flags_and_an_unknown_flag_exits_with_a_message():
    python = [sys.executable, "-m", "experiments.interpretation"]
    shown = subprocess.run(python + ["--help"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and "--noise_levels" in shown.stdout and "Figs. 11-13" in shown.stdout
    refused = subprocess.run(python + ["--model=unet"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "Unknown command line flag 'model'" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("max_discs, solver", [(1, "exact"), (3, "implicit")])
def test_deconvolution_writes_figures_and_metrics(tmp_path, max_discs, solver, capsys):
    run(deconvolution, *TINY, f"--max_discs={max_discs}", f"--heat_solver={solver}",
        *folders(tmp_path))
    run_dir = only_run(tmp_path)
    lines = capsys.readouterr().out.splitlines()  # the report ends the output: its files
    files = [line for line in lines if line.startswith("  ")]
    assert files[0].endswith("metrics.json") and lines[-len(files):] == files
    stored = spec.RunSpec.load(os.path.join(run_dir, "spec.json"))
    assert (stored.data.max_discs, stored.data.heat_solver) == (max_discs, solver)
    for name in ("metrics.json", "model.keras", "figures/fig4_disc_and_blur.png",
                 "figures/fig5_states.png", "figures/fig5_filters.png"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    results = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert results["parameters"] == 40_524 and results["precision"] == "float32"
    for part in ("test", "test_input", "test_tikhonov", "train_tikhonov"):  # released statistics
        assert {"relative_l2_set", "psnr_batch16_mean", "psnr_batch16_min",
                "psnr_batch16_max"} <= set(results[part])
    assert results["test_tikhonov"]["psnr_batch16_mean"] > results["test_input"]["psnr_batch16_mean"]
    assert any(line.startswith("Tikhonov inverse (weight") for line in lines)
    train = f"{results['train']['psnr_batch16_mean']:.2f} dB"
    assert any(line.startswith("Training set, its first") and train in line for line in lines)


# ---------------------------------------------------------------- restore


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Paths of a small saved DiffNet and U-Net with non-trivial weights."""
    from diffnet_tf.models import DiffNet, UNet

    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, model in (("diffnet", DiffNet(num_layers=1, estimator_depth=2, width=4)),
                        ("unet", UNet(base_filters=2, levels=3))):
        model(np.zeros((1, 16, 16, 1), np.float32))
        for weight in model.weights:
            weight.assign(np.random.default_rng(0).normal(0, 0.1, weight.shape))
        paths[name] = str(folder / f"{name}.keras")
        model.save(paths[name])
    return paths


def expected_restoration(model_path, image):
    """The model applied to the image scaled to maximum 1, scaled back: (H, W)."""
    model = keras.saving.load_model(model_path)
    scale = image.max()
    return np.asarray(model.predict(image[None, ..., None] / scale, verbose=0))[0, ..., 0] * scale


@pytest.mark.parametrize("extension", [".png", ".npy", ".jpg"])
def test_restore_applies_the_model_to_images_of_an_unseen_size(tmp_path, extension,
                                                                saved_models):
    image = np.random.default_rng(0).random((37, 53)).astype(np.float32) * 0.8 + 0.1
    source, target = str(tmp_path / f"in{extension}"), str(tmp_path / f"out{extension}")
    image_io.write_image(source, image)
    read, _ = image_io.read_image(source)
    for name in ("diffnet", "unet"):
        run(restore, f"--model={saved_models[name]}", source, target)
        out, _ = image_io.read_image(target)
        assert out.shape == (37, 53, 1)
        if name == "diffnet" and extension != ".jpg":  # the values, not only the shape
            tolerance = 0 if extension == ".npy" else 0.5 / 255
            np.testing.assert_allclose(out[..., 0], np.clip(expected_restoration(
                saved_models[name], read[..., 0]), 0, 1 if extension == ".png" else None),
                atol=tolerance + 1e-6)


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    from diffnet_tf.models import DiffNet

    model = DiffNet(num_layers=1, estimator_depth=2, width=4, channels=3, channel_mixing="full")
    model(np.zeros((1, 8, 8, 3), np.float32))
    path = str(tmp_path_factory.mktemp("colour") / "colour.keras")
    model.save(path)
    return path


def test_restore_gives_colour_for_colour_with_a_colour_and_a_grey_model(tmp_path, saved_models,
                                                                        colour_model, capsys):
    image = np.random.default_rng(5).random((30, 41, 3)).astype(np.float32)
    image_io.write_image(tmp_path / "in.png", image)
    for name, model in (("colour", colour_model), ("grey", saved_models["diffnet"])):
        run(restore, f"--model={model}", str(tmp_path / "in.png"), str(tmp_path / f"{name}.png"))
        out, image_format = image_io.read_image(tmp_path / f"{name}.png")
        assert out.shape == (30, 41, 3) and image_format.channels == 3
    assert "restoring each channel" in capsys.readouterr().out


def test_restore_names_a_grey_image_a_colour_model_cannot_take(tmp_path, colour_model):
    image_io.write_image(tmp_path / "grey.png", np.full((8, 8), 0.5, np.float32))
    with pytest.raises(app.UsageError, match=r"grey.png is grey and the model restores 3-channel"):
        run(restore, f"--model={colour_model}", str(tmp_path / "grey.png"),
            str(tmp_path / "out.png"))
    assert not (tmp_path / "out.png").exists()


def test_restore_writes_several_inputs_into_a_folder_with_one_model_load(tmp_path, saved_models,
                                                                         monkeypatch):
    from diffnet_tf import saving

    loads = []
    real = saving.load_model
    monkeypatch.setattr(saving, "load_model", lambda path: loads.append(path) or real(path))
    names = ["a.png", "b.jpg", "c.npy"]
    for name in names:
        image_io.write_image(tmp_path / name, np.full((12, 14), 0.4, np.float32))
    run(restore, f"--model={saved_models['diffnet']}", f"--out_dir={tmp_path / 'out'}",
        *[str(tmp_path / name) for name in names])
    assert sorted(os.listdir(tmp_path / "out")) == sorted(names) and len(loads) == 1


def test_restore_keeps_16_bit_pngs_at_16_bits(tmp_path, saved_models):
    image = np.linspace(0.2, 0.7, 40 * 24, dtype=np.float32).reshape(40, 24)
    source, target = str(tmp_path / "in16.png"), str(tmp_path / "out16.png")
    image_io.write_image(source, image, bit_depth=16)
    run(restore, f"--model={saved_models['diffnet']}", source, target)
    out, image_format = image_io.read_image(target)
    assert image_format.bit_depth == 16
    read, _ = image_io.read_image(source)
    expected = np.clip(expected_restoration(saved_models["diffnet"], read[..., 0]), 0, 1)
    np.testing.assert_allclose(out[..., 0], expected, atol=0.5 / 65535 + 1e-6)
    assert len(np.unique(np.round(out * 65535))) > 256  # more levels than 8 bits hold


def test_restore_refuses_to_write_over_its_input_unless_told(tmp_path, saved_models):
    path = tmp_path / "photo.png"
    image_io.write_image(path, np.linspace(0.1, 0.9, 400, dtype=np.float32).reshape(20, 20))
    before = path.read_bytes()
    with pytest.raises(app.UsageError, match="is the input image: it would be overwritten"):
        run(restore, f"--model={saved_models['diffnet']}", str(path), str(path))
    os.symlink(path, tmp_path / "link.png")
    with pytest.raises(app.UsageError, match="is the input image"):
        run(restore, f"--model={saved_models['diffnet']}", str(path), str(tmp_path / "link.png"))
    assert path.read_bytes() == before
    read, _ = image_io.read_image(path)
    written = path.stat().st_mtime_ns
    run(restore, f"--model={saved_models['diffnet']}", "--overwrite", str(path), str(path))
    assert path.stat().st_mtime_ns != written  # replaced by the restoration
    expected = np.clip(expected_restoration(saved_models["diffnet"], read[..., 0]), 0, 1)
    np.testing.assert_allclose(image_io.read_image(path)[0][..., 0], expected,
                               atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_restore_names_a_damaged_model_file(tmp_path, content):
    image_io.write_image(tmp_path / "in.png", np.full((8, 8), 0.5, np.float32))
    (tmp_path / "model.keras").write_bytes(content)
    with pytest.raises(startup.InputRefused, match="is not a valid .keras file") as raised:
        run(restore, f"--model={tmp_path / 'model.keras'}", str(tmp_path / "in.png"),
            str(tmp_path / "out.png"))
    assert "not found" not in str(raised.value)  # the file is there: it is damaged


def test_restore_rejects_empty_images_clearly(tmp_path, saved_models):
    np.save(tmp_path / "empty.npy", np.zeros((0, 0), np.float32))
    with pytest.raises(startup.InputRefused, match=r"non-empty image.*\(0, 0\)"):
        run(restore, f"--model={saved_models['diffnet']}", str(tmp_path / "empty.npy"),
            str(tmp_path / "out.npy"))


def test_restore_checks_every_path_before_it_loads_the_model(tmp_path, monkeypatch):
    from diffnet_tf import saving

    image_io.write_image(tmp_path / "in.png", np.full((8, 8), 0.5, np.float32))
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "model.keras").write_bytes(b"")
    monkeypatch.setattr(saving, "load_model", None)  # no work before the paths are checked
    real = tempfile.TemporaryFile

    def read_only(dir):  # as on a read-only mount, which root may not write either
        if Path(dir) == tmp_path / "ro":
            raise OSError(errno.EROFS, "Read-only file system")
        return real(dir=dir)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    for source, target, message in [
        ("dir.png", "out.png", r"Expected an input image file. Received '.*dir.png': a folder"),
        ("none.png", "out.png", r"Expected an input image file. Received '.*none.png': no such"),
        ("in.png", "dir.png", r"Expected an output file path. Received '.*dir.png', which is a "
                              r"folder: name a file in it, or pass it as --out_dir"),
        ("in.png", "ro/out.png", r"Expected the output folder '.*ro' to be writable. '.*ro' is "
                                 r"not \(Read-only file system\)"),
    ]:
        with pytest.raises(app.UsageError, match=message):
            run(restore, f"--model={tmp_path / 'model.keras'}", str(tmp_path / source),
                str(tmp_path / target))
    assert sorted(os.listdir(tmp_path)) == ["dir.png", "in.png", "model.keras", "ro"]


def test_restore_onto_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, saved_models,
                                                                      monkeypatch):
    image_io.write_image(tmp_path / "in.png", np.full((8, 8), 0.5, np.float32))

    def no_space(descriptor):  # the disk filled while the output was written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(files.WriteFailed, match=f"^Could not write '{tmp_path / 'out.png'}': "
                                                "No space left on device.$"):
        run(restore, f"--model={saved_models['diffnet']}", str(tmp_path / "in.png"),
            str(tmp_path / "out.png"))
    assert os.listdir(tmp_path) == ["in.png"]


@pytest.mark.parametrize("values, message", [
    (-np.ones((8, 8)), r"positive maximum .* Received values in \[-1, -1\]"),
    (np.where(np.eye(8), np.nan, 0.5), r"finite values in '.*in.npy'. Received 8 NaN"),
])
def test_restore_refuses_images_without_a_positive_maximum_or_with_nan(tmp_path, saved_models,
                                                                       values, message):
    np.save(tmp_path / "in.npy", values.astype(np.float32))
    with pytest.raises(startup.InputRefused, match=message):
        run(restore, f"--model={saved_models['diffnet']}", str(tmp_path / "in.npy"),
            str(tmp_path / "out.npy"))
    assert not (tmp_path / "out.npy").exists()


def test_restore_needs_a_model_and_two_paths(tmp_path):
    with pytest.raises(app.UsageError, match="two arguments"):
        run(restore, "--model=m.keras", "in.png")
    with pytest.raises(app.UsageError, match="input images after --out_dir"):
        run(restore, "--model=m.keras", f"--out_dir={tmp_path}")
    with pytest.raises(app.UsageError, match="Expected --model"):
        run(restore, "in.png", str(tmp_path / "out.png"))
    with pytest.raises(app.UsageError, match="Expected --model to be a preset .* Received 'denoise'"):
        run(restore, "--model=denoise", "in.png", str(tmp_path / "out.png"))
    with pytest.raises(app.UsageError, match=r"ending in one of \.png"):
        run(restore, "--model=m.keras", "in.png", "out.gif")


def test_a_run_redirected_to_a_file_reads_cleanly(tmp_path):
    """The quick start, tiny, as a user runs it (on every backend CI tests: it is not
    marked slow), output to a file: at most one line before the program's first, none of
    TensorFlow's start-up or CUDA-probe lines, no progress-bar control characters, and at
    the end the files written and how to open TensorBoard."""
    log = tmp_path / "log.txt"
    with open(log, "w") as file:
        done = subprocess.run(
            [sys.executable, "-m", "experiments.perona_malik", "--dataset=synthetic",
             "--noise=0.01", "--train_size=16", "--test_size=8", "--epochs=1", "--layers=1",
             *folders(tmp_path)], cwd=ROOT, stdout=file, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Perona-Malik"))
    assert first <= 1, lines[: first + 1]
    assert "cuInit" not in text and "E0000" not in text and "libtpu" not in text
    assert not any(c in text for c in ("\x1b", "\b", "\r")), repr(text[:500])
    run_dir = only_run(tmp_path)
    for name in ("metrics.json", "model.keras", "figures"):
        assert os.path.join(run_dir, name) in text and os.path.exists(os.path.join(run_dir, name))
    assert os.path.exists(os.path.join(run_dir, "figures", "reconstructions.png"))
    if importlib.util.find_spec("tensorboard"):
        assert f"tensorboard --logdir {tmp_path / 'runs'}" in text


@pytest.mark.slow
@pytest.mark.parametrize("mixing", ["none", "full"])
def test_perona_malik_trains_a_colour_diffnet(tmp_path, mixing):
    run(perona_malik, *TINY, "--dataset=synthetic", "--channels=3", f"--channel_mixing={mixing}",
        *folders(tmp_path))
    run_dir = only_run(tmp_path)
    stored = spec.RunSpec.load(os.path.join(run_dir, "spec.json"))
    assert (stored.data.channels, stored.data.pm_coupling, stored.model.channel_mixing) == (
        3, "shared", mixing)
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    assert model.channels == 3 and model.channel_mixing == mixing
    assert os.path.exists(os.path.join(run_dir, "figures", "reconstructions.png"))


@pytest.mark.slow
def test_the_colour_study_scores_every_method_on_the_same_colour_images(tmp_path):
    from experiments import colour

    run(colour, "--noise_levels=0.01", "--train_size=8", "--test_size=4", "--epochs=1",
        "--layers=1", "--batch_size=4", "--verbose=0", *folders(tmp_path))
    results = json.load(open(tmp_path / "runs" / "results.json"))["0.01"]
    assert set(results) == set(colour.METHODS)
    assert len({results[m]["run"] for m in colour.METHODS if m != "input"}) == 3
    for method in colour.METHODS:
        assert np.isfinite(results[method]["psnr_mean"])


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--dataset=stl10"], "Error: STL-10 not found under"),
    (["--dataset=synthetic", "--noise=inf"], "Error: Expected DataSpec.noise (--noise) to be a finite"),
    (["--dataset=synthetic", "--noise=1e30"], "Error: Expected DataSpec.noise (--noise) <= 1.0. "
                                              "Received 1e+30."),
])
def test_a_user_error_ends_with_one_message_and_no_traceback(tmp_path, args, message):
    done = subprocess.run([sys.executable, "-m", "experiments.perona_malik", *args,
                           *folders(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr and "Sect. 5.2" not in done.stderr  # no usage dump


@pytest.mark.slow
def test_restore_with_a_damaged_model_ends_with_one_message_and_no_traceback(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    image_io.write_image(tmp_path / "in.png", np.full((8, 8), 0.5, np.float32))
    done = subprocess.run([sys.executable, "-m", "experiments.restore",
                           f"--model={tmp_path / 'model.keras'}", str(tmp_path / "in.png"),
                           str(tmp_path / "out.png")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "model.keras' is not a valid .keras file" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_a_damaged_run_file_ends_with_one_message_naming_it(tmp_path):
    args = [sys.executable, "-m", "experiments.perona_malik", "--dataset=synthetic",
            "--train_size=16", "--test_size=4", "--epochs=1", *folders(tmp_path)]
    assert subprocess.run(args, cwd=ROOT, capture_output=True).returncode == 0
    (metrics,) = (tmp_path / "runs").glob("*/metrics.json")
    whole = metrics.read_text()
    metrics.write_text("{")
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and f"{metrics} is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr
    metrics.write_text(whole)
    model = metrics.with_name("model.keras")
    model.write_bytes(model.read_bytes()[:1000])  # truncated: not "Finished earlier"
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"Error: The finished run in {metrics.parent} is damaged: "
                                  f"'{model}' is not a valid .keras file")
    assert "--overwrite" in done.stderr and "Finished earlier" not in done.stdout


@pytest.fixture
def full_disk(tmp_path):
    """mount(size) -> a folder on a tmpfs of that size (skipped where mounting is not
    permitted); unmounted afterwards."""
    mounted = []

    def mount(size):
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs is not permitted here")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_full_disk_ends_training_and_restore_with_one_line_and_loses_nothing(tmp_path,
                                                                                full_disk):
    """The issue's 3 MB tmpfs as --out_dir: h5py crashed the process (exit 139). Now one
    line, exit status 1, the first epoch's backup kept; restore likewise names its output."""
    out_dir = full_disk("3m")
    done = subprocess.run(
        [sys.executable, "-m", "experiments.perona_malik", "--dataset=synthetic",
         "--train_size=16", "--test_size=4", "--epochs=2", "--verbose=0", f"--out_dir={out_dir}",
         f"--data_dir={tmp_path / 'data'}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert done.stderr.startswith(f"Error: Could not write '{out_dir}/")
    assert "No space left on device" in done.stderr
    assert [p.name for p in out_dir.glob("*/backup/*.h5")] == ["epoch-0001.weights.h5"]
    full = full_disk("64k")
    with open(full / "filler", "wb") as filler, pytest.raises(OSError):
        filler.write(bytes(1 << 17))
    image_io.write_image(tmp_path / "in.png", np.random.default_rng(0).random((64, 64)))
    done = subprocess.run([sys.executable, "-m", "experiments.restore",
                           "--model=pm_inverse_noise0.01", str(tmp_path / "in.png"),
                           str(full / "out.png")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr == (
        f"Error: Could not write '{full / 'out.png'}': No space left on device.\n")
    assert os.listdir(full) == ["filler"]


def test_a_restored_image_far_out_of_range_is_one_warning_line(tmp_path, capsys, monkeypatch):
    import warnings

    from diffnet_tf import restoration

    def far_out(model, image, tile, verbose):
        warnings.warn("The restored image's values [0, 9] leave the input's range [0, 1] by "
                      "far", restoration.OutputOutOfRange)
        return image

    monkeypatch.setattr(restoration, "restore", far_out)
    monkeypatch.setattr(restore, "load_model", lambda name, shipped: DiffNetStub())
    image_io.write_image(tmp_path / "in.png", np.full((8, 8), 0.5, np.float32))
    run(restore, "--model=pm_inverse_noise0.01", str(tmp_path / "in.png"), str(tmp_path / "o.png"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Warning: The restored image's values [0, 9] leave the input's range "
                      "[0, 1] by far") and out[1].startswith("Restored")


class DiffNetStub:
    channels = 1
