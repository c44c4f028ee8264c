"""Adam against a direct transcription of its update rule, the plain Adam running adam_rule as
optim.py writes it, and FastAdam, its drop-in, giving the plain Adam's bits."""
import math

import numpy
import pytest

from tinyvae import Adam, optim, optim_fast
from tinyvae.backend import to_numpy
from tinyvae.optim import adam_rule
from tinyvae.optim_fast import FastAdam


def reference_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    m, v = numpy.zeros_like(p), numpy.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (numpy.sqrt(v_hat) + eps)
    return p, m, v


@pytest.mark.parametrize("kind", [Adam, FastAdam])
def test_adam_matches_the_update_rule_over_several_steps(xp, kind):
    rng = numpy.random.default_rng(0)
    # One array larger than the NumPy chunk, so the chunked walk is covered; tiny gradients
    # make eps matter.
    start = {"a": rng.standard_normal((2, 300, 250)), "b": rng.standard_normal((2, 5))}
    steps = [{k: rng.standard_normal(v.shape) * 10.0 ** rng.integers(-9, 1) for k, v in
              start.items()} for _ in range(5)]
    params = {k: xp.array(v) for k, v in start.items()}     # a copy: start stays the start
    opt = kind(params, lr=1e-3)
    for g in steps:
        opt.step({k: xp.asarray(v) for k, v in g.items()})
    # rtol 1e-11, not 1e-12: CuPy's fused kernel contracts multiply-adds (a few ulps apart)
    for k in start:
        p, m, v = reference_adam(start[k], [g[k] for g in steps], lr=1e-3)
        numpy.testing.assert_allclose(to_numpy(params[k]), p, rtol=1e-11, atol=1e-15)
        numpy.testing.assert_allclose(to_numpy(opt.m[k]), m, rtol=1e-11, atol=1e-300)
        numpy.testing.assert_allclose(to_numpy(opt.v[k]), v, rtol=1e-11, atol=1e-300)
    assert opt.t == 5


@pytest.mark.parametrize("kind", [Adam, FastAdam])
def test_adam_defaults_are_the_papers(kind):
    opt = kind({"w": numpy.zeros(3)})
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (1e-4, 0.9, 0.999, 1e-8)


def test_the_plain_adam_runs_adam_rule_once_per_parameter(monkeypatch):
    """What a student constructs from optim.py is the rule as it reads, nothing faster."""
    calls = []

    def rule(p, *rest):
        calls.append(p)
        adam_rule(p, *rest)
    monkeypatch.setattr(optim, "adam_rule", rule)
    params = {"W": numpy.ones((2, 3)), "b": numpy.ones(3)}
    opt = Adam(params)
    opt.step({k: numpy.full_like(p, 0.5) for k, p in params.items()})
    assert [id(p) for p in calls] == [id(params["W"]), id(params["b"])]
    assert numpy.all(params["W"] < 1)
    calls.clear()
    FastAdam(params).step({k: numpy.full_like(p, 0.5) for k, p in params.items()})
    assert calls == []                             # the drop-in has its own, fast path


def test_adam_state_round_trips():
    rng = numpy.random.default_rng(1)
    p1 = {"w": rng.standard_normal(50)}
    p2 = {"w": p1["w"].copy()}
    a, b = Adam(p1), Adam(p2)
    g = [rng.standard_normal(50) for _ in range(4)]
    for gi in g[:2]:
        a.step({"w": gi})
    state = {k: v if k == "t" else {n: x.copy() for n, x in v.items()} for k, v in a.state().items()}
    p2["w"][...] = p1["w"]
    b.load_state(state)
    for gi in g[2:]:
        a.step({"w": gi})
        b.step({"w": gi})
    numpy.testing.assert_array_equal(p1["w"], p2["w"])


def test_adam_rejects_a_bad_learning_rate():
    with pytest.raises(ValueError, match="lr must be positive"):
        Adam({"w": numpy.zeros(3)}, lr=0)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_fast_adam_gives_the_bits_of_the_plain_adam(dtype, threads):
    """FastAdam (cache-sized chunks over threads) against Adam (adam_rule on each whole
    parameter): the same bits, step after step, and a state that either one can resume."""
    rng = numpy.random.default_rng(2)
    start = {"W": rng.standard_normal((2, optim_fast.CHUNK + 999)).astype(dtype),  # 2+ chunks
             "b": rng.standard_normal((2, 5)).astype(dtype)}
    steps = [{k: (rng.standard_normal(v.shape) * 10.0 ** rng.integers(-9, 1)).astype(dtype)
              for k, v in start.items()} for _ in range(4)]
    fast = {k: v.copy() for k, v in start.items()}
    plain = {k: v.copy() for k, v in start.items()}
    opts = FastAdam(fast, lr=1e-3, threads=threads), Adam(plain, lr=1e-3)
    for t, g in enumerate(steps, start=1):
        if t == 3:                   # each continues from the other's state
            state = [{k: v if k == "t" else {n: x.copy() for n, x in v.items()}
                      for k, v in opt.state().items()} for opt in opts]
            opts[0].load_state(state[1])
            opts[1].load_state(state[0])
        for opt in opts:
            opt.step(g)
        for k in start:
            numpy.testing.assert_array_equal(fast[k], plain[k], err_msg=f"{k} step {t}")
            numpy.testing.assert_array_equal(opts[0].m[k], opts[1].m[k])
            numpy.testing.assert_array_equal(opts[0].v[k], opts[1].v[k])
    assert not numpy.array_equal(fast["W"], start["W"])


def test_the_cupy_kernel_follows_the_rule(cupy):
    """The fused kernel against adam_rule on the host, to its multiply-add contractions."""
    rng = numpy.random.default_rng(4)
    start = {"W": rng.standard_normal((3, 700))}
    g = {"W": rng.standard_normal((3, 700)) * 1e-3}
    on_gpu = {"W": cupy.asarray(start["W"])}
    FastAdam(on_gpu, lr=1e-3).step({"W": cupy.asarray(g["W"])})
    p, m, v = start["W"].copy(), numpy.zeros((3, 700)), numpy.zeros((3, 700))
    root2 = math.sqrt(1 - 0.999)
    adam_rule(p, g["W"], m, v, 0.9, 0.999, 1e-3 * root2 / (1 - 0.9), 1e-8 * root2)
    numpy.testing.assert_allclose(to_numpy(on_gpu["W"]), p, rtol=1e-12, atol=1e-15)
