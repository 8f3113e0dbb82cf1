"""Trained models on photographs: each photograph diffused (and noised) by each model's own
data physics, restored by the model, and compared with the truth.

    python -m experiments.photographs                     # every Perona-Malik preset
    python -m experiments.photographs --photo_models=pm_inverse_noise0.01,runs/x/model.keras
    python -m experiments.photographs --photos=my_photographs/

A model is a preset (its spec is shipped with it) or a model.keras in a run folder (its
spec.json beside it). Each photograph is converted as the model's data were (grey through
the ITU-R 601 luma weights, or colour; a colour model skips grey photographs), scaled to
maximum 1, passed through the spec's forward problem and noise (`pairs.pairs_from_images`,
photograph i with noise index i) and restored whole-image-equivalently in tiles
(`restoration.restore`). The table gives, per model, the means over its photographs of the
input's PSNR, the model's PSNR and SSIM against the target (Sect. 5's measures).

The default photographs are scikit-image's public-domain ones shipped inside its wheel
(`pip install "diffnet_tf[photos]"`; no download): camera, astronaut, coffee, chelsea,
coins, rocket.
"""

import logging
from pathlib import Path

from absl import app

from diffnet_tf.cli import programs, startup

FLAGS = programs.flag_values("photographs")
# scikit-image's photographs whose files ship in its wheel (skimage/data/), public domain
SKIMAGE_PHOTOGRAPHS = ("camera", "astronaut", "coffee", "chelsea", "coins", "rocket")


def photographs(folder):
    """{name: float32 (H, W, C) in [0, 1]}: the folder's images, or scikit-image's."""
    import numpy as np

    from diffnet_tf import image_folder, image_io

    if folder is not None:
        return {path.name: image_io.read_image(path)[0]
                for path in image_folder.image_files(folder)}
    try:
        import skimage.data
    except ImportError:
        raise app.UsageError("The default photographs are scikit-image's: pip install "
                             "'diffnet_tf[photos]' (or scikit-image), or give --photos=DIR.")
    return {name: np.atleast_3d(getattr(skimage.data, name)()).astype(np.float32) / 255
            for name in SKIMAGE_PHOTOGRAPHS}


def model_and_spec(name):
    """(model, RunSpec) of a preset's name or a model.keras with spec.json beside it."""
    from diffnet_tf import presets, saving, spec

    if name in presets.list_presets():
        return presets.load(name), spec.RunSpec.from_dict(presets.metadata(name)["spec"])
    spec_path = Path(name).parent / "spec.json"
    if not spec_path.is_file():
        raise app.UsageError(f"Expected a preset ({', '.join(presets.list_presets())}) or a "
                             f"model.keras in a run folder (with spec.json). Received {name!r}.")
    return saving.load_model(name), spec.RunSpec.load(spec_path)


def perona_malik_presets():
    """The shipped presets whose data are Perona-Malik's, in name order."""
    from diffnet_tf import presets, problems

    return [name for name, meta in presets.list_presets().items()
            if problems.get(meta["spec"]["data"]["problem"]).physics is problems.PERONA_MALIK]


def scores(model, data, images, tile):
    """(input PSNR, model PSNR, SSIM), each a mean over `images` that have data.channels
    or more channels, and how many there were."""
    import numpy as np

    from diffnet_tf import metrics, pairs, synthetic
    from diffnet_tf.restoration import restore

    found = []
    for index, image in enumerate(images):
        if image.shape[-1] < data.channels:
            continue
        if image.shape[-1] > data.channels:
            image = (image @ synthetic.GREY_WEIGHTS)[..., None]
        clean = synthetic.scale_to_max_one(image[None])
        inputs, targets = pairs.pairs_from_images(clean, data, start=index)
        output = restore(model, inputs[0], tile)[None]
        found.append([float(np.asarray(metrics.psnr(targets, inputs))[0]),
                      float(np.asarray(metrics.psnr(targets, output))[0]),
                      float(np.asarray(metrics.ssim(targets, output))[0])])
    return np.mean(found, axis=0), len(found)


def main(argv):
    del argv
    values, _ = startup.begin("photographs", FLAGS)
    # each photograph's size compiles the physics once: TensorFlow's retracing notice is noise
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    images = photographs(values["photos"])
    names = values["photo_models"] or perona_malik_presets()
    print(f"{len(images)} photographs: {', '.join(images)}")
    print("| model | problem | noise | photographs | input PSNR (dB) | model PSNR (dB) | SSIM |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in names:
        model, run_spec = model_and_spec(name)
        data = run_spec.data
        (input_psnr, model_psnr, ssim), count = scores(model, data, list(images.values()),
                                                        values["tile"])
        print(f"| {name} | {data.problem} | {data.noise:g} | {count} | {input_psnr:.2f} | "
              f"{model_psnr:.2f} | {ssim:.4f} |")


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
