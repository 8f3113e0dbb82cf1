"""The paper's experiments as cells, {key: RunSpec}, at a scale: 'paper' (its protocols),
'cpu' (what 2 CPU cores finish in about two hours) or 'smoke' (minutes: tiny images, sets
and epochs, for tests and a first look).

    EXPERIMENTS                   discs (Sect. 5.1), perona_malik (Sect. 5.2, Figs. 6-9),
                                  generalisation (Sect. 6.1, Fig. 10's four panels),
                                  interpretation (Sect. 6.2, Figs. 11-13)
    plan(scale, only, precision)  {experiment: {cell key: RunSpec}}
    unique_cells(plan)            {'<experiment>/<key>': RunSpec}, each spec once

A cell is a run (diffnet_tf.runs): its folder is named by its spec, so the interpretation's
noise-free and 1 % DiffNets are the Sect. 5.2 runs where the two specs agree (at the paper's
scale), and a cell finished before is collected, not trained again.
"""

import dataclasses

from diffnet_tf import protocols, spec
from experiments import studies

EXPERIMENTS = ("discs", "perona_malik", "generalisation", "interpretation")
SECTION_5_2_NOISE = protocols.NOISE_LEVELS  # 0, 0.1 %, 1 %
FIG10_PANELS = {"forward": ("pm_forward", 0.0), **{
    f"noise{level:g}": ("pm_inverse", level) for level in protocols.NOISE_LEVELS}}


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one scale; None keeps the protocol's value.

    Attributes:
        data: DataSpec fields of every Perona-Malik cell (source, image_size, sizes).
        disc_data: DataSpec fields of the disc cell.
        epochs, disc_epochs: training epochs (Sect. 5.2 and 6 cells; the disc cell).
        unet_filters: the U-Net's first level's channels.
        sizes, epoch_images, patience: Fig. 10's training-set sizes and cell protocol.
        alpha_samples: Fig. 13's test images per noise level.
    """

    data: dict
    disc_data: dict
    epochs: int = None
    disc_epochs: int = None
    unet_filters: int = None
    sizes: tuple = protocols.GENERALISATION_SIZES
    epoch_images: int = protocols.EPOCH_IMAGES
    patience: int = protocols.PATIENCE
    alpha_samples: int = protocols.ALPHA_SAMPLES


SCALES = {
    "paper": Scale(data={}, disc_data={}),
    # ours: experiments.benchmark projects it at most 1.7 h on 2 idle cores (TensorFlow,
    # README "Reproduce the paper"; Fig. 10's cells stop early); not yet run whole
    "cpu": Scale(
        data={"source": "synthetic", "image_size": 48, "train_size": 2000, "val_size": 100,
              "test_size": 200},
        disc_data={"train_size": 1024, "val_size": 128, "test_size": 128}, epochs=12,
        disc_epochs=200, unet_filters=16, sizes=(10, 100, 1000), epoch_images=1000,
        patience=2, alpha_samples=32),
    "smoke": Scale(
        data={"source": "synthetic", "image_size": 16, "train_size": 32, "val_size": 8,
              "test_size": 16},
        disc_data={"image_size": 16, "train_size": 32, "val_size": 8, "test_size": 16},
        epochs=2, disc_epochs=2, unet_filters=4, sizes=(8, 32), epoch_images=32, patience=1,
        alpha_samples=8),
}


def _scaled(protocol, scale, data=None, **fields):
    """The protocol's RunSpec with the scale's sizes and `fields`' data changes."""
    start = spec.protocol(protocol)
    disc = start.data.source == "discs"
    model = ({"unet_filters": scale.unet_filters}
             if start.model.kind == "unet" and scale.unet_filters else {})
    epochs = scale.disc_epochs if disc else scale.epochs
    return start.replace(data={**(scale.disc_data if disc else scale.data), **(data or {}),
                               **fields},
                         model=model, train={"epochs": epochs} if epochs else {})


def discs(scale):
    """Sect. 5.1: one DiffNet-3 on discs."""
    return {"diffnet": _scaled("deconvolution", scale)}


def perona_malik(scale):
    """Sect. 5.2 (Figs. 6-9): DiffNet and the U-Net inverting Perona-Malik at each noise
    level of the paper."""
    return {f"{model}_noise{level:g}": _scaled(protocol, scale, noise=level)
            for level in SECTION_5_2_NOISE
            for model, protocol in (("diffnet", "perona_malik"), ("unet", "perona_malik_unet"))}


def fig10(scale):
    """Sect. 6.1 (Fig. 10): per panel (forward problem; inversion at each noise level), a
    DiffNet and a U-Net cell per training-set size: {'<panel>/<model>_n<size>': RunSpec}."""
    train_split = protocols.TRAIN_IMAGES
    cells = {}
    for panel, (problem, noise) in FIG10_PANELS.items():
        bases = {model: _scaled(protocol, scale, problem=problem, noise=noise,
                                validation="train_tail").replace(
                                    train={"patience": scale.patience})
                 for model, protocol in (("diffnet", "generalisation"),
                                         ("unet", "generalisation_unet"))}
        for key, cell in studies.study_cells(bases, scale.sizes, scale.epoch_images,
                                                    train_split).items():
            cells[f"{panel}/{key}"] = cell
    return cells


def interpretation(scale):
    """Sect. 6.2 (Figs. 11-13): one DiffNet per noise level of Fig. 13."""
    return {f"noise{level:g}": _scaled("interpretation", scale, noise=level)
            for level in protocols.INTERPRETATION_NOISE_LEVELS}


PLANNERS = {"discs": discs, "perona_malik": perona_malik, "generalisation": fig10,
            "interpretation": interpretation}


def plan(scale, only=EXPERIMENTS, precision=None):
    """{experiment: {cell key: RunSpec}} of the experiments in `only` at scale `scale` (a
    key of SCALES); `precision` ('float32' or 'fast') sets every cell's training precision,
    None keeps the protocols' (true float32)."""
    train = {"precision": precision} if precision else {}
    return {name: {key: cell.replace(train=train) for key, cell in
                   PLANNERS[name](SCALES[scale]).items()}
            for name in EXPERIMENTS if name in only}


def unique_cells(planned):
    """{'<experiment>/<key>': RunSpec} of every cell of `planned`, each spec once (the first
    key that names it): two cells of one spec are one run."""
    cells, seen = {}, set()
    for experiment, experiment_cells in planned.items():
        for key, cell in experiment_cells.items():
            if cell not in seen:
                seen.add(cell)
                cells[f"{experiment}/{key}"] = cell
    return cells
