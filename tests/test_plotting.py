"""The figures' colour scales and that every figure function writes its PNG."""

import numpy as np
import pytest
from PIL import Image

from diffnet_tf import plotting


def test_signed_scales_are_symmetric_and_cover_every_value():
    maps = [np.array([[-0.3, 0.1]]), np.array([[0.2, 0.05]])]
    scale = plotting.signed_scale(maps, "residual")
    assert (scale.low, scale.high, scale.cmap) == (-0.3, 0.3, "RdBu_r")
    assert plotting.signed_scale([np.zeros((2, 2))], "zero").high > 0  # never empty


def test_grey_scales_start_at_zero_and_show_overshoot():
    assert plotting.grey_scale([np.array([0.2, 0.9])]).high == 1.0
    assert plotting.grey_scale([np.array([0.2, 1.3])]).high == 1.3


def test_one_colour_bar_per_scale(tmp_path):
    """Three columns on one grey scale and one signed column: two colour bars, so the
    figure is wider than the four panels alone by two bars, not four."""
    rng = np.random.default_rng(0)
    images = [rng.random((8, 8)) for _ in range(4)]
    grey, signed = plotting.grey_scale(images), plotting.signed_scale(images, "s")
    shared = plotting.image_grid([images], tmp_path / "a.png", [grey, grey, grey, signed])
    own = plotting.image_grid([images], tmp_path / "b.png", [
        plotting.Scale("gray", 0, 1.0 + k, f"{k}") for k in range(4)])
    assert Image.open(shared).size[0] < Image.open(own).size[0]


@pytest.mark.parametrize("channels", [1, 3])
def test_every_figure_function_writes_a_png(tmp_path, channels):
    rng = np.random.default_rng(1)
    truth, inputs, outputs = (rng.random((2, 12, 12, channels)) for _ in range(3))
    paths = [
        plotting.reconstructions(truth, inputs, outputs, tmp_path / "r.png", [30.0, 31.0],
                                 [28.0, 29.0], "title"),
        plotting.comparison(truth[0], inputs[0], {"a": outputs[0], "b": outputs[1]},
                            {"a": 30.0, "b": 31.0}, tmp_path / "c.png", 28.0, "title"),
    ]
    if channels == 1:
        paths += [plotting.with_fourier({"x": truth[0], "y": inputs[0]}, tmp_path / "f.png"),
                  plotting.filter_maps([rng.normal(size=(12, 12, 5))] * 2, tmp_path / "z.png"),
                  plotting.signed_maps([[truth[0, ..., 0] - 0.5]], tmp_path / "s.png", "S")]
    for path in paths:
        assert Image.open(path).size[0] > 100


def test_nothing_is_cut_at_the_figures_edge(tmp_path):
    """Row labels (both PSNRs, two lines) beside fixed-aspect panels with two colour bars:
    the figure's border stays white, no label runs off it."""
    rng = np.random.default_rng(2)
    truth, inputs, outputs = (rng.random((4, 24, 24, 1)) for _ in range(3))
    path = plotting.reconstructions(truth, inputs, outputs, tmp_path / "r.png", [28.71] * 4,
                                    [28.96] * 4, "a setting")
    pixels = np.asarray(Image.open(path).convert("L"))
    for edge in (pixels[:, 0], pixels[:, -1], pixels[0], pixels[-1]):
        assert edge.min() == 255
