"""The Sect. 6 studies (generalisation, Fig. 10; interpretation, Figs. 11-13) and the colour
study as a user runs them on tiny sizes: each plans its cells and hands them to the
launcher; cells and noise levels are runs, reused only when their spec matches; their flag
checks; and their plots."""

import importlib.util
import json
import os

import numpy as np
import pytest
from absl import app

from diffnet_tf import plotting, runs, spec
from diffnet_tf.launch import launcher
from diffnet_tf.pairs import make_pairs, run_pairs
from diffnet_tf.cli.startup import parse
from experiments import colour, generalisation, interpretation, perona_malik, studies

TINY = ["--dataset=synthetic", "--epochs=1", "--layers=1", "--estimator_depth=2",
        "--batch_size=4", "--verbose=0"]
STUDY = "pm_inverse_synthetic_noise0"


def run(module, *args):
    return module.main(parse(module.FLAGS, ["prog", *args]))


class Interrupted(KeyboardInterrupt):
    """A user's Ctrl-C: it stops the study (a failing cell would not)."""


def counting_execute(monkeypatch, fail_on_call=None):
    """Wraps runs.execute: records each call's spec and whether it was reused; raises on
    call `fail_on_call` before it runs. The launcher does not call it for finished runs."""
    calls, real = [], runs.execute

    def execute(run_spec, root, *args, **kwargs):
        calls.append(run_spec)
        if len(calls) == fail_on_call:
            raise Interrupted
        result = real(run_spec, root, *args, **kwargs)
        calls[-1] = (run_spec, result.reused)
        return result

    monkeypatch.setattr(runs, "execute", execute)
    return calls


def generalisation_args(tmp_path, *extra):
    return [*TINY, "--sizes=4,8", "--models=diffnet,unet", "--unet_filters=4", "--layers=1",
            "--val_size=4", "--test_size=4", "--epoch_images=8",
            f"--out_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path / 'data'}", *extra]


@pytest.mark.slow
def test_generalisation_cells_are_runs_that_resume_after_an_interrupt(tmp_path, monkeypatch):
    study_dir = tmp_path / "runs" / STUDY
    args = generalisation_args(tmp_path)  # --layers for the DiffNet, --unet_filters the U-Net
    counting_execute(monkeypatch, fail_on_call=2)
    with pytest.raises(Interrupted):  # stopped before the second cell
        run(generalisation, *args)
    calls = counting_execute(monkeypatch)
    run(generalisation, *args)  # the finished cell is not run again
    assert [(c[0].model.kind, c[0].data.train_size, c[1]) for c in calls] == [
        ("unet", 4, False), ("diffnet", 8, False), ("unet", 8, False)]
    cells = json.loads((study_dir / "results.json").read_text())["cells"]
    assert set(cells) == {"diffnet_n4", "unet_n4", "diffnet_n8", "unet_n8"}
    for key, cell in cells.items():
        assert {"psnr_mean", "psnr_std"} <= set(cell["test"]) and cell["val_images"] == 4
        stored = spec.RunSpec.load(os.path.join(cell["run"], "spec.json"))
        assert (stored.data.validation, stored.train.patience) == ("train_tail", 3)
        assert stored.train.epoch_repeats == (2 if cell["size"] == 4 else 1)
    assert (study_dir / "fig10_psnr_vs_size.png").exists()

    # Early stopping validates on the train images right after the training set, not test;
    # the driver made the cache once, as long as the largest cell needs.
    train_inputs, _ = make_pairs(calls[0][0].data, "train", 12, tmp_path / "data", verbose=0)
    for run_spec, _ in calls:
        pairs = run_pairs(run_spec.data, tmp_path / "data", verbose=0)
        n = run_spec.data.train_size
        np.testing.assert_array_equal(pairs.validation[0], train_inputs[n : n + 4])
        np.testing.assert_array_equal(pairs.train[0], train_inputs[:n])

    # Another setting is another set of runs: nothing stored is reused or overwritten.
    calls = counting_execute(monkeypatch)
    run(generalisation, *args, "--epochs=2")
    assert [reused for _, reused in calls] == [False] * 4
    assert len(os.listdir(study_dir)) == 8 + 2


