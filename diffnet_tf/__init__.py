"""DiffNet: learned nonlinear-diffusion networks (Arridge & Hauptmann, JMIV 2020).

Importing the package registers every layer, model and metric with Keras, so a saved
``model.keras`` loads in a fresh process with ``keras.saving.load_model`` alone.
"""

from diffnet_tf import layers, metrics, models, physics, stencil, training
from diffnet_tf.layers import DiffusionLayer, FilterEstimator, LinearDiffusion
from diffnet_tf.models import DiffNet, LinearDiffNet, UNet

__version__ = "0.1.0"
