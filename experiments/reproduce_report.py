"""REPORT.md of `python -m experiments.reproduce`: every result of the paper
(protocols.PAPER_RESULTS) beside this run's, the difference, the figures, and what each run
trained on (machine, backend, precision, epochs, steps, time).

    measured(planned, root)               {result id: this run's value}
    report(planned, root, figures, scale, command, seconds) -> the Markdown text
"""

import math
import os

import numpy as np

from diffnet_tf import protocols, runs
from diffnet_tf.files import read_json
from experiments import reproduce_figures

# The results of each experiment, in the paper's order.
EXPERIMENT_RESULTS = {
    "discs": ("disc_psnr", "disc_relative_l2", "disc_minutes"),
    "perona_malik": ("diffnet_parameters", "unet_parameters", "pm_diffnet_psnr",
                     "pm_diffnet_noisy_psnr", "pm_diffnet_psnr_image", "pm_unet_psnr_image",
                     "pm_diffnet_noisy_psnr_image", "pm_unet_noisy_psnr_image",
                     "pm_diffnet_minutes", "pm_unet_minutes"),
    "generalisation": ("fig10_forward_gain", "fig10_noise0_gain", "fig10_noise0.001_gain",
                       "fig10_noise0.01_gain", "fig10_diffnet_saturation"),
    "interpretation": ("fig13_alpha_grows",),
}
TITLES = {"discs": "Sect. 5.1: discs blurred by the heat equation (Figs. 4-5)",
          "perona_malik": "Sect. 5.2: inverting Perona-Malik diffusion (Figs. 6-9)",
          "generalisation": "Sect. 6.1: generalisation, Fig. 10's four panels",
          "interpretation": "Sect. 6.2: the learned filters (Figs. 11-13)"}
SATURATION_DB = 0.5  # ours: 'its best test PSNR' read as within 0.5 dB of it


def _metrics(root, cell):
    return runs.RunFolder(root, cell).metrics()


def _image_psnr(root, cell):
    """The first test image's PSNR (the image Figs. 8/9 show)."""
    return float(np.load(reproduce_figures.sample_file(root, cell))["psnr"][0])


def _disc(cells, root):
    test = _metrics(root, cells["diffnet"])
    return {"disc_psnr": test["test"]["psnr_batch16_mean"],
            "disc_relative_l2": test["test"]["relative_l2_set"],
            "disc_minutes": test["train_seconds"] / 60}


def _perona_malik(cells, root):
    values = {"diffnet_parameters": _metrics(root, cells["diffnet_noise0"])["parameters"],
              "unet_parameters": _metrics(root, cells["unet_noise0"])["parameters"]}
    for suffix, level in (("", 0.0), ("_noisy", 0.01)):
        diffnet, unet = cells[f"diffnet_noise{level:g}"], cells[f"unet_noise{level:g}"]
        values[f"pm_diffnet{suffix}_psnr"] = _metrics(root, diffnet)["test"]["psnr_mean"]
        values[f"pm_diffnet{suffix}_psnr_image"] = _image_psnr(root, diffnet)
        values[f"pm_unet{suffix}_psnr_image"] = _image_psnr(root, unet)
    values["pm_diffnet_minutes"] = _metrics(root, cells["diffnet_noise0"])["train_seconds"] / 60
    values["pm_unet_minutes"] = _metrics(root, cells["unet_noise0"])["train_seconds"] / 60
    return values


def _generalisation(cells, root):
    values, saturation = {}, []
    for panel, records in reproduce_figures.fig10_records(cells, root).items():
        psnr = {(r["model"], r["size"]): r["test"]["psnr_mean"] for r in records.values()}
        largest = max(size for _, size in psnr)
        values[f"fig10_{panel}_gain"] = psnr["diffnet", largest] - psnr["unet", largest]
        diffnet = {size: value for (model, size), value in psnr.items() if model == "diffnet"}
        best = max(diffnet.values())
        saturation.append(min(size for size, value in diffnet.items()
                              if value >= best - SATURATION_DB))
    values["fig10_diffnet_saturation"] = max(saturation)
    return values


# Fig. 13's claim is measured from the figures' numbers (`measured`'s alpha).
MEASURES = {"discs": _disc, "perona_malik": _perona_malik, "generalisation": _generalisation}


