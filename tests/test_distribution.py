"""Several devices for one run: each strategy trains with the one-device losses (values and
gradients), an indivisible last batch included, and a strategy that cannot run here is one
clear error. Device counts are fixed before a backend starts, so the trainings run in
subprocesses on 2 virtual CPU devices."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from absl import app

from diffnet_tf import distribution
from diffnet_tf.cli import arguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 35 training pairs in batches of 16 leave 3, and 5 validation pairs make one batch of 5:
# neither divides 2 devices. fit(name) trains a tiny DiffNet under distribution.strategy(name)
# (or a strategy object) and returns its per-epoch logs and training.json's devices.
TRAINING = """
import json, sys
import keras, numpy as np
from diffnet_tf import distribution, physics, spec, training
from diffnet_tf.pairs import RunPairs

target = np.random.default_rng(0).random((40, 16, 16, 1)).astype(np.float32)
target = np.array(physics.heat(target, 1.0))
inputs = np.array(physics.perona_malik(target))
PAIRS = RunPairs((inputs[:35], target[:35]), (inputs[35:], target[35:]),
                 (inputs[35:], target[35:]))
SPEC = spec.protocol("perona_malik").replace(
    data=dict(source="synthetic", image_size=16, train_size=35, val_size=5, test_size=5),
    model=dict(num_layers=2, estimator_depth=2, width=4),
    train=dict(epochs=3, batch_size=16, lr_init=1e-2, lr_final=1e-3))


class Logs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(logs[k]) for k in ("loss", "val_loss")})


def fit(strategy, folder):
    logs = Logs()
    strategy = distribution.strategy(strategy) if isinstance(strategy, str) else strategy
    model, summary, _ = training.fit(SPEC, PAIRS, folder, verbose=0, callbacks=[logs],
                                     strategy=strategy)
    return model, {"epochs": logs.epochs, "devices": summary["devices"]}
