"""DiffNet: learned nonlinear-diffusion networks (Arridge & Hauptmann, JMIV 2020).

Importing the package registers every layer, model, metric and loss with Keras, so a saved
``model.keras`` loads in a fresh process with ``keras.saving.load_model`` alone.
TensorFlow's known start-up lines (cli/stderr_filter.py), which it writes to stderr as it
is imported, are dropped while it is; every other line passes.
"""

from diffnet_tf.cli.stderr_filter import startup_lines_dropped

with startup_lines_dropped():  # TensorFlow's start-up lines, printed as Keras imports it
    from diffnet_tf import layers, losses, metrics, models, physics, stencil, training, unet
    from diffnet_tf.layers import DiffusionLayer, FilterEstimator, LinearDiffusion
    from diffnet_tf.models import DiffNet, LinearDiffNet
    from diffnet_tf.unet import UNet

__version__ = "0.1.0"
