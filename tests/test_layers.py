"""Layers: parameter counts (Sect. 4.3.1), config and .keras round trips, the update rule,
for one channel and for three (Remark 4)."""

import keras
import numpy as np
import pytest
from keras import ops

from diffnet_tf.layers import DiffusionLayer, FilterEstimator, LinearDiffusion
from diffnet_tf.stencil import apply_stencil


def built(layer, shape=(None, 12, 12, 1)):
    layer.build(shape)
    return layer


@pytest.mark.parametrize("depth, expected", [(5, 29_509), (4, 20_261)])
def test_filter_estimator_parameter_count_matches_the_paper(depth, expected):
    assert built(FilterEstimator(depth=depth)).count_params() == expected
    # independent of the image size
    assert built(FilterEstimator(depth=depth), (None, 96, 80, 1)).count_params() == expected


@pytest.mark.parametrize("maps, expected", [(15, 23_727), (45, 32_397)])
def test_filter_estimator_parameter_count_for_rgb_matches_the_formula(maps, expected):
    # 9 (C w + w^2 (K - 2) + w M) + w (K - 1) + M with C = 3, w = 32, K = 4
    assert expected == 9 * (3 * 32 + 32**2 * 2 + 32 * maps) + 32 * 3 + maps
    estimator = built(FilterEstimator(maps=maps), (None, 12, 12, 3))
    assert estimator.count_params() == expected
    assert estimator(np.zeros((2, 12, 12, 3), np.float32)).shape == (2, 12, 12, maps)


@pytest.mark.parametrize("mean_free, maps", [(False, 5), (True, 4)])
def test_linear_diffusion_learns_maps_per_pixel_plus_dt(mean_free, maps):
    layer = built(LinearDiffusion((12, 7), mean_free=mean_free), (None, 12, 7, 1))
    assert layer.count_params() == maps * 12 * 7 + 1


@pytest.mark.parametrize("mixing, stencils", [("none", 3), ("full", 9)])
@pytest.mark.parametrize("mean_free, maps", [(False, 5), (True, 4)])
def test_three_channel_linear_diffusion_learns_maps_per_stencil_per_pixel(
    mixing, stencils, mean_free, maps
):
    layer = LinearDiffusion((12, 7), mean_free, channels=3, channel_mixing=mixing)
    assert built(layer, (None, 12, 7, 3)).count_params() == maps * stencils * 12 * 7 + 1


@pytest.mark.parametrize("mixing", ["none", "full"])
def test_mean_free_three_channel_linear_diffusion_keeps_constant_images_constant(mixing):
    # Each stencil's centre is the sum of its neighbours: it annihilates constants
    # (Neumann), so every channel of a constant image stays constant, whatever the filters.
    layer = built(
        LinearDiffusion(8, mean_free=True, channels=3, channel_mixing=mixing), (None, 8, 8, 3)
    )
    layer.filters.assign(np.random.default_rng(6).normal(size=layer.filters.shape))
    u = np.broadcast_to(np.array([0.2, 0.5, 0.9], np.float32), (2, 8, 8, 3))
    out, filters = layer(u, return_filters=True)
    np.testing.assert_allclose(ops.convert_to_numpy(out), u, atol=1e-5)
    assert filters.shape == (2, 8, 8, 5 * layer.stencils)
    maps = np.split(ops.convert_to_numpy(filters), 5, axis=-1)  # grouped by stencil position
    centre, neighbour_sum = maps[4], sum(maps[:4])
    np.testing.assert_allclose(centre, neighbour_sum, atol=1e-5)


@pytest.mark.parametrize("mixing, maps", [("none", 15), ("full", 45)])
def test_three_channel_diffusion_layer_applies_the_stencil_with_estimated_filters(mixing, maps):
    layer = DiffusionLayer(estimator_depth=2, width=4, channels=3, channel_mixing=mixing)
    u = np.random.default_rng(7).random((2, 9, 10, 3)).astype(np.float32)
    out, zeta = layer(u, return_filters=True)
    assert zeta.shape == (2, 9, 10, maps) and out.shape == u.shape
    np.testing.assert_allclose(ops.convert_to_numpy(out),
                               ops.convert_to_numpy(apply_stencil(u, zeta, 0.2)), atol=1e-6)


