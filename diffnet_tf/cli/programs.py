"""The programs: for each, the protocols it starts from, the flags it takes (by name, from
flag_table) and its own defaults; the RunSpec a program's selector flags choose; and the
command that makes a given RunSpec (`command_for`, the inverse of a program's flags).

A program's --model picks the network and so the protocol (`Program.protocols`); its
--problem, where it takes one, the Perona-Malik problem ('inverse' -> 'pm_inverse').
"""

import dataclasses
import itertools

from absl import app, flags

from diffnet_tf import protocols, spec
from diffnet_tf.cli import flag_table
from diffnet_tf.cli.spec_flags import SPEC_FLAGS, spec_from_flags

_TRAINING = ("seed", "out_dir", "data_dir", "overwrite", "verbose")
_DIFFNET = ("layers", "estimator_depth", "width", "boundary", "dt_init")
_OPTIMISER = ("epochs", "batch_size", "lr_init", "lr_final", "precision")
_SIZES = ("train_size", "val_size", "test_size")
_LAUNCH = ("executor", "ray_address", "cpus_per_cell", "gpus_per_cell", "cell_retries",
           "slurm_partition", "slurm_time", "slurm_parallel")  # the studies' (diffnet_tf.launch)


@dataclasses.dataclass(frozen=True)
class Program:
    """One program of `python -m experiments.<name>` (or diffnet_tf.cli.<name>).

    Attributes:
        flags: the names of the flags it takes, from flag_table.TABLE.
        protocols: network ('diffnet', 'unet') -> the protocol it starts from
            (protocols.PROTOCOLS); with --model, the network its --model chooses.
        defaults: its own defaults of flags whose table default is None.
        one_run: whether a command makes exactly one run (then `command_for` may name it).
        classic_xla_cpu_emitter: whether it asks XLA:CPU for its classic emitter (the
            programs that make Perona-Malik pairs or time models).
    """

    flags: tuple
    protocols: dict = dataclasses.field(default_factory=dict)
    defaults: dict = dataclasses.field(default_factory=dict)
    one_run: bool = False
    classic_xla_cpu_emitter: bool = True

    def default(self, flag):
        """Flag `flag`'s value when not given: the program's own, else the table's."""
        return self.defaults.get(flag, flag_table.TABLE[flag].default)


def _levels(levels):
    """A list flag's default from a tuple of numbers: ['0.0001', ...]."""
    return [f"{level:g}" for level in levels]


PROGRAMS = {
    "perona_malik": Program(
        ("model", "problem", "noise", "dataset", "images", "image_size", "channels", "pm_coupling", "channel_mixing",
         "pm_convention", "pm_steps", "pm_dt", "pm_lambda", *_SIZES, *_DIFFNET,
         "unet_filters", *_OPTIMISER, "download", "strategy", *_TRAINING),
        {"diffnet": "perona_malik", "unet": "perona_malik_unet"},
        {"model": "diffnet", "out_dir": "runs/perona_malik"}, one_run=True),
    "deconvolution": Program(
        ("dataset", "images", "max_discs", "heat_time", "heat_solver", *_SIZES, *_DIFFNET, *_OPTIMISER, "strategy",
         *_TRAINING),
        {"diffnet": "deconvolution"}, {"out_dir": "runs/deconvolution"}, one_run=True),
    "colour": Program(
        ("noise_levels", "dataset", "images", "train_size", "test_size", "layers",
         "estimator_depth", "width",
         *_OPTIMISER, *_TRAINING, *_LAUNCH),
        {"diffnet": "perona_malik"},
        {"noise_levels": ["0", "0.01"], "train_size": 1000, "test_size": 200, "epochs": 5,
         "out_dir": "runs/colour"}),
    "interpretation": Program(
        ("noise_levels", "num_samples", "image_index", "models_from", "dataset", "images",
         "pm_convention", *_SIZES, *_DIFFNET, *_OPTIMISER, "download", *_TRAINING, *_LAUNCH),
        {"diffnet": "interpretation"},
        {"noise_levels": _levels(protocols.INTERPRETATION_NOISE_LEVELS),
         "num_samples": protocols.ALPHA_SAMPLES, "out_dir": "runs/interpretation"}),
    "generalisation": Program(
        ("sizes", "models", "patience", "epoch_images", "problem", "noise", "dataset", "images",
         "pm_convention", "val_size", "test_size", *_DIFFNET, "unet_filters", *_OPTIMISER,
         "download", *_TRAINING, *_LAUNCH),
        {"diffnet": "generalisation", "unet": "generalisation_unet"},
        {"sizes": _levels(protocols.GENERALISATION_SIZES), "patience": protocols.PATIENCE,
         "epoch_images": protocols.EPOCH_IMAGES, "out_dir": "runs/generalisation"}),
    "reproduce": Program(
        ("scale", "only", "precision", "download", "out_dir", "data_dir", "overwrite", "verbose",
         *_LAUNCH),
        defaults={"out_dir": "runs/reproduce"}),
    "build_presets": Program(
        ("names", "package", "pretrained_dir", "out_dir", "data_dir", "verbose"),
        defaults={"out_dir": "runs/presets"}),
    "benchmark": Program(
        ("quick", "repeats", "warmup", "image_size", "inference_batch_size", "jit_compile",
         "pm_images", "sparse_images", "memory", "cells", "batch_size", "unet_filters",
         "seed", "out_dir"),
        defaults={"out_dir": "runs/benchmark"}),
    "photographs": Program(("photo_models", "photos", "tile", "verbose")),
    "restore": Program(("model", "list-presets", "out_dir", "tile", "overwrite", "verbose"),
                       classic_xla_cpu_emitter=False),
}


