"""Shared test set-up: quiet TensorFlow logs, and the repository root on sys.path so the
`experiments` modules import without installation."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_configure(config):
    # Keras converts TF tensors with np.array(x, copy=False); NumPy 2 warns about it.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation:DeprecationWarning")
