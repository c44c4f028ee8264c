"""Where a training step's time goes: `python -m tinyvae.experiment.tools.bench [--gpu] [--models M]`.

For β-VAE (one group of 6) and Grouped-VAE (groups 3,3) at the paper's sizes, batch 64,
float32: milliseconds per training step (median over steps after warm-up) and its split into
data, forward, backward and Adam; the step's matmul flops; the *floor*, the time of those very
matmuls alone (same shapes and layouts, same process, each floor timed right after a step so
that both see the same machine load); the matmul rate the floor implies; and the floor ratio,
step time over floor. Then the data rate; on NumPy, Adam alone on one thread and on its
default threads, and its arithmetic alone (its passes over data already in cache); the time
to evaluate 10,000 test images; and peak memory.

Shapes: M models, B batch, P pixels, Z latent, G groups, N rows, K inner size, O outputs.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy

from ...backend import BackendError, device_name, get_xp, to_numpy
from ...data.dataset import BatchSampler, open_dataset, test_split
from ...losses import bernoulli_nll_forward
from ...optim_fast import FastAdam, update_chunks, usable_cpus
from ...vae import GroupedVAE

CONFIGS = (("β-VAE", (6,)), ("Grouped-VAE", (3, 3)))
BATCH = 64
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def step_matmuls(model, B):
    """(N, K, O, layout) of every matmul of one training step, each (N, K) @ (K, O) per model:
    forward x @ W per layer; backward dx = dout @ W.T (but not for the encoder's input, the
    data) and dW = x.T @ dout. `layout` says which operand is a transposed view in the step."""
    G, shapes = len(model.groups), []
    for part, sizes, N in (("encoder", model.encoder_sizes, B),
                           ("decoder", model.decoder_sizes, G * B)):
        for k, (I, O) in enumerate(zip(sizes[:-1], sizes[1:])):
            shapes.append((N, I, O, "x @ W"))
            if not (part == "encoder" and k == 0):
                shapes.append((N, O, I, "dout @ W.T"))
            shapes.append((I, N, O, "x.T @ dout"))
    return shapes


def make_floor(model, B):
    """(floor, flops): floor() runs the step's matmuls and nothing else, on operands made once."""
    xp, M, dt = model.xp, model.models, model.dtype
    ops = []
    for N, K, O, layout in step_matmuls(model, B):
        a = xp.ones((M, K, N) if layout == "x.T @ dout" else (M, N, K), dt)       # (M, ., .)
        b = xp.ones((M, O, K) if layout == "dout @ W.T" else (M, K, O), dt)       # (M, ., .)
        ops.append((a.transpose(0, 2, 1) if layout == "x.T @ dout" else a,        # (M, N, K)
                    b.transpose(0, 2, 1) if layout == "dout @ W.T" else b,        # (M, K, O)
                    xp.empty((M, N, O), dt)))                                     # (M, N, O)

    def floor():
        for a, b, out in ops:
            xp.matmul(a, b, out=out)
    return floor, sum(2 * M * N * K * O for N, K, O, _ in step_matmuls(model, B))


def make_batches(dataset, model, B):
    """next_batch() -> (x, eps), drawn as train.py draws them: sampled indices, images
    rendered on the model's backend, noise from each seed's host stream."""
    sampler = BatchSampler(test_split(dataset.n_images)[1], model.seeds)
    noise = [numpy.random.default_rng((s, 1)) for s in model.seeds]

    def next_batch():
        x = dataset.images(sampler.next(B), model.xp, model.dtype)                # (M, B, P)
        eps = numpy.stack([g.standard_normal((B, model.latent)) for g in noise])  # (M, B, Z)
        return x, model.xp.asarray(eps, dtype=model.dtype)
    return next_batch


