"""The launcher (diffnet_tf.launch): a study's cells run by the local, Ray and Slurm
(submitit) executors give the same runs; a failed cell is reported and the others go on; a
busy one runs elsewhere; data are made once, and a pair cache never shrinks; the lock names
host and job; a run made under one backend is never reused under another."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from diffnet_tf import backup, hardware, models, pair_cache, pairs, runs, saving, spec, training
from diffnet_tf.cli import arguments, programs, startup
from diffnet_tf.folder_lock import holder
from diffnet_tf.launch import ExecutorUnavailable, launcher, local, worker


def tiny(noise=0.0, **train):
    """A cell of 16 training images of 16x16, 2 epochs of 4 steps."""
    return spec.protocol("perona_malik").replace(
        data=dict(source="synthetic", image_size=16, train_size=16, val_size=2, test_size=4,
                  noise=noise),
        model=dict(num_layers=1, estimator_depth=2, width=4),
        train=dict(epochs=2, batch_size=4, lr_init=2e-3, lr_final=1e-3, **train))


CELLS = {f"noise{level:g}": tiny(level) for level in (0.0, 0.001, 0.01, 0.1)}


def finished_folder(root, run_spec):
    """A run folder as a finished run leaves it (an untrained model): no training."""
    with runs.RunFolder(root, run_spec) as folder:
        folder.claim_backend()
        model = models.build_model(run_spec)
        model.build((None, None, None, 1))
        saving.save_model(model, folder.path / "model.keras")
        (folder.path / "metrics.json").write_text(json.dumps({"test": {"psnr_mean": 30.0}}))
    return folder


def results_of(root, cells):
    """{key: the test PSNR and the epochs trained} from the run folders."""
    found = {}
    for key, run_spec in cells.items():
        metrics = runs.RunFolder(root, run_spec).metrics()
        found[key] = (metrics["test"]["psnr_mean"], metrics["epochs_trained"])
    return found


# ---------------------------------------------------------------- the lock and the backend


def test_the_lock_names_the_host_and_the_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    assert holder().startswith(f"process {os.getpid()} on {socket.gethostname()} since ")
    assert holder().endswith("(Slurm job 4242_7)")
    with runs.RunFolder(tmp_path, tiny()):
        with pytest.raises(runs.RunFolderBusy, match=f"on {socket.gethostname()} .*Slurm "
                                                     "job 4242_7"):
            runs.RunFolder(tmp_path, tiny()).__enter__()
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    assert holder().endswith(f"({' '.join(sys.argv)})")  # outside a job: the command


def as_backend(monkeypatch, name):
    """Runs see this process as running under backend `name` (what backend.json records
    and compares; the computation stays on the real backend)."""
    monkeypatch.setattr(hardware, "backend_record",
                        lambda: {"backend": name, "versions": {"keras": keras.__version__}})


def test_the_backend_record_names_the_backend_and_its_version():
    record = hardware.backend_record()
    backend = keras.backend.backend()
    assert record["backend"] == backend and record["versions"]["keras"] == keras.__version__
    assert record["versions"][backend] == sys.modules[backend].__version__


@pytest.mark.parametrize("made, now", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_a_run_made_under_one_backend_is_never_reused_under_another(tmp_path, monkeypatch,
                                                                    made, now):
    as_backend(monkeypatch, made)
    folder = finished_folder(tmp_path, tiny())
    assert json.loads((folder.path / "backend.json").read_text())["backend"] == made
    assert runs.RunFolder(tmp_path, tiny()).finished
    assert runs.execute(tiny(), tmp_path).reused
    as_backend(monkeypatch, now)
    assert not runs.RunFolder(tmp_path, tiny()).finished  # a study does not count it done
    assert list(runs.finished_runs(tmp_path)) == []
    with pytest.raises(runs.BackendMismatch, match=f"made under the {made} backend, not this "
                                                   f"process's {now}.*KERAS_BACKEND={made}"):
        runs.execute(tiny(), tmp_path)
    outcomes = launcher.launch({"cell": tiny()}, tmp_path, local.LocalExecutor(),
                               tmp_path / "data", verbose=0)
    assert outcomes["cell"].status == "failed"
    assert outcomes["cell"].message.startswith("BackendMismatch: The run in ")


def test_a_folder_made_before_runs_recorded_their_backend_is_claimed(tmp_path):
    folder = finished_folder(tmp_path, tiny())
    (folder.path / "backend.json").unlink()
    assert runs.RunFolder(tmp_path, tiny()).finished
    assert runs.execute(tiny(), tmp_path).reused
    record = json.loads((folder.path / "backend.json").read_text())
    assert record["backend"] == keras.backend.backend() and "keras" in record["versions"]


# ---------------------------------------------------------------- data made once


def test_a_pair_cache_is_never_replaced_by_a_shorter_one(tmp_path):
    path = tmp_path / "cache" / "pairs.npz"
    long, short = (np.ones((n, 4, 4, 1), np.float32) for n in (12, 8))
    pair_cache.save(path, long, long, False)
    pair_cache.save(path, short, short, False)  # a concurrent cell that needs fewer
    assert pair_cache.stored_count(path) == (12, False)
    assert len(pair_cache.load(path)[0]) == 12
    pair_cache.save(path, long, long, True)  # the same pairs marked the whole split
    pair_cache.save(path, long, long, False)
    assert pair_cache.stored_count(path) == (12, True)
    assert pair_cache.stored_count(tmp_path / "absent.npz") is None


def test_the_driver_makes_each_cache_once_at_the_longest_length(tmp_path, monkeypatch):
    made, real = [], pairs.make_pairs
    monkeypatch.setattr(pairs, "make_pairs", lambda data, split, n, *args, **kwargs: (
        made.append((data.noise, split, n)), real(data, split, n, *args, **kwargs))[1])
    small = tiny().replace(data={"validation": "train_tail", "train_size": 4})
    datas = [small.data, tiny().replace(data={"validation": "train_tail"}).data,
             tiny(0.01).data]
    launcher.prepare_pairs(datas, tmp_path, verbose=0)
    assert sorted(made) == [(0.0, "test", 4), (0.0, "train", 18), (0.01, "test", 4),
                            (0.01, "train", 16)]
    assert pair_cache.stored_count(pair_cache.cache_path(tmp_path, small.data, "train"))[0] == 18
    made.clear()
    launcher.prepare_pairs(datas, tmp_path, verbose=0)  # all there: nothing made again
    assert made == []


# ---------------------------------------------------------------- the launcher's bookkeeping


def test_a_failed_cell_is_reported_a_busy_one_runs_elsewhere_and_the_others_go_on(
        tmp_path, monkeypatch, caplog):
    finished_folder(tmp_path / "runs", CELLS["noise0"])
    ran = []

    def execute(run_spec, root, *args, **kwargs):
        ran.append(run_spec.data.noise)
        if run_spec.data.noise == 0.001:
            raise training.TrainingDiverged("The loss became NaN at epoch 1.\nmore")
        if run_spec.data.noise == 0.01:
            raise runs.RunFolderBusy("The run folder x is in use by process 1 on node7.")
        return runs.RunResult(Path(root) / run_spec.folder_name, {}, reused=False)

    monkeypatch.setattr(runs, "execute", execute)
    with caplog.at_level("INFO", logger="diffnet_tf"):
        outcomes = launcher.launch(CELLS, tmp_path / "runs", local.LocalExecutor(),
                                   tmp_path / "data", verbose=0)
    assert ran == [0.001, 0.01, 0.1]  # the finished cell is not run again
    assert [o.status for o in outcomes.values()] == ["reused", "failed", "elsewhere", "trained"]
    assert outcomes["noise0.001"].message == "TrainingDiverged: The loss became NaN at epoch 1."
    lines = [r.getMessage() for r in caplog.records if r.name == "diffnet_tf.launch.launcher"]
    assert lines[0] == "1 of 4 cells finished before; 3 to run (local executor)."
    assert re.fullmatch(r"noise0.1 trained \(\d+\.\d s\); 2 done, 0 running, 1 failed, 1 "
                        r"elsewhere, 0 queued; 0:00:\d\d elapsed", lines[-1])
    assert lines[2].startswith("noise0.01 elsewhere: The run folder x is in use by process 1")
    with pytest.raises(launcher.CellsUnfinished, match=r"^2 of 4 cells did not finish: "
                       r"noise0.001 failed \(TrainingDiverged: The loss became NaN at epoch "
                       r"1.\); noise0.01 runs elsewhere. The finished runs are kept"):
        launcher.check_finished(outcomes)
    launcher.check_finished({"a": worker.CellOutcome("trained"), "b": worker.CellOutcome("reused")})


def test_a_missing_engine_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    for module, executor in (("ray", "ray"), ("submitit", "slurm")):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
        values = study_flags("--executor", executor)
        extra = "ray" if executor == "ray" else "slurm"
        with pytest.raises(ExecutorUnavailable, match=rf"^--executor={executor} needs the "
                           rf"{module} package, which is not installed: pip install "
                           rf"'diffnet_tf\[{extra}\]' \(or pip install {module}\).$"):
            arguments.executor(values, tmp_path)


def study_flags(*args):
    """The generalisation program's flag values given `--name value` pairs."""
    registry = programs.flag_values("generalisation")
    startup.parse(registry, ["prog", *(f"{k}={v}" for k, v in zip(args[::2], args[1::2]))])
    return registry.flag_values_dict()


