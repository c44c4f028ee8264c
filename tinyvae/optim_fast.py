"""Adam's update (optim.adam_rule) over all parameters at once, fast. On NumPy it does the
rule's operations in the rule's order, so it gives the rule's bits (tests/test_optim.py); on
CuPy the fused kernel may contract multiply-adds, a few ulps apart.

On NumPy it walks the arrays in cache-sized chunks (so the temporaries stay in cache), split
across threads (NumPy releases the GIL inside each pass); on CuPy it is one fused elementwise
kernel.

Shapes: n elements of one chunk of a flattened parameter.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy

from .backend import array_module
from .optim import Adam

# Elements per NumPy chunk: small enough that a chunk's six slices stay in cache across its
# 12 passes, large enough that the threads seldom meet at the GIL, which each must take back
# after every pass: Adam alone over the Grouped-VAE's parameters, on 2 threads, took 31 / 25 /
# 21 / 24 ms (medians of 37 steps) with chunks of 2^15 / 16 / 17 / 18 on the 2-core
# development machine.
CHUNK = 1 << 17


class FastAdam(Adam):
    """optim.Adam, a drop-in with the same constructor and methods, whose update runs fast:
    train.py's choice. threads: NumPy threads for the update (None: the CPUs this process may
    use, at most 8)."""

    def __init__(self, params, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8, threads=None):
        super().__init__(params, lr, beta1, beta2, eps)
        self.fast = FastUpdate(params, threads)      # adam_rule over every parameter, fast

    @property
    def threads(self):
        return self.fast.threads

    def update(self, grads, lr_t, eps_t):
        self.fast(self.params, grads, self.m, self.v, self.beta1, self.beta2, lr_t, eps_t)


class FastUpdate:
    """update(params, grads, m, v, b1, b2, lr_t, eps_t): adam_rule on every parameter, in
    place. The one backend choice of Adam, made once, from its parameters."""

    def __init__(self, params, threads=None):
        first = next(iter(params.values()))
        if array_module(first) is numpy:
            self._update = self._update_numpy
            self.threads = threads or min(usable_cpus(), 8)
            self._shares = _split_chunks(params, self.threads)
            self._tmp = [numpy.empty((2, CHUNK), dtype=first.dtype) for _ in range(self.threads)]
            self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
            self._views_of, self._views = None, None
        else:
            self._update = _update_cupy
            self.threads = None

    def __call__(self, params, grads, m, v, b1, b2, lr_t, eps_t):
        self._update(params, grads, m, v, b1, b2, lr_t, eps_t)

    def _update_numpy(self, params, grads, m, v, b1, b2, lr_t, eps_t):
        dt = self._tmp[0].dtype.type
        scalars = [dt(c) for c in (b1, 1.0 - b1, b2, 1.0 - b2, lr_t, eps_t)]
        # The chunks' views are made once and kept while the same arrays come back: the
        # model hands Adam the same gradient buffers every step. Slicing ~220 chunks x 6
        # arrays anew each step held the GIL between the threads' passes long enough to make
        # them queue for it (Adam alone 26 -> 21 ms on 2 cores, with the larger chunks).
        # A gradient that is not C-contiguous is copied (a new array: new views) every step.
        grads = {name: numpy.ascontiguousarray(grads[name]) for name in params}
        arrays = [a[name] for name in params for a in (params, grads)]
        if self._views_of is None or any(a is not b for a, b in zip(arrays, self._views_of)):
            self._views = [_chunk_views(share, tmp, params, grads, m, v)
                           for share, tmp in zip(self._shares, self._tmp)]
            self._views_of = arrays
        # numpy.errstate is per thread: the workers take the caller's (train.py's) settings.
        jobs = [(numpy.geterr(), views, *scalars) for views in self._views]
        if self._pool is None:
            update_chunks(*jobs[0])
        else:
            futures = [self._pool.submit(update_chunks, *job) for job in jobs]
            for error in [f.exception() for f in futures]:    # waits for every worker
                if error is not None:
                    raise error


def usable_cpus():
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):         # Linux: honours taskset and cgroups
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _split_chunks(params, threads):
    """The chunks (name, start, stop) of all parameters, cut into `threads` contiguous shares
    of nearly equal size."""
    chunks = []
    for name, p in params.items():
        chunks += [(name, s, min(s + CHUNK, p.size)) for s in range(0, p.size, CHUNK)]
    n = len(chunks)
    return [chunks[k * n // threads:(k + 1) * n // threads] for k in range(threads)]


def _chunk_views(share, tmp, params, grads, m, v):
    """[(p, g, m, v, a, b)] per chunk of `share`: views into the four arrays and the thread's
    two temporaries, all (n,)."""
    flat = {name: [x[name].reshape(-1) for x in (params, grads, m, v)] for name, _, _ in share}
    return [tuple(x[s:e] for x in flat[name]) + (tmp[0, :e - s], tmp[1, :e - s])
            for name, s, e in share]


def update_chunks(err, views, b1, w1, b2, w2, lr_t, eps_t):
    with numpy.errstate(**err):
        for p, g, m, v, a, b in views:                                              # (n,)
            m *= b1                                  # m <- b1 m + (1 - b1) g
            numpy.multiply(g, w1, out=a)
            m += a
            v *= b2                                  # v <- b2 v + (1 - b2) g^2
            numpy.multiply(g, g, out=a)
            a *= w2
            v += a
            numpy.sqrt(v, out=b)                     # p <- p - lr_t m / (sqrt(v) + eps_t)
            b += eps_t
            numpy.divide(m, b, out=a)
            a *= lr_t
            p -= a


_cupy_kernel = None


def _update_cupy(params, grads, m, v, b1, b2, lr_t, eps_t):
    global _cupy_kernel
    if _cupy_kernel is None:
        import cupy
        _cupy_kernel = cupy.ElementwiseKernel(
            "T g, T b1, T b2, T lr_t, T eps_t", "T p, T m, T v",
            """m = b1 * m + (1 - b1) * g;
               v = b2 * v + (1 - b2) * g * g;
               p -= lr_t * m / (sqrt(v) + eps_t);""",
            "tinyvae_adam")
    for name, p in params.items():
        dt = p.dtype.type
        _cupy_kernel(grads[name], dt(b1), dt(b2), dt(lr_t), dt(eps_t), p, m[name], v[name])
