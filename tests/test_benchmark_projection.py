"""experiments.benchmark's projection of experiments.reproduce (benchmark_projection) and
its cells section (benchmark_cells): the schedule's bounds, each cell's steps from its spec,
a per-step figure for every paper cell (a class without one named, never a silent zero),
and the launcher's overhead from two launches. No timing: the figures are made up."""

import math
import random

import pytest

from diffnet_tf import protocols
from diffnet_tf.launch import local
from experiments import benchmark_cells, benchmark_projection, benchmark_report, reproduce_cells
from experiments.benchmark_projection import (FLOAT32_FACTOR, GPU_STEPS, MissingStepTime,
                                              cell_costs, cell_steps, cost_class,
                                              gpu_step_seconds, makespan)

PAPER = reproduce_cells.unique_cells(reproduce_cells.plan("paper"))
CPU = reproduce_cells.unique_cells(reproduce_cells.plan("cpu"))


def cost_sets():
    """The paper's cell costs and a few random ones (seeded)."""
    rng = random.Random(0)
    yield cell_costs(PAPER, gpu_step_seconds(PAPER), 5.0)
    for size in (1, 3, 9, 30):
        yield {f"c{i}": rng.uniform(0.1, 100.0) for i in range(size)}


@pytest.mark.parametrize("longest_first", [True, False])
def test_the_schedule_is_bounded_by_the_sum_and_the_longest_cell(longest_first):
    for costs in cost_sets():
        total, longest = sum(costs.values()), max(costs.values())
        assert makespan(costs, 1, longest_first) == pytest.approx(total)
        for devices in (2, 8, 64, 100):
            span = makespan(costs, devices, longest_first)
            assert span >= max(longest, total / devices) - 1e-9
            assert span <= total / devices + longest + 1e-9  # any greedy list schedule
        assert makespan(costs, 64, longest_first) >= longest


def test_more_devices_never_take_longer_longest_first():
    for costs in cost_sets():
        spans = [makespan(costs, n) for n in range(1, 70)]
        assert all(b <= a + 1e-9 for a, b in zip(spans, spans[1:]))
        assert spans[-1] == pytest.approx(max(costs.values()))  # a device per cell


def test_a_cells_steps_follow_its_spec():
    cell = PAPER["perona_malik/diffnet_noise0"]
    assert (cell.data.train_size, cell.train.epochs, cell.train.batch_size) == (
        protocols.TRAIN_IMAGES, protocols.PM_EPOCHS, protocols.BATCH_SIZE)
    assert cell_steps(cell) == 101_250  # Sect. 5.2: 90,000 images x 18 epochs, batch 16
    small = PAPER["generalisation/forward/diffnet_n10"]  # 10 images shown 500 times an epoch
    assert (small.data.train_size, small.train.epoch_repeats) == (10, 500)
    assert cell_steps(small) == math.ceil(10 * 500 / 16) * small.train.epochs == 313 * 18
    assert cell_steps(PAPER["discs/diffnet"]) == 1024 // 16 * 1000  # Sect. 5.1


def test_every_paper_cell_has_a_cost_from_a_sourced_figure():
    seconds = gpu_step_seconds(PAPER)
    costs = cell_costs(PAPER, seconds)
    assert set(costs) == set(PAPER) and len(PAPER) == 81
    assert all(cost > 0 for cost in costs.values())
    sources = benchmark_projection.sources(PAPER, True, {})["paper_step_seconds"]
    assert set(sources) == set(seconds)
    assert all("GPU_MEASUREMENTS.md" in source and " s for " in source
               for source in sources.values())


def test_a_model_class_without_a_figure_is_an_error_naming_it():
    cells = dict(PAPER, wide=PAPER["perona_malik/unet_noise0"].replace(
        model={"unet_filters": 32}))
    with pytest.raises(MissingStepTime, match="U-Net 5x32 96x96x1 batch 16"):
        gpu_step_seconds(cells)
    with pytest.raises(MissingStepTime, match=r"U-Net 5x32 .* \(cell wide\)"):
        cell_costs(cells, gpu_step_seconds(PAPER))


def test_true_float32_cells_cost_the_measured_factor_more():
    cell = PAPER["perona_malik/diffnet_noise0"]
    fast = cell.replace(train={"precision": "fast"})
    seconds = gpu_step_seconds({"f32": cell, "fast": fast})
    assert seconds[cost_class(fast)] == GPU_STEPS[benchmark_projection.model_class(cell)].value
    assert seconds[cost_class(cell)] == pytest.approx(FLOAT32_FACTOR.value
                                                      * seconds[cost_class(fast)])


