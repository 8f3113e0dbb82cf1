"""The trained models shipped with the package: each loads offline in a fresh process with
DiffNet.from_preset, and reproduces the PSNR its metadata states on the first 200
synthetic test images of its data."""

import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from diffnet_tf import datasets, metrics, presets, spec
from diffnet_tf.models import DiffNet
from experiments import cli

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
    assert info["command"] == cli.command_for(run_spec)
    assert run_spec.data.source in ("synthetic", "discs") and info["test_images"] == 200
    assert info["steps"] > 0 and info["train_seconds"] > 0 and info["machine"]["cpu_count"] > 0
    assert info["test_psnr"] > info["input_psnr"]  # it does restore


@pytest.mark.slow
def test_every_preset_loads_offline_in_a_fresh_process_and_reproduces_its_psnr(tmp_path):
    inputs, targets = {}, {}
    for name in SHIPPED:  # each preset's first 200 test pairs, made here
        data = spec.RunSpec.from_dict(presets.metadata(name)["spec"]).data
        inputs[name], targets[name] = datasets.make_pairs(data, "test", presets.TEST_IMAGES,
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

    image = datasets.synthetic_images(1, 64, seed=9)[0]
    image_io.write_image(tmp_path / "in.png", image)
    done = subprocess.run([sys.executable, "-m", "experiments.restore",
                           "--model=pm_inverse_noise0.01", str(tmp_path / "in.png"),
                           str(tmp_path / "out.png")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert image_io.read_image(tmp_path / "out.png")[0].shape == (64, 64, 1)
    listed = subprocess.run([sys.executable, "-m", "experiments.restore", "--list-presets"],
                            cwd=ROOT, capture_output=True, text=True)
    assert all(name in listed.stdout for name in SHIPPED)