def test_diffusion_layer_applies_the_stencil_with_estimated_filters():
    layer = DiffusionLayer(estimator_depth=2, width=4, dt_init=0.15)
    u = np.random.default_rng(0).random((2, 9, 10, 1)).astype(np.float32)
    out, zeta = layer(u, return_filters=True)
    assert zeta.shape == (2, 9, 10, 5)
    np.testing.assert_allclose(ops.convert_to_numpy(out),
                               ops.convert_to_numpy(apply_stencil(u, zeta, 0.15)), atol=1e-6)


def test_mean_free_linear_diffusion_initialised_as_heat_step_is_the_heat_step():
    layer = built(LinearDiffusion(8, mean_free=True, dt_init=0.1), (None, 8, 8, 1))
    layer.filters.assign(np.ones((8, 8, 4), np.float32))
    u = np.random.default_rng(1).random((1, 8, 8, 1)).astype(np.float32)
    laplacian = np.broadcast_to(np.array([1, 1, 1, 1, 4], np.float32), (1, 8, 8, 5))
    np.testing.assert_allclose(ops.convert_to_numpy(layer(u)),
                               ops.convert_to_numpy(apply_stencil(u, laplacian, 0.1)), atol=1e-6)


@pytest.mark.parametrize(
    "make_layer, channels",
    [
        (lambda: FilterEstimator(depth=3, width=6), 1),
        (lambda: DiffusionLayer(estimator_depth=3, width=6, boundary="zero", dt_init=0.1), 1),
        (lambda: LinearDiffusion((12, 12), mean_free=True, boundary="zero"), 1),
        (lambda: FilterEstimator(depth=2, width=4, maps=45), 3),
        (lambda: DiffusionLayer(estimator_depth=2, width=4, channels=3), 3),
        (lambda: DiffusionLayer(estimator_depth=2, channels=3, channel_mixing="full"), 3),
        (lambda: LinearDiffusion(12, True, channels=3, channel_mixing="full"), 3),
    ],
)
def test_layers_round_trip_config_and_keras_file(make_layer, channels, tmp_path):
    layer = make_layer()
    model = keras.Sequential([keras.Input((12, 12, channels)), layer])
    for weight in model.weights:  # move off the initial values so the check means something
        weight.assign(np.random.default_rng(0).normal(0, 0.1, weight.shape))
    x = np.random.default_rng(2).random((2, 12, 12, channels)).astype(np.float32)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / "layer.keras"
    model.save(path)
    np.testing.assert_allclose(ops.convert_to_numpy(keras.saving.load_model(path)(x)),
                               ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: FilterEstimator(depth=0), "depth to be an integer >= 1. Received 0"),
        (lambda: FilterEstimator(kernel_size=4), "odd kernel_size. Received 4"),
        (lambda: DiffusionLayer(boundary="periodic"), "Unknown boundary 'periodic'"),
        (lambda: DiffusionLayer(dt_init=0.0), "dt_init > 0"),
        (lambda: LinearDiffusion((3, 4, 5)), r"image_size to be a positive int or a pair"),
        (lambda: built(LinearDiffusion(8), (None, 8, 9, 1)), r"\(H, W\) = \(8, 8\)"),
        (lambda: built(FilterEstimator(), (None, 8, 8)), r"wrong rank.*\(None, 8, 8\)"),
        (lambda: FilterEstimator(maps=0), "maps to be an integer >= 1. Received 0"),
        (lambda: DiffusionLayer(channels=0), "channels to be an integer >= 1. Received 0"),
        (lambda: LinearDiffusion(8, channels=1.5), "channels to be an integer >= 1"),
        (lambda: DiffusionLayer(channel_mixing="diagonal"), "Unknown channel_mixing 'diagonal'"),
        (
            lambda: LinearDiffusion(8, channels=3, channel_mixing="partial"),
            r"Unknown channel_mixing 'partial'. Expected one of 'none', 'full'",
        ),
        (
            lambda: built(DiffusionLayer(channels=3), (None, 8, 8, 1)),
            r"3 channels of shape \(B, H, W, 3\).*Received shape \(None, 8, 8, 1\)",
        ),
        (
            lambda: built(LinearDiffusion(8, channels=3), (None, 8, 8, 4)),
            r"\(B, H, W, 3\) \(wrong channels\). Received shape \(None, 8, 8, 4\)",
        ),
        (
            lambda: built(DiffusionLayer(), (None, 8, 8, 3)),
            r"single-channel image batch .*Received shape \(None, 8, 8, 3\)",
        ),
        (lambda: DiffusionLayer()(np.zeros((1, 8, 8, 1), np.int32)), "floating-point dtype"),
    ],
)
def test_bad_arguments_raise_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
