"""experiments.benchmark: its reference formulations (benchmark_references) agree with the
library, its timing summaries and report, its memory probe from any folder, and main
writes the JSON on tiny sizes."""

import datetime
import json

import keras
import numpy as np
import pytest

from diffnet_tf import hardware, physics
from diffnet_tf.cli.startup import parse
from diffnet_tf.models import DiffNet
from diffnet_tf.stencil import apply_stencil
from experiments import (benchmark, benchmark_memory, benchmark_references, benchmark_report,
                         benchmark_timing, benchmarking)

TINY = ["--quick", "--image_size=16", "--batch_size=2", "--inference_batch_size=2",
        "--repeats=1", "--warmup=1", "--unet_filters=2", "--pm_images=4", "--sparse_images=1",
        "--cells=0"]  # the cells section: tests/test_benchmark_projection.py


def test_the_benchmark_defaults_to_the_papers_images_batch_and_unet():
    from diffnet_tf import protocols

    parse(benchmark.FLAGS, ["prog"])
    settings = benchmarking.settings_from_values(benchmark.FLAGS.flag_values_dict())
    assert (settings.image_size, settings.batch_size, settings.unet_filters) == (
        protocols.STL10_SIDE, protocols.BATCH_SIZE, protocols.UNET_FILTERS)
    assert settings.cells == 4
    parse(benchmark.FLAGS, ["prog", "--quick"])
    assert benchmarking.settings_from_values(benchmark.FLAGS.flag_values_dict()).cells == 2
    parse(benchmark.FLAGS, ["prog", "--image_size=32"])
    assert benchmarking.settings_from_values(benchmark.FLAGS.flag_values_dict()).image_size == 32


