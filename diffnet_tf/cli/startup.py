"""A program's process: its start (TensorFlow's start-up lines dropped, the library's
messages shown, the flags parsed, user errors as one line and exit status 1) and the
preamble every main begins with (`begin`).
"""

import logging
import os
import sys

from absl import app, flags

from diffnet_tf.cli import flag_table, programs
from diffnet_tf.cli.spec_flags import flag_message
from diffnet_tf.cli.stderr_filter import drop_startup_lines_until_exit
from diffnet_tf.files import DamagedFile, WriteFailed, check_writable_folder
from diffnet_tf.launch import ExecutorUnavailable
from diffnet_tf.launch.launcher import CellsUnfinished
from diffnet_tf.runs import BackendMismatch, RunFolderBusy
from diffnet_tf.training import TrainingDiverged

XLA_CPU_FLAG = "--xla_cpu_use_fusion_emitters=false"


def use_classic_xla_cpu_emitter():
    """Asks XLA:CPU for its classic loop emitter, unless XLA_FLAGS already chooses.

    On TensorFlow 2.21 it runs the Perona-Malik solver about 4x faster than the default.
    XLA reads XLA_FLAGS once, at the process's first compilation: call this before it.
    """
    if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_CPU_FLAG}".strip()


def verbosity(value):
    """--verbose as Keras' verbose argument: the flag's value, or by default a progress bar
    on a terminal and plain lines otherwise (no control characters in a log file)."""
    return int(value) if value is not None else (1 if sys.stdout.isatty() else 2)


def check_folders(values):
    """Raises app.UsageError unless each folder flag the program writes (out_dir, ...) is
    a folder, or can be made one, that we may write: checked before any data are made."""
    for name, value in values.items():
        if value is not None and flag_table.TABLE[name].writes:
            try:
                check_writable_folder(value, f"folder of --{name}")
            except ValueError as error:
                raise app.UsageError(str(error)) from error


def begin(name, flag_values):
    """The start of program `name`'s main: XLA:CPU's classic emitter where the program
    asks for it, the folders it writes checked.

    Returns:
        (the flag values as a dict, the Keras verbosity of --verbose or its default).
    """
    if programs.PROGRAMS[name].classic_xla_cpu_emitter:
        use_classic_xla_cpu_emitter()
    values = flag_values.flag_values_dict()
    check_folders(values)
    return values, verbosity(values.get("verbose"))


class _CurrentStdout(logging.StreamHandler):
    """A handler writing to the sys.stdout of the moment (tests and redirections replace
    it), like print."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # StreamHandler sets it; sys.stdout is looked up instead
        pass


def show_library_messages():
    """Shows the library's messages (logger 'diffnet_tf', INFO and above) on stdout as
    plain lines, the way the programs print theirs; once per process."""
    logger = logging.getLogger("diffnet_tf")
    if not any(isinstance(handler, _CurrentStdout) for handler in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not again through absl's handler on the root logger
    logging.getLogger("tensorflow").addFilter(_expected_retracing)


def _expected_retracing(record):
    """False for TensorFlow's warning that a tf.function retraced: Keras traces its step
    anew for each batch shape (an epoch's last, smaller batch; validation and test batches)
    and each model a study trains in one process, as it should; the warning's advice is
    for code that builds functions in a loop, not for ours."""
    return "triggered tf.function retracing" not in record.getMessage()


def parse(flag_values, argv):
    """Parses argv with a program's own flags (from their defaults, so a second parse in
    one process starts clean) and returns the remaining arguments."""
    flag_values.unparse_flags()
    remaining = flag_values(argv)
    flags.FLAGS(remaining[:1])  # absl's app wants its own registry parsed too
    return remaining


class InputRefused(ValueError):
    """An input the program cannot take (an image, a model file): not a flag problem, so it
    ends with its message alone (no --help hint) and exit status 1."""


def _usage_error(message):
    sys.stderr.write(f"Error: {message}\nPass --help to see the flags.\n")
    sys.exit(1)


def _parser(flag_values, doc):
    def parser(argv):
        if any(arg in ("-h", "--help", "--helpshort", "--helpfull", "-?") for arg in argv[1:]):
            flag_lines = [line for line in flag_values.get_help().splitlines()
                          if line.startswith(" ")]  # not the defining module's name
            print(doc, "Flags:", *flag_lines, sep="\n")
            sys.exit(0)
        try:
            return parse(flag_values, argv)
        except flags.Error as error:
            _usage_error(error)

    return parser


def start(main, flag_values, doc):
    """A program's process: drop TensorFlow's start-up lines, show the library's messages,
    parse the program's own flags (--help prints `doc` and the flags), run main; a usage
    error, a busy run folder, a diverged training, a missing file (data, a model), a
    damaged one (a run's JSON, a model.keras), a failed write (a full disk, a read-only
    folder: `files.WriteFailed`), a run made under another backend, an executor that cannot
    run or a study's unfinished cells ends with its message and exit status 1, not a
    traceback.

    Call it as the program's `if __name__ == "__main__":` block (or console script).
    """
    drop_startup_lines_until_exit()
    show_library_messages()

    def run(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            _usage_error(error)
        except (RunFolderBusy, TrainingDiverged, FileNotFoundError, DamagedFile,
                WriteFailed, BackendMismatch, ExecutorUnavailable, CellsUnfinished,
                InputRefused) as error:
            sys.stderr.write(f"Error: {flag_message(str(error), flag_values)}\n")
            sys.exit(1)

    app.run(run, flags_parser=_parser(flag_values, doc))
