"""Smoke tests of the Sect. 6 studies (generalisation, Fig. 10; interpretation, Figs. 11-13)
under flagsaver on tiny sizes, their flag checks, and their plots."""

import json
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from diffnet_tf import datasets, plotting
from experiments import common, generalisation, interpretation, perona_malik

FLAGS = flags.FLAGS
TINY = dict(dataset="synthetic", epochs=1, layers=1, estimator_depth=2, batch_size=4,
            unet_filters=4, verbose=0)
STUDY = "pm_inverse_synthetic_neumann_noise0"


@pytest.fixture(autouse=True)
def parsed_flags():
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()


class Interrupted(Exception):
    pass


def counting_run(monkeypatch, fail_on_call=None):
    """Wraps common.run: records each call's arguments, raises on call `fail_on_call`."""
    calls, real_run = [], common.run

    def run(config, train_pairs, test_pairs, run_dir, **kwargs):
        calls.append(dict(config=config, train=train_pairs, test=test_pairs, **kwargs))
        if len(calls) == fail_on_call:
            raise Interrupted
        return real_run(config, train_pairs, test_pairs, run_dir, **kwargs)

    monkeypatch.setattr(common, "run", run)
    return calls


def generalisation_flags(tmp_path, **overrides):
    return dict(TINY, sizes=["4", "8"], models=["diffnet", "unet"], val_size=4, test_size=4,
                epoch_images=8, out_dir=str(tmp_path / "runs"), data_dir=str(tmp_path / "data"),
                **overrides)


def test_generalisation_writes_cells_as_they_finish_and_resumes_after_an_interrupt(
        tmp_path, monkeypatch):
    study_dir = tmp_path / "runs" / STUDY
    results_path = study_dir / "results.json"
    with flagsaver.flagsaver(**generalisation_flags(tmp_path)):
        calls = counting_run(monkeypatch, fail_on_call=2)
        with pytest.raises(Interrupted):  # stopped while training the second cell
            generalisation.main([])
        first = json.loads(results_path.read_text())["cells"]
        assert list(first) == ["diffnet_n4"]

        calls = counting_run(monkeypatch)
        generalisation.main([])
    assert [(c["config"].model, c["config"].train_size) for c in calls] == [
        ("unet", 4), ("diffnet", 8), ("unet", 8)]
    cells = json.loads(results_path.read_text())["cells"]
    assert cells["diffnet_n4"] == first["diffnet_n4"]  # not retrained
    assert set(cells) == {"diffnet_n4", "unet_n4", "diffnet_n8", "unet_n8"}
    for cell in cells.values():
        assert {"psnr_mean", "psnr_std"} <= set(cell["test"]) and cell["val_images"] == 4
        assert cell["test_input"]["psnr_mean"] == pytest.approx(
            cells["diffnet_n4"]["test_input"]["psnr_mean"])
        assert os.path.exists(os.path.join(cell["run_dir"], "model.keras"))
    assert cells["diffnet_n4"]["epoch_repeats"] == 2 and cells["unet_n8"]["epoch_repeats"] == 1
    assert (study_dir / "fig10_psnr_vs_size.png").exists()

    # Early stopping validates on the train images right after the training set, not test.
    train_inputs, _ = datasets.make_pairs("pm_inverse", "train", n=12,
                                          data_dir=str(tmp_path / "data"), verbose=0)
    for call in calls:
        n = call["config"].train_size
        np.testing.assert_array_equal(call["validation"][0], train_inputs[n : n + 4])
        np.testing.assert_array_equal(call["train"][0], train_inputs[:n])

    with flagsaver.flagsaver(**generalisation_flags(tmp_path, epochs=2)):
        with pytest.raises(ValueError, match="epochs: stored 1, now 2"):
            generalisation.main([])


@pytest.mark.parametrize("overrides, message", [
    (dict(sizes=["10", "ten"]), "--sizes to be integers"),
    (dict(sizes=["0", "10"]), "--sizes between 1 and 90,000"),
    (dict(sizes=["90001"]), "--sizes between 1 and 90,000"),
    (dict(models=["diffnet", "resnet"]), "--models from"),
    (dict(train_size=100), "--sizes, not --train_size"),
    (dict(patience=0), "--patience >= 1"),
    (dict(epoch_images=0), "--epoch_images >= 1"),
    (dict(val_size=0), "--val_size >= 1"),
])
def test_generalisation_rejects_bad_flags(tmp_path, overrides, message):
    with flagsaver.flagsaver(**dict(generalisation_flags(tmp_path), **overrides)):
        with pytest.raises(ValueError, match=message):
            generalisation.main([])