def test_pair_preparation_counts_each_cache_once_and_names_what_it_cannot_price():
    seconds, unpriced = benchmark_projection.pair_preparation_s(
        PAPER, benchmark_projection.GPU_PAIRS_PER_S)
    # six Perona-Malik settings (three noises of Sect. 5.2, the forward problem, Fig. 13's
    # two other noises): 90,000 training and 10,000 test pairs each
    assert seconds == pytest.approx(6 * 100_000 / 11_500)
    assert unpriced == {"heat_inverse": 1024 + 128}


def measured(ray=True):
    """The cells section's figures, made up."""
    figures = (dict(ray_start_s=6.0, ray_stop_s=1.0, overhead_per_cell_s=2.0,
                    fresh_worker_cell_s=8.0, reused_worker_cell_s=0.5) if ray else
               benchmark_cells.overheads(None, None))
    steps = {label: 0.1 for label in benchmark_projection.representatives(CPU)}
    return dict(figures, cells=["a", "b"], cpus=2, fixed_cell_s=10.0, cpu_data_s=30.0,
                local={"wall_s": 20.0, "in_cell_s": {"a": 9.0, "b": 10.0}},
                cpu_step_seconds=steps, check={"cell": "x", "seconds": 30.0})


@pytest.mark.parametrize("ray", [True, False])
def test_the_projections_add_the_measured_costs_and_state_their_sources(ray):
    projected = benchmark_projection.projections(measured(ray))
    paper, cpu = projected["paper"], projected["cpu"]
    assert paper["per_cell_s"] == (8.0 if ray else 0.0)
    prep, _ = benchmark_projection.pair_preparation_s(PAPER,
                                                      benchmark_projection.GPU_PAIRS_PER_S)
    assert paper["before_s"] == pytest.approx(prep + (6.0 if ray else 0.0))
    assert paper["hours"][1] == pytest.approx(paper["sum_h"] + paper["before_s"] / 3600)
    assert paper["hours"][1] >= paper["hours"][8] >= paper["hours"][64] >= paper["longest_h"]
    assert projected["paper_fast"]["sum_h"] < paper["sum_h"]
    assert cpu["sum_h"] == pytest.approx(sum(0.1 * cell_steps(c) + 10.0 for c in CPU.values())
                                         / 3600)
    assert set(cpu["hours"]) == {1}
    _, check = benchmark_projection.check_cell()
    assert projected["cpu_check"]["projected_s"] == pytest.approx(0.1 * cell_steps(check) + 10)
    table = benchmark_report.format_cells(measured(ray), projected)
    assert ("not measured: ray not installed" in table) != ray
    assert "GPU_MEASUREMENTS.md" in table and "| --scale=cpu on this machine" in table


def test_the_overheads_compare_each_cell_on_ray_with_it_locally():
    local_run = {"wall_s": 20.0, "cell_wall_s": {"a": 10.0, "b": 6.0, "c": 4.0}}
    ray_run = {"wall_s": 32.0, "order": ["a", "c", "b"], "ray_start_s": 7.0, "ray_stop_s": 1.0,
               "cell_wall_s": {"a": 18.0, "b": 8.0, "c": 6.0}}
    figures = benchmark_cells.overheads(local_run, ray_run)
    assert figures["overhead_per_cell_s"] == pytest.approx(12.0 / 3)
    assert figures["fresh_worker_cell_s"] == 8.0  # the first cell to end on Ray
    assert figures["reused_worker_cell_s"] == 2.0
    assert figures["ray_start_s"] == 7.0


def test_the_timed_executor_records_each_end_and_passes_the_rest_through():
    class Job:
        def __init__(self, key):
            self.key = key

    timed = benchmark_cells.TimedExecutor(local.LocalExecutor())
    results = list(timed.run(lambda job: job.key * 2, [Job("a"), Job("b")]))
    assert results == [("a", "aa"), ("b", "bb")]
    assert 0 <= timed.ended["a"] <= timed.ended["b"]
    assert (timed.name, timed.remote, timed.running(3)) == ("local", False, 0)


@pytest.mark.slow
def test_one_smoke_cell_launched_locally_and_on_ray(tmp_path):
    pytest.importorskip("ray")
    cells = dict(list(reproduce_cells.unique_cells(
        reproduce_cells.plan("smoke", ("perona_malik",))).items())[:1])
    local_run = benchmark_cells.timed_launch(cells, tmp_path / "local", local.LocalExecutor(),
                                             tmp_path / "data")
    ray_run = benchmark_cells.ray_launch(cells, tmp_path / "ray", tmp_path / "data", 1)
    for run in (local_run, ray_run):
        assert run["order"] == list(cells) and run["wall_s"] >= run["in_cell_s"][run["order"][0]]
    figures = benchmark_cells.overheads(local_run, ray_run)
    assert figures["ray_start_s"] > 0 and figures["reused_worker_cell_s"] is None
    assert figures["overhead_per_cell_s"] == pytest.approx(figures["fresh_worker_cell_s"],
                                                           abs=0.5)