def bench_training(model, steps, warmup, dataset, sync):
    """Medians in ms: {step, p90, data, forward, backward, adam, floor}, the step's flops, and
    the bytes a GPU memory pool holds after the warm-up steps (None on NumPy).

    Each round times a whole step as train.py runs it (one wait for the device, at the end),
    then a step part by part (waiting after each part), then the floor."""
    opt = FastAdam(model.params)
    next_batch = make_batches(dataset, model, BATCH)
    marks = []

    def mark():                                       # wait for the device, note the time
        sync()
        marks.append(time.perf_counter())

    def train_step(between=lambda: None):
        x, eps = next_batch()
        between()
        _, cache = model.forward(x, eps)
        between()
        grads = model.backward(cache, reuse_buffers=True)[0]
        between()
        opt.step(grads)

    for _ in range(warmup):
        train_step()
    sync()
    pool = _pool_bytes(model.xp)          # before the floor's operands: the step's own memory
    floor, flops = make_floor(model, BATCH)
    rounds = []
    for _ in range(steps):
        marks.clear()
        mark()
        train_step()
        mark()
        train_step(between=mark)
        mark()
        floor()
        mark()
        rounds.append(1e3 * numpy.diff(marks))   # step, data, forward, backward, Adam, floor
    step, data, forward, backward, adam, floor_ms = numpy.asarray(rounds).T      # (steps,) x6
    result = {name: numpy.median(t) for name, t in (("step", step), ("data", data),
              ("forward", forward), ("backward", backward), ("adam", adam), ("floor", floor_ms))}
    result["p90"] = numpy.percentile(step, 90)
    return result, flops, pool


def bench_data(dataset, xp, M, sync, repeats=50):
    """Milliseconds to render one training batch of M x B images (median)."""
    rng = numpy.random.default_rng(0)
    times = []
    for _ in range(repeats + 3):
        idx = rng.integers(0, dataset.n_images, (M, BATCH))                       # (M, B)
        start = time.perf_counter()
        dataset.images(idx, xp, numpy.float32)
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * numpy.median(times[3:])


def bench_adam(model, repeats=10):
    """Adam alone on NumPy, median ms per update of the model's parameters: on one thread, on
    Adam's default threads, and one thread's 12 passes over data already in cache (every
    chunk's views pointing at the first chunk, scaled to the parameters' size): the
    arithmetic without the memory traffic, and what the threads add to it."""
    params = {name: p.copy() for name, p in model.params.items()}    # the model stays as is
    grads = {name: numpy.full_like(p, 1e-3) for name, p in params.items()}

    def median_ms(update):
        update()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            update()
            times.append(time.perf_counter() - start)
        return 1e3 * numpy.median(times)

    result = {}
    for threads in (1, None):
        opt = FastAdam(params, threads=threads)
        result[opt.threads] = median_ms(lambda: opt.step(grads))
    views = opt.fast._views[0]                # opt: the last one made; its first thread's share
    hot = [views[0]] * len(views)             # (p, g, m, v, a, b) of one chunk, again and again
    size = sum(p.size for p in params.values()) / (len(hot) * views[0][0].size)
    dt = views[0][0].dtype.type                 # Adam's own constants, as its update takes them
    scalars = [dt(c) for c in (opt.beta1, 1 - opt.beta1, opt.beta2, 1 - opt.beta2, opt.lr,
                                opt.eps)]
    result["in cache"] = median_ms(lambda: update_chunks(numpy.geterr(), hot, *scalars)) * size
    return result


def bench_eval(model, dataset, n=10000, batch=1000):
    """Seconds to render, encode, decode (the full code) and score n test images, the work
    evaluate.py does before its mutual information (which runs on the host, not timed)."""
    xp, M = model.xp, model.models
    test = test_split(dataset.n_images)[0][:n]                                   # (n,)
    start = time.perf_counter()
    for s in range(0, n, batch):
        x = dataset.images(test[s:s + batch], xp, model.dtype)                    # (b, P)
        x = xp.broadcast_to(x, (M,) + x.shape)                                    # (M, b, P)
        mu, _ = model.encode(x)                                                   # (M, b, Z)
        nll, _ = bernoulli_nll_forward(model.decode(mu), x)                       # (M, b)
        to_numpy(mu), to_numpy(nll)                   # on the host, as evaluate.py needs them
    return time.perf_counter() - start