def test_original_update_agrees_with_apply_stencil_zero():
    rng = np.random.default_rng(0)
    u = rng.random((2, 9, 7, 1), dtype=np.float32)
    zeta = rng.standard_normal((2, 9, 7, 5), dtype=np.float32)
    expected = apply_stencil(u, zeta, 0.2, boundary="zero")
    # Benchmark only: original_update is written for tensors, as a layer's call gets them.
    original = benchmark_references.original_update(
        keras.ops.convert_to_tensor(u), keras.ops.convert_to_tensor(zeta), 0.2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(original),
                               keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_original_formulation_is_diffnet_zero_with_the_same_weights():
    x = np.random.default_rng(1).random((2, 12, 10, 1), dtype=np.float32)
    diffnet = DiffNet(boundary="zero")
    original = benchmark_references.OriginalDiffNet()
    diffnet.build(x.shape)
    original.build(x.shape)
    assert original.count_params() == diffnet.count_params() == 101_310
    original.set_weights(diffnet.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(original(x)),
                               keras.ops.convert_to_numpy(diffnet(x)), atol=1e-5)


def test_compute_floor_is_the_five_estimators():
    floor = benchmark_timing.make_model("floor", 16)
    assert floor.count_params() == 5 * 20_261
    assert floor(np.ones((1, 16, 16, 1), np.float32)).shape == (1, 16, 16, 1)


def test_sparse_reference_agrees_with_the_released_boundary():
    pytest.importorskip("scipy")
    image = np.random.default_rng(2).random((12, 12), dtype=np.float32)
    expected = physics.perona_malik(image[None, ..., None], convention="original")[0, ..., 0]
    reference = benchmark_references.sparse_perona_malik(image)
    np.testing.assert_allclose(reference, expected, atol=1e-5)


def test_without_scipy_the_sparse_row_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(benchmark_timing, "have_scipy", lambda: False)
    settings = benchmarking.Settings(repeats=1, warmup=1, image_size=16, pm_images=2)
    pairs = benchmark_timing.time_pair_generation(settings)
    assert pairs["sparse_reference"] is None and "scipy" in pairs["note"]
    assert pairs["library"]["images_per_s"] > 0
    same_times = {"train": {"median_s": 1.0, "cpu_median_s": 1.0}}
    checks = benchmark_report.target_checks(
        {name: same_times for name in benchmark_timing.MODEL_NAMES}, pairs)
    assert "4b_pm_pairs_over_sparse_reference" not in checks


@pytest.mark.slow
def test_main_writes_every_figure_and_check(tmp_path, capsys):
    benchmark.main(parse(benchmark.FLAGS, ["prog", *TINY, f"--out_dir={tmp_path}"]))
    (path,) = tmp_path.glob("*.json")
    record = json.loads(path.read_text())
    assert {"machine", "backend", "versions", "settings", "models", "pair_generation",
            "peak_training_memory", "methods", "checks", "table",
            "other_programs_cores"} <= set(record)
    backend = keras.backend.backend()
    assert {"python", "keras", "numpy", backend} <= set(record["versions"])
    assert record["machine"]["cpu_count"] > 0 and record["backend"] == backend
    assert record["device"] and record["table"].startswith(f"Backend {backend} on {record['device']}\n")
    for name in benchmark_timing.MODEL_NAMES:
        for measure in ("train", "inference"):
            figure = record["models"][name][measure]
            assert figure["median_s"] > 0 and figure["images_per_s"] > 0
            assert len(figure["repeats_s"]) == 1
    assert record["pair_generation"]["library"]["images_per_s"] > 0
    assert record["cells"] is None and record["projection"] is None  # --cells=0
    for name in benchmark_memory.MEMORY_MODELS:
        assert record["peak_training_memory"][name]["peak_mib"] > 0
        assert record["peak_training_memory"][name]["growth_mib"] >= 0
    expected_checks = {"1_diffnet_step_over_floor", "2_original_step_over_diffnet_zero",
                       "3_diffnet_over_unet_train_throughput", "4a_pm_pairs_images_per_s"}
    assert expected_checks <= set(record["checks"])
    assert all(isinstance(check["pass"], bool) and check["measured"] > 0
               for check in record["checks"].values())
    assert record["paper_protocol_hours"] is None  # timed at batch 2, not the paper's 16
    hours = benchmark_report.paper_protocol_hours(record["models"], 16)
    assert hours["diffnet"] == pytest.approx(
        101_250 * record["models"]["diffnet"]["train"]["median_s"] / 3600)
    printed = capsys.readouterr().out
    assert "| DiffNet-5 (neumann) | 101,310 |" in printed and str(path) in printed


@pytest.mark.parametrize("accelerators, device", [
    ([], "AMD EPYC 7B13 (2 CPUs, no GPU)"),
    (["cuda:0 NVIDIA H200"], "cuda:0 NVIDIA H200"),
    (["cuda:0 NVIDIA H100", "cuda:1 NVIDIA H100"], "cuda:0 NVIDIA H100, cuda:1 NVIDIA H100")])
def test_the_json_names_the_device_the_backend_sees(monkeypatch, accelerators, device):
    """The accelerators by id and model, else the processor and its cores."""
    machine = {"processor": "AMD EPYC 7B13", "cpu_count": 2, "accelerators": accelerators,
               "backend": "jax", "versions": {"python": "3.11.7", "keras": "3.8.0"}}
    monkeypatch.setattr(hardware, "machine",
                        lambda: dict(machine, versions=dict(machine["versions"])))
    record = benchmark_report.machine_info()
    assert (record["device"], record["backend"]) == (device, "jax")
    assert record["machine"]["accelerators"] == accelerators
    assert {"python", "keras"} <= set(record["versions"])


def test_the_table_names_the_backend_and_the_device():
    figures = {"train": {"median_s": 0.5, "min_s": 0.4, "max_s": 0.6, "images_per_s": 32.0},
               "inference": {"images_per_s": 128.0}}
    args = {"floor": figures}, {"floor": 10}, {}, None, None
    lines = benchmark_report.format_table(*args, "jax", "cuda:0 NVIDIA H200").splitlines()
    assert lines[:2] == ["Backend jax on cuda:0 NVIDIA H200", ""] and lines[2].startswith("| model")
    assert benchmark_report.format_table(*args).splitlines()[0].startswith("| model")


def test_a_jax_accelerator_is_named_by_its_id_and_model(monkeypatch):
    jax = pytest.importorskip("jax")

    class Device:
        def __init__(self, platform, name, kind):
            self.platform, self.name, self.device_kind = platform, name, kind

        def __str__(self):
            return self.name

    monkeypatch.setattr(jax, "devices", lambda: [Device("cpu", "cpu:0", "cpu"),
                                                 Device("gpu", "cuda:0", "NVIDIA H200")])
    assert hardware.accelerators("jax") == ["cuda:0 NVIDIA H200"]


def test_repetitions_that_lost_a_core_are_counted_and_reported():
    # (wall, CPU): two cores busy for 1 s, then the same work stretched over 2 s
    summary = benchmark_timing.summarize([(1.0, 2.0), (1.0, 2.0), (2.0, 2.0), (2.0, 2.1)], images=4)
    assert summary["median_s"] == 1.5 and summary["images_per_s"] == 4 / 1.5
    assert summary["contended"] == 2 and summary["cpu_median_s"] == 2.0
    note = benchmark_report.contention_note({"diffnet": {"train": summary}}, None)
    assert "diffnet train: 2/4 repetitions lost a core" in note
    quiet = {"diffnet": {"train": benchmark_timing.summarize([(1.0, 2.0), (1.1, 2.1)], images=4)}}
    assert benchmark_report.contention_note(quiet, None, {"model timing": 0.1}) is None
    # a run disturbed from start to end: no quiet repetition to compare with
    note = benchmark_report.contention_note(quiet, None, {"model timing": 0.9})
    assert "other programs used 0.90 cores during the model timing" in note


def test_other_programs_cores_returns_the_result_and_a_share():
    result, others = benchmark_timing.other_programs_cores(sum, [1, 2])
    assert result == 3 and (others is None or others >= 0)


def test_output_path_does_not_overwrite(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert benchmark_report.output_path(tmp_path, now) == tmp_path / "2026-01-02.json"
    (tmp_path / "2026-01-02.json").write_text("{}")
    assert benchmark_report.output_path(tmp_path, now) == tmp_path / "2026-01-02_030405.json"


@pytest.mark.slow
def test_the_memory_probe_runs_from_any_folder(tmp_path, monkeypatch):
    """From a folder holding packages named `experiments` and `diffnet_tf` that fail on
    import, with no PYTHONPATH, the probe still runs this process's code."""
    for package in ("experiments", "diffnet_tf"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("raise ImportError('the wrong package')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    settings = benchmarking.Settings(image_size=8, batch_size=1, unet_filters=2)
    memory = benchmark_memory.peak_training_memory("diffnet", settings)
    assert memory["peak_mib"] >= memory["baseline_mib"] > 0
    assert memory["growth_mib"] == pytest.approx(memory["peak_mib"] - memory["baseline_mib"])
