"""Models: the paper's parameter counts, Keras round trips (also in a fresh process),
training with fit, any image size, distribution, and input errors; for one channel and for
RGB (Remark 4)."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from diffnet_tf import physics
from diffnet_tf.models import DiffNet, LinearDiffNet, UNet
from diffnet_tf.stencil import apply_stencil


def count(model, shape=(None, 32, 32, 1)):
    model.build(shape)
    return model.count_params()


def test_parameter_counts_match_the_paper():
    assert count(DiffNet()) == 101_310  # Sect. 5.2: 5 layers, 4-layer estimators
    assert count(DiffNet(num_layers=3)) == 60_786  # Sect. 5.1, discs
    assert count(UNet()) == 34_512_705  # Sect. 6


def test_rgb_parameter_counts_are_the_documented_ones():
    rgb = (None, 32, 32, 3)
    # Five estimators of 9 (3 * 32 + 32^2 * 2 + 32 M) + 32 * 3 + M parameters, plus 5 dt.
    assert count(DiffNet(channels=3), rgb) == 5 * 23_727 + 5 == 118_640  # M = 15
    assert count(DiffNet(channels=3, channel_mixing="full"), rgb) == 161_990  # M = 45
    assert 161_990 == 5 * (9 * (3 * 32 + 32**2 * 2 + 32 * 45) + 32 * 3 + 45) + 5
    # Linear: 9 stencils of 5 maps per pixel (full mixing) plus dt, per layer.
    linear = LinearDiffNet(16, num_layers=2, channels=3, channel_mixing="full")
    assert count(linear, (None, 16, 16, 3)) == 2 * (9 * 5 * 16 * 16 + 1)
    # Two more channels in the U-Net's first convolution and in its output convolution.
    assert count(UNet(channels=3), rgb) == 34_512_705 + 2 * (9 * 64 + 9 * 64 + 1)


def smooth_images(n, size, seed=0, channels=1):
    """Random images with structure at several scales, each channel's max 1."""
    shape = (n * channels, size, size, 1)
    noise = np.random.default_rng(seed).random(shape).astype(np.float32)
    x = ops.convert_to_numpy(physics.heat(noise, 2.0))
    x = x - x.min(axis=(1, 2, 3), keepdims=True)
    x = x / x.max(axis=(1, 2, 3), keepdims=True)
    return np.ascontiguousarray(x.reshape(n, channels, size, size).transpose(0, 2, 3, 1))


def perturb(model):
    for weight in model.weights:
        weight.assign(weight + np.random.default_rng(0).normal(0, 0.05, weight.shape))


MODEL_FACTORIES = [
    (lambda: DiffNet(num_layers=2, estimator_depth=3, width=8, boundary="zero"), 1),
    (lambda: LinearDiffNet((16, 16), num_layers=2, mean_free=True), 1),
    (lambda: UNet(base_filters=4, levels=3), 1),
    (lambda: DiffNet(2, 2, 4, channels=3, channel_mixing="full"), 3),
    (lambda: LinearDiffNet(16, 2, mean_free=True, channels=3, channel_mixing="full"), 3),
    (lambda: UNet(base_filters=4, levels=3, channels=3), 3),
]


@pytest.mark.parametrize("make_model, channels", MODEL_FACTORIES)
def test_models_round_trip_config_and_keras_file(make_model, channels, tmp_path):
    model = make_model()
    x = smooth_images(2, 16, channels=channels)
    model(x)
    perturb(model)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    path = tmp_path / "model.keras"
    model.save(path)
    np.testing.assert_allclose(ops.convert_to_numpy(keras.saving.load_model(path)(x)),
                               ops.convert_to_numpy(model(x)), atol=1e-6)


def outputs_in_a_fresh_process(model, x, tmp_path):
    """Saves `model`, loads it in a new Python process and returns its outputs on `x`."""
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import diffnet_tf  # registers the classes
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "y.npy")!r}, keras.ops.convert_to_numpy(model(x)))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return np.load(tmp_path / "y.npy")


