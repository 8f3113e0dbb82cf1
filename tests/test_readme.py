"""README.md and .ci/run agree: CI installs and tests exactly as the README says; every
program command in the README (`python -m experiments.<program>`, `diffnet-restore`) is
one its program accepts."""

import pathlib
import re

import pytest

from diffnet_tf.cli import programs
from diffnet_tf.cli.startup import parse

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    """(program, arguments) of every `python -m experiments.<program> ...` and
    `diffnet-restore ...` in README.md; placeholders (<...>, ...) and the brackets of
    optional flags left out."""
    text = (ROOT / "README.md").read_text()
    commands = []
    command = r"(?:python -m experiments\.|diffnet-(?=restore\b))(\w+)([^`|\n]*)"
    for match in re.finditer(command, text):
        args = re.sub(r"<[^>]*>", "x", match.group(2)).replace("[", " ").replace("]", " ")
        commands.append((match.group(1), [a for a in args.split() if a != "..."]))
    return commands


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


@pytest.mark.parametrize("program, args", readme_commands(), ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_every_readme_command_takes_only_flags_its_program_defines(program, args):
    parse(programs.flag_values(program), ["prog", *args])  # an unknown or misspelt flag raises
