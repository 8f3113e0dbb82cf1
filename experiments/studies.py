"""What the studies and experiments.reproduce share: Fig. 10's cells, records and curves
(Sect. 6.1) and Figs. 11-13 from finished runs (Sect. 6.2). Not a program: programs never
import each other (tests/test_architecture.py).
"""

import math

MODEL_NAMES = {"diffnet": "DiffNet", "unet": "U-Net"}  # as the paper's figures name them


def cell_plan(size, val_size, epoch_images, train_split):
    """(training images, repeats per epoch) of a cell: the training set shrinks so that
    size + val_size fit in the train split, and is repeated to fill `epoch_images`."""
    train_images = min(size, train_split - val_size)
    return train_images, max(1, math.ceil(epoch_images / train_images))


def study_cells(bases, sizes, epoch_images, train_split):
    """{'<model>_n<size>': the cell's RunSpec} for every size and model (bases: model ->
    the RunSpec every cell of that model starts from)."""
    cells = {}
    for size in sizes:
        for model, base in bases.items():
            images, repeats = cell_plan(size, base.data.val_size, epoch_images, train_split)
            cells[f"{model}_n{size}"] = base.replace(data={"train_size": images},
                                                     train={"epoch_repeats": repeats})
    return cells


def cell_record(key, cell, folder):
    """A cell's entry in results.json, from its finished run folder (a runs.RunFolder): its
    setting, its run folder and its figures."""
    metrics = folder.metrics()
    return {"model": cell.model.kind, "size": int(key.rsplit("_n", 1)[1]),
            "train_images": cell.data.train_size, "val_images": cell.data.val_size,
            "epoch_repeats": cell.train.epoch_repeats, "run": str(folder.path),
            **{k: metrics[k] for k in ("test", "test_input", "train", "epochs_trained",
                                       "best_epoch", "stopped_early", "train_seconds")}}


def fig10_curves(records):
    """{model's name ('DiffNet', 'U-Net'): (sizes, test PSNR means, stds)} from
    results.json's cells."""
    curves = {}
    for record in records.values():
        sizes, means, stds = curves.setdefault(MODEL_NAMES[record["model"]], ([], [], []))
        sizes.append(record["size"])
        means.append(record["test"]["psnr_mean"])
        stds.append(record["test"]["psnr_std"])
    return curves


def fig10_title(data):
    """Fig. 10's title: the problem as the paper names it, the noise and the images (not
    the study folder's name)."""
    from diffnet_tf import problems

    return (f"Fig. 10: {problems.get(data.problem).description}, noise {data.noise:g}, "
            f"{data.source}")


def filter_figures(specs, folders, num_samples, index, out_dir, data_dir, download=False):
    """Figs. 11-13 in `out_dir` from each level's finished run, and their numbers.

    Args:
        specs, folders: {key: RunSpec} and {key: runs.RunFolder} of the levels, in order.
        num_samples: the test images alpha is averaged over; index: Figs. 11-12's image.

    Returns:
        {'<level>': `analysis.filter_statistics` numbers with 'noise' and 'run'}.
    """
    from diffnet_tf import pairs, run_figures
    from diffnet_tf.analysis import filter_statistics, smoothing_and_diagonal

    results, smoothing, diagonal = {}, [], []
    for key, run_spec in specs.items():
        inputs, targets = pairs.make_pairs(run_spec.data, "test", max(num_samples, index + 1),
                                           data_dir, verbose=0, download=download)
        model = folders[key].load_model()
        numbers = filter_statistics(model, inputs[:num_samples], targets[:num_samples])
        s, z5 = smoothing_and_diagonal(model, inputs[index : index + 1])
        results[f"{run_spec.data.noise:g}"] = dict(numbers, noise=run_spec.data.noise,
                                                  run=str(folders[key].path))
        smoothing.append(list(s))
        diagonal.append(list(z5))
    source = next(iter(specs.values())).data.source
    run_figures.interpretation([s.data.noise for s in specs.values()], results, smoothing,
                               diagonal, out_dir, f"{source}, test image {index}",
                               f"{source}, {num_samples} test images")
    return results
