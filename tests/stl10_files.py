"""STL-10's binary file as the tests write it: tiny sets of tagged images in the layout of
stl10_binary/unlabeled_X.bin, so that no test downloads anything."""

import numpy as np

from diffnet_tf import protocols

SIDE = protocols.STL10_SIDE


def write_stl10_binary(root, rgb):
    """Writes (N, 96, 96, 3) uint8 images as STL-10 does: per image the three channels, each
    in column-major (Fortran) order. Returns the file's path."""
    path = root / "stl10_binary" / "unlabeled_X.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as file:
        for image in rgb:
            for channel in range(3):
                file.write(image[:, :, channel].tobytes(order="F"))
    return path


def tagged_images(count):
    """Images with an upright pattern (a red block 10 rows x 30 columns at the top left), a
    green pixel (the brightest grey) and a blue tag pixel whose column is the image's id."""
    rgb = np.zeros((count, SIDE, SIDE, 3), np.uint8)
    rgb[:, :10, :30, 0] = 200
    rgb[:, 50, 60, 1] = 255
    for i in range(count):
        rgb[i, 90, i, 2] = 255
    return rgb


def image_ids(grey):
    """The ids `tagged_images` gave the images of a grey batch (n, 96, 96, 1)."""
    return [int(np.argmax(image[90, :, 0])) for image in grey]
