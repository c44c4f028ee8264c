"""What the speed work must not change: reused gradient buffers hold exactly one step's
gradients, chunked Adam is bit-exact with whole-array Adam, float32 training follows float64
to rounding, and the benchmark counts the step's flops right."""
import numpy
import pytest

from tinyvae import Adam, GroupedVAE, optim_fast
from tinyvae.optim_fast import FastAdam
from tinyvae.backend import to_numpy
from tinyvae.experiment.tools.bench import make_floor, step_matmuls

SMALL = dict(pixels=64, encoder_hidden=(48, 40), decoder_hidden=(40, 40, 48))


def batch(model, B=8, seed=1):
    rng = numpy.random.default_rng(seed)
    x = (rng.random((model.models, B, model.pixels)) < 0.3).astype(model.dtype)     # (M, B, P)
    eps = rng.standard_normal((model.models, B, model.latent)).astype(model.dtype)  # (M, B, Z)
    return x, eps


def test_reused_gradient_buffers_hold_one_steps_gradients(xp):
    """A second backward overwrites, never adds to, the first one's buffers."""
    model = GroupedVAE(groups=(2, 2), models=2, xp=xp, dtype=numpy.float64, **SMALL)
    x, eps = (xp.asarray(a) for a in batch(model))
    x2, eps2 = (xp.asarray(a) for a in batch(model, seed=2))
    _, first = model.loss_and_grads(x, eps, reuse_buffers=True)
    first = {k: to_numpy(g).copy() for k, g in first.items()}
    _, other = model.loss_and_grads(x2, eps2, reuse_buffers=True)
    _, again = model.loss_and_grads(x, eps, reuse_buffers=True)
    assert all(again[k] is other[k] for k in again)              # the same buffers, reused
    for k in first:
        numpy.testing.assert_array_equal(to_numpy(again[k]), first[k], err_msg=k)


def test_chunked_threaded_adam_is_bit_exact(monkeypatch):
    """Any chunking, and any split of the chunks across threads, gives the bits of one pass
    over whole arrays on one thread."""
    rng = numpy.random.default_rng(0)
    start = {"W": rng.standard_normal((2, 70, 50)).astype(numpy.float32),    # 7000 elements
             "b": rng.standard_normal((2, 5)).astype(numpy.float32)}
    grads = [{k: (rng.standard_normal(v.shape) * 1e-3).astype(numpy.float32)
              for k, v in start.items()} for _ in range(3)]
    results = []
    for chunk, threads in ((1 << 20, 1), (2048, 2), (1000, 3), (1000, 1)):
        monkeypatch.setattr(optim_fast, "CHUNK", chunk)
        params = {k: v.copy() for k, v in start.items()}
        opt = FastAdam(params, lr=1e-2, threads=threads)
        assert len(opt.fast._shares) == threads
        for g in grads:
            opt.step(g)
        results.append((params, opt.m, opt.v))
    for params, m, v in results[1:]:
        for k in start:
            numpy.testing.assert_array_equal(params[k], results[0][0][k])
            numpy.testing.assert_array_equal(m[k], results[0][1][k])
            numpy.testing.assert_array_equal(v[k], results[0][2][k])
    assert not numpy.array_equal(results[0][0]["W"], start["W"])     # the steps did move it


def test_adam_sees_new_contents_of_reused_buffers_and_new_arrays(monkeypatch):
    """Adam keeps its chunk views while the same arrays come back: a reused gradient buffer
    refilled each step (the model's way), then a parameter array swapped for another, give
    the bits of an Adam handed fresh arrays every step."""
    monkeypatch.setattr(optim_fast, "CHUNK", 1000)
    rng = numpy.random.default_rng(3)
    start = {"W": rng.standard_normal((1, 60, 50)).astype(numpy.float32)}
    steps = [{"W": (rng.standard_normal((1, 60, 50)) * 1e-3).astype(numpy.float32)}
             for _ in range(4)]
    # a C-order buffer like the model's, and a Fortran-order one (whose flat view is a copy)
    for order in "CF":
        fresh, reused = {"W": start["W"].copy()}, {"W": start["W"].copy()}
        opt_fresh = FastAdam(fresh, lr=1e-2, threads=2)
        opt_reused = FastAdam(reused, lr=1e-2, threads=2)
        buffer = {"W": numpy.empty_like(start["W"], order=order)}
        for k, g in enumerate(steps):
            if k == 2:                                # the caller replaces the parameter
                fresh["W"], reused["W"] = fresh["W"].copy(), reused["W"].copy()
            opt_fresh.step({"W": g["W"].copy()})
            buffer["W"][...] = g["W"]
            opt_reused.step(buffer)
            numpy.testing.assert_array_equal(reused["W"], fresh["W"], err_msg=f"{order} {k}")
        assert not numpy.array_equal(reused["W"], start["W"])


