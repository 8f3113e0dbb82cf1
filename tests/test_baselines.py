"""The Tikhonov baseline of the heat inverse problem: its operator is the data's heat
solver, it inverts noise-free data, its weight is the best of the grid on training pairs."""

import numpy as np
import pytest
from keras import ops

from diffnet_tf import baselines, metrics, pairs, problems, spec, spectral


def disc_data(**changes):
    return spec.protocol("deconvolution").replace(data=changes).data


def clean_images(n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 1)).astype(np.float32)


@pytest.mark.parametrize("solver", list(problems.HEAT_SOLVERS))
def test_the_operator_in_its_eigenbasis_is_the_datas_heat_solver(solver):
    data, images = disc_data(heat_solver=solver, heat_time=0.7), clean_images()
    boundary, a = baselines.heat_spectrum(data, 16, 16)
    coefficients = spectral.transform(images, boundary) * a[None, :, :, None].astype(np.float32)
    operator = ops.convert_to_numpy(spectral.transform(coefficients, boundary, inverse=True))
    diffused = ops.convert_to_numpy(problems.get(data.problem).physics.forward(images, data))
    np.testing.assert_allclose(operator, diffused, atol=1e-6)


@pytest.mark.parametrize("solver", list(problems.HEAT_SOLVERS))
def test_without_a_weight_it_inverts_the_heat_operator(solver):
    data, images = disc_data(heat_solver=solver, heat_time=0.3), clean_images()
    diffused = ops.convert_to_numpy(problems.get(data.problem).physics.forward(images, data))
    np.testing.assert_allclose(baselines.tikhonov(diffused, data, 0.0), images, atol=1e-3)
    smoothed = baselines.tikhonov(diffused, data, 1.0)  # a large weight keeps it smooth
    assert np.abs(smoothed - images).max() > 0.1


def test_the_chosen_weight_is_the_best_of_the_grid_and_grows_with_the_noise():
    data = disc_data(heat_time=0.5)
    images = clean_images(n=24)
    chosen = {}
    for noise in (0.0, 0.01):
        noisy = pairs.pairs_from_images(images, disc_data(heat_time=0.5, noise=noise))
        weight, score = baselines.choose_weight(*noisy, data)
        def mean_psnr(weight):  # independently: the estimates' PSNR in the image domain
            estimates = baselines.tikhonov(noisy[0], data, weight)
            return np.mean(ops.convert_to_numpy(metrics.psnr(images, estimates)))

        assert mean_psnr(weight) == pytest.approx(score, abs=0.01)
        assert max(mean_psnr(weight / 10), mean_psnr(weight * 10)) < score
        chosen[noise] = weight
    assert chosen[0.01] > 1e3 * chosen[0.0]


def test_runs_of_inverse_heat_problems_report_it_and_others_do_not():
    data = disc_data(train_size=20, val_size=8, test_size=8, image_size=16)
    images = clean_images(n=28)
    made = pairs.pairs_from_images(images, data)
    run = pairs.RunPairs(train=tuple(a[:20] for a in made), validation=tuple(a[20:] for a in made),
                         test=tuple(a[20:] for a in made))
    found = baselines.classical_baseline(data, run)
    assert set(found) == {"tikhonov_weight", "test_tikhonov", "train_tikhonov"}
    assert found["test_tikhonov"]["psnr_batch"] > metrics.image_quality(*run.test[::-1])["psnr_batch"] + 20
    assert baselines.classical_baseline(spec.protocol("perona_malik").data, run) == {}
