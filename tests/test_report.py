"""Tests of diffnet_tf.cli.report: what a program prints about a finished run, the
TensorBoard command included, which runs as printed without an activated environment."""

import importlib.util
import pathlib
import shlex
import subprocess
import sys
import types

import pytest

from diffnet_tf.cli.report import report, tensorboard_command

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fake_python(folder, with_tensorboard):
    """A Python executable in folder/bin (an empty file), with a tensorboard beside it or
    not; returns its path."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").touch()
    if with_tensorboard:
        (bin_dir / "tensorboard").touch(mode=0o755)
    return bin_dir / "python"


def test_the_tensorboard_command_names_the_executable_beside_python(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(fake_python(tmp_path / ".venv", True)))
    monkeypatch.chdir(tmp_path)
    assert tensorboard_command("runs/perona_malik") == (
        ".venv/bin/tensorboard --logdir runs/perona_malik")
    assert tensorboard_command(tmp_path / "my runs") == (
        f".venv/bin/tensorboard --logdir '{tmp_path / 'my runs'}'")  # quoted for the shell


def test_without_an_executable_beside_python_the_command_runs_the_module(tmp_path,
                                                                         monkeypatch):
    python = fake_python(tmp_path / "env", False)
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.chdir(tmp_path / "env" / "bin")  # python itself in the current folder
    assert tensorboard_command("runs") == "./python -m tensorboard.main --logdir runs"
    monkeypatch.chdir(ROOT)  # python outside the current folder: its absolute path
    assert tensorboard_command("runs") == f"{python} -m tensorboard.main --logdir runs"


def test_the_report_ends_with_the_tensorboard_command(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "runs" / "perona_malik" / "diffnet_pm_inverse-0123456789"
    (folder / "tensorboard").mkdir(parents=True)
    quality = {"psnr_mean": 30.0, "psnr_std": 0.5}
    metrics = {"test": quality, "test_input": quality, "train": quality, "parameters": 10,
               "train_seconds": 1.0}
    monkeypatch.chdir(tmp_path)
    report(types.SimpleNamespace(metrics=metrics, path=folder.relative_to(tmp_path),
                                 reused=False))
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"  TensorBoard: {tensorboard_command('runs/perona_malik')}"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="the command runs the tensorboard package")
def test_the_printed_command_runs_without_an_activated_environment(tmp_path):
    """The command, as printed, run by a shell whose PATH has no virtual environment."""
    command = tensorboard_command(tmp_path) + " --version_tb"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, (command, done.stderr[-2000:])
    assert done.stdout.strip().startswith(importlib.import_module("tensorboard").__version__)
    assert shlex.split(command)[0] != "tensorboard"