def flag_values(name):
    """A new absl registry holding exactly the flags of program `name`, with its defaults;
    its --model, where it picks a protocol, accepts only the program's networks."""
    program = PROGRAMS[name]
    registry = flags.FlagValues()
    for flag in program.flags:
        flag_table.define(registry, flag, program.default(flag))
    if "model" in program.flags and program.protocols:
        networks = tuple(program.protocols)
        flags.register_validator(
            "model", lambda value: value in networks, flag_values=registry,
            message=f"Expected one of {', '.join(networks)} (the network to train).")
    return registry


def protocol_spec(name, network="diffnet", problem=None):
    """The RunSpec program `name` starts from: the protocol of `network`, with the
    Perona-Malik `problem` ('inverse' or 'forward') where given."""
    start = spec.protocol(PROGRAMS[name].protocols[network])
    return start if problem is None else start.replace(data={"problem": f"pm_{problem}"})


def command_for(run_spec):
    """The command that runs `run_spec`: the first program of one run (in PROGRAMS'
    order) whose selectors and spec flags make it, with the flags of the fields that
    differ from the protocol, the inverse of `spec_from_flags`.

    Raises:
        ValueError: no command of the programs makes this spec.
    """
    for name, program in PROGRAMS.items():
        if not program.one_run:
            continue
        problems = (flag_table.TABLE["problem"].choices if "problem" in program.flags
                    else (None,))
        for network, problem in itertools.product(program.protocols, problems):
            values = _spec_flag_values(protocol_spec(name, network, problem), run_spec,
                                       program.flags)
            if values is not None:
                selectors = {"model": network, "problem": problem}
                args = [f"--{flag}={value}" for flag, value in selectors.items()
                        if flag in program.flags and value != program.default(flag)]
                args += [f"--{flag}={value}" for flag, value in values.items()]
                return " ".join([f"python -m experiments.{name}", *args])
    raise ValueError(f"No command of the programs makes the spec {run_spec.folder_name}.")


def _spec_flag_values(start, run_spec, taken):
    """The fewest values of the spec flags in `taken` that turn `start` into `run_spec`
    (those the others imply left out: a capped val_size, a colour run's coupling), or None
    if none do."""
    values = {}
    for flag, fields in SPEC_FLAGS.items():
        if flag in taken and any(_field(run_spec, place) != _field(start, place) for place in fields):
            values[flag] = _field(run_spec, fields[0])
    for flag in list(values):
        fewer = {k: v for k, v in values.items() if k != flag}
        if _makes(start, fewer, run_spec):
            values = fewer
    return values if _makes(start, values, run_spec) else None


def _field(run_spec, place):
    section, field = place
    return getattr(getattr(run_spec, section), field)


def _makes(start, values, run_spec):
    """Whether these flag values turn `start` into run_spec (invalid ones do not)."""
    try:
        return spec_from_flags(start, values) == run_spec
    except app.UsageError:
        return False
