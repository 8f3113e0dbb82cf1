"""Tests of diffnet_tf.panels: the colour scales (shared with plotting's figures), the
filter maps' own scales, and the sample and filter panels TensorBoard shows."""

import matplotlib
import numpy as np
import pytest

from diffnet_tf import plotting
from diffnet_tf.panels import (MIN_TILE, diverging_image, filter_panel, grey_image,
                               readable_scale, sample_panel)


def colour_area(image, colour):
    """How many pixels of `image` have exactly `colour`."""
    return int(np.all(image == np.asarray(colour, np.uint8), axis=-1).sum())


# Colour scales ------------------------------------------------------------------------------


def test_grey_scale_is_fixed_not_stretched():
    dim = np.array([[[0.2], [0.4]]])  # a dark image stays dark: no min-max stretching
    np.testing.assert_array_equal(grey_image(dim)[..., 0], [[51, 102]])
    np.testing.assert_array_equal(grey_image(np.array([[[-0.5], [1.5]]]))[..., 0], [[0, 255]])
    np.testing.assert_array_equal(grey_image(np.array([[[1.0, 0.0, 0.5]]])), [[[255, 0, 128]]])


def test_grey_image_rejects_other_channel_counts():
    with pytest.raises(ValueError, match=r"Expected an \(H, W, 1\) or \(H, W, 3\) image"):
        grey_image(np.zeros((4, 4, 2)))


def test_diverging_colours_show_the_sign():
    negative, zero, positive = diverging_image(np.array([[-0.5, 0.0, 0.5]]), 1.0)[0].astype(int)
    assert negative[2] > negative[0] + 50  # blue
    assert positive[0] > positive[2] + 50  # red
    assert np.ptp(zero) <= 5 and zero.min() > 230  # neutral: near white
    # +v and -v are mirror colours of each other
    assert not np.array_equal(negative, positive)


def test_diverging_scale_is_fixed_not_the_data_range():
    small = diverging_image(np.array([[0.02, 0.01]]), 0.1)
    large = diverging_image(np.array([[0.02, 5.0]]), 0.1)
    np.testing.assert_array_equal(small[0, 0], large[0, 0])
    np.testing.assert_array_equal(large[0, 1], diverging_image(np.array([[0.1]]), 0.1)[0, 0])


@pytest.mark.parametrize("scale, message", [
    (0, "Expected scale > 0. Received 0"), (-1.0, "Expected scale > 0. Received -1.0"),
    (float("nan"), "Expected scale to be a finite number. Received nan"),
    (float("inf"), "Expected scale to be a finite number. Received inf"),
    (True, "Expected scale to be a finite number. Received True"),
    ("1", "Expected scale to be a finite number. Received '1'")])
def test_diverging_rejects_a_bad_scale(scale, message):
    with pytest.raises(ValueError, match=message):
        diverging_image(np.zeros((2, 2)), scale)


@pytest.mark.parametrize("largest, scale", [
    (0.1837, 0.2), (0.1, 0.1), (np.float32(0.1), 0.1), (0.09, 0.1), (0.25, 0.3),
    (0.0154, 0.02), (1.47, 2.0), (31.1, 50.0), (150.0, 200.0), (2.5e-5, 3e-5), (5.01, 10.0)])
def test_readable_scale_rounds_up_to_one_two_three_or_five_times_a_power_of_ten(largest, scale):
    values = np.array([-largest, largest / 3, 0.0], np.float32)
    assert readable_scale(values, percentile=100) == scale


def test_readable_scale_saturates_at_most_one_percent_and_ignores_what_is_not_finite():
    rng = np.random.default_rng(0)
    for magnitude in (1e-3, 0.07, 4.0, 300.0):
        values = magnitude * rng.standard_normal(10_000) ** 3  # heavy tails
        scale = readable_scale(np.append(values, [np.nan, np.inf, -np.inf]))
        assert np.mean(np.abs(values) > scale) <= 0.01
        assert scale < 2 * np.percentile(np.abs(values), 99)  # no coarser than 1-2-3-5 steps
    assert readable_scale(np.zeros((4, 4))) == readable_scale(np.array([np.nan])) == 1.0


def test_readable_scale_rejects_a_bad_percentile():
    with pytest.raises(ValueError, match="Expected percentile <= 100. Received 101"):
        readable_scale(np.ones(3), percentile=101)


def test_panels_colour_like_the_figures():
    """A value has the same colour in a TensorBoard panel as in a figure on the same scale
    (plotting's colour maps and grey range)."""
    values = np.array([[-0.3, -0.1, 0.0, 0.2, 0.3]])
    scale = plotting.signed_scale(values, "s")  # [-0.3, 0.3]
    figure = matplotlib.colormaps[scale.cmap]((values - scale.low) / (scale.high - scale.low))
    np.testing.assert_allclose(diverging_image(values, 0.3), figure[..., :3] * 255, atol=3)
    levels = np.array([0.0, 0.25, 0.5, 1.0])
    grey = plotting.grey_scale(levels)  # [0, 1]
    figure = matplotlib.colormaps[grey.cmap]((levels - grey.low) / (grey.high - grey.low))
    np.testing.assert_allclose(grey_image(levels[None, :, None])[0], figure[:, :3] * 255,
                               atol=1)


# Panels ------------------------------------------------------------------------------------


def triple(height, width, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random((height, width, channels), dtype=np.float32) for _ in range(3))


