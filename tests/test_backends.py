"""Every Keras backend: importing has no side effects, physics agrees between backends, and
a model saved under one backend loads under another with the same outputs. Backends run
in subprocesses (KERAS_BACKEND is read once per process); a pair of backends that is not
installed is skipped with a reason."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def installed(package):
    """Whether a package (a backend's is named after it) can be imported here."""
    return importlib.util.find_spec(package) is not None


def run_under(backend, code, *args, **env):
    """Runs `code` (with sys.argv[1:] = args) in a fresh Python with KERAS_BACKEND=backend;
    returns its stdout."""
    environment = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT,
                       TF_CPP_MIN_LOG_LEVEL="3", **env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=ROOT,
                          env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def pair(first, second):
    missing = [b for b in (first, second) if not installed(b)]
    return pytest.mark.skipif(bool(missing), reason=f"needs {' and '.join(missing)}")


MODULES = sorted(f"diffnet_tf.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "diffnet_tf"))
                 if name.endswith(".py") and name != "__init__.py")
PROGRAMS = sorted(f"experiments.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "experiments"))
                  if name.endswith(".py") and name != "__init__.py")


def test_importing_any_module_leaves_xla_flags_and_the_matplotlib_backend_alone():
    """Quick (one fresh interpreter), so CI runs it in both environments: with TensorFlow,
    and on JAX without TensorFlow or tensorboard."""
    modules = [m for m in MODULES + PROGRAMS
               if m not in ("diffnet_tf.event_files", "diffnet_tf.summaries")
               or installed("tensorboard")]
    out = run_under(os.environ.get("KERAS_BACKEND", "tensorflow"), f"""
        import importlib, json, os
        import matplotlib
        for name in {modules!r}:
            importlib.import_module(name)
        print(json.dumps([os.environ.get("XLA_FLAGS"), matplotlib.get_backend()]))
    """, MPLBACKEND="svg", XLA_FLAGS="--xla_dump_hlo_as_text")
    assert json.loads(out.strip().splitlines()[-1]) == ["--xla_dump_hlo_as_text", "svg"]


PHYSICS = """
    import json, sys
    import numpy as np
    from keras import ops
    from diffnet_tf import physics
    u = np.random.default_rng(0).random((2, 13, 18, 1)).astype("float32")
    colour = np.random.default_rng(1).random((2, 11, 9, 3)).astype("float32")
    results = {
        "pm_neumann": physics.perona_malik(u, convention="neumann"),
        "pm_original": physics.perona_malik(u, convention="original"),
        "pm_shared": physics.perona_malik(colour, coupling="shared"),
        "pm_channelwise": physics.perona_malik(colour, coupling="channelwise"),
        "heat_exact": physics.heat(u, 1.0),
        "heat_explicit": physics.heat(u, 1.0, method="explicit"),
    }
    np.savez(sys.argv[1], **{k: ops.convert_to_numpy(v) for k, v in results.items()})
"""


@pytest.mark.slow  # fresh interpreters, one per backend
@pair("tensorflow", "jax")
def test_physics_under_jax_equals_physics_under_tensorflow(tmp_path):
    for backend in ("tensorflow", "jax"):
        run_under(backend, PHYSICS, tmp_path / f"{backend}.npz")
    tf, jax = np.load(tmp_path / "tensorflow.npz"), np.load(tmp_path / "jax.npz")
    for key in tf.files:
        np.testing.assert_allclose(jax[key], tf[key], atol=1e-6, err_msg=key)


SAVE = """
    import numpy as np
    from diffnet_tf.models import DiffNet, UNet
    model = {model}
    x = np.random.default_rng(0).random((2, 16, 16, {channels})).astype("float32")
    model(x)
    for weight in model.weights:
        weight.assign(np.random.default_rng(1).normal(0, 0.1, weight.shape).astype("float32"))
    model.save("{folder}/model.keras")
    np.save("{folder}/x.npy", x)
    np.save("{folder}/saved.npy", np.asarray(model(x)))
"""
LOAD = """
    import keras, numpy as np
    import diffnet_tf
    model = keras.saving.load_model("{folder}/model.keras")
    np.save("{folder}/loaded.npy", keras.ops.convert_to_numpy(model(np.load("{folder}/x.npy"))))
"""
MODELS = {
    "diffnet": ("DiffNet(num_layers=2, estimator_depth=2, width=4)", 1),
    "colour_diffnet": ("DiffNet(num_layers=2, estimator_depth=2, width=4, channels=3, "
                       "channel_mixing='full')", 3),
    "unet": ("UNet(base_filters=2, levels=3)", 1),
}


@pytest.mark.slow  # fresh interpreters, one per backend
@pytest.mark.parametrize("saved, loaded", [("jax", "tensorflow"), ("tensorflow", "jax")])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_saved_under_one_backend_loads_under_another(tmp_path, saved, loaded, name):
    missing = [b for b in (saved, loaded) if not installed(b)]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)}")
    model, channels = MODELS[name]
    run_under(saved, SAVE.format(model=model, channels=channels, folder=tmp_path))
    run_under(loaded, LOAD.format(folder=tmp_path))
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), np.load(tmp_path / "saved.npy"),
                               atol=1e-5)
