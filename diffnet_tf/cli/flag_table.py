"""Every flag of every program, defined once: its type, its one help text (true for every
program that takes it), its default where that is the same for all of them, and the run
spec fields it sets.

A program takes the flags its entry in `programs.PROGRAMS` names, with that entry's
defaults where it has its own (colour's --epochs=5, ...): `define` puts one flag into a
program's own absl registry. No other module defines a flag (tests/test_architecture.py).
"""

import dataclasses

from absl import flags


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag's definition.

    Attributes:
        kind: 'integer', 'float', 'string', 'bool', 'enum' or 'list' (comma-separated).
        help: what it means, for every program that takes it.
        default: its value when not given (None: the program's, or the protocol's).
        choices: the values of an 'enum'.
        lower_bound: the smallest value of an 'integer'.
        fields: the RunSpec fields it sets, as 'section.field' (--seed sets two).
        network: 'diffnet' or 'unet' for a flag of one network's spec only.
        writes: whether it names a folder the program writes (checked before any work).
    """

    kind: str
    help: str
    default: object = None
    choices: tuple = ()
    lower_bound: int = None
    fields: tuple = ()
    network: str = None
    writes: bool = False


def _spec(kind, help, *fields, network=None, choices=()):
    """A flag that sets RunSpec fields; None keeps the protocol's value."""
    return Flag(kind, help, choices=choices, fields=fields, network=network)


