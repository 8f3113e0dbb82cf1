"""diffnet_tf.cli: the one flag table, the program registry and the commands it gives,
the flags -> RunSpec mapping and the messages naming flags, and the process start-up
(TensorFlow's start-up lines dropped, the library's messages shown, the preamble)."""

import errno
import importlib
import logging
import os
import pathlib
import sys

import pytest
from absl import app, flags

from diffnet_tf import files, runs, spec
from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.flag_table import TABLE
from diffnet_tf.cli.spec_flags import SPEC_FLAGS, flag_message, spec_from_flags
from diffnet_tf.cli.stderr_filter import startup_lines_dropped, startup_noise
from diffnet_tf.launch import ExecutorUnavailable, launcher

ROOT = pathlib.Path(__file__).resolve().parents[1]


def parsed(program, *args):
    """The flag values (a dict) of `program` given these arguments."""
    registry = programs.flag_values(program)
    startup.parse(registry, ["prog", *args])
    return registry.flag_values_dict()


# ---------------------------------------------------------------- the table and the registry


@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_a_program_takes_only_table_flags_and_sets_only_defaults_the_table_leaves_open(name):
    program = programs.PROGRAMS[name]
    assert set(program.flags) <= set(TABLE) and len(set(program.flags)) == len(program.flags)
    assert set(program.defaults) <= set(program.flags)
    assert all(TABLE[flag].default is None for flag in program.defaults), name
    assert set(programs.flag_values(name)) == set(program.flags)


def test_every_flag_of_the_table_is_taken_by_a_program():
    taken = {flag for program in programs.PROGRAMS.values() for flag in program.flags}
    assert taken == set(TABLE)


@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_python_m_experiments_runs_each_program_with_its_registered_flags(name):
    module = importlib.import_module(f"experiments.{name}")
    registry = module.restore.FLAGS if name == "restore" else module.FLAGS
    assert set(registry) == set(programs.PROGRAMS[name].flags)


def test_every_spec_flag_names_fields_a_run_spec_has():
    run_spec = spec.protocol("perona_malik")
    for name, fields in SPEC_FLAGS.items():
        for section, field in fields:
            assert hasattr(getattr(run_spec, section), field), (name, section, field)


@pytest.mark.parametrize("name", [n for n, p in programs.PROGRAMS.items() if p.protocols])
def test_each_network_of_a_program_starts_from_a_protocol_of_that_network(name):
    for network in programs.PROGRAMS[name].protocols:
        assert programs.protocol_spec(name, network).model.kind == network


def test_model_is_a_network_for_a_trainer_and_any_model_for_restore():
    assert parsed("perona_malik", "--model=unet")["model"] == "unet"
    with pytest.raises(flags.IllegalFlagValueError, match="Expected one of diffnet, unet"):
        parsed("perona_malik", "--model=resnet")
    assert parsed("restore", "--model=pm_inverse_noise0.01")["model"] == "pm_inverse_noise0.01"


def test_a_program_default_is_the_value_without_the_flag_and_shows_in_its_help():
    values = parsed("colour")
    assert (values["train_size"], values["epochs"], values["noise_levels"]) == (1000, 5, ["0", "0.01"])
    assert parsed("perona_malik")["train_size"] is None  # the protocol's
    assert "(default: '1000')" in programs.flag_values("colour").get_help()
    levels = [float(level) for level in parsed("interpretation")["noise_levels"]]
    assert levels == [1e-4, 1e-3, 1e-2, 1e-1, 0.0]


def test_a_second_parse_starts_from_the_defaults():
    registry = programs.flag_values("perona_malik")
    startup.parse(registry, ["prog", "--noise=0.5", "--epochs=3"])
    startup.parse(registry, ["prog", "--epochs=4"])
    assert registry.noise is None and registry.epochs == 4


# ---------------------------------------------------------------- flags <-> RunSpec


def test_test_size_alone_caps_the_validation_images_at_the_test_set():
    values = parsed("perona_malik", "--test_size=32")
    protocol = spec.protocol("perona_malik")
    assert spec_from_flags(protocol, values).data.val_size == 32
    assert spec_from_flags(protocol, dict(values, val_size=8)).data.val_size == 8
    with pytest.raises(app.UsageError, match=r"val_size \(--val_size\) <= test_size"):
        spec_from_flags(protocol, dict(values, val_size=64))


def test_a_library_message_names_only_the_flags_the_program_has():
    message = ("Training diverged: ... try a lower train.lr_init) or ... try a smaller "
               "model.dt_init). Expected DataSpec.noise to be a finite number.")
    named = flag_message(message, programs.flag_values("colour"))  # --lr_init, no --dt_init
    assert "train.lr_init (--lr_init)" in named and "--dt_init" not in named
    assert "--noise" not in named  # colour takes --noise_levels
    named = flag_message(message, programs.flag_values("perona_malik"))
    assert "model.dt_init (--dt_init)" in named and "DataSpec.noise (--noise)" in named
    assert flag_message("Expected TrainSpec.seed", {"seed": 1}) == "Expected TrainSpec.seed (--seed)"