@pytest.mark.slow
def test_a_worker_caps_its_threads_to_its_cpus():
    pytest.importorskip("tensorflow", reason="caps TensorFlow's thread pools")
    script = ("import os, tensorflow as tf, diffnet_tf\n"
              "from diffnet_tf.launch.worker import cap_threads\n"
              "cap_threads(1)\n"
              "threading = tf.config.threading\n"
              "print(threading.get_intra_op_parallelism_threads(),\n"
              "      threading.get_inter_op_parallelism_threads(), os.environ['XLA_FLAGS'])\n")
    environment = dict(os.environ, XLA_FLAGS="--xla_cpu_use_fusion_emitters=false")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, check=True)
    assert done.stdout.split() == ["1", "1", "--xla_cpu_use_fusion_emitters=false",
                                   "--xla_cpu_multi_thread_eigen=false",
                                   "intra_op_parallelism_threads=1"]


# ---------------------------------------------------------------- Slurm (submitit)


def test_the_slurm_parameters_come_from_the_flags(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit", reason="the Slurm executor needs submitit "
                                   "(pip install 'diffnet_tf[slurm]')")
    values = study_flags("--executor", "slurm", "--slurm_partition", "gpu", "--slurm_time",
                         "90", "--slurm_parallel", "4", "--cpus_per_cell", "8",
                         "--gpus_per_cell", "1", "--cell_retries", "2")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ExecutorUnavailable, match="--executor=slurm needs Slurm, and there "
                                                  "is no sbatch command here"):
        arguments.executor(values, tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    executor = arguments.executor(values, tmp_path)
    assert executor.folder == f"{tmp_path}/submitit"
    assert executor.parameters() == {
        "name": "diffnet_tf", "timeout_min": 90, "cpus_per_task": 8, "gpus_per_node": 1,
        "slurm_partition": "gpu", "slurm_array_parallelism": 4}
    # submitit's own sbatch script of these parameters (its Slurm check passed by hand)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    auto = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm",
                                 slurm_max_num_timeout=executor.retries)
    auto.update_parameters(**executor.parameters())
    script = auto._executor._make_submission_file_text("python -m cell", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --job-name=diffnet_tf"):
        assert line in script.splitlines(), line
    assert auto._executor.parameters["array_parallelism"] == 4
    assert auto._executor.max_num_timeout == 2
    defaults = arguments.executor(study_flags("--executor", "slurm"), tmp_path).parameters()
    assert defaults == {"name": "diffnet_tf", "timeout_min": 240, "cpus_per_task": 1,
                        "gpus_per_node": 0}  # partition and parallelism: the cluster's


@pytest.mark.slow
def test_cells_run_through_submitit_as_through_the_local_executor(tmp_path):
    pytest.importorskip("submitit", reason="the Slurm executor needs submitit "
                        "(pip install 'diffnet_tf[slurm]')")
    from diffnet_tf.launch.slurm_jobs import SlurmExecutor

    cells = {key: CELLS[key] for key in ("noise0", "noise0.1")}
    executor = SlurmExecutor(tmp_path / "submitit", time_minutes=10, cluster="local")
    outcomes = launcher.launch(cells, tmp_path / "slurm", executor, tmp_path / "data")
    assert [o.status for o in outcomes.values()] == ["trained", "trained"]
    launcher.launch(cells, tmp_path / "local", local.LocalExecutor(), tmp_path / "data",
                    verbose=0)
    assert results_of(tmp_path / "slurm", cells) == results_of(tmp_path / "local", cells)
    log = (tmp_path / "slurm" / cells["noise0"].folder_name / "worker.log").read_text()
    assert "cell noise0: process" in log and "Epoch 2/2" in log
    lock = (tmp_path / "slurm" / cells["noise0"].folder_name / ".lock").read_text()
    assert "(submitit job " in lock


# ---------------------------------------------------------------- Ray


class CrashOnce:
    """A cell function that records when each cell ran (the first two start together, once
    both workers are up), and whose worker for `victim` dies (os._exit, as a killed node)
    right after the first epoch's backup, the first time."""

    def __init__(self, victim, folder):
        self.victim, self.folder = victim, Path(folder)

    def __call__(self, job):
        marker = self.folder / "crashed"
        if job.key == self.victim and not marker.exists():
            real = backup.EpochBackup.on_epoch_end

            def die_after_backup(callback, epoch, logs=None):
                real(callback, epoch, logs)
                marker.touch()
                os._exit(1)

            backup.EpochBackup.on_epoch_end = die_after_backup
        (self.folder / f"{job.key}-{os.getpid()}.started").touch()
        deadline = time.time() + 60
        while len(list(self.folder.glob("*.started"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
        started = time.time()
        outcome = worker.run_cell(job)
        (self.folder / f"{job.key}.json").write_text(json.dumps([started, time.time()]))
        return outcome


def interrupted_once(monkeypatch, victim):
    """Makes the local run of `victim` stop after its first epoch's backup, once."""
    real = backup.EpochBackup.on_epoch_end

    def stop(callback, epoch, logs=None):
        real(callback, epoch, logs)
        if callback.backup_dir.parent.name == CELLS[victim].folder_name:
            monkeypatch.setattr(backup.EpochBackup, "on_epoch_end", real)
            raise KeyboardInterrupt

    monkeypatch.setattr(backup.EpochBackup, "on_epoch_end", stop)


@pytest.mark.slow
def test_ray_runs_cells_two_at_a_time_and_a_killed_worker_resumes(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="the Ray executor needs Ray "
                              "(pip install 'diffnet_tf[ray]')")
    from diffnet_tf.launch.ray_tasks import RayExecutor, worker_environment

    victim, times = "noise0.01", tmp_path / "times"
    times.mkdir()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # CrashOnce, to workers
    ray.init(num_cpus=2, log_to_driver=False, runtime_env={"env_vars": worker_environment()})
    monkeypatch.setattr(launcher, "run_cell", CrashOnce(victim, times))
    try:
        outcomes = launcher.launch(CELLS, tmp_path / "ray", RayExecutor(retries=1),
                                   tmp_path / "data", verbose=0)
        with pytest.raises(ExecutorUnavailable, match=r"^Expected --cpus_per_cell <= 2 and "
                           r"--gpus_per_cell <= 0 \(the Ray cluster's\). Received 3 and 0.$"):
            next(RayExecutor(cpus_per_cell=3).run(worker.run_cell, []))
    finally:
        ray.shutdown()
    monkeypatch.undo()
    assert {key: o.status for key, o in outcomes.items()} == dict.fromkeys(CELLS, "trained")
    assert (times / "crashed").exists()  # the victim's first worker died ...
    folder = tmp_path / "ray" / CELLS[victim].folder_name
    record = json.loads((folder / "training.json").read_text())
    assert (record["epochs_trained"], record["epochs_this_session"]) == (2, 1)  # ... resumed
    log = (folder / "worker.log").read_text()
    assert log.count(f"cell {victim}: process") == 2 and "Resuming from the backup" in log
    assert "(Ray task " in (folder / ".lock").read_text()
    spans = [json.loads((times / f"{key}.json").read_text()) for key in CELLS]
    overlaps = [sum(s[0] <= t < s[1] for s in spans) for t, _ in spans]
    assert max(overlaps) == 2  # two at a time, never more

    interrupted_once(monkeypatch, victim)  # the same specs, one interrupted at the same epoch
    with pytest.raises(KeyboardInterrupt):
        launcher.launch(CELLS, tmp_path / "local", local.LocalExecutor(), tmp_path / "data",
                        verbose=0)
    launcher.launch(CELLS, tmp_path / "local", local.LocalExecutor(), tmp_path / "data",
                    verbose=0)
    assert results_of(tmp_path / "ray", CELLS) == results_of(tmp_path / "local", CELLS)