# The spec flags come first, in the order commands list them (programs.command_for).
TABLE = {
    # data
    "dataset": _spec("enum", "Image source: stl10 (the paper's; see data/README.md), the "
                     "embedded synthetic images (no download) or a folder of your own "
                     "images (--images).", "data.source",
                     choices=("stl10", "synthetic", "folder")),
    "images": _spec("string", "With --dataset=folder: the folder of PNG, JPEG, TIFF or .npy "
                    "images to cut into patches (the last 10% of files by name are the test "
                    "files).", "data.images"),
    "image_size": Flag("integer", "Side of the square images (STL-10's: 96).", lower_bound=8,
                       fields=("data.image_size",)),
    "channels": _spec("integer", "Image channels: 1 grey (the paper's), 3 colour.",
                      "data.channels"),
    "train_size": _spec("integer", "Training images: the first N of the train split.",
                        "data.train_size"),
    "val_size": _spec("integer", "Validation images (monitoring; early stopping in the "
                      "studies).", "data.val_size"),
    "test_size": _spec("integer", "Test images: the first N of the test split.",
                       "data.test_size"),
    "noise": _spec("float", "Noise level as a fraction of the image maximum (0.01 = 1%).",
                   "data.noise"),
    "pm_steps": _spec("integer", "Perona-Malik explicit steps of the data.", "data.pm_steps"),
    "pm_dt": _spec("float", "Perona-Malik step size of the data (<= 0.25).", "data.pm_dt"),
    "pm_lambda": _spec("float", "Perona-Malik contrast parameter lambda of the data.",
                       "data.pm_lambda"),
    "pm_convention": _spec("enum", "Perona-Malik data convention: the paper's zero-flux "
                           "Neumann, or the released script's zero exterior.",
                           "data.pm_convention", choices=("neumann", "original")),
    "pm_coupling": _spec("enum", "Colour Perona-Malik: one diffusivity for all channels "
                         "(shared) or one per channel.", "data.pm_coupling",
                         choices=("shared", "channelwise")),
    "heat_time": _spec("float", "Diffusion time T of the heat-equation blur.", "data.heat_time"),
    "heat_solver": _spec("enum", "Heat solver of the blur: exact (exp(T L), zero-Neumann "
                         "boundary), or the authors' AnisoDiff2d.m on a zero exterior: "
                         "explicit (steps of 0.1) or implicit (one step of T).",
                         "data.heat_solver", choices=("exact", "explicit", "implicit")),
    "max_discs": _spec("integer", "The most discs in one image (the paper's: 1); more make "
                       "overlapping discs with several contrast levels, a harder task.",
                       "data.max_discs"),
    # model
    "layers": _spec("integer", "DiffNet diffusion layers.", "model.num_layers",
                    network="diffnet"),
    "estimator_depth": _spec("integer", "Convolutions per DiffNet filter estimator.",
                             "model.estimator_depth", network="diffnet"),
    "width": _spec("integer", "Channels of the estimators' hidden convolutions.", "model.width",
                   network="diffnet"),
    "boundary": _spec("enum", "DiffNet's stencil boundary: the paper's zero Neumann, or the "
                      "released code's zeros.", "model.boundary", network="diffnet",
                      choices=("neumann", "zero")),
    "dt_init": _spec("float", "DiffNet's initial learned time step per layer.", "model.dt_init",
                     network="diffnet"),
    "channel_mixing": _spec("enum", "Colour DiffNet: each channel its own filters (none), or "
                            "filters coupling the channels (full).", "model.channel_mixing",
                            network="diffnet", choices=("none", "full")),
    "unet_filters": _spec("integer", "U-Net channels at the first level (paper: 64).",
                          "model.unet_filters", network="unet"),
    # optimisation
    "epochs": _spec("integer", "Training epochs (the most, where training stops early).",
                    "train.epochs"),
    "batch_size": _spec("integer", "Images per optimizer step.", "train.batch_size"),
    "lr_init": _spec("float", "Adam's first learning rate.", "train.lr_init"),
    "lr_final": _spec("float", "Adam's last learning rate (geometric decay).", "train.lr_final"),
    "precision": _spec("enum", "Training's matrix products and convolutions: float32 (true "
                       "float32 on every device) or fast (the device's default: TF32 on "
                       "NVIDIA GPUs since Ampere; the same on a CPU).", "train.precision",
                       choices=("float32", "fast")),
    "seed": _spec("integer", "Seed of the data, noise, weights and shuffling.", "data.seed",
                  "train.seed"),
    # what to run
    "model": Flag("string", "The model: the network a program trains (diffnet or unet), or "
                  "the trained model restore applies (a preset's name, see --list-presets, "
                  "or the path of a saved model.keras)."),
    "models": Flag("list", "Networks to compare: diffnet, unet.", ["diffnet", "unet"]),
    "problem": Flag("enum", "inverse: diffused (+ noise) -> clean; forward: clean (+ noise) "
                    "-> diffused.", "inverse", choices=("inverse", "forward")),
    "noise_levels": Flag("list", "Noise levels, fractions of the image maximum."),
    "sizes": Flag("list", "Training-set sizes."),
    "patience": Flag("integer", "Early stopping: epochs without a lower validation loss "
                     "before a cell stops (the best epoch's weights are kept)."),
    "epoch_images": Flag("integer", "Smaller training sets are repeated within an epoch "
                         "until it shows at least this many images."),
    "num_samples": Flag("integer", "Test images the alpha estimate averages over."),
    "image_index": Flag("integer", "The test image whose filters Figs. 11 and 12 show.", 0),
    "models_from": Flag("string", "Folder of experiments.perona_malik runs whose finished "
                        "DiffNet runs are reused where one has the spec needed."),
    "names": Flag("list", "Presets to rebuild (default: every preset in --pretrained_dir)."),
    "package": Flag("list", "name=run_folder pairs: finished runs to package."),
    "list-presets": Flag("bool", "List the trained models shipped with the package and exit.",
                         False),
    "photo_models": Flag("list", "Models to evaluate on photographs: presets' names or saved "
                         "model.keras files in run folders (default: every Perona-Malik "
                         "preset)."),
    "photos": Flag("string", "A folder of photographs (PNG, JPEG, TIFF, .npy; default: "
                   "scikit-image's public-domain photographs, the extra 'photos')."),
    "tile": Flag("integer", "Tile side in pixels; 0 restores each image whole.", 512,
                 lower_bound=0),
    # where and how
    "out_dir": Flag("string", "Folder the program writes its outputs into.", writes=True),
    "data_dir": Flag("string", "Dataset root: STL-10 and the pair cache.", "data",
                     writes=True),
    "pretrained_dir": Flag("string", "Folder of the presets to rebuild and write (default: "
                           "the checkout's diffnet_tf/pretrained).", writes=True),
    "download": Flag("bool", "Let tfds download STL-10 (2.6 GB) when no local copy is found "
                     "(see data/README.md).", False),
    "overwrite": Flag("bool", "Replace outputs that exist: train a finished run again, or "
                      "write a restored image over its input.", False),
    "strategy": Flag("enum", "Several devices for one run: 'mirrored' (TensorFlow backend) "
                     "trains on all local GPUs (tf.distribute.MirroredStrategy), "
                     "'data_parallel' (JAX backend) on all local devices (Keras' "
                     "DataParallel); one host only.", "default",
                     choices=("default", "mirrored", "data_parallel")),
    "verbose": Flag("enum", "Progress: 0 silent, 1 progress bars, 2 plain lines (default: 1 "
                    "on a terminal, 2 when the output goes to a file).", choices=("0", "1", "2")),
    # where a study's cells run (diffnet_tf.launch)
    "executor": Flag("enum", "Where the study's cells run: local (one after another in this "
                     "process), ray (Ray tasks on --ray_address's cluster, or on one started "
                     "on this machine), slurm (a Slurm job array through submitit).", "local",
                     choices=("local", "ray", "slurm")),
    "ray_address": Flag("string", "Ray: the cluster to connect to ('auto', 'host:6379', "
                        "'ray://host:10001'); default: start one on this machine over its "
                        "CPUs and GPUs."),
    "cpus_per_cell": Flag("integer", "Ray and Slurm: the CPUs each cell holds (its TensorFlow "
                          "and XLA threads are capped to them).", 1, lower_bound=1),
    "gpus_per_cell": Flag("integer", "Ray and Slurm: the GPUs each cell holds (default: on "
                          "Ray 1 where the cluster has GPUs, else 0; on Slurm 0).",
                          lower_bound=0),
    "cell_retries": Flag("integer", "Ray and Slurm: how often a cell starts again after its "
                         "worker died or its task was stopped (time limit, preemption); it "
                         "resumes from its last epoch.", 3, lower_bound=0),
    "slurm_partition": Flag("string", "Slurm: the partition (default: the cluster's)."),
    "slurm_time": Flag("integer", "Slurm: each cell's time limit in minutes.", 240,
                       lower_bound=1),
    "slurm_parallel": Flag("integer", "Slurm: the most cells running at once (default: "
                           "submitit's, 256).", lower_bound=1),
    # the paper reproduced (experiments.reproduce)
    "scale": Flag("enum", "The experiments' size: paper (the paper's protocols, STL-10), cpu "
                  "(synthetic images, what 2 CPU cores finish in about two hours), smoke "
                  "(tiny images and epochs: minutes, a first look).", "smoke",
                  choices=("smoke", "cpu", "paper")),
    "only": Flag("list", "The experiments to run (default all): discs, perona_malik, "
                 "generalisation, interpretation."),
    # the benchmark
    "quick": Flag("bool", "Fewer repetitions and images: a smoke test, noisier figures.", False),
    "repeats": Flag("integer", "Timed repetitions per figure (default 15; 3 quick).",
                    lower_bound=1),
    "warmup": Flag("integer", "Untimed rounds first, which compile (default 2; 1 quick).",
                   lower_bound=1),
    "inference_batch_size": Flag("integer", "Images per inference call.", 64, lower_bound=1),
    "jit_compile": Flag("enum", "model.compile's jit_compile ('auto': what model.fit uses; on "
                        "TensorFlow's CPU it resolves to no XLA).", "auto",
                        choices=("auto", "true", "false")),
    "pm_images": Flag("integer", "Images per Perona-Malik repetition (default 3000; 1000 "
                      "quick).", lower_bound=1),
    "sparse_images": Flag("integer", "Images per repetition of the sparse reference (default "
                          "8; 2 quick).", lower_bound=1),
    "memory": Flag("bool", "Measure the peak memory of a training step (subprocesses).", True),
    "cells": Flag("integer", "Smoke cells the launcher runs locally and on Ray, for its "
                  "overhead per cell and the projected hours of experiments.reproduce "
                  "(default 4; 2 quick; 0: neither).", lower_bound=0),
}

_DEFINE = {"integer": flags.DEFINE_integer, "float": flags.DEFINE_float,
           "string": flags.DEFINE_string, "bool": flags.DEFINE_bool, "list": flags.DEFINE_list}


def define(flag_values, name, default):
    """Defines flag `name` of the table in `flag_values` (a program's own registry), with
    `default` (the table's, or the program's own)."""
    flag = TABLE[name]
    if flag.kind == "enum":
        flags.DEFINE_enum(name, default, list(flag.choices), flag.help, flag_values=flag_values)
    elif flag.lower_bound is not None:
        flags.DEFINE_integer(name, default, flag.help, lower_bound=flag.lower_bound,
                             flag_values=flag_values)
    else:
        _DEFINE[flag.kind](name, default, flag.help, flag_values=flag_values)
