"""Benchmark: DiffNet's speed against the original formulation, the U-Net and the compute floor.

    python -m experiments.benchmark            # full run: 580 s on 2 idle CPU cores,
                                               # TensorFlow (the models 423 s, the cells
                                               # section 120 s)
    python -m experiments.benchmark --quick    # fewer repetitions and images: a smoke test

Prints a table headed by the backend and the device it timed (the accelerators the backend
sees, else the CPU) and writes runs/benchmark/<YYYY-MM-DD>.json (<YYYY-MM-DD_HHMMSS>.json if
that exists; --out_dir for another folder) with the machine, backend, device, versions,
settings, every repetition of every figure and the target checks.

What is measured (96x96 float32 images, training batch 16, inference batch 64):
    diffnet       DiffNet-5 with 4-layer estimators, the paper's Neumann boundary.
    diffnet_zero  the same with the zero boundary of the released code.
    original      the released TF1 code's formulation of the layer (`original_update`): zero
                  rows/columns concatenated to shift, each filter channel sliced and reshaped
                  on its own; same estimators, same 101,310 parameters. Benchmark only
                  (experiments/benchmark_references.py, like the floor and the sparse
                  reference below).
    floor         the compute floor (`ComputeFloor`): the same five estimator CNNs in
                  sequence with no stencil update and no dt, each fed the first filter map of
                  the one before; what DiffNet cannot go below.
    unet          the U-Net baseline (34,512,705 parameters).
  For each: one optimizer step (Adam, MSE, `model.train_on_batch` after `model.compile`, the
  same for every model) and inference (`model.predict_on_batch`). Each figure is the median
  of --repeats timed repetitions after --warmup untimed rounds (which compile); the models
  take turns within each round (round robin), so machine noise hits all of them alike, and
  every ratio comes from the same run. The process's CPU time is recorded as well: other
  programs taking a core inflate the wall time but hardly the CPU time, so each check also
  gives its CPU-time ratio; the JSON records how many cores other programs used meanwhile
  (from /proc/stat), and a note says when the machine was busy.
    Perona-Malik pair generation (4 steps of dt 0.1, lambda 0.2): images/s of the library's
  batched solver (`diffnet_tf.pairs.pairs_from_images`, one XLA-compiled solve per chunk
  of images) against a per-image sparse-matrix reference (`sparse_perona_malik`, SciPy) that
  builds the 5-point operator for every image and step, as the released MATLAB script
  (AnisoDiff2d) does. Without SciPy that row is skipped with a note.
    Peak memory of a training step (DiffNet, U-Net): each model trains in a fresh Python
  process; the figure is that process's peak resident set size (VmHWM) minus its peak after
  the imports, i.e. weights, Adam slots, gradients, activations and the traced graph.
    The launcher's overhead per cell on Ray (experiments/benchmark_cells.py; --cells, 4, 2
  with --quick, 0 skips this and the projections): the first --cells smoke-scale cells of
  experiments.reproduce, in a temporary folder, launched one at a time locally and then on
  a Ray cluster started here: Ray's start-up (ray.init) apart, the overhead per cell =
  (Ray's launch wall time - the local one) / cells, and the extra time of a cell whose Ray
  worker starts for it (every GPU cell's). Without Ray: "not measured: ray not installed".
    Projected hours of `python -m experiments.reproduce` (experiments/benchmark_projection.py):
  each cell's most training steps x its model class's seconds per step + a per-cell cost,
  the cells scheduled longest first onto the least-loaded device. --scale=paper on 1, 8 and
  64 GPUs from the GPU figures of ../shared/GPU_MEASUREMENTS.md (H200, JAX; each figure's
  run is in the table's sources), x their measured true-float32 factor, plus the fresh
  worker's overhead per cell and the pair preparation; --scale=cpu on this machine, cells
  one after another, from the step times this run measures at each class's shapes, the
  fixed work of a smoke cell and the measured pair preparation, checked against one cpu
  cell cut to an epoch and run for real. The sum of the cells and the longest cell (the
  floor for any number of GPUs) come with it.

Backends: everything uses Keras APIs, NumPy inputs and the active backend's compiler, so it
runs on every backend (no TensorFlow needed on JAX):
    KERAS_BACKEND=jax python -m experiments.benchmark
On a GPU machine the same commands time the models on the GPU (the JSON lists the
accelerators found); the targets below are for a 2-core CPU with TensorFlow.

Targets (2-core CPU, TensorFlow): DiffNet's training step <= 1.10 x the compute floor's;
DiffNet (zero) at least as fast as the original formulation; DiffNet's training throughput
>= 4 x the U-Net's; pair generation >= 5,000 images/s and >= 50 x the sparse reference.
"""

from pathlib import Path

from diffnet_tf.cli import programs, startup

FLAGS = programs.flag_values("benchmark")


def main(argv):
    del argv
    from experiments import benchmarking

    values, _ = startup.begin("benchmark", FLAGS)
    benchmarking.run(benchmarking.settings_from_values(values), Path(values["out_dir"]),
                     values["quick"])


if __name__ == "__main__":
    startup.start(main, FLAGS, __doc__)
