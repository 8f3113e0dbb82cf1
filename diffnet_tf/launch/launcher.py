"""The driver of a study: its cells ({key: RunSpec}) run by an executor, the data they share
made once first, progress as cells end, and each cell's outcome.

A study plans its cells, calls `launch`, then reports from the finished run folders
(`runs.RunFolder(root, spec)`): what ran where does not change a number. Cells whose run
has finished are not submitted; a cell whose folder another process holds counts as running
elsewhere, and a failed cell (diverged, out of memory) is reported while the others go on;
`check_finished` then names what did not finish. Killing the driver loses no finished cell:
the same command again collects them and runs only the others.
"""

import logging
import time

from diffnet_tf import pair_cache, pairs, runs
from diffnet_tf.launch.worker import CellJob, CellOutcome, one_line, run_cell

_log = logging.getLogger(__name__)


class CellsUnfinished(RuntimeError):
    """Some cells of a study failed or run elsewhere."""


def launch(cells, root, executor, data_dir="data", overwrite=False, download=False,
           verbose=1):
    """Runs every cell whose run has not finished (all with `overwrite`) with `executor`.

    Args:
        cells: {key: RunSpec}, the study's plan.
        root: the folder holding the study's run folders.
        executor: a `diffnet_tf.launch` executor (`local.LocalExecutor`, ...).
        data_dir, overwrite, download: as in `runs.execute`.
        verbose: Keras' progress of cells run in this process (workers write theirs, a line
            per epoch, to their run folder's worker.log).

    Returns:
        {key: worker.CellOutcome} in the order of `cells`; finished runs are 'reused'.
    """
    outcomes, jobs = {}, []
    for key, spec in cells.items():
        if not overwrite and runs.RunFolder(root, spec).finished:
            outcomes[key] = CellOutcome("reused")
        else:
            jobs.append(CellJob(key, spec, str(root), str(data_dir), overwrite, download,
                                verbose=2 if executor.remote else verbose,
                                threads=executor.cpus_per_cell if executor.remote else None))
    _log.info("%d of %d cells finished before; %d to run (%s executor).", len(outcomes),
              len(cells), len(jobs), executor.name)
    if jobs:
        prepare_pairs([job.spec.data for job in jobs], data_dir, download, verbose)
        started, pending = time.monotonic(), len(jobs)
        for key, result in executor.run(run_cell, jobs):
            outcomes[key] = (result if isinstance(result, CellOutcome)
                             else CellOutcome("failed", one_line(result)))
            pending -= 1
            _log.info("%s", progress_line(key, outcomes, executor.running(pending), pending,
                                          time.monotonic() - started))
    return {key: outcomes[key] for key in cells}


def prepare_pairs(datas, data_dir="data", download=False, verbose=1):
    """Makes, before any cell starts, every pair cache the cells read, once each and as long
    as the longest need (`pairs.pool_sizes`): cells then read their pairs from the cache
    (a worker on another machine too), and no two of them make the same pairs at once.

    Args:
        datas: the cells' `spec.DataSpec`s.
        data_dir, download: as in `pairs.make_pairs`.
        verbose: the progress of the pairs made.
    """
    longest = {}  # cache file -> (data, split, n)
    for data in datas:
        for split, n in pairs.pool_sizes(data).items():
            path = pair_cache.cache_path(data_dir, data, split)
            if n > longest.get(path, (None, None, 0))[2]:
                longest[path] = (data, split, n)
    for path, (data, split, n) in longest.items():
        held = pair_cache.stored_count(path)
        if held is None or held[0] < n:
            pairs.make_pairs(data, split, n, data_dir, verbose=verbose, download=download)


def progress_line(key, outcomes, running, pending, seconds):
    """The line logged when cell `key` ends: 'unet_n10 trained (41.2 s); 3 done, 2 running,
    1 failed, 0 elsewhere, 4 queued; 0:02:13 elapsed' (a failure's or a busy folder's
    message after the cell; `pending`: the cells not ended, `running` of them running)."""
    outcome = outcomes[key]
    counts = {status: sum(o.status == status for o in outcomes.values())
              for status in ("trained", "reused", "failed", "elsewhere")}
    what = (f"{outcome.status} ({outcome.seconds:.1f} s)" if not outcome.message
            else f"{outcome.status}: {outcome.message}")
    return (f"{key} {what}; {counts['trained'] + counts['reused']} done, {running} running, "
            f"{counts['failed']} failed, {counts['elsewhere']} elsewhere, "
            f"{pending - running} queued; {int(seconds) // 3600}:"
            f"{time.strftime('%M:%S', time.gmtime(seconds))} elapsed")


def check_finished(outcomes):
    """Raises CellsUnfinished, one line naming each cell that failed or runs elsewhere,
    unless every cell finished ('trained' or 'reused')."""
    unfinished = {key: o for key, o in outcomes.items() if o.status in ("failed", "elsewhere")}
    if unfinished:
        listed = "; ".join(f"{key} {'failed' if o.status == 'failed' else 'runs elsewhere'}"
                           f"{f' ({o.message})' if o.status == 'failed' else ''}"
                           for key, o in unfinished.items())
        raise CellsUnfinished(
            f"{len(unfinished)} of {len(outcomes)} cells did not finish: {listed}. The "
            "finished runs are kept: run the same command again (once the others end) to "
            "run only what is missing.")
