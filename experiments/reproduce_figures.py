"""The figures of `python -m experiments.reproduce`, from its finished runs, with the
studies' own figure code (diffnet_tf.run_figures, plotting, experiments.studies).

    figures(planned, root, folder, data_dir, download, alpha_samples)
        -> ({figure name: PNG path}, {noise level: Fig. 13's alpha})

Figs. 4-5 (discs), 6-7 (a run's test samples, in its folder's figures/), 8-9 (DiffNet and
the U-Net side by side), Fig. 10's four panels, Figs. 11-13.
"""

from pathlib import Path

from diffnet_tf import pairs, plotting, run_figures, runs
from diffnet_tf.files import make_folder
from experiments import studies

# Sect. 5.2's figures: (figure, noise level) of Figs. 6/7 (DiffNet) and 8/9 (the pair).
SAMPLE_FIGURES = (("Fig. 6", "Fig. 8", 0.0), ("Fig. 7", "Fig. 9", 0.01))


def figures(planned, root, folder, data_dir="data", download=False, alpha_samples=32):
    """Writes every figure of the planned experiments' finished runs under `folder`.

    Args:
        planned: {experiment: {cell key: RunSpec}} (reproduce_cells.plan).
        root: the folder holding the runs.
        folder: where the report's figures go.
        alpha_samples: Fig. 13's test images per noise level.

    Returns:
        ({figure name ('Fig. 4', ...): the PNG's path}, {noise level: Fig. 13's alpha_mean},
        empty without the interpretation).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made, alpha = {}, {}
    if "discs" in planned:
        made.update(_disc_figures(planned["discs"]["diffnet"], root, folder, data_dir))
    if "perona_malik" in planned:
        made.update(_sample_figures(planned["perona_malik"], root, folder, data_dir,
                                    download))
    if "generalisation" in planned:
        made.update(_fig10(planned["generalisation"], root, folder))
    if "interpretation" in planned:
        cells = planned["interpretation"]
        levels = studies.filter_figures(
            cells, {key: runs.RunFolder(root, cell) for key, cell in cells.items()},
            min(alpha_samples, next(iter(cells.values())).data.test_size), 0, folder,
            data_dir, download)
        made.update({"Fig. 11": folder / "fig11_smoothing.png",
                     "Fig. 12": folder / "fig12_diagonal.png",
                     "Fig. 13": folder / "fig13_alpha_vs_noise.png"})
        alpha = {level["noise"]: level["alpha_mean"] for level in levels.values()}
    return made, alpha


def _disc_figures(cell, root, folder, data_dir):
    """Figs. 4 and 5 of the disc run."""
    run = runs.RunFolder(root, cell)
    run_figures.disc_deconvolution(cell, run.load_model(), pairs.run_pairs(
        cell.data, data_dir, verbose=0), folder)
    return {"Fig. 4": folder / "fig4_disc_and_blur.png", "Fig. 5": folder / "fig5_states.png"}


def sample_file(root, cell):
    """The run's test samples and their PSNRs (run_figures.reconstructions' samples.npz)."""
    return runs.RunFolder(root, cell).path / "figures" / "samples.npz"


def _sample_figures(cells, root, folder, data_dir, download):
    """Figs. 6/7 (DiffNet's test samples) and 8/9 (DiffNet beside the U-Net) of Sect. 5.2;
    every run's samples.npz, made once in its folder's figures/."""
    for cell in cells.values():
        if not sample_file(root, cell).exists():
            run = runs.RunFolder(root, cell)
            run_figures.reconstructions(cell, run.load_model(), pairs.run_pairs(
                cell.data, data_dir, verbose=0, download=download),
                make_folder(run.path / "figures"))
    made = {}
    for samples, side_by_side, level in SAMPLE_FIGURES:
        diffnet, unet = (runs.RunFolder(root, cells[f"{model}_noise{level:g}"]).path
                         for model in ("diffnet", "unet"))
        made[samples] = diffnet / "figures" / "reconstructions.png"
        made[side_by_side] = run_figures.comparison(
            diffnet, unet, folder / f"{side_by_side.replace('. ', '')}_comparison.png".lower())
    return made


def fig10_records(cells, root):
    """{panel: {'<model>_n<size>': studies.cell_record}} of Fig. 10's cells."""
    records = {}
    for key, cell in cells.items():
        panel, cell_key = key.split("/")
        records.setdefault(panel, {})[cell_key] = studies.cell_record(
            cell_key, cell, runs.RunFolder(root, cell))
    return records


def _fig10(cells, root, folder):
    """Fig. 10: test PSNR against the training-set size, one figure per panel."""
    made = {}
    for panel, records in fig10_records(cells, root).items():
        first = next(cell for key, cell in cells.items() if key.startswith(f"{panel}/"))
        made[f"Fig. 10 ({panel})"] = plotting.psnr_vs_training_size(
            studies.fig10_curves(records), folder / f"fig10_{panel}.png",
            next(iter(records.values()))["test_input"]["psnr_mean"],
            studies.fig10_title(first.data))
    return made