def test_a_corrupt_results_file_is_rewritten_from_the_runs(tmp_path, monkeypatch):
    args = generalisation_args(tmp_path, "--sizes=4", "--models=diffnet")
    results = tmp_path / "runs" / STUDY / "results.json"
    monkeypatch.setattr(runs.RunFolder, "metrics", lambda folder: {
        "test": {"psnr_mean": 30.0, "psnr_std": 1.0}, "test_input": {"psnr_mean": 29.0},
        "train": {}, "epochs_trained": 1, "best_epoch": 1, "stopped_early": False,
        "train_seconds": 1.0})
    monkeypatch.setattr(runs.RunFolder, "finished", True)
    results.parent.mkdir(parents=True)
    results.write_text("{ damaged")
    run(generalisation, *args)  # results.json is an output: never read, rewritten
    assert json.loads(results.read_text())["cells"]["diffnet_n4"]["test"]["psnr_mean"] == 30.0


class Planned(Exception):
    """Stops a study at the launcher."""


def planned(monkeypatch, module, *args):
    """{cells, root, executor}: what a study hands to the launcher (stopped there)."""
    seen = {}

    def launch(cells, root, executor, *more, **kwargs):
        seen.update(cells=cells, root=root, executor=executor)
        raise Planned

    monkeypatch.setattr(launcher, "launch", launch)
    with pytest.raises(Planned):
        run(module, *args)
    return seen


def test_each_study_hands_its_cells_to_the_launcher_with_the_executor_of_the_flags(
        tmp_path, monkeypatch):
    out, data = tmp_path / "runs", f"--data_dir={tmp_path / 'data'}"
    plan = planned(monkeypatch, generalisation, *generalisation_args(tmp_path))
    assert list(plan["cells"]) == ["diffnet_n4", "unet_n4", "diffnet_n8", "unet_n8"]
    assert plan["root"] == out / STUDY and plan["executor"].name == "local"
    plan = planned(monkeypatch, interpretation, *TINY, "--train_size=8", "--test_size=6",
                   "--num_samples=4", "--noise_levels=0.01,0", f"--out_dir={out}", data)
    assert {key: cell.data.noise for key, cell in plan["cells"].items()} == {
        "noise0.01": 0.01, "noise0": 0.0}
    assert plan["root"] == out / "models"
    plan = planned(monkeypatch, colour, "--noise_levels=0", "--train_size=8", "--test_size=4",
                   f"--out_dir={out}", data)
    assert {key: cell.data.channels for key, cell in plan["cells"].items()} == {
        "grey DiffNet per channel, noise 0": 1, "colour DiffNet (none), noise 0": 3,
        "colour DiffNet (full), noise 0": 3}
    assert plan["root"] == out / "runs"
    if importlib.util.find_spec("submitit"):
        monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
        plan = planned(monkeypatch, generalisation, *generalisation_args(
            tmp_path, "--executor=slurm", "--slurm_partition=gpu", "--gpus_per_cell=1"))
        executor = plan["executor"]
        assert (executor.name, executor.folder) == ("slurm", f"{out / STUDY}/submitit")
        assert executor.parameters()["slurm_partition"] == "gpu"


@pytest.mark.parametrize("extra, message", [
    (["--sizes=10,ten"], "--sizes to be integers"),
    (["--sizes=0,10"], "--sizes between 1 and 90,000"),
    (["--sizes=90001"], "--sizes between 1 and 90,000"),
    (["--models=diffnet,resnet"], "--models from"),
    (["--patience=0"], "--patience >= 1"),
    (["--epoch_images=0"], "--epoch_images >= 1"),
    (["--val_size=0"], r"DataSpec.val_size \(--val_size\) to be an integer >= 1"),
])
def test_generalisation_rejects_bad_flags(tmp_path, extra, message):
    with pytest.raises(app.UsageError, match=message):
        run(generalisation, *generalisation_args(tmp_path, *extra))


@pytest.mark.parametrize("size, plan", [(10, (10, 500)), (6000, (6000, 1)),
                                        (90_000, (89_500, 1))])
def test_cell_plan_fills_small_epochs_and_keeps_validation_inside_the_train_split(size, plan):
    assert studies.cell_plan(size, 500, 5000, 90_000) == plan


