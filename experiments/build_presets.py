"""Builds the trained models shipped in diffnet_tf/pretrained/ (diffnet_tf.presets).

    python -m experiments.build_presets                       # every preset, from its spec
    python -m experiments.build_presets --names=pm_inverse_noise0.01
    python -m experiments.build_presets --package=pm_inverse_noise0=runs/perona_malik/<run>

By default every shipped preset (or those in --names) is rebuilt from the spec stored in
its preset.json: the spec is run (a finished run of it in --out_dir is reused, an
unfinished one resumed; README, "Run folders") and packaged again. --package puts finished
run folders into the package under the given names: how a preset is added, or replaced by
a longer run (e.g. the paper's protocol on a GPU).

Packaging saves the model without its optimizer state (about 0.4 MB for DiffNet-5),
measures its PSNR on the first 200 test images of its data (and the input's), and writes
preset.json with the spec, the command that runs
it, the training steps, time and machine.
"""

import math

from absl import app, flags

from experiments import cli

FLAGS = flags.FlagValues()
flags.DEFINE_list("names", None, "Presets to rebuild (default: every shipped preset).",
                  flag_values=FLAGS)
flags.DEFINE_list("package", None, "name=run_folder pairs: finished runs to package.",
                  flag_values=FLAGS)
cli.define_flags(FLAGS, "out_dir", "data_dir", "verbose")


def parse_packages(values):
    """{name: run folder} from the --package list."""
    pairs = [value.split("=", 1) for value in values]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise app.UsageError(f"Expected --package as name=run_folder pairs. Received {values}.")
    return dict(pairs)


def _machine(record, runs):
    """The machine the run recorded, or (for runs older than those records) the packaging
    machine, saying so."""
    if "machine" in record:
        return {"machine": record["machine"]}
    return {"machine": runs.machine(), "machine_recorded_at": "packaging (the run predates "
            "machine records; it trained in the same session, on the same machine)"}


def package(name, folder, data_dir):
    """Copies a finished run into diffnet_tf/pretrained/<name>/ with its preset.json."""
    import keras

    from diffnet_tf import datasets, files, metrics, presets, runs, saving
    from diffnet_tf.spec import RunSpec

    run_spec = RunSpec.load(folder / "spec.json")
    if not runs.RunFolder(folder.parent, run_spec).finished:
        raise app.UsageError(f"Expected a finished run folder for --package. {folder} is not.")
    model = keras.saving.load_model(folder / "model.keras", compile=False)  # no optimizer state
    inputs, targets = datasets.make_pairs(run_spec.data, "test", presets.TEST_IMAGES, data_dir,
                                          verbose=0)
    psnr = [float(keras.ops.convert_to_numpy(metrics.psnr(targets, x)).mean())
            for x in (model.predict(inputs, verbose=0), inputs)]
    record = files.read_json(folder / "training.json")
    train = run_spec.train
    steps = train.epochs * train.epoch_repeats * math.ceil(run_spec.data.train_size / train.batch_size)
    target = presets.PRETRAINED / name
    target.mkdir(parents=True, exist_ok=True)
    saving.save_model(model, target / "model.keras")
    files.write_json(target / "preset.json", {
        "name": name, "spec": run_spec.to_dict(), "command": cli.command_for(run_spec),
        "steps": steps, "train_seconds": record["train_seconds"],
        **_machine(record, runs), "parameters": int(model.count_params()),
        "test_images": presets.TEST_IMAGES, "test_psnr": round(psnr[0], 3),
        "input_psnr": round(psnr[1], 3), "run": folder.name,
    })
    print(f"{name}: test PSNR {psnr[0]:.2f} dB (input {psnr[1]:.2f} dB) on the first "
          f"{presets.TEST_IMAGES} test images, {steps} steps -> {target}")


def main(argv):
    del argv
    from pathlib import Path

    from diffnet_tf import datasets, presets, runs
    from diffnet_tf.spec import RunSpec

    datasets.use_classic_xla_cpu_emitter()
    values = FLAGS.flag_values_dict()
    cli.check_folders(values, "out_dir", "data_dir")
    if values["package"]:
        for name, folder in parse_packages(values["package"]).items():
            package(name, Path(folder), values["data_dir"])
        return
    names = values["names"] or list(presets.list_presets())
    for name in names:
        run_spec = RunSpec.from_dict(presets.metadata(name)["spec"])
        print(f"{name}: {cli.command_for(run_spec)}")
        result = runs.execute(run_spec, cli.output_root(values, "presets"), values["data_dir"],
                              verbose=cli.verbosity(values["verbose"]))
        package(name, result.path, values["data_dir"])


if __name__ == "__main__":
    cli.start(main, FLAGS)