def test_adam_refuses_gradients_that_do_not_fit_in_one_line():
    """A missing or misshapen gradient, or a parameter replaced by one of another shape, is
    one ValueError naming the parameter, raised before anything moves."""
    params = {"W": numpy.ones((1, 4, 5), numpy.float32), "b": numpy.ones((1, 5), numpy.float32)}
    opt = FastAdam(params, threads=2)
    good = {k: numpy.full_like(p, 0.1) for k, p in params.items()}
    bad = [({"W": good["W"]}, "no gradient for parameter b"),
           ({**good, "W": numpy.ones((1, 5, 4), numpy.float32)}, "gradient of W has shape")]
    for grads, message in bad:
        with pytest.raises(ValueError, match=message):
            opt.step(grads)
    params["W"] = numpy.ones((1, 8, 5), numpy.float32)
    with pytest.raises(ValueError, match=r"made for \(1, 4, 5\)"):
        opt.step({**good, "W": numpy.ones((1, 8, 5), numpy.float32)})
    params["W"] = numpy.ones((1, 5, 4), numpy.float32).transpose(0, 2, 1)    # not C-contiguous
    with pytest.raises(ValueError, match="must be C-contiguous"):
        opt.step(good)
    assert opt.t == 0 and (params["b"] == 1).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_adam_workers_follow_the_callers_floating_point_settings(threads):
    """numpy.errstate is per thread: train.py's "ignore overflow" must reach Adam's workers
    (it catches a non-finite loss itself), and "raise" must too."""
    params = {"w": numpy.ones(3 * optim_fast.CHUNK, dtype=numpy.float32)}
    huge = {"w": numpy.full(3 * optim_fast.CHUNK, 1e30, dtype=numpy.float32)}    # g * g overflows
    opt = FastAdam(params, threads=threads)
    with numpy.errstate(over="ignore", invalid="ignore"):
        opt.step(huge)                                  # no warning (pytest makes them errors)
    with numpy.errstate(over="raise"), pytest.raises(FloatingPointError):
        opt.step(huge)


def test_float32_training_follows_float64_to_rounding():
    """Five Adam steps from the same start: float32 parameters stay within rounding of the
    float64 run, far below one step's size (lr), and the losses agree to float32 precision."""
    lr, steps = 1e-3, 5
    start = GroupedVAE(groups=(2, 2), dtype=numpy.float32, **SMALL).params
    runs = {}
    for dtype in (numpy.float32, numpy.float64):
        model = GroupedVAE(groups=(2, 2), dtype=dtype, **SMALL)
        for k, p in model.params.items():
            p[...] = start[k]                           # both start from the float32 weights
        opt = Adam(model.params, lr=lr)
        totals = []
        for s in range(steps):
            x, eps = batch(model, seed=s)
            losses, grads = model.loss_and_grads(x, eps)
            opt.step(grads)
            totals.append(float(losses["total"][0]))
        runs[dtype] = (model, totals)
    (m32, t32), (m64, t64) = runs[numpy.float32], runs[numpy.float64]
    numpy.testing.assert_allclose(t32, t64, rtol=1e-6)
    for k, p in m64.params.items():
        # Adam moved every parameter by about 5 lr; float32 rounding (a few ulp) far less.
        numpy.testing.assert_allclose(m32.params[k], p, rtol=0, atol=lr * 1e-3, err_msg=k)


def test_benchmark_counts_the_papers_flops():
    """7.81 GFLOP per Grouped-VAE step (the decoder runs on G*B rows), 4.81 for the β-VAE."""
    grouped = GroupedVAE(groups=(3, 3))
    beta = GroupedVAE(groups=(6,))
    flops = {name: sum(2 * N * K * O for N, K, O, _ in step_matmuls(m, 64))
             for name, m in (("grouped", grouped), ("beta", beta))}
    assert round(flops["grouped"] / 1e9, 2) == 7.81 and round(flops["beta"] / 1e9, 2) == 4.81
    # forward + backward: 3 matmuls a layer, 2 for the encoder's input layer
    assert len(step_matmuls(grouped, 64)) == 3 * 7 - 1


def test_floor_runs_the_steps_matmul_shapes(xp):
    model = GroupedVAE(groups=(2, 2), models=3, xp=xp, **SMALL)
    floor, flops = make_floor(model, 8)
    floor()
    assert flops == sum(2 * 3 * N * K * O for N, K, O, _ in step_matmuls(model, 8))
