"""Restoring images of any size: tiles equal the whole image for DiffNet, the receptive
radius bounds what a pixel sees, grey models restore colour channel by channel."""

import numpy as np
import pytest
from keras import ops

from diffnet_tf import restoration
from diffnet_tf.models import DiffNet
from diffnet_tf.unet import UNet


def with_weights(model, channels, seed=0):
    model.build((None, None, None, channels))
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.08, weight.shape).astype("float32"))
    return model


def colour_diffnet():
    return with_weights(DiffNet(num_layers=3, estimator_depth=3, width=8, channels=3,
                                channel_mixing="full"), 3)


def test_tiles_give_the_whole_image_result_for_diffnet():
    model = colour_diffnet()
    image = np.random.default_rng(1).random((512, 512, 3)).astype(np.float32)
    whole = restoration.restore(model, image, tile=0)
    tiled = restoration.restore(model, image, tile=64)  # 64 px tiles: 81 of them
    assert restoration.receptive_radius(model) == 12
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_the_receptive_radius_bounds_what_a_pixel_sees():
    model = colour_diffnet()
    radius = restoration.receptive_radius(model)
    image = np.full((1, 61, 61, 3), 0.5, np.float32)
    poked = image.copy()
    poked[0, 30, 30] += 0.3
    change = np.abs(ops.convert_to_numpy(model(poked)) - ops.convert_to_numpy(model(image)))
    change = change.max(axis=-1)[0]
    y, x = np.mgrid[:61, :61]
    distance = np.maximum(abs(y - 30), abs(x - 30))  # a 3x3 kernel reaches diagonals too
    assert change[distance > radius].max() == 0
    assert change[distance <= radius].max() > 0


def test_a_unets_tiles_start_on_its_pooling_grid_and_give_the_whole_image_result():
    """Its poolings make a U-Net equivariant only to shifts by its multiple (4 here): tiles
    starting off that grid differed from the whole image over most of it (here by 0.01)."""
    model = with_weights(UNet(base_filters=4, levels=3), 1)
    image = np.random.default_rng(2).random((70, 90, 1)).astype(np.float32)
    radius = restoration.receptive_radius(model)
    tile = radius * 2 + 9  # cores of 9 pixels: most windows would start off the grid
    assert all(start % 4 == 0 for *_, start, _ in restoration._cuts(90, tile, radius, 4))
    tiled = restoration.restore(model, image, tile=tile)
    np.testing.assert_allclose(tiled, restoration.restore(model, image, tile=0), atol=1e-5)


def test_a_grey_model_restores_each_channel_of_a_colour_image():
    model = with_weights(DiffNet(num_layers=2, estimator_depth=2, width=4), 1)
    image = np.random.default_rng(3).random((20, 30, 3)).astype(np.float32)
    image[..., 2] *= 0.5  # each channel is scaled to its own maximum
    colour = restoration.restore(model, image)
    for c in range(3):
        np.testing.assert_allclose(colour[..., c : c + 1],
                                   restoration.restore(model, image[..., c : c + 1]), atol=1e-6)
    np.testing.assert_allclose(restoration.restore_channels(model, image[None])[0], colour,
                               atol=1e-5)


@pytest.mark.parametrize("image, message", [
    (np.zeros((0, 0, 1), np.float32), r"non-empty image.*\(0, 0, 1\)"),
    (np.zeros((4, 4, 2), np.float32), r"\(H, W, 1\) or \(H, W, 3\)"),
    (np.zeros((4, 4, 1), np.float32), "Expected an image with 3 channel"),
])
def test_restore_rejects_images_it_cannot_restore(image, message):
    with pytest.raises(ValueError, match=message):
        restoration.restore(colour_diffnet(), image)


def test_tiles_too_small_for_the_receptive_field_are_refused():
    with pytest.raises(ValueError, match="tile larger than twice the model's receptive radius"):
        restoration.restore(colour_diffnet(), np.ones((64, 64, 3), np.float32), tile=20)


@pytest.mark.parametrize("fill, match", [
    (-1.0, r"positive maximum.*\[-1, -1\]"), (0.0, "positive maximum"),
    (np.nan, "finite pixel values. Received 1 NaN"), (np.inf, "finite pixel values"),
])
def test_images_the_model_cannot_take_are_refused(fill, match):
    image = np.full((8, 8, 1), -1.0 if fill == -1.0 else 0.5, np.float32)
    image[3, 3] = fill
    if fill == 0.0:
        image[:] = 0.0
    with pytest.raises(ValueError, match=match):
        restoration.restore(with_weights(DiffNet(num_layers=1, estimator_depth=2, width=4), 1), image)


def test_an_output_far_out_of_the_inputs_range_is_flagged():
    model = with_weights(DiffNet(num_layers=1, estimator_depth=2, width=4, final_relu=False), 1)
    model.diffusion_layers[0].dt.assign(50.0)  # an unstable step: the output explodes
    image = np.random.default_rng(0).random((16, 16, 1)).astype(np.float32)
    with pytest.warns(restoration.OutputOutOfRange, match="leave the input's range"):
        restoration.restore(model, image)


def test_a_sensible_output_is_not_flagged():
    import warnings

    image = np.random.default_rng(0).random((16, 16, 1)).astype(np.float32)
    model = with_weights(DiffNet(num_layers=1, estimator_depth=2, width=4), 1, seed=3)
    for weight in model.weights:  # zero filters: the output is the input
        weight.assign(np.zeros(weight.shape, "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", restoration.OutputOutOfRange)
        np.testing.assert_allclose(restoration.restore(model, image), image, atol=1e-6)
