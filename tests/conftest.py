"""Shared test set-up: quiet TensorFlow logs, the repository root on sys.path so the
`experiments` modules import without installation, and the `slow` marker.

Tests marked slow (they train, or run an experiment end to end) run only with --slow:
`pytest tests` is the quick loop, `pytest tests --slow` everything (what CI runs).
"""

import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or runs an experiment (needs --slow)")
    # Keras converts TF tensors with np.array(x, copy=False); NumPy 2 warns about it.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation:DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
