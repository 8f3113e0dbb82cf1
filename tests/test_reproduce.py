"""experiments.reproduce: the paper's experiments as cells, REPORT.md with every paper
result beside the run's, and a second run that trains nothing."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffnet_tf import protocols
from experiments import reproduce_cells, reproduce_report

ROOT = Path(__file__).resolve().parents[1]


def test_every_paper_result_belongs_to_one_experiment():
    listed = [i for ids in reproduce_report.EXPERIMENT_RESULTS.values() for i in ids]
    assert sorted(listed) == sorted(protocols.PAPER_RESULTS)


@pytest.mark.parametrize("scale", list(reproduce_cells.SCALES))
def test_every_experiment_of_the_paper_is_planned(scale):
    planned = reproduce_cells.plan(scale)
    assert set(planned) == set(reproduce_cells.EXPERIMENTS)
    panels = {key.split("/")[0] for key in planned["generalisation"]}
    assert panels == {"forward", "noise0", "noise0.001", "noise0.01"}  # Fig. 10's four
    levels = {cell.data.noise for cell in planned["interpretation"].values()}
    assert levels == set(protocols.INTERPRETATION_NOISE_LEVELS)  # Fig. 13's
    assert {c.data.noise for c in planned["perona_malik"].values()} == set(protocols.NOISE_LEVELS)


def test_the_paper_scale_is_the_papers_protocols():
    planned = reproduce_cells.plan("paper")
    assert planned["perona_malik"]["diffnet_noise0"].data.train_size == protocols.TRAIN_IMAGES
    assert planned["discs"]["diffnet"].train.epochs == protocols.DISC_EPOCHS
    sizes = {int(key.rsplit("_n", 1)[1]) for key in planned["generalisation"]}
    assert sizes == set(protocols.GENERALISATION_SIZES)


def test_a_spec_two_experiments_share_is_one_cell():
    planned = reproduce_cells.plan("smoke", ("perona_malik", "interpretation"))
    cells = reproduce_cells.unique_cells(planned)
    assert len(set(cells.values())) == len(cells)
    assert len(cells) < sum(len(c) for c in planned.values())  # noise 0, 0.1 %, 1 % shared


def _reproduce(tmp_path, *flags):
    return subprocess.run(
        [sys.executable, "-m", "experiments.reproduce", "--scale=smoke",
         f"--out_dir={tmp_path / 'out'}", f"--data_dir={tmp_path / 'data'}", "--verbose=0",
         *flags], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_smoke_run_reports_every_paper_number_and_a_second_trains_nothing(tmp_path):
    first = _reproduce(tmp_path, "--only=perona_malik")
    assert first.returncode == 0, first.stderr[-2000:]
    report = (tmp_path / "out" / "smoke" / "REPORT.md").read_text()
    for result in reproduce_report.EXPERIMENT_RESULTS["perona_malik"]:
        where, what, paper = protocols.PAPER_RESULTS[result]
        row = next(line for line in report.splitlines() if f"| {what} |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == where and cells[2] == reproduce_report._paper(paper)
        assert re.fullmatch(r"-?[\d,.]+", cells[3]) and re.fullmatch(r"-?[\d,.]+", cells[4])
    assert report.count("| perona_malik/") == 6  # every run, with its machine and steps
    again = _reproduce(tmp_path, "--only=perona_malik")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 runs trained, 6 finished before" in again.stdout


def test_an_unknown_experiment_is_refused(tmp_path):
    result = _reproduce(tmp_path, "--only=discs,figure99")
    assert result.returncode == 1
    assert "Expected --only from discs, perona_malik, generalisation, interpretation. " \
           "Received discs,figure99." in result.stdout + result.stderr


def test_precision_sets_every_cell_and_float32_is_the_protocols():
    default = reproduce_cells.unique_cells(reproduce_cells.plan("paper"))
    fast = reproduce_cells.unique_cells(reproduce_cells.plan("paper", precision="fast"))
    assert list(fast) == list(default)
    assert {cell.train.precision for cell in default.values()} == {"float32"}
    assert {cell.train.precision for cell in fast.values()} == {"fast"}
    assert all(fast[key] == cell.replace(train={"precision": "fast"})
               for key, cell in default.items())
    assert reproduce_cells.plan("paper", precision="float32") == reproduce_cells.plan("paper")


@pytest.mark.slow
def test_a_fast_precision_run_reports_apart(tmp_path):
    result = _reproduce(tmp_path, "--only=discs", "--precision=fast")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "out" / "smoke").exists()
    report = (tmp_path / "out" / "smoke_fast" / "REPORT.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| discs/diffnet |"))
    assert "| fast |" in row
