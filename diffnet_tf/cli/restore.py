"""Apply a saved DiffNet or U-Net to your own images.

    diffnet-restore --model=pm_inverse_noise0.01 in.png out.png        # a preset
    diffnet-restore --model=runs/perona_malik/<run>/model.keras in.png out.png
    diffnet-restore --model=<model> --out_dir=restored a.png b.jpg c.npy
    diffnet-restore --list-presets

(`python -m experiments.restore ...` in the repository runs the same program.)

--model is a trained model shipped with the package (a preset: no training, no download;
--list-presets lists them with what they were trained for) or the path of a model.keras.

Reads PNG (8 or 16 bit), JPEG, TIFF (8 or 16 bit, float) or .npy images of any size, grey or colour. A colour model
restores colour images in colour; a grey model restores each channel of a colour image
(with a notice). Each image (or channel) is scaled to maximum 1 as in training and back,
and restored in overlapping tiles (--tile) so memory stays bounded whatever its size; the
tiles overlap by the model's receptive field (a U-Net's start at its multiple of 16), so
the result equals the whole-image result, a DiffNet's and a U-Net's (--tile=0 restores
whole images). The result is written in the format of the output's extension, at the input's
bit depth where the format allows it (16-bit PNG or TIFF in, 16 bits out; a float TIFF
to a float TIFF; .npy values count as
intensities in [0, 1] when written to PNG or JPEG), atomically. An output may not be its
own input unless --overwrite is given. With --out_dir, each input is written there under
its own name; the model is loaded once for all of them.
"""

import os
import warnings

from absl import app

from diffnet_tf.cli import programs, startup
from diffnet_tf.cli.report import count

FLAGS = programs.flag_values("restore")


def same_file(a, b):
    """Whether two paths name one file (links included)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


def check_job(source, target, overwrite):
    """Raises app.UsageError unless `source` is a file and `target` is not a folder, not the
    input (unless `overwrite`), and in a folder we may write: checked before the model is
    loaded, so no work is done for an output that cannot be written."""
    from diffnet_tf.files import check_writable_folder

    if not os.path.isfile(source):
        raise app.UsageError(f"Expected an input image file. Received {source!r}: "
                             f"{'a folder' if os.path.isdir(source) else 'no such file'}.")
    if os.path.isdir(target):
        raise app.UsageError(f"Expected an output file path. Received {target!r}, which is a "
                             "folder: name a file in it, or pass it as --out_dir.")
    if same_file(source, target) and not overwrite:
        raise app.UsageError(f"The output {target!r} is the input image: it would be "
                             "overwritten. Choose another output path, or pass --overwrite.")
    try:
        check_writable_folder(os.path.dirname(target) or ".", "output folder")
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def jobs(paths, out_dir, formats):
    """(input, output) pairs from the positional arguments; raises app.UsageError for a
    wrong count or an output of an unknown format."""
    if out_dir is None and len(paths) != 2:
        raise app.UsageError("Expected two arguments, an input image and an output path, or "
                             f"--out_dir and input images. Received {len(paths)} arguments.")
    if out_dir is not None and not paths:
        raise app.UsageError("Expected input images after --out_dir. Received none.")
    pairs = ([tuple(paths)] if out_dir is None else
             [(path, os.path.join(out_dir, os.path.basename(path))) for path in paths])
    for _, target in pairs:
        if os.path.splitext(target)[1].lower() not in formats:
            raise app.UsageError(f"Expected an output path ending in one of "
                                 f"{', '.join(formats)}. Received {target!r}.")
    return pairs


def refused_input(function, *args):
    """function(*args), its ValueError (a damaged model, an empty, negative or non-finite
    image, a tile too small for the model) raised as `startup.InputRefused`: one line, no
    traceback, no flag hint; its warnings (a result far out of the input's range) printed
    as one 'Warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return function(*args)
        except ValueError as error:
            raise startup.InputRefused(str(error)) from error
        finally:
            for warning in caught:
                print(f"Warning: {warning.message}")


def print_presets(shipped):
    """One line per preset: its name, data, PSNR on its test images (and the input's)."""
    for name, info in shipped.items():
        data = info["spec"]["data"]
        print(f"{name}: {data['problem']}, noise {data['noise']:g}, "
              f"{count(data['channels'], 'channel')}; test PSNR {info['test_psnr']:.2f} dB "
              f"(input {info['input_psnr']:.2f} dB), {info['steps']:,} training steps")


def check_model(name, shipped):
    """Raises app.UsageError unless --model names a shipped preset or an existing path."""
    if name is None:
        raise app.UsageError("Expected --model: a preset's name (--list-presets) or the path "
                             "of a saved model.keras.")
    if name not in shipped and not os.path.exists(name):
        choices = ", ".join(shipped) or "none is shipped"
        raise app.UsageError(f"Expected --model to be a preset ({choices}) or the path of a "
                             f"saved model.keras. Received {name!r}.")


def load_model(name, shipped):
    """The model --model names: a shipped preset, or a saved model.keras."""
    from diffnet_tf import presets, saving

    return refused_input(presets.load if name in shipped else saving.load_model, name)


def main(argv):
    from diffnet_tf import image_io, presets
    from diffnet_tf.restoration import restore

    values, verbose = startup.begin("restore", FLAGS)
    shipped = presets.list_presets()
    if values["list-presets"]:
        return print_presets(shipped)
    pairs = jobs(argv[1:], values["out_dir"], image_io.FORMATS)
    check_model(values["model"], shipped)
    for source, target in pairs:
        check_job(source, target, values["overwrite"])
    model = load_model(values["model"], shipped)
    for source, target in pairs:
        image, image_format = refused_input(image_io.read_image, source)
        if image_format.had_alpha:
            print(f"Note: {source} has an alpha channel; it is dropped.")
        if image.shape[-1] > model.channels:
            print(f"Note: {source} is in colour and the model is grey: restoring each channel.")
        if image.shape[-1] < model.channels:
            raise app.UsageError(f"{source} is grey and the model restores {model.channels}-"
                                 "channel images: use a grey model for it (--list-presets).")
        restored = refused_input(restore, model, image, values["tile"], verbose)
        bit_depth = image_io.kept_depth(target, image_format.bit_depth)
        image_io.write_image(target, restored, bit_depth=bit_depth)
        print(f"Restored {source} ({image.shape[0]}x{image.shape[1]}, "
              f"{count(image.shape[2], 'channel')}) -> {target}")


def run():
    """The `diffnet-restore` console script (and `python -m experiments.restore`)."""
    startup.start(main, FLAGS, __doc__)
