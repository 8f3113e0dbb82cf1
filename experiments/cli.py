"""What the experiments share on the command line: every flag, defined once here and
picked by name by each experiment into its own flag registry; the run spec from a preset
plus the flags; the checks at the edge; and the process start-up.

An experiment module looks like this (docs/DESIGN.md, "Experiments"):

    FLAGS = flags.FlagValues()                       # its own registry: no flag leaks
    cli.define_flags(FLAGS, "noise", "epochs", ...)  # only the flags it uses

    def main(argv):                                  # the only reader of FLAGS
        from diffnet_tf import runs, spec            # after cli.start (see there)
        run_spec = cli.spec_from_flags(spec.preset("perona_malik"), FLAGS.flag_values_dict())
        ...

    if __name__ == "__main__":
        cli.start(main, FLAGS)

This module imports nothing of diffnet_tf, Keras or TensorFlow at import time.
"""

import atexit
import math
import os
import re
import sys
import threading
from pathlib import Path

from absl import app, flags

# name -> (spec section, spec field) for the flags that set a RunSpec field. Flags default
# to None: the preset's value.
SPEC_FLAGS = {
    "dataset": ("data", "source"),
    "image_size": ("data", "image_size"),
    "channels": ("data", "channels"),
    "train_size": ("data", "train_size"),
    "val_size": ("data", "val_size"),
    "test_size": ("data", "test_size"),
    "noise": ("data", "noise"),
    "pm_steps": ("data", "pm_steps"),
    "pm_dt": ("data", "pm_dt"),
    "pm_lambda": ("data", "pm_lambda"),
    "pm_convention": ("data", "pm_convention"),
    "pm_coupling": ("data", "pm_coupling"),
    "heat_time": ("data", "heat_time"),
    "max_discs": ("data", "max_discs"),
    "layers": ("model", "num_layers"),
    "estimator_depth": ("model", "estimator_depth"),
    "width": ("model", "width"),
    "boundary": ("model", "boundary"),
    "dt_init": ("model", "dt_init"),
    "channel_mixing": ("model", "channel_mixing"),
    "unet_filters": ("model", "unet_filters"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr_init": ("train", "lr_init"),
    "lr_final": ("train", "lr_final"),
    "loss": ("train", "loss"),
}
SEEDS = (("data", "seed"), ("train", "seed"))  # --seed sets both
# Flags of one network only: a study that trains both applies each to its own network.
NETWORK_FLAGS = {
    "diffnet": ("layers", "estimator_depth", "width", "boundary", "dt_init", "channel_mixing"),
    "unet": ("unet_filters",),
}

_DEFINITIONS = {
    # data
    "dataset": lambda fv: flags.DEFINE_enum(
        "dataset", None, ["stl10", "synthetic"], "Image source: stl10 (the paper's; see "
        "data/README.md) or the embedded synthetic images (no download).", flag_values=fv),
    "image_size": lambda fv: flags.DEFINE_integer(
        "image_size", None, "Side of the square images (STL-10: 96).", flag_values=fv),
    "channels": lambda fv: flags.DEFINE_integer(
        "channels", None, "Image channels: 1 grey (the paper's), 3 colour.", flag_values=fv),
    "train_size": lambda fv: flags.DEFINE_integer(
        "train_size", None, "Training images: the first N of the train split.", flag_values=fv),
    "val_size": lambda fv: flags.DEFINE_integer(
        "val_size", None, "Validation images (monitoring; early stopping in the studies).",
        flag_values=fv),
    "test_size": lambda fv: flags.DEFINE_integer(
        "test_size", None, "Test images: the first N of the test split.", flag_values=fv),
    "noise": lambda fv: flags.DEFINE_float(
        "noise", None, "Noise level as a fraction of the image maximum (0.01 = 1%).",
        flag_values=fv),
    "pm_steps": lambda fv: flags.DEFINE_integer(
        "pm_steps", None, "Perona-Malik explicit steps of the data.", flag_values=fv),
    "pm_dt": lambda fv: flags.DEFINE_float(
        "pm_dt", None, "Perona-Malik step size of the data (<= 0.25).", flag_values=fv),
    "pm_lambda": lambda fv: flags.DEFINE_float(
        "pm_lambda", None, "Perona-Malik contrast parameter lambda of the data.", flag_values=fv),
    "pm_convention": lambda fv: flags.DEFINE_enum(
        "pm_convention", None, ["neumann", "original"], "Perona-Malik data convention: the "
        "paper's zero-flux Neumann, or the released script's zero exterior.", flag_values=fv),
    "pm_coupling": lambda fv: flags.DEFINE_enum(
        "pm_coupling", None, ["shared", "channelwise"], "Colour Perona-Malik: one diffusivity "
        "for all channels (shared) or one per channel.", flag_values=fv),
    "heat_time": lambda fv: flags.DEFINE_float(
        "heat_time", None, "Diffusion time T of the heat-equation blur.", flag_values=fv),
    "max_discs": lambda fv: flags.DEFINE_integer(
        "max_discs", None, "The most discs in one image (the paper's: 1); more make "
        "overlapping discs with several contrast levels, a harder task.", flag_values=fv),
    # model
    "layers": lambda fv: flags.DEFINE_integer(
        "layers", None, "DiffNet diffusion layers.", flag_values=fv),
    "estimator_depth": lambda fv: flags.DEFINE_integer(
        "estimator_depth", None, "Convolutions per DiffNet filter estimator.", flag_values=fv),
    "width": lambda fv: flags.DEFINE_integer(
        "width", None, "Channels of the estimators' hidden convolutions.", flag_values=fv),
    "boundary": lambda fv: flags.DEFINE_enum(
        "boundary", None, ["neumann", "zero"], "DiffNet's stencil boundary: the paper's zero "
        "Neumann, or the released code's zeros.", flag_values=fv),
    "dt_init": lambda fv: flags.DEFINE_float(
        "dt_init", None, "DiffNet's initial learned time step per layer.", flag_values=fv),
    "channel_mixing": lambda fv: flags.DEFINE_enum(
        "channel_mixing", None, ["none", "full"], "Colour DiffNet: each channel its own "
        "filters (none), or filters coupling the channels (full).", flag_values=fv),
    "unet_filters": lambda fv: flags.DEFINE_integer(
        "unet_filters", None, "U-Net channels at the first level (paper: 64).", flag_values=fv),
    # optimisation
    "epochs": lambda fv: flags.DEFINE_integer("epochs", None, "Training epochs.", flag_values=fv),
    "batch_size": lambda fv: flags.DEFINE_integer(
        "batch_size", None, "Images per optimizer step.", flag_values=fv),
    "lr_init": lambda fv: flags.DEFINE_float(
        "lr_init", None, "Adam's first learning rate.", flag_values=fv),
    "lr_final": lambda fv: flags.DEFINE_float(
        "lr_final", None, "Adam's last learning rate (geometric decay).", flag_values=fv),
    "loss": lambda fv: flags.DEFINE_enum(
        "loss", None, ["l2norm", "mse"], "Training loss (the released code's l2 norm).",
        flag_values=fv),
    "seed": lambda fv: flags.DEFINE_integer(
        "seed", None, "Seed of the data, noise, weights and shuffling.", flag_values=fv),
    # where and how
    "out_dir": lambda fv: flags.DEFINE_string(
        "out_dir", None, "Where the run folders go.", flag_values=fv),
    "data_dir": lambda fv: flags.DEFINE_string(
        "data_dir", "data", "Dataset root: STL-10 and the pair cache.", flag_values=fv),
    "download": lambda fv: flags.DEFINE_bool(
        "download", False, "Let tfds download STL-10 (2.6 GB) when no local copy is found "
        "(see data/README.md).", flag_values=fv),
    "overwrite": lambda fv: flags.DEFINE_bool(
        "overwrite", False, "Train again a run that has finished (its outputs are replaced).",
        flag_values=fv),
    "strategy": lambda fv: flags.DEFINE_enum(
        "strategy", "default", ["default", "mirrored"], "TensorFlow only: 'mirrored' trains on "
        "all local GPUs (tf.distribute.MirroredStrategy).", flag_values=fv),
    "verbose": lambda fv: flags.DEFINE_enum(
        "verbose", None, ["0", "1", "2"], "Progress: 0 silent, 1 a progress bar, 2 a line per "
        "epoch (default: 1 on a terminal, 2 when the output goes to a file).", flag_values=fv),
}


def define_flags(flag_values, *names):
    """Defines the named shared flags in an experiment's own registry."""
    for name in names:
        _DEFINITIONS[name](flag_values)


def verbosity(value):
    """--verbose as Keras' verbose argument: the flag's value, or by default a progress bar
    on a terminal and a line per epoch otherwise (no control characters in a log file)."""
    return int(value) if value is not None else (1 if sys.stdout.isatty() else 2)


def spec_overrides(values):
    """The RunSpec fields the flags set: {'data': {...}, 'model': {...}, 'train': {...}}.

    Args:
        values: the parsed flag values (FlagValues.flag_values_dict()); flags left at None
            keep the preset's value.
    """
    sections = {"data": {}, "model": {}, "train": {}}
    for name, (section, field) in SPEC_FLAGS.items():
        if values.get(name) is not None:
            sections[section][field] = values[name]
    if values.get("seed") is not None:
        for section, field in SEEDS:
            sections[section][field] = values["seed"]
    return sections


def network_values(values, network):
    """The flag values that apply to `network` ('diffnet' or 'unet'): the other network's
    own flags left out (for studies that train both)."""
    other = [name for kind, names in NETWORK_FLAGS.items() if kind != network for name in names]
    return {name: value for name, value in values.items() if name not in other}


def spec_from_flags(preset, values):
    """The preset RunSpec with the fields the flags set; errors name the flag.

    Validation images of 'test_head' are the first test images: --test_size alone lowers
    the preset's val_size to it (e.g. --test_size=200 validates on those 200). A colour run
    (--channels=3) takes protocols' colour coupling and channel mixing unless the flags
    name them."""
    from diffnet_tf import protocols

    overrides = spec_overrides(values)
    data, model = overrides["data"], overrides["model"]
    if preset.data.validation == "test_head" and "val_size" not in data and "test_size" in data:
        data["val_size"] = min(preset.data.val_size, data["test_size"])
    if data.get("channels", preset.data.channels) > 1:  # colour: its two defaults
        if preset.data.pm_steps is not None:
            data.setdefault("pm_coupling", protocols.COLOUR_PM_COUPLING)
        if preset.model.kind == "diffnet":
            model.setdefault("channel_mixing", protocols.COLOUR_CHANNEL_MIXING)
    try:
        return preset.replace(**overrides)
    except ValueError as error:
        raise app.UsageError(flag_message(str(error), values)) from error


def command_for(run_spec):
    """The command that runs `run_spec`: its program and the flags of every field that
    differs from the program's preset, the inverse of `spec_from_flags`.

    Raises:
        ValueError: no command of the programs makes this spec.
    """
    from diffnet_tf import spec

    if run_spec.data.problem == "heat_inverse":
        program, preset, args = "deconvolution", spec.preset("deconvolution"), []
    else:
        program = "perona_malik"
        unet = run_spec.model.kind == "unet"
        preset = spec.preset("perona_malik_unet" if unet else "perona_malik").replace(
            data={"problem": run_spec.data.problem})
        args = ["--model=unet"] * unet + ["--problem=forward"] * (
            run_spec.data.problem == "pm_forward")
    values = {flag: getattr(getattr(run_spec, section), field)
              for flag, (section, field) in SPEC_FLAGS.items()
              if getattr(getattr(run_spec, section), field) != getattr(getattr(preset, section), field)}
    if (run_spec.data.seed, run_spec.train.seed) != (preset.data.seed, preset.train.seed):
        values["seed"] = run_spec.data.seed
    for flag in list(values):  # leave out what the others imply (a capped val_size, ...)
        fewer = {k: v for k, v in values.items() if k != flag}
        if _makes(preset, fewer, run_spec):
            values = fewer
    if spec_from_flags(preset, values) != run_spec:
        raise ValueError(f"No command of the programs makes the spec {run_spec.folder_name}.")
    args += [f"--{flag}={value}" for flag, value in values.items()]
    return " ".join([f"python -m experiments.{program}", *args])


def _makes(preset, values, run_spec):
    """Whether these flag values turn the preset into run_spec (invalid ones do not)."""
    try:
        return spec_from_flags(preset, values) == run_spec
    except app.UsageError:
        return False


def flag_message(message, known=None):
    """A library message with each spec field (e.g. 'DataSpec.noise') followed by its flag.

    Args:
        message: the library's message.
        known: the flags the program defines (its FlagValues, or its flag values as a
            dict): only those are named. None names every spec flag.
    """
    spec_flags = {name: place for name, place in SPEC_FLAGS.items()
                  if known is None or name in known}
    fields = {f"{section.capitalize()}Spec.{field}": name
              for name, (section, field) in spec_flags.items()}
    fields.update({f"{section}.{field}": name for name, (section, field) in spec_flags.items()})
    if not fields:
        return message
    pattern = re.compile("|".join(re.escape(k) for k in sorted(fields, key=len, reverse=True)))
    return pattern.sub(lambda m: f"{m.group(0)} (--{fields[m.group(0)]})", message)


def check_folders(values, *names):
    """Raises app.UsageError unless each named folder flag (e.g. 'out_dir') is a folder, or
    can be made one, that we may write: checked before any data are made."""
    from diffnet_tf.files import check_writable_folder

    for name in names:
        if values.get(name) is not None:
            try:
                check_writable_folder(values[name], f"folder of --{name}")
            except ValueError as error:
                raise app.UsageError(str(error)) from error


def parse_noise_levels(values):
    """A --noise_levels list as unique finite floats >= 0, in the given order."""
    try:
        levels = list(dict.fromkeys(float(v) for v in values))
    except ValueError:
        raise app.UsageError(f"Expected --noise_levels to be numbers. Received {values}.") from None
    if not levels or not all(math.isfinite(level) and level >= 0 for level in levels):
        raise app.UsageError(f"Expected --noise_levels to be finite numbers >= 0. Received "
                             f"{values}.")
    return levels


def count(n, noun):
    """'1 epoch', '5 epochs': n and the noun, plural unless n is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def default(value, fallback):
    """A flag's value, or `fallback` when the flag was not given (None; 0 is a value)."""
    return fallback if value is None else value


def output_root(values, experiment):
    """--out_dir, or runs/<experiment>."""
    return Path(values["out_dir"] or f"runs/{experiment}")


def strategy(name):
    """The tf.distribute strategy of --strategy: None for 'default'."""
    if name == "default":
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise app.UsageError(f"Expected --strategy=default on the {keras.backend.backend()} "
                             "backend: --strategy=mirrored is TensorFlow's MirroredStrategy.")
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def report(result):
    """Prints a run's result, where its files are, and how to look at them."""
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
        print(f"  TensorBoard: tensorboard --logdir {path.parent}")


# ---------------------------------------------------------------- process start-up

# Lines TensorFlow and XLA print as they start (C++ logging before absl::InitializeLog, CPU
# features, the CUDA probe of a TensorFlow built for GPUs, XLA's host service, the first
# compilations' notices): they say nothing about the run. Everything else written to stderr
# passes.
STARTUP_NOISE = [
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"service\.cc:\d+\] XLA service 0x[0-9a-f]+ initialized for platform Host",
    r"service\.cc:\d+\]\s+StreamExecutor \[\d+\]: Host",
    r"device_compiler\.h:\d+\] Compiled cluster using XLA!",
    r"dump_mlir_util\.cc:\d+\] disabling MLIR crash reproducer",
    # JAX's probe for a TPU runtime at its first computation, where libtpu is not installed
    r"xla_bridge\.py:\d+\] Unable to initialize backend 'tpu': .*libtpu\.so: cannot open",
]
# The failed CUDA probe is noise only on a machine without an NVIDIA driver.
NO_GPU_NOISE = [r"cuda_platform\.cc:\d+\] failed call to cuInit: .*\(303\)"]


def startup_noise():
    """The compiled pattern of STARTUP_NOISE (and NO_GPU_NOISE without an NVIDIA driver)."""
    gpu = os.path.exists("/proc/driver/nvidia/version")
    return re.compile("|".join(STARTUP_NOISE + ([] if gpu else NO_GPU_NOISE)))


def filter_stderr(pattern):
    """Copies every line written to file descriptor 2 to the real stderr, except the lines
    matching `pattern`, until the process exits (a pipe read by a thread).

    File descriptor 2 rather than sys.stderr, because TensorFlow's C++ code writes there.
    """
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not pattern.search(line.decode(errors="replace")):
                    os.write(saved, line)

    thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    thread.start()

    def restore():  # at exit: the pipe's last writer closes, the thread copies the rest
        sys.stderr.flush()
        os.dup2(saved, 2)
        thread.join(timeout=5)

    atexit.register(restore)


def parse(flag_values, argv):
    """Parses argv with an experiment's own flags (from their defaults, so a second parse in
    one process starts clean) and returns the remaining arguments."""
    flag_values.unparse_flags()
    remaining = flag_values(argv)
    flags.FLAGS(remaining[:1])  # absl's app wants its own registry parsed too
    return remaining


def _parser(flag_values):
    def parser(argv):
        if any(arg in ("-h", "--help", "--helpshort", "--helpfull", "-?") for arg in argv[1:]):
            print(f"{sys.modules['__main__'].__doc__}\n\nFlags:\n{flag_values.get_help()}")
            sys.exit(0)
        try:
            return parse(flag_values, argv)
        except flags.Error as error:
            sys.stderr.write(f"Error: {error}\nPass --help to see the flags.\n")
            sys.exit(1)

    return parser


def start(main, flag_values):
    """An experiment's process: quiet TensorFlow's start-up lines, parse the experiment's
    own flags, run main; a usage error, a busy run folder, a diverged training, a missing
    file (data, a model) or a damaged one (a run's JSON, a model.keras) ends with its message and exit status 1, not a traceback.

    Call it as the module's `if __name__ == "__main__":` block; main then imports the
    library, so that TensorFlow starts behind the filter.
    """
    filter_stderr(startup_noise())

    def run(argv):
        from diffnet_tf.files import DamagedFile
        from diffnet_tf.runs import RunFolderBusy
        from diffnet_tf.training import TrainingDiverged

        try:
            return main(argv)
        except app.UsageError as error:
            sys.stderr.write(f"Error: {error}\nPass --help to see the flags.\n")
            sys.exit(1)
        except (RunFolderBusy, TrainingDiverged, FileNotFoundError, DamagedFile) as error:
            sys.stderr.write(f"Error: {flag_message(str(error), flag_values)}\n")
            sys.exit(1)

    app.run(run, flags_parser=_parser(flag_values))
