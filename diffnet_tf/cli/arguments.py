"""Flag values turned into what the programs use, their errors naming the flag: noise-level
lists, the distribution strategy and the studies' executor."""

import math

from absl import app


def parse_noise_levels(values):
    """A --noise_levels list (strings) as unique finite floats >= 0, in the given order."""
    try:
        levels = list(dict.fromkeys(float(v) for v in values))
    except ValueError:
        raise app.UsageError(f"Expected --noise_levels to be numbers. Received {values}.") from None
    if not levels or not all(math.isfinite(level) and level >= 0 for level in levels):
        raise app.UsageError(f"Expected --noise_levels to be finite numbers >= 0. Received "
                             f"{values}.")
    return levels


def strategy(name):
    """The `diffnet_tf.distribution.strategy` of --strategy (None for 'default'); its
    refusals (another backend's strategy, several JAX hosts) as usage errors."""
    from diffnet_tf import distribution

    try:
        return distribution.strategy(name)
    except ValueError as error:
        raise app.UsageError(f"--strategy={name}: {error}") from None


def executor(values, study_dir):
    """The executor of --executor with its flags (diffnet_tf.launch); Slurm's logs and
    pickles go to <study_dir>/submitit. Its engine is imported here, only when chosen.

    Raises:
        launch.ExecutorUnavailable: the engine is not installed, or no Slurm here.
    """
    cells = {"cpus_per_cell": values["cpus_per_cell"], "gpus_per_cell": values["gpus_per_cell"],
             "retries": values["cell_retries"]}
    if values["executor"] == "ray":
        from diffnet_tf.launch.ray_tasks import RayExecutor

        return RayExecutor(values["ray_address"], **cells)
    if values["executor"] == "slurm":
        from diffnet_tf.launch.slurm_jobs import SlurmExecutor

        return SlurmExecutor(f"{study_dir}/submitit", values["slurm_partition"],
                             values["slurm_time"], values["slurm_parallel"], **cells)
    from diffnet_tf.launch.local import LocalExecutor

    return LocalExecutor()
