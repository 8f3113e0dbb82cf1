"""Training's matrix precision per backend: set inside the context, restored after."""

import pytest

from diffnet_tf.precision import current_precision, matrix_precision


def test_float32_is_set_inside_and_the_setting_before_is_restored_after():
    before = current_precision()
    with matrix_precision("float32"):
        assert current_precision() == "float32"
        with matrix_precision("fast"):  # 'fast' leaves the setting it finds
            assert current_precision() == "float32"
    assert current_precision() == before


def test_the_setting_is_restored_when_the_body_raises():
    before = current_precision()
    with pytest.raises(RuntimeError), matrix_precision("float32"):
        raise RuntimeError("training failed")
    assert current_precision() == before


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match="Unknown precision 'tf32'. Expected one of 'float32', 'fast'"):
        with matrix_precision("tf32"):
            pass
