"""Adam (Kingma & Ba), bias-corrected, updating parameters in place.

    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    p <- p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

Held instead of m and v are the decayed sums m_sum = m / (1 - b1) = sum_k b1^(t-k) g_k and
v_sum = v / (1 - b2), and the bias corrections are folded into two scalars:
    m_sum <- b1 m_sum + g            v_sum <- b2 v_sum + g^2
    p <- p - lr_t * m_sum / (sqrt(v_sum) + eps_t),
    lr_t = lr s (1 - b1) / (1 - b1^t),   eps_t = eps s,   s = sqrt((1 - b2^t) / (1 - b2)).
It is the same update in 10 elementwise passes instead of 12. 14 million parameters make Adam
a large share of a CPU step: on NumPy it walks the arrays in cache-sized chunks (so the one
temporary stays in cache), split across threads (NumPy releases the GIL inside each pass);
on CuPy it is one fused elementwise kernel.
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy

from .backend import array_module

# Elements per NumPy chunk. Fewer, longer passes pay Python's per-call cost less often: a
# Grouped-VAE Adam step on 2 cores took 64 / 41 / 32 / 31 ms with chunks of 2^14 / 15 / 16 / 17.
CHUNK = 1 << 16


class Adam:
    def __init__(self, params, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8, threads=None):
        """threads: NumPy threads for the update; None: the CPUs this process may use (<= 8)."""
        if not lr > 0:
            raise ValueError(f"Adam: lr must be positive, got {lr}")
        self.params = params
        self.lr, self.beta1, self.beta2 = float(lr), float(beta1), float(beta2)
        self.eps = float(eps)
        self.t = 0
        self.m_sum = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        self.v_sum = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        # The one backend choice in this module, made once.
        first = next(iter(params.values()))
        if array_module(first) is numpy:
            self._update = self._update_numpy
            self.threads = threads or min(_usable_cpus(), 8)
            self._shares = _split_chunks(params, self.threads)
            self._tmp = [numpy.empty(CHUNK, dtype=first.dtype) for _ in range(self.threads)]
            self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        else:
            self._update = _update_cupy

    def step(self, grads):
        self.t += 1
        s = math.sqrt((1.0 - self.beta2 ** self.t) / (1.0 - self.beta2))
        lr_t = self.lr * s * (1.0 - self.beta1) / (1.0 - self.beta1 ** self.t)
        eps_t = self.eps * s
        self._update(self.params, grads, self.m_sum, self.v_sum,
                     self.beta1, self.beta2, lr_t, eps_t)

    def moments(self):
        """The textbook moment estimates m and v (new arrays), from the sums held."""
        return ({k: (1.0 - self.beta1) * a for k, a in self.m_sum.items()},
                {k: (1.0 - self.beta2) * a for k, a in self.v_sum.items()})

    def state(self):
        """Everything needed to continue exactly: step count and both decayed sums."""
        return {"t": self.t, "m_sum": self.m_sum, "v_sum": self.v_sum}

    def load_state(self, state):
        self.t = int(state["t"])
        for name, p in self.params.items():
            xp = array_module(p)
            self.m_sum[name][...] = xp.asarray(state["m_sum"][name])
            self.v_sum[name][...] = xp.asarray(state["v_sum"][name])

    def _update_numpy(self, params, grads, m_sum, v_sum, b1, b2, lr_t, eps_t):
        scalars = [self._tmp[0].dtype.type(c) for c in (b1, b2, lr_t, eps_t)]
        jobs = [(share, tmp, params, grads, m_sum, v_sum, *scalars)
                for share, tmp in zip(self._shares, self._tmp)]
        if self._pool is None:
            _update_chunks(*jobs[0])
        else:
            for done in [self._pool.submit(_update_chunks, *job) for job in jobs]:
                done.result()                        # re-raises a thread's error here


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):         # Linux: honours taskset and cgroups
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _split_chunks(params, threads):
    """The chunks (name, start, stop) of all parameters, cut into `threads` contiguous shares
    of nearly equal size."""
    chunks = []
    for name, p in params.items():
        if not p.flags.c_contiguous:
            raise ValueError(f"Adam: parameter {name} must be C-contiguous: it is updated "
                             "through a flat view")
        chunks += [(name, s, min(s + CHUNK, p.size)) for s in range(0, p.size, CHUNK)]
    n = len(chunks)
    return [chunks[k * n // threads:(k + 1) * n // threads] for k in range(threads)]


def _update_chunks(share, tmp, params, grads, m_sum, v_sum, b1, b2, lr_t, eps_t):
    for name, s, e in share:
        p, g, m, v = (a.reshape(-1)[s:e] for a in (params[name], grads[name], m_sum[name],
                                                  v_sum[name]))                      # (n,)
        a = tmp[:e - s]                                                             # (n,)
        m *= b1                                      # m_sum <- b1 m_sum + g
        m += g
        numpy.multiply(g, g, out=a)                  # v_sum <- b2 v_sum + g^2
        v *= b2
        v += a
        numpy.sqrt(v, out=a)                         # p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t)
        a += eps_t
        numpy.divide(m, a, out=a)
        a *= lr_t
        p -= a


_cupy_kernel = None


def _update_cupy(params, grads, m_sum, v_sum, b1, b2, lr_t, eps_t):
    global _cupy_kernel
    if _cupy_kernel is None:
        import cupy
        _cupy_kernel = cupy.ElementwiseKernel(
            "T g, T b1, T b2, T lr_t, T eps_t", "T p, T m, T v",
            """m = b1 * m + g;
               v = b2 * v + g * g;
               p -= lr_t * m / (sqrt(v) + eps_t);""",
            "tinyvae_adam")
    for name, p in params.items():
        dt = p.dtype.type
        _cupy_kernel(grads[name], dt(b1), dt(b2), dt(lr_t), dt(eps_t), p, m_sum[name],
                     v_sum[name])
