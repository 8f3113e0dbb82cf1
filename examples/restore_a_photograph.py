"""Restore a photograph with a shipped model (a preset: no training, no download).

    python examples/restore_a_photograph.py photo.jpg restored.png --preset pm_inverse_noise0.01

A grey preset restores each channel of a colour photograph; the result keeps the input's
bit depth where the output format holds it (16-bit PNG or TIFF, float TIFF).
"""

import argparse

from diffnet_tf import image_io, presets
from diffnet_tf.restoration import restore


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("output")
    parser.add_argument("--preset", default="pm_inverse_noise0.01",
                        choices=sorted(presets.list_presets()))
    args = parser.parse_args()

    model = presets.load(args.preset)
    image, found = image_io.read_image(args.photo)  # float32 (H, W, C)
    restored = restore(model, image)  # a grey model restores a colour one channel by channel
    image_io.write_image(args.output, restored,
                         bit_depth=image_io.kept_depth(args.output, found.bit_depth))
    print(f"{args.photo} ({image.shape[0]}x{image.shape[1]}) -> {args.output} "
          f"with {args.preset}")


if __name__ == "__main__":
    main()