def measured(planned, root, alpha=None):
    """{result id: this run's value} of the planned experiments' finished runs; `alpha`:
    {noise level: alpha_mean} of Fig. 13 where it was made."""
    values = {}
    for experiment, cells in planned.items():
        if experiment in MEASURES:
            values.update(MEASURES[experiment](cells, root))
    if alpha:
        ordered = [alpha[level] for level in sorted(alpha)]
        values["fig13_alpha_grows"] = sum(b > a for a, b in zip(ordered, ordered[1:]))
    return values


def _number(value):
    if isinstance(value, (int, np.integer)) and abs(value) >= 1000:
        return f"{value:,}"
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"


def result_row(result_id, value, steps=None):
    """One row: where, what, the paper's value, this run's, the difference."""
    where, what, paper = protocols.PAPER_RESULTS[result_id]
    if value is None:
        return f"| {where} | {what} | {_paper(paper)} | not run | |"
    if paper is True:  # a claim: alpha grows at each step of the noise level
        return (f"| {where} | {what} | yes | {'yes' if value == steps else 'no'} ({value} of "
                f"{steps} steps up) | |")
    if isinstance(paper, tuple):
        inside = paper[0] <= value <= paper[1]
        return (f"| {where} | {what} | {_paper(paper)} | {value:,} | "
                f"{'inside' if inside else 'outside'} the range |")
    return (f"| {where} | {what} | {_paper(paper)} | {_number(value)} | "
            f"{_number(value - paper)} |")


def _paper(value):
    if value is True:
        return "yes"
    return f"{value[0]:,}-{value[1]:,}" if isinstance(value, tuple) else _number(value)


def run_rows(cells, root):
    """The table of runs: where and how each trained."""
    rows = ["| cell | machine | backend | precision | images | epochs | steps | train time |",
            "|---|---|---|---|---|---|---|---|"]
    for key, cell in cells.items():
        folder = runs.RunFolder(root, cell)
        summary = read_json(folder.path / "training.json")
        machine = summary.get("machine", {})
        where = ", ".join([f"{machine.get('processor', '?')} ({machine.get('cpu_count')} cores)",
                           *machine.get("accelerators", [])])
        images = cell.data.train_size * cell.train.epoch_repeats
        steps = summary["epochs_trained"] * math.ceil(images / cell.train.batch_size)
        rows.append(f"| {key} | {where} | {folder.backend} | {summary['precision']} | "
                    f"{cell.data.train_size:,}x{cell.data.image_size} | "
                    f"{summary['epochs_trained']} | {steps:,} | "
                    f"{summary['train_seconds']:.1f} s |")
    return rows


def report(planned, cells, root, figures, values, scale, command, seconds):
    """REPORT.md's text.

    Args:
        planned: {experiment: {cell key: RunSpec}}; cells: the unique cells run.
        root: the runs' folder; figures: {figure name: PNG path} (paths relative to
            REPORT.md's folder are written).
        values: `measured`; scale: the scale's name; command: the command line;
        seconds: this command's wall time.
    """
    lines = [f"# Reproducing Arridge & Hauptmann (2020) at scale '{scale}'", "",
             f"`{command}`: {len(cells)} runs in {root}, this command {seconds / 60:.1f} min.",
             "" if scale == "paper" else
             "At this scale the images, sets and epochs are smaller than the paper's: the "
             "numbers show the pipeline end to end, not the paper's values.", ""]
    figure_folder = root.parent
    for experiment in planned:
        lines += [f"## {TITLES[experiment]}", "",
                  "| where | what | paper | this run | difference |", "|---|---|---|---|---|"]
        steps = len(planned[experiment]) - 1
        lines += [result_row(i, values.get(i), steps) for i in EXPERIMENT_RESULTS[experiment]]
        lines.append("")
        lines += [f"![{name}]({os.path.relpath(path, figure_folder)})"
                  for name, path in figures.items() if path and _belongs(name, experiment)]
        lines.append("")
    lines += ["## The runs", "", *run_rows(cells, root), ""]
    return "\n".join(lines)


FIGURES_OF = {"discs": ("Fig. 4", "Fig. 5"), "perona_malik": ("Fig. 6", "Fig. 7", "Fig. 8",
              "Fig. 9"), "generalisation": ("Fig. 10",), "interpretation": ("Fig. 11",
              "Fig. 12", "Fig. 13")}


def _belongs(name, experiment):
    return any(name == f or name.startswith(f + " ") for f in FIGURES_OF[experiment])
