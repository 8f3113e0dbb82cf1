"""README.md and .ci/run agree: CI installs and tests exactly as the README says."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_ci_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.startswith(("python3 ", ".venv/"))
    ]
    assert len(commands) == 2, commands  # set-up and test
    for command in commands:
        assert command in readme, f"{command!r} is in .ci/run but not in README.md"
