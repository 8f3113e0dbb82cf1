"""TIFF in and out (diffnet_tf/tiff.py through image_io) and restore keeping a TIFF's depth."""

import numpy as np
import pytest

from diffnet_tf import image_io
from diffnet_tf.cli import restore
from diffnet_tf.cli.startup import parse

tifffile = pytest.importorskip("tifffile")


def ramp(shape, low=0.1, high=0.9):
    """float32 values from low to high over the image, distinct in every channel."""
    return np.linspace(low, high, int(np.prod(shape)), dtype=np.float32).reshape(shape)


@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 3)])
@pytest.mark.parametrize("bit_depth", [8, 16, 32])
def test_a_tiff_round_trips_at_its_depth(tmp_path, shape, bit_depth):
    image = ramp(shape)
    path = tmp_path / "a.tif"
    image_io.write_image(path, image, bit_depth=bit_depth)
    read, found = image_io.read_image(path)
    assert found == image_io.ImageFormat(".tif", bit_depth, read.shape[-1], False)
    assert read.shape == np.atleast_3d(image).shape and read.dtype == np.float32
    tolerance = 0 if bit_depth == 32 else 0.5 / (2**bit_depth - 1) + 1e-7
    np.testing.assert_allclose(read, np.atleast_3d(image), atol=tolerance)
    stored = tifffile.imread(path)  # what another program sees
    assert stored.dtype == {8: np.uint8, 16: np.uint16, 32: np.float32}[bit_depth]


def test_float_tiff_values_are_kept_unscaled(tmp_path):
    values = np.array([[0.0, 2.5], [100.0, 1e-3]], np.float64)
    tifffile.imwrite(tmp_path / "f.tiff", values)
    read, found = image_io.read_image(tmp_path / "f.tiff")
    assert found.bit_depth == 32
    np.testing.assert_array_equal(read[..., 0], values.astype(np.float32))


def test_alpha_planar_and_orientation_are_read_as_tiff_means_them(tmp_path):
    rgba = (ramp((4, 6, 4)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    read, found = image_io.read_image(tmp_path / "a.tif")
    assert found.had_alpha and read.shape == (4, 6, 3)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(rgba[..., :3], -1, 0), photometric="rgb",
                     planarconfig="separate")
    np.testing.assert_array_equal(image_io.read_image(tmp_path / "p.tif")[0], read)
    grey = (ramp((4, 6)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "o.tif", grey, extratags=[(274, "H", 1, 3, True)])  # 180 deg
    rotated, _ = image_io.read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(rotated[..., 0], grey[::-1, ::-1] / np.float32(255))


@pytest.mark.parametrize("content, match", [
    (b"not a tiff", "Could not read an image from '.*bad.tif': not a TIFF file"),
    (None, "Expected 8 or 16-bit unsigned or floating-point TIFF samples. Received dtype int16")])
def test_unreadable_tiffs_are_named(tmp_path, content, match):
    path = tmp_path / "bad.tif"
    if content is None:
        tifffile.imwrite(path, np.zeros((3, 3), np.int16))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        image_io.read_image(path)


@pytest.mark.parametrize("depth", [8, 16, 32])
def test_kept_depth_keeps_what_the_output_format_holds(depth):
    assert image_io.kept_depth("out.tif", depth) == depth
    assert image_io.kept_depth("out.png", depth) == (None if depth == 32 else depth)
    assert image_io.kept_depth("out.jpg", depth) == (8 if depth == 8 else None)
    assert image_io.kept_depth("out.npy", depth) is None


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    from diffnet_tf.models import DiffNet

    model = DiffNet(num_layers=1, estimator_depth=2, width=4, channels=3, channel_mixing="full")
    model(np.zeros((1, 8, 8, 3), np.float32))
    for weight in model.weights:
        weight.assign(np.random.default_rng(0).normal(0, 0.1, weight.shape))
    path = str(tmp_path_factory.mktemp("colour") / "colour.keras")
    model.save(path)
    return path


@pytest.mark.parametrize("bit_depth", [16, 32])
def test_restore_keeps_a_colour_tiffs_depth(tmp_path, colour_model, bit_depth):
    source, target = str(tmp_path / "in.tif"), str(tmp_path / "out.tif")
    image_io.write_image(source, ramp((20, 13, 3), 0.2, 0.7), bit_depth=bit_depth)
    restore.main(parse(restore.FLAGS, ["prog", f"--model={colour_model}", source, target]))
    out, found = image_io.read_image(target)
    assert found.bit_depth == bit_depth and out.shape == (20, 13, 3)
    assert tifffile.imread(target).dtype == (np.uint16 if bit_depth == 16 else np.float32)
    if bit_depth == 16:
        assert len(np.unique(np.round(out * 65535))) > 256  # more levels than 8 bits hold
