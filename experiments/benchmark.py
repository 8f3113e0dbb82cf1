"""Benchmark: DiffNet's speed against the original formulation, the U-Net and the compute floor.

    python -m experiments.benchmark            # full run: 276 s on 2 CPU cores, TensorFlow
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
  batched solver (`diffnet_tf.datasets.pairs_from_images`, one XLA-compiled solve per chunk
  of images) against a per-image sparse-matrix reference (`sparse_perona_malik`, SciPy) that
  builds the 5-point operator for every image and step, as the released MATLAB script
  (AnisoDiff2d) does. Without SciPy that row is skipped with a note.
    Peak memory of a training step (DiffNet, U-Net): each model trains in a fresh Python
  process; the figure is that process's peak resident set size (VmHWM) minus its peak after
  the imports, i.e. weights, Adam slots, gradients, activations and the traced graph.

Backends: everything uses Keras APIs, NumPy inputs and the active backend's compiler, so it
runs on every backend (no TensorFlow needed on JAX):
    KERAS_BACKEND=jax python -m experiments.benchmark
On a GPU machine the same commands time the models on the GPU (the JSON lists the
accelerators found); the targets below are for a 2-core CPU with TensorFlow.

Targets (2-core CPU, TensorFlow): DiffNet's training step <= 1.10 x the compute floor's;
DiffNet (zero) at least as fast as the original formulation; DiffNet's training throughput
>= 4 x the U-Net's; pair generation >= 5,000 images/s and >= 50 x the sparse reference.
"""

from absl import flags

from experiments import cli

FLAGS = flags.FlagValues()
flags.DEFINE_bool("quick", False, "Fewer repetitions and images: a smoke test, noisier figures.",
                  flag_values=FLAGS)
flags.DEFINE_integer("repeats", None, "Timed repetitions per figure (default 15; 3 quick).",
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("warmup", None, "Untimed rounds first, which compile (default 2; 1 "
                     "quick).", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("image_size", None, "Side of the square images (default STL-10's, 96).",
                     lower_bound=8, flag_values=FLAGS)
flags.DEFINE_integer("inference_batch_size", 64, "Images per inference call.", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"],
                  "model.compile's jit_compile ('auto': what model.fit uses; on TensorFlow's "
                  "CPU it resolves to no XLA).", flag_values=FLAGS)
flags.DEFINE_integer("pm_images", None, "Images per Perona-Malik repetition (default 3000; "
                     "1000 quick).", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("sparse_images", None, "Images per repetition of the sparse reference "
                     "(default 8; 2 quick).", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("memory", True, "Measure the peak memory of a training step (subprocesses).",
                  flag_values=FLAGS)
cli.define_flags(FLAGS, "batch_size", "unet_filters", "seed", "out_dir")


def main(argv):
    del argv
    from diffnet_tf import datasets
    from experiments import benchmarking

    datasets.use_classic_xla_cpu_emitter()
    values = FLAGS.flag_values_dict()
    cli.check_folders(values, "out_dir")
    benchmarking.run(benchmarking.settings_from_values(values),
                     cli.output_root(values, "benchmark"), values["quick"])


if __name__ == "__main__":
    cli.start(main, FLAGS)
