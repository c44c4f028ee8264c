"""The gradient-check helper itself: it passes right gradients and catches wrong ones."""
import numpy
import pytest

from tinyvae.gradcheck import GradientMismatch, check_gradients, check_op
from tinyvae.layers import tanh_forward


def test_passes_a_right_gradient_entrywise_and_directionally():
    rng = numpy.random.default_rng(0)
    small = rng.standard_normal((3, 4))
    large = rng.standard_normal((30, 30))          # above ENTRYWISE_MAX: random directions
    inputs = {"small": small, "large": large}

    def loss():
        return float(numpy.sum(numpy.sin(small)) + numpy.sum(large ** 3))
    errors = check_gradients(loss, inputs, {"small": numpy.cos(small), "large": 3 * large ** 2})
    assert errors["small"] < 1e-6 and errors["large"] < 1e-5   # rounding of a sum near 1e3


def test_negative_control_catches_a_wrong_backward():
    """tanh with the derivative of the wrong convention (1 - out instead of 1 - out^2)."""
    def wrong_backward(dout, cache):
        return dout * (1 - cache)
    x = numpy.random.default_rng(1).standard_normal((2, 3, 4))
    with pytest.raises(GradientMismatch, match="input0"):
        check_op(tanh_forward, wrong_backward, (x,))


def test_negative_control_catches_a_one_percent_error_on_large_arrays():
    rng = numpy.random.default_rng(2)
    a = rng.standard_normal((40, 40))
    b = rng.standard_normal(3)
    with pytest.raises(GradientMismatch) as err:
        check_gradients(lambda: float(numpy.sum(a ** 2) + numpy.sum(b ** 2)), {"a": a, "b": b},
                        {"a": 2 * a * 1.01, "b": 2 * b})
    assert err.value.failed == ["a"]                 # the wrong one named, the right one not


def test_refuses_float32():
    a = numpy.ones(3, dtype=numpy.float32)
    with pytest.raises(TypeError, match="float64"):
        check_gradients(lambda: float(a.sum()), {"a": a}, {"a": numpy.ones(3)})