@pytest.mark.parametrize("protocol, changes", [
    ("perona_malik", {}),
    ("perona_malik", {"data": {"source": "synthetic", "noise": 0.01, "train_size": 6400,
                               "test_size": 200, "val_size": 200}, "train": {"epochs": 5}}),
    ("perona_malik", {"data": {"source": "synthetic", "channels": 3, "pm_coupling": "shared"},
                      "model": {"channel_mixing": "full"}}),
    ("perona_malik_unet", {"data": {"problem": "pm_forward", "seed": 3}, "train": {"seed": 3}}),
    ("deconvolution", {"train": {"epochs": 150, "lr_init": 0.002, "lr_final": 4e-6}}),
    ("deconvolution", {"data": {"heat_solver": "implicit"}, "train": {"precision": "fast"}}),
    ("perona_malik", {"train": {"precision": "fast"}}),
])
def test_command_for_gives_the_command_that_makes_the_spec(protocol, changes):
    run_spec = spec.protocol(protocol).replace(**changes)
    python, m, module, *args = programs.command_for(run_spec).split()
    assert (python, m) == ("python", "-m") and module.startswith("experiments.")
    name = module.removeprefix("experiments.")
    values = parsed(name, *args)
    start = programs.protocol_spec(name, values.get("model") or "diffnet", values.get("problem"))
    assert spec_from_flags(start, values) == run_spec
    assert not any(arg.startswith(("--val_size", "--pm_coupling")) for arg in args)


def test_command_for_names_the_selectors_and_refuses_a_spec_no_command_makes():
    unet_forward = spec.protocol("perona_malik_unet").replace(data={"problem": "pm_forward"})
    assert programs.command_for(unet_forward) == (
        "python -m experiments.perona_malik --model=unet --problem=forward")
    with pytest.raises(ValueError, match="No command of the programs makes the spec"):
        programs.command_for(spec.protocol("generalisation"))  # a study's cell


# ---------------------------------------------------------------- start-up


def test_the_start_up_filter_drops_tensorflows_notices_and_nothing_else():
    """TensorFlow's lines as a CPU-only machine prints them (the MLIR one at the first
    compilation, after the program's first line) are dropped; a real warning passes."""
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796110757.055656    8886 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796110757.055928    8886 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.",
        "I0000 00:00:1796111409.265531   12828 dump_mlir_util.cc:269] disabling MLIR crash "
        "reproducer, set env var `MLIR_CRASH_REPRODUCER_DIRECTORY` to enable.",
        "I1201 08:07:10.367609 140120240397184 xla_bridge.py:849] Unable to initialize backend "
        "'tpu': INTERNAL: Failed to open libtpu.so: libtpu.so: cannot open shared object file: "
        "No such file or directory",  # JAX's, where no TPU runtime is installed
    ]
    pattern = startup_noise()
    assert all(pattern.search(line) for line in noise)
    assert not pattern.search("W0000 00:00:1796111409.2 12828 loop_optimizer.cc:933] Skipping "
                              "loop optimization for Merge node")
    assert not pattern.search("UserWarning: the model has no gradients")


def test_file_descriptor_2_loses_the_start_up_lines_and_keeps_the_rest(capfd):
    with startup_lines_dropped():
        os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on.\n"
                    b"a real warning\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "a real warning\nafter\n"


def test_the_library_messages_show_on_stdout_as_plain_lines(capsys):
    startup.show_library_messages()
    startup.show_library_messages()  # once per process, however often called
    logging.getLogger("diffnet_tf.pairs").info("Making %d test pairs", 8)
    logging.getLogger("diffnet_tf.pairs").debug("not shown")
    assert capsys.readouterr().out == "Making 8 test pairs\n"


def test_tensorflows_retracing_warning_is_dropped_and_its_other_warnings_kept(caplog):
    startup.show_library_messages()
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning("5 out of the last 13 calls to <function f at 0x1> triggered "
                       "tf.function retracing. Tracing is expensive")
        logger.warning("a real warning")
    assert [record.getMessage() for record in caplog.records] == ["a real warning"]


def test_the_preamble_checks_the_folders_and_sets_the_emitter_where_asked(tmp_path,
                                                                           monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    registry = programs.flag_values("restore")
    startup.parse(registry, ["prog", f"--out_dir={tmp_path}", "--verbose=0"])
    assert startup.begin("restore", registry)[1] == 0 and "XLA_FLAGS" not in os.environ
    registry = programs.flag_values("perona_malik")
    startup.parse(registry, ["prog", f"--data_dir={tmp_path}"])
    startup.begin("perona_malik", registry)
    assert startup.XLA_CPU_FLAG in os.environ["XLA_FLAGS"]
    (tmp_path / "file").write_text("x")
    startup.parse(registry, ["prog", f"--out_dir={tmp_path / 'file' / 'runs'}"])
    with pytest.raises(app.UsageError, match="folder of --out_dir"):
        startup.begin("perona_malik", registry)


@pytest.mark.parametrize("error, line", [
    (files.WriteFailed("out/c.png", OSError(errno.ENOSPC, "No space left on device")),
     "Error: Could not write 'out/c.png': No space left on device.\n"),
    (files.WriteFailed("ro/c.png", OSError(errno.EROFS, "Read-only file system")),
     "Error: Could not write 'ro/c.png': Read-only file system.\n"),
    (files.DamagedFile("The finished run in runs/x is damaged: ..."),
     "Error: The finished run in runs/x is damaged: ...\n"),
    (runs.BackendMismatch("The run in runs/x was made under the jax backend, ..."),
     "Error: The run in runs/x was made under the jax backend, ...\n"),
    (ExecutorUnavailable("--executor=ray needs the ray package, which is not installed: ..."),
     "Error: --executor=ray needs the ray package, which is not installed: ...\n"),
    (launcher.CellsUnfinished("1 of 4 cells did not finish: unet_n10 failed (...). ..."),
     "Error: 1 of 4 cells did not finish: unet_n10 failed (...). ...\n"),
])
def test_a_failed_write_or_a_damaged_file_ends_the_program_with_its_line_and_status_1(
        monkeypatch, capsys, error, line):
    monkeypatch.setattr(startup, "drop_startup_lines_until_exit", lambda: None)
    monkeypatch.setattr(sys, "argv", ["prog"])

    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exited:
        startup.start(main, programs.flag_values("restore"), "doc")
    assert exited.value.code == 1 and capsys.readouterr().err == line
