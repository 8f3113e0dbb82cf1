"""Models: DiffNet (Fig. 2) and the linear diffusion network (Fig. 1), for single-channel
images and, after Remark 4, multichannel (e.g. RGB) images; `build_model` makes the network
of a run spec (DiffNet, or the U-Net baseline of diffnet_tf/unet.py).

Only `keras.ops` is used, so the models run on the TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

from diffnet_tf import presets, protocols
from diffnet_tf.checks import check_float_dtype, check_image_batch_shape, check_integer
from diffnet_tf.layers import DiffusionLayer, LinearDiffusion
from diffnet_tf.unet import UNet


class DiffusionStack(keras.Model):
    """A stack of diffusion layers F_0 -> F_1 -> ... -> F_K with an optional final ReLU.

    The shared body of DiffNet and LinearDiffNet; subclasses fill `diffusion_layers`.
    There is no nonlinearity between the layers: the network is nonlinear by design
    (Sect. 4.3); the final ReLU projects onto non-negative images. The layers check
    `channels` and `channel_mixing` (Remark 4) when the subclass creates them.

    Call args:
        inputs: (B, H, W, C) float images F_0, C = `channels`.

    Returns:
        (B, H, W, C) images: relu(F_K) if `final_relu`, else F_K.
    """

    def __init__(self, final_relu=True, channels=1, channel_mixing="none", **kwargs):
        super().__init__(**kwargs)
        self.final_relu = final_relu
        self.channels = channels
        self.channel_mixing = channel_mixing
        self.diffusion_layers = []

    def build(self, input_shape):
        check_image_batch_shape(input_shape, channels=self.channels)
        for layer in self.diffusion_layers:
            layer.build(input_shape)

    def call(self, inputs):
        check_float_dtype(inputs.dtype)
        u = inputs
        for layer in self.diffusion_layers:
            u = layer(u)
        return ops.relu(u) if self.final_relu else u

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    @classmethod
    def from_preset(cls, name):
        """A trained model shipped with the package (`diffnet_tf.presets`), offline.

        Args:
            name: a name of `presets.list_presets()`, e.g. 'pm_inverse_noise0.01'.

        Returns:
            The trained model, an instance of this class.
        """
        model = presets.load(name)
        if not isinstance(model, cls):
            raise ValueError(f"Preset {name!r} is a {type(model).__name__}, not a {cls.__name__}.")
        return model

    def trace(self, x):
        """Runs the network on `x` and returns every intermediate quantity as NumPy.

        Args:
            x: (B, H, W, C) float images F_0.

        Returns:
            A dict with
              'states': list of K + 1 arrays (B, H, W, C), F_0..F_K (before the final ReLU);
              'filters': list of K arrays (B, H, W, M), zeta of each layer, grouped by
                stencil position k in the paper's order (top, left, bottom, right, centre):
                M = 5 for one channel; for C channels M = 5 C (channel_mixing 'none':
                position k of channel c is [..., k C + c]) or M = 5 C^2 ('full': position k
                of the stencil by which input channel d enters output channel c is
                [..., k C^2 + c C + d]);
              'dt': list of K floats, each layer's learned time step;
              'output': (B, H, W, C), the model's output.
        """
        u = ops.convert_to_tensor(x)
        check_image_batch_shape(u.shape, channels=self.channels)
        check_float_dtype(u.dtype)
        if not self.built:
            self.build(u.shape)
        states, filters = [u], []
        for layer in self.diffusion_layers:
            u, zeta = layer(u, return_filters=True)
            states.append(u)
            filters.append(zeta)
        output = ops.relu(u) if self.final_relu else u
        return {
            "states": [ops.convert_to_numpy(s) for s in states],
            "filters": [ops.convert_to_numpy(z) for z in filters],
            "dt": [float(ops.convert_to_numpy(layer.dt)) for layer in self.diffusion_layers],
            "output": ops.convert_to_numpy(output),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            final_relu=self.final_relu,
            channels=self.channels,
            channel_mixing=self.channel_mixing,
        )
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class DiffNet(DiffusionStack):
    """DiffNet: K nonlinear diffusion layers, each with its own filter estimator (Fig. 2).

    The paper's Perona-Malik network is DiffNet() (5 layers, 4-layer estimators, 101,310
    parameters = 5 x 20,261 + 5 dt); the disc deconvolution network is
    DiffNet(num_layers=3) (60,786). Fully convolutional: trained on one image size, it runs
    on any (H, W).

    Multichannel images (Remark 4): each layer's estimator reads all C channels and
    outputs 5 C maps (channel_mixing 'none': each channel diffuses on its own) or 5 C^2
    ('full': one stencil per pair of output and input channel); see
    `diffnet_tf.layers.FilterEstimator` for its parameter count. For RGB, with the
    default 5 layers of 4-layer, width-32 estimators:
        DiffNet(channels=3): 5 x 23,727 + 5 = 118,640 parameters;
        DiffNet(channels=3, channel_mixing="full"): 5 x 32,397 + 5 = 161,990.

    Args:
        num_layers: K, the number of diffusion layers.
        estimator_depth: convolutions in each filter estimator (Fig. 3).
        width: channels of the estimators' hidden convolutions.
        boundary: 'neumann' (eq. 4.5, default) or 'zero' (the released code).
        dt_init: initial learned time step of every layer.
        final_relu: project the output onto non-negative values.
        channels: C, the images' channels (3 for RGB).
        channel_mixing: 'none' or 'full' (Remark 4).
    """

    def __init__(
        self,
        num_layers=protocols.DIFFNET_LAYERS,
        estimator_depth=protocols.ESTIMATOR_DEPTH,
        width=protocols.ESTIMATOR_WIDTH,
        boundary="neumann",
        dt_init=protocols.DT_INIT,
        final_relu=True,
        channels=1,
        channel_mixing="none",
        **kwargs,
    ):
        super().__init__(
            final_relu=final_relu, channels=channels, channel_mixing=channel_mixing, **kwargs
        )
        check_integer(num_layers, "num_layers", 1)
        self.num_layers = num_layers
        self.estimator_depth = estimator_depth
        self.width = width
        self.boundary = boundary
        self.dt_init = dt_init
        self.diffusion_layers = [
            DiffusionLayer(
                estimator_depth=estimator_depth,
                width=width,
                boundary=boundary,
                dt_init=dt_init,
                channels=channels,
                channel_mixing=channel_mixing,
                name=f"diffusion_{k + 1}",
            )
            for k in range(num_layers)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            estimator_depth=self.estimator_depth,
            width=self.width,
            boundary=self.boundary,
            dt_init=self.dt_init,
        )
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class LinearDiffNet(DiffusionStack):
    """The linear diffusion network (Fig. 1): filters learned explicitly per pixel.

    Tied to one image size: each layer has 5 S H W parameters (4 S H W when `mean_free`)
    + dt, with S = 1 stencil per pixel for one channel and, for C channels (Remark 4),
    S = C (channel_mixing 'none') or S = C^2 ('full').

    Args:
        image_size: int n or (H, W).
        num_layers: number of linear diffusion layers.
        mean_free: centre filter = sum of the four neighbour filters (L_dt(gamma), eq. 4.4).
        boundary: 'neumann' or 'zero'.
        dt_init: initial learned time step of every layer.
        final_relu: project the output onto non-negative values.
        channels: C, the images' channels.
        channel_mixing: 'none' or 'full' (Remark 4).
    """

    def __init__(
        self,
        image_size,
        num_layers=3,
        mean_free=False,
        boundary="neumann",
        dt_init=protocols.DT_INIT,
        final_relu=False,
        channels=1,
        channel_mixing="none",
        **kwargs,
    ):
        super().__init__(
            final_relu=final_relu, channels=channels, channel_mixing=channel_mixing, **kwargs
        )
        check_integer(num_layers, "num_layers", 1)
        self.num_layers = num_layers
        self.mean_free = mean_free
        self.boundary = boundary
        self.dt_init = dt_init
        self.diffusion_layers = [
            LinearDiffusion(
                image_size,
                mean_free,
                boundary,
                dt_init,
                channels=channels,
                channel_mixing=channel_mixing,
                name=f"linear_{k + 1}",
            )
            for k in range(num_layers)
        ]
        self.image_size = self.diffusion_layers[0].image_size

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            num_layers=self.num_layers,
            mean_free=self.mean_free,
            boundary=self.boundary,
            dt_init=self.dt_init,
        )
        return config


def build_model(spec):
    """The network of a `spec.RunSpec`: its model section, with the data's channels.

    Returns:
        An unbuilt DiffNet or UNet.
    """
    model, channels = spec.model, spec.data.channels
    if model.kind == "unet":
        return UNet(base_filters=model.unet_filters, levels=model.unet_levels,
                    final_relu=model.final_relu, channels=channels)
    return DiffNet(num_layers=model.num_layers, estimator_depth=model.estimator_depth,
                   width=model.width, boundary=model.boundary, dt_init=model.dt_init,
                   final_relu=model.final_relu, channels=channels,
                   channel_mixing=model.channel_mixing or "none")
