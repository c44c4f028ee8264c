"""Adam (Kingma & Ba), bias-corrected, updating parameters in place.

    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    p <- p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

The update is done with the bias corrections folded into two scalars,
    p <- p - lr_t * m / (sqrt(v) + eps_t),   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
                                             eps_t = eps sqrt(1 - b2^t),
which is the same number written with fewer passes over memory. 14 million parameters make
Adam memory-bound: on NumPy it walks each array in cache-sized chunks so the temporaries stay
in cache; on CuPy it is one fused elementwise kernel.
"""
import math

import numpy

from .backend import array_module

CHUNK = 1 << 15   # elements per NumPy chunk: p, g, m, v and two temporaries fit in L2


class Adam:
    def __init__(self, params, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8):
        if not lr > 0:
            raise ValueError(f"Adam: lr must be positive, got {lr}")
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.t = 0
        self.m = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        self.v = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        first = next(iter(params.values()))
        # The one backend choice in this module, made once.
        self._update = _update_numpy if array_module(first) is numpy else _update_cupy

    def step(self, grads):
        self.t += 1
        c2 = math.sqrt(1.0 - self.beta2 ** self.t)
        lr_t = self.lr * c2 / (1.0 - self.beta1 ** self.t)
        eps_t = self.eps * c2
        for name, p in self.params.items():
            self._update(p, grads[name], self.m[name], self.v[name],
                   self.beta1, self.beta2, lr_t, eps_t)

    def state(self):
        """Everything needed to continue exactly: step count and both moment estimates."""
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state(self, state):
        self.t = int(state["t"])
        for name, p in self.params.items():
            xp = array_module(p)
            self.m[name][...] = xp.asarray(state["m"][name])
            self.v[name][...] = xp.asarray(state["v"][name])


def _update_numpy(p, g, m, v, b1, b2, lr_t, eps_t):
    p, g, m, v = (a.reshape(-1) for a in (p, g, m, v))   # views: parameters are contiguous
    t1 = numpy.empty(min(CHUNK, p.size), dtype=p.dtype)
    t2 = numpy.empty_like(t1)
    for s in range(0, p.size, CHUNK):
        e = min(s + CHUNK, p.size)
        pc, gc, mc, vc, a, b = p[s:e], g[s:e], m[s:e], v[s:e], t1[:e - s], t2[:e - s]
        mc *= b1                                     # m <- b1 m + (1 - b1) g
        numpy.multiply(gc, 1.0 - b1, out=a)
        mc += a
        vc *= b2                                     # v <- b2 v + (1 - b2) g^2
        numpy.multiply(gc, gc, out=a)
        a *= 1.0 - b2
        vc += a
        numpy.sqrt(vc, out=b)                        # p <- p - lr_t m / (sqrt(v) + eps_t)
        b += eps_t
        numpy.divide(mc, b, out=a)
        a *= lr_t
        pc -= a


_cupy_kernel = None


def _update_cupy(p, g, m, v, b1, b2, lr_t, eps_t):
    global _cupy_kernel
    if _cupy_kernel is None:
        import cupy
        _cupy_kernel = cupy.ElementwiseKernel(
            "T g, T b1, T b2, T lr_t, T eps_t", "T p, T m, T v",
            """m = b1 * m + (1 - b1) * g;
               v = b2 * v + (1 - b2) * g * g;
               p -= lr_t * m / (sqrt(v) + eps_t);""",
            "tinyvae_adam")
    dt = p.dtype.type
    _cupy_kernel(g, dt(b1), dt(b2), dt(lr_t), dt(eps_t), p, m, v)