"""


def run_script(code, tmp_path, setup="", **env):
    """Runs `setup`, TRAINING and `code` in a fresh Python (sys.argv[1] = tmp_path;
    stdout's last line is JSON); returns the JSON."""
    environment = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", **env)
    script = textwrap.dedent(setup) + TRAINING + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)],
                          cwd=ROOT, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def assert_same_losses(one, several, rtol):
    assert several["devices"] == 2 and one["devices"] == 1
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose([e[name] for e in several["epochs"]],
                                   [e[name] for e in one["epochs"]], rtol=rtol, err_msg=name)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_data_parallel_on_two_jax_devices_trains_with_the_one_device_losses(tmp_path):
    result = run_script("""
        import jax
        asked = []  # the batch sizes whose layout the distribution gave, and how
        get_layout = distribution.ReplicatedRemainder.get_data_layout
        def recorded(self, shape):
            layout = get_layout(self, shape)
            asked.append((shape[0], layout.axes[0]))
            return layout
        distribution.ReplicatedRemainder.get_data_layout = recorded
        model, one = fit("default", sys.argv[1] + "/one")
        outputs = model.predict(PAIRS.test[0], verbose=0)
        model, several = fit("data_parallel", sys.argv[1] + "/several")
        print(json.dumps({"one": one, "several": several, "devices": jax.device_count(),
                          "asked": sorted(set(asked)),
                          "predicted": float(np.abs(model.predict(PAIRS.test[0], verbose=0)
                                                    - outputs).max())}))
    """, tmp_path, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert result["devices"] == 2
    assert_same_losses(result["one"], result["several"], rtol=1e-6)
    # whole batches sharded over the devices, the indivisible ones replicated on each
    assert result["asked"] == [[3, None], [5, None], [16, "batch"]]
    assert result["predicted"] < 1e-5  # the trained model predicts outside the scope


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")
def test_mirrored_on_two_cpus_gives_the_one_device_losses_and_gradients(tmp_path):
    result = run_script("""
        from diffnet_tf.losses import LOSSES
        # 35 training pairs, shuffled: 8 + 8 per replica twice, then 2 + 1; 6 validation
        # pairs, 3 + 3 (Keras needs first batches that split evenly)
        PAIRS = RunPairs(PAIRS.train, (inputs[34:], target[34:]), PAIRS.test)
        mirrored = distribution.strategy("mirrored", ["/cpu:0", "/cpu:1"])  # one per process

        def gradients(strategy, loss):
            # SGD at rate 1 over 19 pairs in batches of 16 (8 + 8 per replica, then 2 + 1,
            # in order): the weights move by minus the sum of the two steps' gradients.
            keras.utils.set_random_seed(1)
            with strategy.scope():
                model = keras.Sequential([keras.Input((16, 16, 1)),
                                          keras.layers.Conv2D(1, 3, padding="same")])
                model.compile(optimizer=keras.optimizers.SGD(1.0), loss=LOSSES[loss])
                before = [w.numpy() for w in model.trainable_weights]
                data = tf.data.Dataset.from_tensor_slices((inputs[:19], target[:19])).batch(16)
                loss = model.fit(data, verbose=0).history["loss"][0]
            return loss, [(b - w.numpy()).tolist() for b, w in zip(before, model.trainable_weights)]

        one, several = fit("default", sys.argv[1] + "/one")[1], fit(mirrored, sys.argv[1] + "/two")[1]
        print(json.dumps({"one": one, "several": several, "steps": [
            [gradients(tf.distribute.get_strategy(), loss), gradients(mirrored, loss)]
            for loss in ("l2norm", "mse")]}))
    """, tmp_path, setup="""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    """, KERAS_BACKEND="tensorflow")
    assert_same_losses(result["one"], result["several"], rtol=1e-5)
    for (one_loss, one_steps), (loss, steps) in result["steps"]:  # l2norm, mse
        np.testing.assert_allclose(loss, one_loss, rtol=1e-5)
        for step, one_step in zip(steps, one_steps):
            np.testing.assert_allclose(step, one_step, rtol=1e-5,
                                       atol=1e-5 * np.abs(one_step).max())


def test_default_is_one_device_and_an_unknown_strategy_is_named():
    assert distribution.strategy("default") is None and distribution.device_count(None) == 1
    with pytest.raises(ValueError, match="Unknown strategy 'ring'. Expected one of 'default', "
                                         "'mirrored', 'data_parallel'"):
        distribution.strategy("ring")


@pytest.mark.parametrize("name, expected", [("mirrored", "tensorflow"), ("data_parallel", "jax")])
def test_a_strategy_of_another_backend_is_one_clear_error(monkeypatch, name, expected):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    message = (f"Expected the {expected} backend for the strategy '{name}' "
               f"\\(KERAS_BACKEND={expected}\\). Received the torch backend.")
    with pytest.raises(ValueError, match=message):
        distribution.strategy(name)
    with pytest.raises(app.UsageError, match=f"--strategy={name}: {message}"):
        arguments.strategy(name)


def test_data_parallel_over_several_jax_hosts_is_refused(monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(ValueError, match="Expected one host for the strategy 'data_parallel'.*"
                                         "Received 2 JAX processes; use --executor=ray or "
                                         "--executor=slurm"):
        distribution.strategy("data_parallel")


def test_mirrored_replicas_must_share_the_first_batches_equally():
    class Mirrored:  # what check_first_batches reads of a MirroredStrategy
        num_replicas_in_sync = 2

    distribution.check_first_batches(Mirrored(), {"training": 16, "validation": 6})
    distribution.check_first_batches(None, {"training": 5})
    with pytest.raises(ValueError, match="Expected first batches that the 2 replicas of the "
                                         "strategy 'mirrored' share equally.*Received a first "
                                         "batch of 5 validation images: choose"):
        distribution.check_first_batches(Mirrored(), {"training": 16, "validation": 5})


def test_replicas_outside_a_strategy_are_one_and_their_sum_the_value():
    assert distribution.replica_count() == 1
    assert distribution.replica_sum(3.0) == 3.0
