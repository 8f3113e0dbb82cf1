"""Train DiffNet with model.fit on a folder of your own images (PNG, JPEG, TIFF, .npy).

    python examples/train_on_your_images.py my_images/ --size 64 --epochs 20 --noise 0.01

The images are cut into size x size patches (the last 10 % of files by name are held out
for testing), diffused by the paper's Perona-Malik data (Sect. 5.2) plus noise, and a
DiffNet learns to undo the diffusion. The trained model is saved as diffnet.keras.
"""

import argparse
import dataclasses

import numpy as np

from diffnet_tf import image_folder, metrics, spec
from diffnet_tf.models import DiffNet
from diffnet_tf.pairs import pairs_from_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder of at least 6 images")
    parser.add_argument("--size", type=int, default=64, help="patch side in pixels")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--layers", type=int, default=5, help="DiffNet's layers (the paper's 5)")
    parser.add_argument("--noise", type=float, default=0.01, help="noise, 0.01 = 1 %%")
    parser.add_argument("--out", default="diffnet.keras", help="where the model is saved")
    args = parser.parse_args()

    # the paper's Perona-Malik data (problem, steps, lambda) with your noise
    data = dataclasses.replace(spec.protocol("perona_malik").data, noise=args.noise)
    train_x, train_y = pairs_from_images(
        image_folder.folder_images(args.folder, "train", args.size), data)
    test_x, test_y = pairs_from_images(
        image_folder.folder_images(args.folder, "test", args.size), data, start=len(train_x))

    model = DiffNet(num_layers=args.layers)
    model.compile(optimizer="adam", loss="mse", metrics=[metrics.ImageMetric("psnr")])
    model.fit(train_x, train_y, batch_size=16, epochs=args.epochs,
              validation_data=(test_x, test_y), verbose=2)
    outputs = model.predict(test_x, verbose=0)
    print(f"test PSNR: input {np.mean(metrics.psnr(test_y, test_x)):.2f} dB, "
          f"DiffNet {np.mean(metrics.psnr(test_y, outputs)):.2f} dB "
          f"({len(test_x)} patches of {args.size}x{args.size})")
    model.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