def test_sample_panel_grows_by_one_tile_height_and_four_tile_widths():
    base = sample_panel(*triple(96, 96))
    wider = sample_panel(*triple(100, 120))
    assert base.dtype == np.uint8 and base.shape[-1] == 3
    assert wider.shape[0] - base.shape[0] == 100 - 96
    assert wider.shape[1] - base.shape[1] == 4 * (120 - 96)


def test_sample_panel_enlarges_small_images():
    assert sample_panel(*triple(8, 8)).shape == sample_panel(*triple(MIN_TILE, MIN_TILE)).shape


@pytest.mark.parametrize("residual", [0.02, -0.02, 0.0])
def test_sample_panel_shows_the_residual_sign_on_a_fixed_scale(residual):
    target = np.full((MIN_TILE, MIN_TILE, 1), 0.5, np.float32)
    panel = sample_panel(target, target - residual, target, residual_scale=0.05)
    tile = MIN_TILE * MIN_TILE
    own = diverging_image(np.array([[residual]]), 0.05)[0, 0]
    assert colour_area(panel, own) >= tile  # the residual tile (plus a bar row or two)
    if residual:
        mirror = diverging_image(np.array([[-residual]]), 0.05)[0, 0]
        assert colour_area(panel, mirror) < tile / 10  # only in the colour bar
    # the same residual in an image whose other residuals are larger keeps its colour
    target[0, 0] = 0.5 + 0.4
    assert colour_area(sample_panel(target, target - residual, target, 0.05), own) >= tile - 1


def test_sample_panel_shows_colour_images_in_colour():
    red = np.zeros((MIN_TILE, MIN_TILE, 3), np.float32)
    red[..., 0] = 1.0
    panel = sample_panel(red, red, red)
    assert colour_area(panel, (255, 0, 0)) == 3 * MIN_TILE * MIN_TILE


def test_sample_panel_rejects_mismatched_shapes():
    inputs, output, target = triple(8, 8)
    with pytest.raises(ValueError, match="Expected input, output and target of the same shape"):
        sample_panel(inputs, output[:4], target)


def test_sample_panel_rejects_a_bad_residual_scale():
    with pytest.raises(ValueError, match="Expected residual_scale > 0. Received 0"):
        sample_panel(*triple(8, 8), residual_scale=0)


def constant_filters(values, size=MIN_TILE, copies=1):
    return np.tile(np.asarray(values, np.float32), (size, size, copies))


def test_filter_panel_shows_each_map_and_the_smoothing_part():
    zeta = (0.4, -0.4, 0.2, 0.0, -0.2)  # S = 0.4 - 0.4 + 0.2 + 0.0 + 0.2 = 0.4
    panel = filter_panel(constant_filters(zeta), scale=1.0)
    tile = MIN_TILE * MIN_TILE

    def area(value):
        return colour_area(panel, diverging_image(np.array([[value]]), 1.0)[0, 0])

    assert tile * 2 <= area(0.4) < tile * 3  # zeta_1 and S
    assert tile <= area(-0.4) < tile * 2
    assert tile <= area(0.2) < tile * 2
    assert tile <= area(-0.2) < tile * 2
    assert tile <= area(0.0) < tile * 2


def test_filter_panel_scale_is_fixed():
    zeta = constant_filters((0.3, 0.3, 0.3, 0.3, 0.3))
    zeta[0, 0] = 5.0  # one large value elsewhere does not change the others' colour
    colour = diverging_image(np.array([[0.3]]), 1.0)[0, 0]
    assert colour_area(filter_panel(zeta, 1.0), colour) >= 5 * MIN_TILE * MIN_TILE - 5


def test_filter_panel_shows_each_map_on_its_own_scale_however_small_or_large():
    """Maps from 0.002 to 30 in size each fill their tile with the end colour of their own
    scale (on one fixed scale the small ones would be white)."""
    zeta = (0.002, -0.05, 0.3, -20.0, -3.0)  # S = 0.002 - 0.05 + 0.3 - 20 + 3 = -16.748
    panel = filter_panel(constant_filters(zeta))
    reddest, bluest = diverging_image(np.array([[1.0, -1.0]]), 1.0)[0]
    tile = MIN_TILE * MIN_TILE
    assert 2 * tile <= colour_area(panel, reddest) < 2 * tile + 6 * MIN_TILE  # zeta_1, zeta_3
    assert 3 * tile <= colour_area(panel, bluest) < 3 * tile + 6 * MIN_TILE  # zeta_2, _4, _5
    s_colour = diverging_image(np.array([[-16.748]]), 20.0)[0, 0]  # S's scale: 20
    assert colour_area(panel, s_colour) >= tile


def test_filter_panel_shows_the_first_stencil_of_position_grouped_maps():
    zeta = constant_filters((0.4, -0.4, 0.2, 0.0, -0.2))
    grouped = np.full(zeta.shape[:2] + (45,), 0.9, np.float32)  # 5 C^2 maps, C = 3
    grouped[..., ::9] = zeta  # position k of stencil (0, 0) is map 9 k
    np.testing.assert_array_equal(filter_panel(grouped), filter_panel(zeta))


@pytest.mark.parametrize("shape", [(8, 8, 4), (8, 8, 0), (8, 8), (2, 8, 8, 5)])
def test_filter_panel_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"Expected filter maps of shape \(H, W, 5 \* n\)"):
        filter_panel(np.zeros(shape))
