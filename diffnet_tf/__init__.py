"""DiffNet: learned nonlinear-diffusion networks (Arridge & Hauptmann, JMIV 2020)."""

from diffnet_tf import physics, stencil

__version__ = "0.1.0"
