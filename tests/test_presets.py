"""The trained models shipped with the package: each loads offline in a fresh process with
DiffNet.from_preset, and reproduces the PSNR its metadata states on the first 200
synthetic test images of its data; experiments.build_presets writes them into the
checkout (or --pretrained_dir), never into an installed copy of the package."""

import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from absl import app

from diffnet_tf import metrics, presets, spec
from diffnet_tf.cli.programs import command_for
from diffnet_tf.cli.startup import parse
from diffnet_tf.models import DiffNet
from diffnet_tf.pairs import make_pairs
from diffnet_tf.synthetic import synthetic_images
from experiments import build_presets, perona_malik

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(presets.list_presets())
EXPECTED = {"pm_inverse_noise0", "pm_inverse_noise0.001", "pm_inverse_noise0.01", "pm_forward",
            "disc_deconvolution", "pm_inverse_color_noise0.01"}


def readme_preset_rows():
    """{name: (test PSNR, input PSNR)} of the table in README's "Try it on your image"."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        section = file.read().split("## Try it on your image")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([\w.]+)` \|.*\| ([\d.]+) \| ([\d.]+) \|$", section, re.M)
    return {name: (float(test), float(given)) for name, test, given in rows}


def test_the_package_ships_the_presets_the_readme_lists():
    assert set(SHIPPED) == EXPECTED
    listed = readme_preset_rows()
    assert set(listed) == EXPECTED
    for name, (test_psnr, input_psnr) in listed.items():
        info = presets.metadata(name)
        assert (test_psnr, input_psnr) == (round(info["test_psnr"], 2),
                                           round(info["input_psnr"], 2)), name


@pytest.mark.parametrize("name", SHIPPED)
def test_a_preset_records_its_run_and_the_command_that_makes_it(name):
    info = presets.metadata(name)
    run_spec = spec.RunSpec.from_dict(info["spec"])  # a valid spec
    assert info["command"] == command_for(run_spec)
    assert run_spec.data.source in ("synthetic", "discs") and info["test_images"] == 200
    assert info["steps"] > 0 and info["train_seconds"] > 0 and info["machine"]["cpu_count"] > 0
    assert info["test_psnr"] > info["input_psnr"]  # it does restore


@pytest.mark.slow
def test_every_preset_loads_offline_in_a_fresh_process_and_reproduces_its_psnr(tmp_path):
    inputs, targets = {}, {}
    for name in SHIPPED:  # each preset's first 200 test pairs, made here
        data = spec.RunSpec.from_dict(presets.metadata(name)["spec"]).data
        inputs[name], targets[name] = make_pairs(data, "test", presets.TEST_IMAGES,
                                                 tmp_path / "data", verbose=0)
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(f"""
        import numpy as np
        from diffnet_tf.models import DiffNet
        inputs = np.load("{tmp_path / 'inputs.npz'}")
        np.savez("{tmp_path / 'outputs.npz'}", **{{name: DiffNet.from_preset(name).predict(
            inputs[name], verbose=0) for name in inputs.files}})
    """)
    environment = dict(os.environ, PYTHONPATH=ROOT, no_proxy="*", HTTP_PROXY="http://0.0.0.0:9",
                       HTTPS_PROXY="http://0.0.0.0:9")  # offline: any download would fail
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    for name in SHIPPED:
        psnr = keras.ops.convert_to_numpy(metrics.psnr(targets[name], outputs[name]))
        assert float(np.mean(psnr)) == pytest.approx(presets.metadata(name)["test_psnr"],
                                                     abs=0.05), name


def test_unknown_presets_are_named_with_the_choices():
    with pytest.raises(ValueError, match=r"Unknown preset 'denoise'. Expected one of"):
        DiffNet.from_preset("denoise")


@pytest.mark.slow
def test_restore_runs_with_a_preset_name_and_no_training(tmp_path):
    from diffnet_tf import image_io

    image = synthetic_images(1, 64, seed=9)[0]
    image_io.write_image(tmp_path / "in.png", image)
    done = subprocess.run([sys.executable, "-m", "experiments.restore",
                           "--model=pm_inverse_noise0.01", str(tmp_path / "in.png"),
                           str(tmp_path / "out.png")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert image_io.read_image(tmp_path / "out.png")[0].shape == (64, 64, 1)
    listed = subprocess.run([sys.executable, "-m", "experiments.restore", "--list-presets"],
                            cwd=ROOT, capture_output=True, text=True)
    assert all(name in listed.stdout for name in SHIPPED)


def run(module, *args):
    return module.main(parse(module.FLAGS, ["prog", *args]))


def test_build_presets_rebuilds_the_checkouts_presets_or_those_of_pretrained_dir(tmp_path):
    """The checkout's folder is found from experiments/, not from the imported package
    (which may be an installed copy)."""
    assert set(presets.list_presets(build_presets.CHECKOUT_PRETRAINED)) == EXPECTED
    checkout = re.escape(str(build_presets.CHECKOUT_PRETRAINED))
    with pytest.raises(app.UsageError, match=f"presets in {checkout} \\(disc_deconvolution, "
                                             r".*\). Received \['denoise'\]"):
        run(build_presets, "--names=denoise", f"--out_dir={tmp_path / 'runs'}")
    with pytest.raises(app.UsageError, match=f"presets in {re.escape(str(tmp_path))} \\(none"):
        run(build_presets, "--names=denoise", f"--pretrained_dir={tmp_path}")


@pytest.mark.slow
def test_build_presets_packages_a_finished_run_into_pretrained_dir(tmp_path):
    folders = [f"--out_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path / 'data'}"]
    run(perona_malik, "--dataset=synthetic", "--train_size=8", "--test_size=4", "--epochs=1",
        "--layers=1", "--verbose=0", *folders)
    (run_folder,) = (tmp_path / "runs").iterdir()
    checkout = sorted(build_presets.CHECKOUT_PRETRAINED.rglob("*"))
    run(build_presets, f"--package=tiny={run_folder}", f"--pretrained_dir={tmp_path / 'out'}",
        *folders)
    info = presets.list_presets(tmp_path / "out")["tiny"]
    run_spec = spec.RunSpec.from_dict(info["spec"])
    assert run_spec == spec.RunSpec.load(run_folder / "spec.json")
    assert info["command"] == command_for(run_spec) and info["steps"] == 1
    assert (tmp_path / "out" / "tiny" / "model.keras").exists()
    assert sorted(build_presets.CHECKOUT_PRETRAINED.rglob("*")) == checkout  # untouched
