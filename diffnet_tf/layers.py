"""DiffNet's layers: the filter estimator CNN, the nonlinear diffusion layer and the linear
diffusion layer with explicitly learned filters (Sect. 4.3, Figs. 1-3).

Only `keras.ops` is used, so the layers run on the TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

from diffnet_tf.checks import (
    BOUNDARIES,
    check_choice,
    check_float_dtype,
    check_image_batch_shape,
)
from diffnet_tf.stencil import apply_stencil

NUM_FILTERS = 5  # zeta_1..zeta_5: top, left, bottom, right, centre (eq. 4.7)


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}. Received {value!r}.")


def _check_dt_init(dt_init):
    if not dt_init > 0:
        raise ValueError(f"Expected dt_init > 0. Received dt_init={dt_init!r}.")


@keras.saving.register_keras_serializable(package="diffnet_tf")
class FilterEstimator(keras.layers.Layer):
    """The K-layer CNN that estimates the five filter maps zeta from an image (Fig. 3).

    K - 1 convolutions with `width` channels, 'same' padding, bias and ReLU, then one
    convolution to five channels without activation. With 3x3 kernels it has
    9 * (32 + 32 * 5 + 32^2 * (K - 2)) + 32 * (K - 1) + 5 parameters (Sect. 4.3.1):
    K = 5: 29,509; K = 4: 20,261, whatever the image size.

    Args:
        depth: K, the number of convolutions (>= 1).
        width: channels of the hidden convolutions.
        kernel_size: side of the square kernels (odd).

    Call args:
        inputs: (B, H, W, 1) float image.

    Returns:
        (B, H, W, 5) filter maps in the paper's order (top, left, bottom, right, centre).
    """

    def __init__(self, depth=4, width=32, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int(depth, "depth")
        _check_positive_int(width, "width")
        _check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd kernel_size. Received {kernel_size}.")
        self.depth = depth
        self.width = width
        self.kernel_size = kernel_size
        self.convolutions = [
            keras.layers.Conv2D(
                width if k < depth - 1 else NUM_FILTERS,
                kernel_size,
                padding="same",
                activation="relu" if k < depth - 1 else None,
                name=f"conv_{k + 1}",
            )
            for k in range(depth)
        ]

    def build(self, input_shape):
        check_image_batch_shape(input_shape)
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
        return tuple(input_shape[:-1]) + (NUM_FILTERS,)

    def get_config(self):
        config = super().get_config()
        config.update(depth=self.depth, width=self.width, kernel_size=self.kernel_size)
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class DiffusionLayer(keras.layers.Layer):
    """One nonlinear DiffNet layer (Fig. 2): estimate zeta from F_{k-1}, then update.

        zeta = FilterEstimator(F_{k-1})
        F_k = F_{k-1} + dt * (z1 u_N + z2 u_W + z3 u_S + z4 u_E - z5 u)   # eqs. (4.6), (4.7)

    with a learned scalar time step dt.

    Args:
        estimator_depth: K of the filter estimator.
        width: channels of the estimator's hidden convolutions.
        kernel_size: the estimator's kernel side.
        boundary: 'neumann' (eq. 4.5) or 'zero' (the released code).
        dt_init: initial value of the learned time step (0.2 in the released code).

    Call args:
        inputs: (B, H, W, 1) float image F_{k-1}.
        return_filters: also return the filter maps.

    Returns:
        (B, H, W, 1) image F_k, or (F_k, zeta (B, H, W, 5)) if `return_filters`.
    """

    def __init__(
        self,
        estimator_depth=4,
        width=32,
        kernel_size=3,
        boundary="neumann",
        dt_init=0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.estimator_depth = estimator_depth
        self.width = width
        self.kernel_size = kernel_size
        self.boundary = check_choice(boundary, BOUNDARIES, "boundary")
        _check_dt_init(dt_init)
        self.dt_init = dt_init
        self.estimator = FilterEstimator(estimator_depth, width, kernel_size, name="estimator")

    def build(self, input_shape):
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
        )
        return config


@keras.saving.register_keras_serializable(package="diffnet_tf")
class LinearDiffusion(keras.layers.Layer):
    """A linear diffusion layer with explicitly learned per-pixel filters (Fig. 1).

        F_k = F_{k-1} + dt * (g1 u_N + g2 u_W + g3 u_S + g4 u_E - g5 u)   # eq. (4.6)

    The filters do not depend on the image, so the layer is linear and tied to one image
    size: 5 H W parameters (4 H W when `mean_free`, where g5 = g1 + g2 + g3 + g4 as in
    L_dt(gamma), eq. 4.4), plus dt. Filters start at zero: the layer starts as the identity.

    Args:
        image_size: int n (an n x n image) or (H, W).
        mean_free: learn only the four neighbour maps and set the centre to their sum.
        boundary: 'neumann' (eq. 4.5) or 'zero'.
        dt_init: initial value of the learned time step.

    Call args:
        inputs: (B, H, W, 1) float image of exactly `image_size`.
        return_filters: also return the filter maps, broadcast over the batch.

    Returns:
        (B, H, W, 1) image, or (image, filters (B, H, W, 5)) if `return_filters`.
    """

    def __init__(self, image_size, mean_free=False, boundary="neumann", dt_init=0.2, **kwargs):
        super().__init__(**kwargs)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(
                f"Expected image_size to be a positive int or a pair (H, W). "
                f"Received {image_size!r}."
            )
        _check_dt_init(dt_init)
        self.image_size = size
        self.mean_free = mean_free
        self.boundary = check_choice(boundary, BOUNDARIES, "boundary")
        self.dt_init = dt_init

    def build(self, input_shape):
        check_image_batch_shape(input_shape)
        if tuple(input_shape[1:3]) != self.image_size:
            raise ValueError(
                f"LinearDiffusion learns filters for one image size: expected images of "
                f"size (H, W) = {self.image_size}. Received shape {tuple(input_shape)}."
            )
        channels = NUM_FILTERS - 1 if self.mean_free else NUM_FILTERS
        self.filters = self.add_weight(
            shape=self.image_size + (channels,), initializer="zeros", name="filters"
        )
        self.dt = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.dt_init), name="dt"
        )

    def stencil_filters(self):
        """The five filter maps (H, W, 5), with the centre filled in when mean-free."""
        if not self.mean_free:
            return self.filters
        return ops.concatenate(
            [self.filters, ops.sum(self.filters, axis=-1, keepdims=True)], axis=-1
        )

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
        )
        return config
