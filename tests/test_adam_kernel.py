"""The fused CuPy Adam kernel (optim_fast) against adam_rule in float32, over 200 steps: on
the CuPy stand-in, whose ElementwiseKernel evaluates the kernel's C body in C's types, on
every machine; on the GPU where there is one. The kernel takes 1 - b1 and 1 - b2 from the
host, computed as the NumPy path computes them, and brackets as adam_rule does."""
import math

import numpy
import pytest

from tinyvae import optim_fast
from tinyvae.backend import to_numpy
from tinyvae.optim import adam_rule

STEPS, ULPS = 200, 2
B1, B2, LR, EPS = 0.9, 0.999, 1e-3, 1e-8


def ulps(a, b):
    """Largest distance between a and b in units in the last place of b (float32)."""
    return int(numpy.max(numpy.abs(a.astype(numpy.float64) - b) / numpy.spacing(numpy.abs(b))))


def adam_runs(xp, update):
    """(device, host) parameters after STEPS steps from the same start: `update` on the
    device arrays, adam_rule on the host ones, with the same bias-corrected scalars."""
    rng = numpy.random.default_rng(5)
    start = rng.standard_normal(3000).astype(numpy.float32)
    # gradients of many sizes, so that eps_t and the (1 - b2) g^2 term both matter
    scale = (10.0 ** rng.integers(-6, 1, 3000)).astype(numpy.float32)
    p, m, v = start.copy(), numpy.zeros_like(start), numpy.zeros_like(start)
    dev = {k: xp.asarray(a) for k, a in (("p", p), ("m", m), ("v", v))}
    for t in range(1, STEPS + 1):
        g = rng.standard_normal(3000).astype(numpy.float32) * scale
        root2 = math.sqrt(1.0 - B2 ** t)
        lr_t, eps_t = LR * root2 / (1.0 - B1 ** t), EPS * root2
        adam_rule(p, g, m, v, B1, B2, lr_t, eps_t)
        update(dev, xp.asarray(g), lr_t, eps_t)
    assert numpy.abs(p - start).min() > 0                  # every parameter moved
    return {k: to_numpy(a) for k, a in dev.items()}, {"p": p, "m": m, "v": v}


def test_the_float32_kernel_stays_within_two_ulps_of_the_rule(device_xp):
    fast = None

    def update(dev, g, lr_t, eps_t):
        nonlocal fast
        params = {"w": dev["p"]}
        fast = fast or optim_fast.FastUpdate(params)
        fast(params, {"w": g}, {"w": dev["m"]}, {"w": dev["v"]}, B1, B2, lr_t, eps_t)
    dev, host = adam_runs(device_xp, update)
    for k in host:
        assert ulps(dev[k], host[k]) <= ULPS, k


def test_negative_control_the_old_kernel_drifts_hundreds_of_ulps(standin):
    """The kernel as it was: 1 - b1 and 1 - b2 in float32, lr_t * m / (...) bracketed apart
    from adam_rule. The same test measures it far outside the bound."""
    old = standin.ElementwiseKernel(
        "T g, T b1, T b2, T lr_t, T eps_t", "T p, T m, T v",
        """m = b1 * m + (1 - b1) * g;
           v = b2 * v + (1 - b2) * g * g;
           p -= lr_t * m / (sqrt(v) + eps_t);""", "old_adam")

    def update(dev, g, lr_t, eps_t):
        f = numpy.float32
        old(g, f(B1), f(B2), f(lr_t), f(eps_t), dev["p"], dev["m"], dev["v"])
    dev, host = adam_runs(standin, update)
    assert ulps(dev["p"], host["p"]) > 100 * ULPS
