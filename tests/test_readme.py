"""README.md and .ci/run agree: CI installs and tests exactly as the README says."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def ci_commands():
    """The install and test commands of .ci/run (not its comments or shell set-up)."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines
            if line.strip() and not line.startswith(("#", "set ", "cd ", "rm "))]


def test_every_ci_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = ci_commands()
    assert len(commands) == 4, commands  # set-up and test, for TensorFlow and for JAX
    for command in commands:
        assert command in readme, f"{command!r} is in .ci/run but not in README.md"