@pytest.mark.slow
def test_interpretation_reuses_only_runs_with_the_spec_it_needs(tmp_path, monkeypatch):
    data_dir = f"--data_dir={tmp_path / 'data'}"
    pm_dir, out_dir = tmp_path / "pm", tmp_path / "interpretation"
    sizes = ["--train_size=8", "--test_size=6", "--val_size=2"]
    run(perona_malik, *TINY, *sizes, "--noise=0.01", f"--out_dir={pm_dir}", data_dir)
    run(perona_malik, *TINY, *sizes, "--noise=0", "--layers=2", f"--out_dir={pm_dir}", data_dir)
    calls = counting_execute(monkeypatch)
    run(interpretation, *TINY, *sizes, "--noise_levels=0.01,0", "--num_samples=4",
        "--image_index=5", f"--models_from={pm_dir}", f"--out_dir={out_dir}", data_dir)
    # 1 %: the perona_malik run has this spec. Noise-free: the stored run has 2 layers, the
    # study asks for 1: it is not reused, a 1-layer model is trained.
    assert [(c[0].data.noise, c[1]) for c in calls] == [(0.0, False)]
    results = json.loads((out_dir / "results.json").read_text())
    noisy, clean = results["levels"]["0.01"], results["levels"]["0"]
    assert noisy["run"].startswith(str(pm_dir)) and clean["run"].startswith(str(out_dir / "models"))
    assert len(noisy["alpha_per_layer"]) == len(clean["alpha_per_layer"]) == 1
    for level in (noisy, clean):
        assert level["alpha_mean"] == pytest.approx(np.mean(level["alpha_per_layer"]))
        assert level["alpha_mean"] > 0 and len(level["dt"]) == 1
    for name in ("fig11_smoothing.png", "fig12_diagonal.png", "fig13_alpha_vs_noise.png"):
        assert (out_dir / name).exists(), name

    calls = counting_execute(monkeypatch)
    run(interpretation, *TINY, *sizes, "--noise_levels=0", "--num_samples=4",
        f"--out_dir={out_dir}", data_dir)
    assert calls == []  # its own run, finished: reused without running it
    clean = json.loads((out_dir / "results.json").read_text())["levels"]["0"]
    assert clean["run"].startswith(str(out_dir / "models"))

    fresh = tmp_path / "fresh"  # every run from --models_from: nothing trained here
    run(interpretation, *TINY, *sizes, "--noise_levels=0.01", "--num_samples=4",
        f"--models_from={pm_dir}", f"--out_dir={fresh}", data_dir)
    assert (fresh / "results.json").exists() and (fresh / "fig13_alpha_vs_noise.png").exists()


@pytest.mark.parametrize("extra, message", [
    (["--noise_levels=0.01,-0.1"], "--noise_levels to be finite numbers >= 0"),
    (["--noise_levels=1%"], "--noise_levels to be numbers"),
    (["--noise_levels=nan"], "--noise_levels to be finite numbers >= 0"),
    (["--noise_levels=0.01,inf"], "--noise_levels to be finite numbers >= 0"),
    (["--num_samples=0"], "--num_samples"),
    (["--num_samples=7"], "--num_samples"),
    (["--image_index=6"], "--image_index"),
    (["--models_from=no/such/folder"], "--models_from"),
])
def test_interpretation_rejects_bad_flags(tmp_path, extra, message):
    args = [*TINY, "--train_size=8", "--test_size=6", "--num_samples=4",
            f"--out_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path / 'data'}", *extra]
    with pytest.raises(app.UsageError, match=message):
        run(interpretation, *args)


def test_fig10_is_titled_by_the_setting_not_the_study_folder():
    data = spec.protocol("generalisation").replace(data={"noise": 0.01}).data
    title = studies.fig10_title(data)
    assert title.startswith("Fig. 10: invert Perona-Malik diffusion") and "pm_" not in title
    assert "noise 0.01" in title and data.source in title
    cell = {"test": {"psnr_mean": 30.0, "psnr_std": 1.0}}
    records = {"diffnet_n10": dict(cell, model="diffnet", size=10),
               "unet_n10": dict(cell, model="unet", size=10)}
    assert list(studies.fig10_curves(records)) == ["DiffNet", "U-Net"]  # the legend


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
