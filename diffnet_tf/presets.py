"""Trained DiffNets that ship inside the package (keras-hub style): no download, no training.

    from diffnet_tf.models import DiffNet
    model = DiffNet.from_preset("pm_inverse_noise0.01")
    restored = model.predict(images)                       # (B, H, W, 1) in [0, 1]
    for name, info in list_presets().items():
        print(name, info["test_psnr"], info["command"])

Each preset is a folder diffnet_tf/pretrained/<name>/ holding model.keras and preset.json:
the spec of the run that trained it (a `spec.RunSpec` dict), the command that runs that
spec, the training steps, time and machine, and its PSNR on the first TEST_IMAGES test
images of its data (and the input's). `python -m experiments.build_presets` rebuilds every
preset from its stored spec, so anyone can reproduce them, and a longer run (on a GPU, with
the paper's protocol) can replace them.
"""

from pathlib import Path

from diffnet_tf.files import read_json
from diffnet_tf.saving import load_model

PRETRAINED = Path(__file__).resolve().parent / "pretrained"
TEST_IMAGES = 200  # the test images a preset's stored PSNR is measured on


def list_presets(folder=PRETRAINED):
    """{name: metadata (the contents of preset.json)} of every preset in `folder` (by
    default the shipped ones), by name."""
    return {path.parent.name: read_json(path)
            for path in sorted(Path(folder).glob("*/preset.json"))}


def metadata(name):
    """The preset.json of preset `name`; raises a ValueError naming the presets."""
    path = PRETRAINED / str(name) / "preset.json"
    if not path.exists():
        raise ValueError(f"Unknown preset {name!r}. Expected one of "
                         f"{', '.join(map(repr, list_presets())) or 'none (none is shipped)'}.")
    return read_json(path)


def load(name):
    """The trained model of preset `name` (a Keras model, offline)."""
    metadata(name)  # a clear error for an unknown name
    return load_model(PRETRAINED / name / "model.keras")