@pytest.mark.slow
def test_saved_diffnet_loads_in_a_fresh_process(tmp_path):
    model = DiffNet(num_layers=2, estimator_depth=2, width=4)
    x = smooth_images(2, 12)
    model(x)
    perturb(model)
    np.testing.assert_allclose(outputs_in_a_fresh_process(model, x, tmp_path),
                               ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("mixing", ["none", "full"])
def test_rgb_diffnet_trains_and_reloads_in_a_fresh_process_on_another_size(mixing, tmp_path):
    keras.utils.set_random_seed(0)
    y = smooth_images(16, 12, channels=3)
    x = y + np.random.default_rng(1).normal(0, 0.05, y.shape).astype(np.float32)
    model = DiffNet(num_layers=2, estimator_depth=2, width=8, channels=3, channel_mixing=mixing)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    losses = model.fit(x, y, batch_size=8, epochs=5, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    other_size = smooth_images(2, 20, seed=2, channels=3)[:, :10]
    reloaded = outputs_in_a_fresh_process(model, other_size, tmp_path)
    assert reloaded.shape == (2, 10, 20, 3)
    np.testing.assert_allclose(reloaded, ops.convert_to_numpy(model(other_size)), atol=1e-6)


def heat_inverse_problem(n=32, size=16):
    target = smooth_images(n, size)
    return ops.convert_to_numpy(physics.heat(target, 0.5)), target


def small_diffnet():
    model = DiffNet(num_layers=2, estimator_depth=2, width=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    return model


@pytest.mark.slow
def test_diffnet_learns_with_fit_on_numpy_arrays():
    keras.utils.set_random_seed(0)
    x, y = heat_inverse_problem()
    history = small_diffnet().fit(x, y, batch_size=8, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_diffnet_learns_with_fit_on_a_tf_data_dataset():
    keras.utils.set_random_seed(0)
    tf = pytest.importorskip("tensorflow", reason="tf.data needs TensorFlow")
    x, y = heat_inverse_problem()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=0).batch(8)
    history = small_diffnet().fit(dataset, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_diffnet_trained_on_32x32_runs_on_40x56_and_is_translation_consistent():
    keras.utils.set_random_seed(0)
    x, y = heat_inverse_problem(16, 32)
    model = small_diffnet()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    big = smooth_images(2, 56)[:, :40]
    out = ops.convert_to_numpy(model(big))
    assert out.shape == (2, 40, 56, 1) and np.isfinite(out).all()
    # Fully convolutional: a crop's interior agrees with the interior of the whole image.
    # Each layer sees (estimator_depth + 1) pixels further, so 2 x 3 pixels are affected.
    crop = ops.convert_to_numpy(model(big[:, 8:32, 8:40]))
    np.testing.assert_allclose(crop[:, 6:-6, 6:-6], out[:, 14:26, 14:34], atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="MirroredStrategy needs the TensorFlow backend"
)
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
    np.testing.assert_allclose(trace["output"], ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize("mixing, maps", [("none", 15), ("full", 45)])
def test_rgb_trace_filters_hold_5c_or_5c2_maps_that_give_the_next_state(mixing, maps):
    model = DiffNet(num_layers=2, estimator_depth=2, width=4, channels=3, channel_mixing=mixing)
    x = smooth_images(2, 12, channels=3)
    trace = model.trace(x)
    assert [z.shape for z in trace["filters"]] == [(2, 12, 12, maps)] * 2
    for k, (zeta, dt) in enumerate(zip(trace["filters"], trace["dt"])):
        expected = ops.convert_to_numpy(apply_stencil(trace["states"][k], zeta, dt))
        np.testing.assert_allclose(trace["states"][k + 1], expected, atol=1e-6)
    np.testing.assert_allclose(trace["output"], ops.convert_to_numpy(model(x)), atol=1e-6)


def test_rgb_unet_keeps_the_residual_connection():
    model = UNet(base_filters=4, levels=3, final_relu=False, channels=3)
    x = smooth_images(2, 16, channels=3)
    assert model(x).shape == x.shape
    for weight in model.output_conv.weights:  # the U-Net's own contribution is now zero
        weight.assign(np.zeros(weight.shape))
    np.testing.assert_array_equal(ops.convert_to_numpy(model(x)), x)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DiffNet()(np.zeros((8, 96, 96), np.float32)), r"\(B, H, W, 1\).*Received shape \(8, 96, 96\)"),
        (lambda: DiffNet()(np.zeros((8, 96, 96, 3), np.float32)), r"wrong channels.*\(8, 96, 96, 3\)"),
        (lambda: DiffNet()(np.zeros((2, 8, 8, 1), np.int32)), "floating-point dtype.*int32"),
        (lambda: DiffNet(boundary="reflect"), "Unknown boundary 'reflect'"),
        (lambda: DiffNet(num_layers=0), "num_layers to be an integer >= 1"),
        (lambda: UNet()(np.zeros((1, 40, 56, 1), np.float32)), r"divisible by 16.*\(1, 40, 56, 1\)"),
        (lambda: UNet(levels=3)(np.zeros((1, 16, 18, 1), np.float32)), "divisible by 4"),
        (lambda: DiffNet().trace(np.zeros((2, 8, 8, 2), np.float32)), "wrong channels"),
        (lambda: DiffNet(channels=3)(np.zeros((2, 8, 8, 1), np.float32)), r"\(B, H, W, 3\).*Received shape \(2, 8, 8, 1\)"),
        (lambda: DiffNet(channels=3).trace(np.zeros((2, 8, 8, 4), np.float32)), r"wrong channels.*\(2, 8, 8, 4\)"),
        (lambda: UNet(levels=3, channels=3)(np.zeros((1, 16, 16, 1), np.float32)), r"\(B, H, W, 3\).*\(1, 16, 16, 1\)"),
        (lambda: DiffNet(channel_mixing="partial"), "Unknown channel_mixing 'partial'"),
        (lambda: LinearDiffNet(8, channel_mixing="diagonal"), "Unknown channel_mixing 'diagonal'"),
        (lambda: DiffNet(channels=0), "channels to be an integer >= 1. Received 0"),
        (lambda: LinearDiffNet(8, channels="3"), "channels to be an integer >= 1. Received '3'"),
        (lambda: UNet(channels=0), "channels to be an integer >= 1. Received 0"),
    ],
)
def test_bad_input_raises_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("make_model", [
    lambda: DiffNet(num_layers=2, estimator_depth=2, width=4),
    lambda: DiffNet(num_layers=1, estimator_depth=2, width=4, channels=3, channel_mixing="full"),
])
def test_diffnet_predicts_on_images_of_many_sizes_in_one_session(make_model):
    """Keras relaxes a traced function's input shape to unknown sizes after a few calls with
    different sizes: the stencil must not need them."""
    model = make_model()
    channels = model.channels
    for height, width in [(12, 12), (16, 20), (9, 31), (24, 8), (13, 13)]:
        x = np.random.default_rng(height).random((1, height, width, channels)).astype("float32")
        np.testing.assert_allclose(ops.convert_to_numpy(model.predict_on_batch(x)),
                                   ops.convert_to_numpy(model(x)), atol=1e-5)