@pytest.mark.parametrize("size, plan", [(10, (10, 500)), (6000, (6000, 1)),
                                        (90_000, (89_500, 1))])
def test_cell_plan_fills_small_epochs_and_keeps_validation_inside_the_train_split(size, plan):
    assert generalisation.cell_plan(size, val_size=500, epoch_images=5000) == plan


def test_interpretation_reuses_perona_malik_runs_and_trains_the_rest(tmp_path, monkeypatch):
    data_dir = str(tmp_path / "data")
    pm_dir = tmp_path / "pm"
    with flagsaver.flagsaver(**TINY, noise=0.01, train_size=8, test_size=6, val_size=2,
                             out_dir=str(pm_dir), data_dir=data_dir):
        perona_malik.main([])
    out_dir = tmp_path / "interpretation"
    with flagsaver.flagsaver(**dict(TINY, layers=2), noise_levels=["0.01", "0"], train_size=8,
                             test_size=6, val_size=2, num_samples=4, image_index=5,
                             models_from=str(pm_dir), out_dir=str(out_dir), data_dir=data_dir):
        calls = counting_run(monkeypatch)
        interpretation.main([])
    assert [c["config"].noise for c in calls] == [0.0]  # the 1% model came from perona_malik
    results = json.loads((out_dir / "results.json").read_text())
    noisy, clean = results["levels"]["0.01"], results["levels"]["0"]
    assert noisy["model"] == str(pm_dir / "diffnet_pm_inverse_synthetic_neumann_noise0.01_n8")
    assert clean["model"] == str(out_dir / "models" / f"diffnet_{STUDY}_n8")
    assert len(noisy["alpha_per_layer"]) == 1 and len(clean["alpha_per_layer"]) == 2
    for level in (noisy, clean):
        assert level["alpha_mean"] == pytest.approx(np.mean(level["alpha_per_layer"]))
        assert level["alpha_mean"] > 0 and len(level["dt"]) == len(level["alpha_per_layer"])
    for name in ("fig11_smoothing.png", "fig12_diagonal.png", "fig13_alpha_vs_noise.png"):
        assert (out_dir / name).exists(), name

    with flagsaver.flagsaver(**TINY, noise_levels=["0"], train_size=8, test_size=6,
                             num_samples=4, out_dir=str(out_dir), data_dir=data_dir):
        calls = counting_run(monkeypatch)
        interpretation.main([])  # the finished run in out_dir is loaded, not retrained
    assert calls == []


@pytest.mark.parametrize("overrides, message", [
    (dict(noise_levels=["0.01", "-0.1"]), "--noise_levels >= 0"),
    (dict(noise_levels=["1%"]), "--noise_levels to be numbers"),
    (dict(num_samples=0), "--num_samples"),
    (dict(num_samples=7), "--num_samples"),
    (dict(image_index=6), "--image_index"),
    (dict(models_from="no/such/folder"), "--models_from"),
])
def test_interpretation_rejects_bad_flags(tmp_path, overrides, message):
    options = dict(TINY, train_size=8, test_size=6, num_samples=4, out_dir=str(tmp_path / "runs"),
                   data_dir=str(tmp_path / "data"))
    with flagsaver.flagsaver(**dict(options, **overrides)):
        with pytest.raises(ValueError, match=message):
            interpretation.main([])


def test_psnr_vs_training_size_writes_a_png(tmp_path):
    curves = {"diffnet": ([1000, 10, 100], [37.0, 30.0, 35.0], [1.0, 1.0, 1.0]),
              "unet": ([10, 100], [25.0, 30.0], [2.0, 2.0])}
    path = plotting.psnr_vs_training_size(curves, str(tmp_path / "fig10.png"), input_psnr=28.0)
    assert os.path.getsize(path) > 0


@pytest.mark.parametrize("levels", [[1e-4, 1e-3, 1e-2, 0.1, 0.0], [0.01, 0.1], [0.0]])
def test_alpha_vs_noise_places_noise_zero_off_the_log_axis(tmp_path, levels):
    alpha = np.linspace(0.1, 0.5, len(levels))
    path = plotting.alpha_vs_noise(levels, alpha, str(tmp_path / "fig13.png"),
                                   std=alpha / 10, per_layer=np.stack([alpha, 2 * alpha], 1))
    assert os.path.getsize(path) > 0


def test_alpha_vs_noise_rejects_negative_levels(tmp_path):
    with pytest.raises(ValueError, match="noise levels >= 0"):
        plotting.alpha_vs_noise([0.01, -0.01], [1.0, 2.0], str(tmp_path / "x.png"))
