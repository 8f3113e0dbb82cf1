"""Apply a saved DiffNet or U-Net to your own images.

    python -m experiments.restore --model runs/perona_malik/<run>/model.keras in.png out.png

Reads PNG (8 or 16 bit), JPEG or .npy images of any size (a colour image given to a grey
model is converted to grey with the ITU-R 601 weights, with a notice), scales each to
maximum 1 as in training, applies the model (U-Net inputs are padded to a multiple of 16
by mirroring and cropped back), undoes the scaling and writes the result in the format of
the output path's extension, at the input's bit depth where the format allows it (16-bit
PNG in, 16-bit PNG out; .npy values count as intensities in [0, 1] when written to PNG or
JPEG). The output is written atomically; it may not be the input file
unless --overwrite is given.
"""

import os

from absl import app, flags

from experiments import cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Path of a saved model.keras.", flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "Allow the output path to be the input image itself.",
                  flag_values=FLAGS)


def same_file(a, b):
    """Whether two paths name one file (links included)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


def check_paths(source, target, overwrite, formats):
    """Raises app.UsageError for an output of an unknown format, or the input itself."""
    if os.path.splitext(target)[1].lower() not in formats:
        raise app.UsageError(f"Expected an output path ending in one of {', '.join(formats)}. "
                             f"Received {target!r}.")
    if same_file(source, target) and not overwrite:
        raise app.UsageError(f"The output {target!r} is the input image: it would be "
                             "overwritten. Choose another output path, or pass --overwrite.")


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("Expected two arguments: an input image and an output path.")
    from diffnet_tf import image_io, training
    from diffnet_tf.restoration import restore

    source, target = argv[1], argv[2]
    values = FLAGS.flag_values_dict()
    check_paths(source, target, values["overwrite"], image_io.FORMATS)
    if values["model"] is None:
        raise app.UsageError("Expected --model, the path of a saved model.keras.")
    model = training.load_model(values["model"])
    image, image_format = image_io.read_image(source)
    if image_format.had_alpha:
        print(f"Note: {source} has an alpha channel; it is dropped.")
    if image.shape[-1] == 3 and getattr(model, "channels", 1) == 1:
        print(f"Note: {source} is in colour and the model is grey; converting to grey (ITU-R 601).")
    restored = restore(model, image)
    bit_depth = image_format.bit_depth if target.lower().endswith(".png") else None
    image_io.write_image(target, restored, bit_depth=bit_depth)
    print(f"Restored {source} ({image.shape[0]}x{image.shape[1]}) -> {target}")


if __name__ == "__main__":
    cli.start(main, FLAGS)
