"""Models: the paper's parameter counts, Keras round trips (also in a fresh process),
training with fit, any image size, distribution, and input errors."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from diffnet_tf import physics
from diffnet_tf.models import DiffNet, LinearDiffNet, UNet


def count(model, shape=(None, 32, 32, 1)):
    model.build(shape)
    return model.count_params()


def test_parameter_counts_match_the_paper():
    assert count(DiffNet()) == 101_310  # Sect. 5.2: 5 layers, 4-layer estimators
    assert count(DiffNet(num_layers=3)) == 60_786  # Sect. 5.1, discs
    assert count(UNet()) == 34_512_705  # Sect. 6


def smooth_images(n, size, seed=0):
    """Random images with structure at several scales, max 1."""
    noise = np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)
    x = np.asarray(physics.heat(noise, 2.0))
    x = x - x.min(axis=(1, 2, 3), keepdims=True)
    return x / x.max(axis=(1, 2, 3), keepdims=True)


def perturb(model):
    for weight in model.weights:
        weight.assign(weight + np.random.default_rng(0).normal(0, 0.05, weight.shape))


MODEL_FACTORIES = [
    lambda: DiffNet(num_layers=2, estimator_depth=3, width=8, boundary="zero"),
    lambda: LinearDiffNet((16, 16), num_layers=2, mean_free=True),
    lambda: UNet(base_filters=4, levels=3),
]


@pytest.mark.parametrize("make_model", MODEL_FACTORIES)
def test_models_round_trip_config_and_keras_file(make_model, tmp_path):
    model = make_model()
    x = smooth_images(2, 16)
    model(x)
    perturb(model)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    path = tmp_path / "model.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=1e-6)


def test_saved_diffnet_loads_in_a_fresh_process(tmp_path):
    model = DiffNet(num_layers=2, estimator_depth=2, width=4)
    x = smooth_images(2, 12)
    model(x)
    perturb(model)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import diffnet_tf  # registers the classes
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        np.save({str(tmp_path / "y.npy")!r}, np.asarray(model(np.load({str(tmp_path / "x.npy")!r}))))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(x), atol=1e-6)


def heat_inverse_problem(n=32, size=16):
    target = smooth_images(n, size)
    return np.asarray(physics.heat(target, 0.5)), target


def small_diffnet():
    model = DiffNet(num_layers=2, estimator_depth=2, width=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    return model


def test_diffnet_learns_with_fit_on_numpy_arrays():
    keras.utils.set_random_seed(0)
    x, y = heat_inverse_problem()
    history = small_diffnet().fit(x, y, batch_size=8, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_diffnet_learns_with_fit_on_a_tf_data_dataset():
    keras.utils.set_random_seed(0)
    x, y = heat_inverse_problem()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=0).batch(8)
    history = small_diffnet().fit(dataset, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_diffnet_trained_on_32x32_runs_on_40x56_and_is_translation_consistent():
    keras.utils.set_random_seed(0)
    x, y = heat_inverse_problem(16, 32)
    model = small_diffnet()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    big = smooth_images(2, 56)[:, :40]
    out = np.asarray(model(big))
    assert out.shape == (2, 40, 56, 1) and np.isfinite(out).all()
    # Fully convolutional: a crop's interior agrees with the interior of the whole image.
    # Each layer sees (estimator_depth + 1) pixels further, so 2 x 3 pixels are affected.
    crop = np.asarray(model(big[:, 8:32, 8:40]))
    np.testing.assert_allclose(crop[:, 6:-6, 6:-6], out[:, 14:26, 14:34], atol=1e-5)


def test_diffnet_trains_under_mirrored_strategy_on_two_logical_cpus():
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from diffnet_tf.models import DiffNet
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            model = DiffNet(num_layers=2, estimator_depth=2, width=4)
            model.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(0).random((16, 12, 12, 1)).astype("float32")
        history = model.fit(x, x, batch_size=8, epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        print("replicas", strategy.num_replicas_in_sync)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout


def test_trace_returns_states_filters_and_dt_consistent_with_the_output():
    model = DiffNet(num_layers=3, estimator_depth=2, width=4, dt_init=0.1)
    x = smooth_images(2, 12)
    trace = model.trace(x)
    assert len(trace["states"]) == 4 and len(trace["filters"]) == 3
    assert trace["filters"][0].shape == (2, 12, 12, 5)
    np.testing.assert_allclose(trace["states"][0], x)
    np.testing.assert_allclose(trace["dt"], [0.1] * 3, rtol=1e-6)
    np.testing.assert_allclose(trace["output"], np.maximum(trace["states"][-1], 0), atol=1e-7)
    np.testing.assert_allclose(trace["output"], model(x), atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DiffNet()(np.zeros((8, 96, 96), np.float32)), r"\(B, H, W, 1\).*Received shape \(8, 96, 96\)"),
        (lambda: DiffNet()(np.zeros((8, 96, 96, 3), np.float32)), r"wrong channels.*\(8, 96, 96, 3\)"),
        (lambda: DiffNet()(np.zeros((2, 8, 8, 1), np.int64)), "floating-point dtype.*int64"),
        (lambda: DiffNet(boundary="reflect"), "Unknown boundary 'reflect'"),
        (lambda: DiffNet(num_layers=0), "num_layers to be an integer >= 1"),
        (lambda: UNet()(np.zeros((1, 40, 56, 1), np.float32)), r"divisible by 16.*\(1, 40, 56, 1\)"),
        (lambda: UNet(levels=3)(np.zeros((1, 16, 18, 1), np.float32)), "divisible by 4"),
        (lambda: DiffNet().trace(np.zeros((2, 8, 8, 2), np.float32)), "wrong channels"),
    ],
)
def test_bad_input_raises_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
