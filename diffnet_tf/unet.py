"""The U-Net baseline of Sect. 5.2 (after Jin et al. 2017), for C-channel images.

Only `keras.ops` and Keras layers are used, so it runs on every backend.
"""

import keras
from keras import ops

from diffnet_tf import protocols
from diffnet_tf.checks import check_float_dtype, check_image_batch_shape, check_integer


def _conv_pair(filters, name):
    """Two 3x3 convolutions with ReLU: one level of the U-Net."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="diffnet_tf")
class UNet(keras.Model):
    """The U-Net baseline (after Jin et al. 2017, with a residual connection; Sect. 5.2).

    Levels of base_filters * 2^l channels (64 ... 1024 by default), two 3x3 convolutions
    with ReLU per level, 2x2 max-pooling down, a 3x3 stride-2 transposed convolution with
    ReLU up (halving the channels), concatenation with the skip, two 3x3 convolutions, a
    final 3x3 convolution to C channels, the input added, and a final ReLU. The default
    (C = 1) has 34,512,705 parameters, the paper's count; each further channel adds
    9 x 64 to the first convolution and 9 x 64 + 1 to the last (base_filters 64).

    Args:
        base_filters: channels of the first level.
        levels: number of resolution levels; image sides must be divisible by
            2^(levels - 1) (16 by default).
        final_relu: project the output onto non-negative values.
        channels: C, the images' channels (input and output).

    Call args:
        inputs: (B, H, W, C) float images.

    Returns:
        (B, H, W, C) images.
    """

    def __init__(self, base_filters=protocols.UNET_FILTERS, levels=protocols.UNET_LEVELS,
                 final_relu=True, channels=1, **kwargs):
        super().__init__(**kwargs)
        check_integer(base_filters, "base_filters", 1)
        check_integer(levels, "levels", 2)
        check_integer(channels, "channels", 1)
        self.base_filters = base_filters
        self.levels = levels
        self.final_relu = final_relu
        self.channels = channels
        widths = [base_filters * 2**level for level in range(levels)]
        self.down_blocks = [_conv_pair(w, f"down_{i + 1}") for i, w in enumerate(widths[:-1])]
        self.bottom_block = _conv_pair(widths[-1], "bottom")
        self.upsamplers = [
            keras.layers.Conv2DTranspose(
                w, 3, strides=2, padding="same", activation="relu", name=f"upsample_{i + 1}"
            )
            for i, w in enumerate(widths[:-1])
        ]
        self.up_blocks = [_conv_pair(w, f"up_{i + 1}") for i, w in enumerate(widths[:-1])]
        self.output_conv = keras.layers.Conv2D(channels, 3, padding="same", name="output_conv")

    def _check_divisible(self, shape):
        factor = 2 ** (self.levels - 1)
        if any(side is not None and side % factor for side in shape[1:3]):
            raise ValueError(
                f"Expected image height and width divisible by {factor} "
                f"(UNet with {self.levels} levels). Received shape {tuple(shape)}. "
                f"Pad the images to a multiple of {factor}."
            )

    def build(self, input_shape):
        check_image_batch_shape(input_shape, channels=self.channels)
        self._check_divisible(input_shape)
        batch, height, width, _ = input_shape
        half = lambda side: None if side is None else side // 2  # noqa: E731
        skip_shapes = []
        shape = tuple(input_shape)
        for block in self.down_blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
            skip_shapes.append(shape)
            shape = (batch, half(shape[1]), half(shape[2]), shape[3])
        self.bottom_block.build(shape)
        shape = self.bottom_block.compute_output_shape(shape)
        for level in reversed(range(self.levels - 1)):
            self.upsamplers[level].build(shape)
            skip = skip_shapes[level]
            self.up_blocks[level].build(skip[:3] + (2 * skip[3],))
            shape = skip
        self.output_conv.build(shape)

    def call(self, inputs):
        check_float_dtype(inputs.dtype)
        self._check_divisible(inputs.shape)
        x, skips = inputs, []
        for block in self.down_blocks:
            x = block(x)
            skips.append(x)
            x = ops.max_pool(x, 2, strides=2)
        x = self.bottom_block(x)
        for level in reversed(range(self.levels - 1)):
            x = self.upsamplers[level](x)
            x = self.up_blocks[level](ops.concatenate([skips[level], x], axis=-1))
        x = self.output_conv(x) + inputs  # residual connection
        return ops.relu(x) if self.final_relu else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            base_filters=self.base_filters,
            levels=self.levels,
            final_relu=self.final_relu,
            channels=self.channels,
        )
        return config
