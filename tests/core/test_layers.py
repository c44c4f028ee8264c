"""Dense, ReLU, Tanh: forward against the math, backward against finite differences."""
import numpy
import pytest

from tinyvae.backend import to_numpy
from tinyvae.gradcheck import check_op
from tinyvae.layers import (dense_backward, dense_forward, relu_backward, relu_forward,
                            tanh_backward, tanh_forward)

RNG = numpy.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4))          # (M, N, I)
W = RNG.standard_normal((2, 4, 5))          # (M, I, O)
B = RNG.standard_normal((2, 5))             # (M, O)


def test_dense_forward_is_x_at_W_plus_b_per_model():
    out, _ = dense_forward(X, W, B)
    for m in range(2):
        numpy.testing.assert_allclose(out[m], X[m] @ W[m] + B[m], rtol=1e-14)


def test_dense_gradients():
    check_op(dense_forward, dense_backward, (X.copy(), W.copy(), B.copy()))


def test_dense_backward_without_dx():
    out, cache = dense_forward(X, W, B)
    dx, dW, db = dense_backward(numpy.ones_like(out), cache, need_dx=False)
    assert dx is None and dW.shape == W.shape and db.shape == B.shape


def test_relu_forward_and_gradient_away_from_the_kink():
    h = RNG.standard_normal((2, 3, 4))
    h[numpy.abs(h) < 1e-3] = 0.5           # finite differences must not straddle 0
    out, _ = relu_forward(h)
    numpy.testing.assert_array_equal(out, numpy.maximum(h, 0))
    check_op(relu_forward, relu_backward, (h,))


def test_tanh_forward_and_gradient():
    h = RNG.standard_normal((2, 3, 4))
    numpy.testing.assert_allclose(tanh_forward(h)[0], numpy.tanh(h), rtol=1e-15)
    check_op(tanh_forward, tanh_backward, (h,))


@pytest.mark.parametrize("pair", ["dense", "relu", "tanh"])
def test_layers_agree_across_backends(xp, pair):
    """The CuPy path computes what the NumPy path computes (NumPy is the reference)."""
    fwd, bwd, args = {"dense": (dense_forward, dense_backward, (X, W, B)),
                      "relu": (relu_forward, relu_backward, (X,)),
                      "tanh": (tanh_forward, tanh_backward, (X,))}[pair]
    dout = RNG.standard_normal((2, 3, 5) if pair == "dense" else X.shape)
    out_ref, cache_ref = fwd(*args)
    out, cache = fwd(*(xp.asarray(a) for a in args))
    numpy.testing.assert_allclose(to_numpy(out), out_ref, rtol=1e-12)
    as_tuple = lambda g: g if isinstance(g, tuple) else (g,)    # noqa: E731
    grads_ref = as_tuple(bwd(dout, cache_ref))
    grads = as_tuple(bwd(xp.asarray(dout), cache))
    for g, g_ref in zip(grads, grads_ref):
        numpy.testing.assert_allclose(to_numpy(g), g_ref, rtol=1e-12)
