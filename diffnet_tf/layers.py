"""DiffNet's layers: the filter estimator CNN, the nonlinear diffusion layer and the linear
diffusion layer with explicitly learned filters (Sect. 4.3, Figs. 1-3), for single-channel
and, after Remark 4, multichannel (e.g. RGB) images.

Multichannel images (C channels, `channel_mixing`):
    'none': each channel diffuses on its own with its own five maps: 5 C maps per layer;
    'full': the filters are a tensor that mixes channels, one 5-point stencil per pair of
        output and input channel: 5 C^2 maps per layer.
The layout of the maps is `diffnet_tf.stencil.apply_stencil`'s.

Only `keras.ops` is used, so the layers run on the TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

from diffnet_tf import protocols
from diffnet_tf.checks import (BOUNDARIES, check_choice, check_float_dtype,
                               check_image_batch_shape, check_integer, check_number)
from diffnet_tf.stencil import apply_stencil, num_filter_maps

NUM_FILTERS = 5  # zeta_1..zeta_5: top, left, bottom, right, centre (eq. 4.7)


def _check_channels(channels, channel_mixing):
    """Checks the multichannel arguments; returns the filter maps per layer (5 C or 5 C^2)."""
    check_integer(channels, "channels", 1)
    return num_filter_maps(channels, channel_mixing)


@keras.saving.register_keras_serializable(package="diffnet_tf")
class FilterEstimator(keras.layers.Layer):
    """The K-layer CNN that estimates the filter maps zeta from an image (Fig. 3).

    K - 1 convolutions with `width` channels, 'same' padding, bias and ReLU, then one
    convolution to `maps` channels without activation. With 3x3 kernels, width w, C input
    channels and M maps (K >= 2) it has

        9 * (C w + w^2 (K - 2) + w M) + w (K - 1) + M

    parameters, whatever the image size. The paper's single-channel estimator (C = 1,
    M = 5, w = 32; Sect. 4.3.1) has 29,509 (K = 5) or 20,261 (K = 4); for RGB (C = 3,
    K = 4, Remark 4) 23,727 with M = 15 (channel_mixing 'none') and 32,397 with M = 45
    ('full').

    Args:
        depth: K, the number of convolutions (>= 1).
        width: channels of the hidden convolutions.
        kernel_size: side of the square kernels (odd).
        maps: output channels: 5 (one channel), 5 C or 5 C^2 (Remark 4).

    Call args:
        inputs: (B, H, W, C) float image; C is taken from the build shape.

    Returns:
        (B, H, W, maps) filter maps in `diffnet_tf.stencil.apply_stencil`'s layout (five
        per stencil: top, left, bottom, right, centre).
    """

    def __init__(self, depth=protocols.ESTIMATOR_DEPTH, width=protocols.ESTIMATOR_WIDTH,
                 kernel_size=protocols.KERNEL_SIZE, maps=NUM_FILTERS, **kwargs):
        super().__init__(**kwargs)
        check_integer(depth, "depth", 1)
        check_integer(width, "width", 1)
        check_integer(kernel_size, "kernel_size", 1)
        check_integer(maps, "maps", 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd kernel_size. Received {kernel_size}.")
        self.depth = depth
        self.width = width
        self.kernel_size = kernel_size
        self.maps = maps
        self.convolutions = [
            keras.layers.Conv2D(
                width if k < depth - 1 else maps,
                kernel_size,
                padding="same",
                activation="relu" if k < depth - 1 else None,
                name=f"conv_{k + 1}",
            )
            for k in range(depth)
        ]

    def build(self, input_shape):
        check_image_batch_shape(input_shape, channels=None)
        shape = tuple(input_shape)
        for conv in self.convolutions:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, inputs):
        x = inputs
        for conv in self.convolutions:
            x = conv(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.maps,)

    def get_config(self):
        config = super().get_config()
        config.update(
            depth=self.depth, width=self.width, kernel_size=self.kernel_size, maps=self.maps
        )
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class DiffusionLayer(keras.layers.Layer):
    """One nonlinear DiffNet layer (Fig. 2): estimate zeta from F_{k-1}, then update.

        zeta = FilterEstimator(F_{k-1})
        F_k = F_{k-1} + dt * (z1 u_N + z2 u_W + z3 u_S + z4 u_E - z5 u)   # eqs. (4.6), (4.7)

    with a learned scalar time step dt. For C channels (Remark 4) the estimator reads all
    C channels and the update is channelwise (channel_mixing 'none') or coupled ('full'):

        F_k^c = F_{k-1}^c + dt * sum_d (z1^cd u^d_N + z2^cd u^d_W + z3^cd u^d_S
                                        + z4^cd u^d_E - z5^cd u^d)    # eq. (4.6), Remark 4

    Args:
        estimator_depth: K of the filter estimator.
        width: channels of the estimator's hidden convolutions.
        kernel_size: the estimator's kernel side.
        boundary: 'neumann' (eq. 4.5) or 'zero' (the released code).
        dt_init: initial value of the learned time step (0.2 in the released code).
        channels: C, the image's channels.
        channel_mixing: 'none' (5 C filter maps) or 'full' (5 C^2).

    Call args:
        inputs: (B, H, W, C) float image F_{k-1}.
        return_filters: also return the filter maps.

    Returns:
        (B, H, W, C) image F_k, or (F_k, zeta (B, H, W, 5 C or 5 C^2)) if
        `return_filters`, zeta in `diffnet_tf.stencil.apply_stencil`'s layout.
    """

    def __init__(
        self,
        estimator_depth=protocols.ESTIMATOR_DEPTH,
        width=protocols.ESTIMATOR_WIDTH,
        kernel_size=protocols.KERNEL_SIZE,
        boundary="neumann",
        dt_init=protocols.DT_INIT,
        channels=1,
        channel_mixing="none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.estimator_depth = estimator_depth
        self.width = width
        self.kernel_size = kernel_size
        self.boundary = check_choice(boundary, BOUNDARIES, "boundary")
        check_number(dt_init, "dt_init", positive=True)
        self.dt_init = dt_init
        maps = _check_channels(channels, channel_mixing)
        self.channels = channels
        self.channel_mixing = channel_mixing
        self.estimator = FilterEstimator(
            estimator_depth, width, kernel_size, maps=maps, name="estimator"
        )

    def build(self, input_shape):
        check_image_batch_shape(input_shape, channels=self.channels)
        self.estimator.build(input_shape)
        self.dt = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.dt_init), name="dt"
        )

    def call(self, inputs, return_filters=False):
        check_float_dtype(inputs.dtype)
        zeta = self.estimator(inputs)
        outputs = apply_stencil(inputs, zeta, self.dt, self.boundary)
        return (outputs, zeta) if return_filters else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            estimator_depth=self.estimator_depth,
            width=self.width,
            kernel_size=self.kernel_size,
            boundary=self.boundary,
            dt_init=self.dt_init,
            channels=self.channels,
            channel_mixing=self.channel_mixing,
        )
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class LinearDiffusion(keras.layers.Layer):
    """A linear diffusion layer with explicitly learned per-pixel filters (Fig. 1).

        F_k = F_{k-1} + dt * (g1 u_N + g2 u_W + g3 u_S + g4 u_E - g5 u)   # eq. (4.6)

    The filters do not depend on the image, so the layer is linear and tied to one image
    size: 5 H W parameters (4 H W when `mean_free`, where g5 = g1 + g2 + g3 + g4 as in
    L_dt(gamma), eq. 4.4), plus dt. Filters start at zero: the layer starts as the identity.
    For C channels (Remark 4) there are S = C stencils per pixel (channel_mixing 'none')
    or S = C^2 ('full'), so 5 S H W parameters (4 S H W when `mean_free`, each stencil's
    centre the sum of its four neighbour maps), plus dt.

    Args:
        image_size: int n (an n x n image) or (H, W).
        mean_free: learn only the four neighbour maps and set the centre to their sum.
        boundary: 'neumann' (eq. 4.5) or 'zero'.
        dt_init: initial value of the learned time step.
        channels: C, the image's channels.
        channel_mixing: 'none' (C stencils) or 'full' (C^2 stencils).

    Call args:
        inputs: (B, H, W, C) float image of exactly `image_size`.
        return_filters: also return the filter maps, broadcast over the batch.

    Returns:
        (B, H, W, C) image, or (image, filters (B, H, W, 5 S)) if `return_filters`, in
        `diffnet_tf.stencil.apply_stencil`'s layout.
    """

    def __init__(
        self,
        image_size,
        mean_free=False,
        boundary="neumann",
        dt_init=protocols.DT_INIT,
        channels=1,
        channel_mixing="none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(
                f"Expected image_size to be a positive int or a pair (H, W). "
                f"Received {image_size!r}."
            )
        check_number(dt_init, "dt_init", positive=True)
        self.image_size = size
        self.mean_free = mean_free
        self.boundary = check_choice(boundary, BOUNDARIES, "boundary")
        self.dt_init = dt_init
        self.stencils = _check_channels(channels, channel_mixing) // NUM_FILTERS
        self.channels = channels
        self.channel_mixing = channel_mixing

    def build(self, input_shape):
        check_image_batch_shape(input_shape, channels=self.channels)
        if tuple(input_shape[1:3]) != self.image_size:
            raise ValueError(
                f"LinearDiffusion learns filters for one image size: expected images of "
                f"size (H, W) = {self.image_size}. Received shape {tuple(input_shape)}."
            )
        learned = NUM_FILTERS - 1 if self.mean_free else NUM_FILTERS
        self.filters = self.add_weight(
            shape=self.image_size + (learned * self.stencils,),
            initializer="zeros",
            name="filters",
        )
        self.dt = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.dt_init), name="dt"
        )

    def stencil_filters(self):
        """The filter maps (H, W, 5 S), with each centre filled in when mean-free."""
        if not self.mean_free:
            return self.filters
        neighbour_maps = ops.reshape(self.filters, self.image_size + (4, self.stencils))
        centre = ops.sum(neighbour_maps, axis=-2, keepdims=True)  # L_dt(gamma), eq. (4.4)
        maps = ops.concatenate([neighbour_maps, centre], axis=-2)  # grouped by position
        return ops.reshape(maps, self.image_size + (NUM_FILTERS * self.stencils,))

    def call(self, inputs, return_filters=False):
        check_float_dtype(inputs.dtype)
        zeta = self.stencil_filters()[None]
        outputs = apply_stencil(inputs, zeta, self.dt, self.boundary)
        if not return_filters:
            return outputs
        return outputs, ops.broadcast_to(zeta, ops.shape(inputs)[:1] + zeta.shape[1:])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            mean_free=self.mean_free,
            boundary=self.boundary,
            dt_init=self.dt_init,
            channels=self.channels,
            channel_mixing=self.channel_mixing,
        )
        return config
