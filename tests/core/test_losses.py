"""Reparameterization, Bernoulli NLL and KL: forward against the math, backward against
finite differences. Forward tests catch what a gradient check cannot: a wrong convention
(log sigma read where log sigma^2 is meant) is self-consistent in its own derivative."""
import numpy
import pytest

from tinyvae.backend import to_numpy
from tinyvae.gradcheck import check_op
from tinyvae.losses import (bernoulli_nll_backward, bernoulli_nll_forward, kl_normal_backward,
                            kl_normal_forward, reparameterize_backward, reparameterize_forward)

RNG = numpy.random.default_rng(0)


def test_reparameterized_samples_have_mean_mu_and_variance_exp_logvar():
    mu = numpy.array([0.5, -2.0, 0.0])
    logvar = numpy.log(numpy.array([4.0, 0.25, 1.0]))       # variances 4, 1/4, 1
    eps = RNG.standard_normal((200_000, 3))
    z, _ = reparameterize_forward(mu, logvar, eps)
    numpy.testing.assert_allclose(z.mean(axis=0), mu, atol=0.02)
    # A log-std reading of logvar would give variances 16, 1/16, 1: far outside 2 %.
    numpy.testing.assert_allclose(z.var(axis=0), [4.0, 0.25, 1.0], rtol=0.02)


def test_reparameterize_same_eps_same_z_and_gradients():
    mu, logvar, eps = (RNG.standard_normal((2, 3, 4)) for _ in range(3))
    z1, _ = reparameterize_forward(mu, logvar, eps)
    z2, _ = reparameterize_forward(mu, logvar, eps.copy())
    numpy.testing.assert_array_equal(z1, z2)
    check_op(reparameterize_forward, reparameterize_backward, (mu, logvar, eps), wrt=(0, 1))


def test_bernoulli_nll_matches_the_direct_formula():
    logits = RNG.normal(0, 3, (2, 3, 7))
    x = (RNG.random((2, 3, 7)) < 0.4).astype(float)
    p = 1 / (1 + numpy.exp(-logits))
    direct = -(x * numpy.log(p) + (1 - x) * numpy.log(1 - p)).sum(axis=-1)
    nll, _ = bernoulli_nll_forward(logits, x)
    numpy.testing.assert_allclose(nll, direct, rtol=1e-12)


def test_bernoulli_nll_gradient_and_soft_targets():
    logits = RNG.normal(0, 3, (2, 3, 7))
    x = RNG.random((2, 3, 7))                                  # works for x in [0, 1] too
    check_op(bernoulli_nll_forward, lambda d, c: (bernoulli_nll_backward(d, c),),
             (logits, x), wrt=(0,))


def test_bernoulli_nll_is_finite_and_exact_at_extreme_logits():
    logits = numpy.array([[100.0, -100.0, 100.0, -100.0]])
    x = numpy.array([[0.0, 1.0, 1.0, 0.0]])
    with numpy.errstate(all="raise"):
        nll, cache = bernoulli_nll_forward(logits, x)
        dlogits = bernoulli_nll_backward(numpy.ones(1), cache)
    # wrong by 100 nats twice, right (to e^-100) twice; gradient sigmoid(l) - x
    numpy.testing.assert_allclose(nll, [200.0], rtol=1e-12)
    numpy.testing.assert_allclose(dlogits, [[1.0, -1.0, 0.0, 0.0]], atol=1e-40)


def test_bernoulli_nll_gradient_is_relatively_exact_in_the_tails():
    """sigmoid(l) - x where the sigmoid saturates: e^l itself for x = 0, l << 0, and
    -sigmoid(-l) for x = 1, l >> 0, both to many digits (not just to an absolute 1e-16)."""
    logits = numpy.array([[-30.0, -10.0, 10.0, 30.0]])
    x = numpy.array([[0.0, 0.0, 1.0, 1.0]])
    _, cache = bernoulli_nll_forward(logits, x)
    dlogits = bernoulli_nll_backward(numpy.ones(1), cache)
    sigmoid = lambda v: 1 / (1 + numpy.exp(-v))                 # noqa: E731 (exact here)
    want = numpy.array([[sigmoid(-30.0), sigmoid(-10.0), -sigmoid(-10.0), -sigmoid(-30.0)]])
    numpy.testing.assert_allclose(dlogits[:, :2], want[:, :2], rtol=1e-13)
    numpy.testing.assert_allclose(dlogits[:, 2:3], want[:, 2:3], rtol=1e-10)   # 1 - p: cancels
    assert abs(dlogits[0, 3]) < 1e-12                            # below float64 rounding of 1


def test_kl_matches_the_gaussian_closed_form():
    mu = RNG.standard_normal((3, 4))
    logvar = RNG.normal(0, 1.5, (3, 4))
    sigma = numpy.exp(logvar / 2)
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2
    closed = numpy.log(1 / sigma) + (sigma ** 2 + mu ** 2) / 2 - 0.5
    kl, _ = kl_normal_forward(mu, logvar)
    numpy.testing.assert_allclose(kl, closed, rtol=1e-12, atol=1e-15)
    assert numpy.all(kl >= 0)
    numpy.testing.assert_array_equal(kl_normal_forward(numpy.zeros(3), numpy.zeros(3))[0], 0)


def test_kl_gradient():
    mu, logvar = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 3, 4))
    check_op(kl_normal_forward, kl_normal_backward, (mu, logvar))


@pytest.mark.parametrize("name", ["reparameterize", "bernoulli_nll", "kl_normal"])
def test_losses_agree_across_backends(xp, name):
    a, b, c = (RNG.standard_normal((2, 3, 4)) for _ in range(3))
    fwd, bwd, args, dout = {
        "reparameterize": (reparameterize_forward, reparameterize_backward, (a, b, c), a),
        "bernoulli_nll": (bernoulli_nll_forward, bernoulli_nll_backward,
                          (a, (b > 0).astype(float)), a[..., 0]),
        "kl_normal": (kl_normal_forward, kl_normal_backward, (a, b), a)}[name]
    out_ref, cache_ref = fwd(*args)
    out, cache = fwd(*(xp.asarray(v) for v in args))
    numpy.testing.assert_allclose(to_numpy(out), out_ref, rtol=1e-12)
    ref, got = bwd(dout, cache_ref), bwd(xp.asarray(dout), cache)
    for g, g_ref in zip(got if isinstance(got, tuple) else (got,),
                        ref if isinstance(ref, tuple) else (ref,)):
        numpy.testing.assert_allclose(to_numpy(g), g_ref, rtol=1e-12)