def bench_memory(M, gpu, steps=20):
    """Peak resident memory (MB) of a short train.py run, or why there is none. The child's
    peak is read from its own /proc status: a child inherits its parent's peak RSS at exec."""
    train = os.path.join(ROOT, "train.py")
    if not os.path.exists(train):
        return None, "no train.py next to the package"
    child = ("import runpy, sys; sys.argv = sys.argv[1:]\n"
             "try: runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "finally: print(*[l for l in open('/proc/self/status') if l.startswith('VmHWM')])")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", child, train, "--steps", str(steps), "--seeds",
               str(M), "--no-progress", "--out", os.path.join(out, "run")] + ["--gpu"] * gpu
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    peak = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("VmHWM")]
    if done.returncode or not peak:
        return None, f"train.py failed: {(done.stderr or done.stdout)[-300:]}"
    return int(peak[0]) / 1024, f"train.py --steps {steps} --seeds {M}"


def _blas():
    """The BLAS NumPy calls and its thread count (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads unknown"
    blas = [f"{i['internal_api']} on {i['num_threads']} thread(s)" for i in threadpool_info()
            if i["user_api"] == "blas"]
    return "BLAS " + (", ".join(blas) or "unknown")


def _pool_bytes(xp):
    return None if xp is numpy else xp.get_default_memory_pool().total_bytes()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinyvae.experiment.tools.bench",
                                description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="on CuPy (default NumPy)")
    p.add_argument("--models", type=int, default=1, help="M models trained in lockstep")
    p.add_argument("--steps", type=int, default=20, help="timed rounds per model kind (a "
                   "whole step, a step part by part, the floor)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--no-memory", action="store_true", help="skip the train.py memory run")
    a = p.parse_args(argv)
    try:
        xp = get_xp(a.gpu)
    except BackendError as err:
        p.exit(2, f"error: {err}\n")
    sync = (lambda: None) if xp is numpy else xp.cuda.Device().synchronize
    load = ", load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    print(f"tinyvae.experiment.tools.bench on {device_name(xp)}: {usable_cpus()} CPUs{load}, "
          f"{_blas()}; numpy {numpy.__version__}{', cupy ' + xp.__version__ if a.gpu else ''}; "
          f"M = {a.models}, B = {BATCH}, float32, median of {a.steps} steps")
    # First, while this process is small: a child's peak RSS starts at its parent's.
    memory = (None, "skipped") if a.no_memory else bench_memory(a.models, a.gpu)
    dataset = open_dataset(None)
    print(f"{'ms per step':13s} {'step':>7s} {'(p90)':>7s} {'data':>6s} {'forward':>8s} "
          f"{'backward':>8s} {'Adam':>6s} | {'GFLOP':>6s} {'floor':>7s} {'GFLOP/s':>8s} "
          f"{'floor ratio':>11s}")
    for name, groups in CONFIGS:
        model = None                                      # one model's memory at a time
        model = GroupedVAE(groups=groups, models=a.models, xp=xp)
        r, flops, pool = bench_training(model, a.steps, a.warmup, dataset, sync)
        print(f"{name:13s} {r['step']:7.2f} {r['p90']:7.2f} {r['data']:6.2f} {r['forward']:8.2f} "
              f"{r['backward']:8.2f} {r['adam']:6.2f} | {flops / 1e9:6.2f} {r['floor']:7.2f} "
              f"{flops / r['floor'] / 1e6:8.0f} {r['step'] / r['floor']:11.2f}")
    t = bench_data(dataset, xp, a.models, sync)
    print(f"data: a training batch (indices, images, noise) in {r['data']:.2f} ms, "
          f"{100 * r['data'] / r['step']:.1f}% of a Grouped-VAE step; rendering alone "
          f"{a.models * BATCH / t * 1e3:,.0f} images/s")
    if xp is numpy:
        adam = bench_adam(model)
        on = [f"{ms:.1f} ms on {k} thread{'s' * (k > 1)}" for k, ms in adam.items()
              if k != "in cache"]
        print(f"Adam alone: {', '.join(on)}; its 12 passes over data already in cache, on 1 "
              f"thread: {adam['in cache']:.1f} ms")
    print(f"evaluation: 10,000 test images x {a.models} model(s) rendered, encoded, decoded and "
          f"scored in {bench_eval(model, dataset):.2f} s")
    mb, what = memory
    line = f"peak memory: {what}: {mb:,.0f} MB RSS" if mb else f"peak memory: {what}"
    if pool is not None:
        line += f"; CuPy pool after Grouped-VAE steps: {pool / 2**20:,.0f} MB"
    print(line)


if __name__ == "__main__":
    main()
