"""Builds the trained models shipped in diffnet_tf/pretrained/ (diffnet_tf.presets): the
checkout's folder, or --pretrained_dir; never an installed copy of the package.

    python -m experiments.build_presets                       # every preset, from its spec
    python -m experiments.build_presets --names=pm_inverse_noise0.01
    python -m experiments.build_presets --package=pm_inverse_noise0=runs/perona_malik/<run>

By default every preset of that folder (or those in --names) is rebuilt from the spec
stored in its preset.json: the spec is run (a finished run of it in --out_dir is reused, an
unfinished one resumed; README, "Run folders") and packaged again. --package puts finished
run folders into the package under the given names: how a preset is added, or replaced by
a longer run (e.g. the paper's protocol on a GPU).

Packaging saves the model without its optimizer state (about 0.4 MB for DiffNet-5),
measures its PSNR on the first 200 test images of its data (and the input's), and writes
preset.json with the spec, the command that runs
it, the training steps, time and machine.
"""

import math
from pathlib import Path

from absl import app

from diffnet_tf.cli import programs, startup

FLAGS = programs.flag_values("build_presets")
# The checkout's presets, found from this file (not the imported package's folder, which
# may be an installed copy in site-packages).
CHECKOUT_PRETRAINED = Path(__file__).resolve().parents[1] / "diffnet_tf" / "pretrained"


def parse_packages(values):
    """{name: run folder} from the --package list."""
    pairs = [value.split("=", 1) for value in values]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise app.UsageError(f"Expected --package as name=run_folder pairs. Received {values}.")
    return dict(pairs)


def _machine(record):
    """The machine the run recorded, or (for runs older than those records) the packaging
    machine, saying so."""
    if "machine" in record:
        return {"machine": record["machine"]}
    from diffnet_tf import hardware

    return {"machine": hardware.machine(), "machine_recorded_at": "packaging (the run predates "
            "machine records; it trained in the same session, on the same machine)"}


def training_steps(run_spec):
    """The optimizer steps of a run: epochs x repeats x batches per epoch."""
    train = run_spec.train
    return train.epochs * train.epoch_repeats * math.ceil(run_spec.data.train_size / train.batch_size)


def measured_psnr(model, data, data_dir):
    """(the model's, the input's) mean PSNR on the first presets.TEST_IMAGES test pairs."""
    import keras

    from diffnet_tf import metrics, pairs, presets

    inputs, targets = pairs.make_pairs(data, "test", presets.TEST_IMAGES, data_dir, verbose=0)
    return [float(keras.ops.convert_to_numpy(metrics.psnr(targets, x)).mean())
            for x in (model.predict(inputs, verbose=0), inputs)]


def package(name, folder, pretrained_dir, data_dir):
    """Copies a finished run folder into <pretrained_dir>/<name>/ with its preset.json."""
    import keras

    from diffnet_tf import files, presets, runs, saving
    from diffnet_tf.spec import RunSpec

    run_spec = RunSpec.load(folder / "spec.json")
    if not runs.RunFolder(folder.parent, run_spec).finished:
        raise app.UsageError(f"Expected a finished run folder for --package. {folder} is not.")
    model = keras.saving.load_model(folder / "model.keras", compile=False)  # no optimizer state
    psnr = measured_psnr(model, run_spec.data, data_dir)
    record = files.read_json(folder / "training.json")
    target = Path(pretrained_dir) / name
    target.mkdir(parents=True, exist_ok=True)
    saving.save_model(model, target / "model.keras")
    files.write_json(target / "preset.json", {
        "name": name, "spec": run_spec.to_dict(), "command": programs.command_for(run_spec),
        "steps": training_steps(run_spec), "train_seconds": record["train_seconds"],
        **_machine(record), "parameters": int(model.count_params()),
        "test_images": presets.TEST_IMAGES, "test_psnr": round(psnr[0], 3),
        "input_psnr": round(psnr[1], 3), "run": folder.name,
    })
    print(f"{name}: test PSNR {psnr[0]:.2f} dB (input {psnr[1]:.2f} dB) on the first "
          f"{presets.TEST_IMAGES} test images, {training_steps(run_spec)} steps -> {target}")


def main(argv):
    del argv
    from diffnet_tf import presets, runs
    from diffnet_tf.spec import RunSpec

    values, verbose = startup.begin("build_presets", FLAGS)
    pretrained_dir = Path(values["pretrained_dir"] or CHECKOUT_PRETRAINED)
    if values["package"]:
        for name, folder in parse_packages(values["package"]).items():
            package(name, Path(folder), pretrained_dir, values["data_dir"])
        return
    stored = presets.list_presets(pretrained_dir)
    unknown = sorted(set(values["names"] or ()) - set(stored))
    if unknown:
        raise app.UsageError(f"Expected --names from the presets in {pretrained_dir} "
                             f"({', '.join(stored) or 'none'}). Received {unknown}.")
    for name in values["names"] or stored:
        run_spec = RunSpec.from_dict(stored[name]["spec"])
        print(f"{name}: {programs.command_for(run_spec)}")
        result = runs.execute(run_spec, Path(values["out_dir"]), values["data_dir"],
                              verbose=verbose)
        package(name, result.path, pretrained_dir, values["data_dir"])


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
