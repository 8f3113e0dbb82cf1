"""What a program prints about a finished run: its result, where its files are, and how
to look at them."""

import shlex
import sys
from pathlib import Path


def count(n, noun):
    """'1 epoch', '5 epochs': n and the noun, plural unless n is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report(result):
    """Prints a run's result (a runs.RunResult), where its files are, and how to look at
    them; a warning when the model makes the test images worse than its input."""
    metrics, path = result.metrics, result.path
    test, test_input = metrics["test"], metrics["test_input"]
    print(f"{'Finished earlier' if result.reused else 'Finished'}: test PSNR "
          f"{test['psnr_mean']:.2f} +- {test['psnr_std']:.2f} dB (input "
          f"{test_input['psnr_mean']:.2f} dB), train PSNR {metrics['train']['psnr_mean']:.2f} "
          f"dB, {metrics['parameters']:,} parameters, {metrics['train_seconds']:.0f} s training")
    if test["psnr_mean"] < test_input["psnr_mean"]:
        print(f"Warning: the model makes the test images worse than its input "
              f"({test['psnr_mean']:.2f} dB < {test_input['psnr_mean']:.2f} dB): train longer "
              "or on more images, or lower the learning rate.")
    print(f"  {path / 'metrics.json'}\n  {path / 'model.keras'}\n  {path / 'figures'}/")
    if (path / "tensorboard").exists():
        print(f"  TensorBoard: {tensorboard_command(path.parent)}")


def tensorboard_command(logdir):
    """The shell command that opens TensorBoard on `logdir`, runnable as printed without an
    activated virtual environment: the tensorboard executable beside this Python (a
    venv's, e.g. .venv/bin/tensorboard), else this Python running `-m tensorboard.main`.

    Args:
        logdir: the folder TensorBoard reads (a program's runs folder).

    Returns:
        e.g. '.venv/bin/tensorboard --logdir runs/perona_malik' (paths under the current
        folder relative to it, others absolute; shell-quoted).
    """
    python = Path(sys.executable)
    beside = python.with_name("tensorboard")
    program = ([_typed(beside)] if beside.is_file() else
               [_typed(python), "-m", "tensorboard.main"])
    return shlex.join(program + ["--logdir", str(logdir)])


def _typed(executable):
    """How to type an executable's path: relative to the current folder when inside it
    (with './' where the shell would search PATH instead), else absolute."""
    try:
        relative = executable.relative_to(Path.cwd())
    except ValueError:
        return str(executable)
    return str(relative) if len(relative.parts) > 1 else f"./{relative}"
