"""Finite-difference gradient checks in float64: the one helper every gradient test uses.

A function's analytic gradient is compared with central differences of a scalar. For an op
with output `out`, the scalar is sum(out * dout) with a *random* dout (all-ones would hide
errors that cancel across entries). Small arrays are checked entry by entry; large ones along a
few random unit directions u, where the directional derivative must equal <grad, u>.
"""
import numpy

from .backend import to_numpy

ENTRYWISE_MAX = 400   # arrays up to this size are checked entry by entry


class GradientMismatch(AssertionError):
    """A failed gradient check; `failed` lists the names of the arrays that failed it."""

    def __init__(self, message, failed=()):
        super().__init__(message)
        self.failed = list(failed)


def check_gradients(loss, inputs, grads, h=1e-6, rtol=1e-5, atol=1e-8, directions=3, seed=0):
    """Check `grads[name]` against central differences of `loss()` for every name in `grads`.

    `loss` is a zero-argument function that reads the arrays in `inputs` (float64; perturbed in
    place and restored). Returns {name: max abs error}; raises GradientMismatch naming every
    array whose error exceeds atol + rtol * scale, scale being the largest |gradient| seen.
    """
    rng = numpy.random.default_rng(seed)
    errors, failures, failed = {}, [], []
    for name, analytic in grads.items():
        a = inputs[name]
        if a.dtype != numpy.float64:
            raise TypeError(f"gradient checks need float64 arrays; {name} is {a.dtype}")
        analytic = to_numpy(analytic).astype(numpy.float64)
        if a.size <= ENTRYWISE_MAX:
            numeric = numpy.empty(a.shape)                                  # a.shape
            for idx in numpy.ndindex(a.shape):
                numeric[idx] = _central(loss, a, _one_hot(a, idx), h)
            got, want = analytic, numeric
        else:
            us = [rng.standard_normal(a.shape) for _ in range(directions)]
            us = [u / numpy.linalg.norm(u) for u in us]
            want = numpy.array([_central(loss, a, u, h) for u in us])         # (directions,)
            got = numpy.array([numpy.sum(analytic * u) for u in us])         # (directions,)
        err = float(numpy.max(numpy.abs(got - want)))
        scale = float(max(numpy.max(numpy.abs(want)), numpy.max(numpy.abs(got)), 1e-12))
        errors[name] = err
        if err > atol + rtol * scale:
            failures.append(f"{name}: max abs error {err:.3g} (relative {err / scale:.3g})")
            failed.append(name)
    if failures:
        raise GradientMismatch("gradient check failed: " + "; ".join(failures), failed)
    return errors


def check_op(forward, backward, inputs, wrt=None, seed=0, **kw):
    """Check an op pair: forward(*inputs) -> (out, cache), backward(dout, cache) -> grads in
    input order. `wrt` lists the indices of the inputs to check (default: all)."""
    rng = numpy.random.default_rng(seed)
    out, cache = forward(*inputs)
    dout = rng.standard_normal(numpy.shape(out))                           # out.shape
    analytic = backward(dout, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    wrt = range(len(inputs)) if wrt is None else wrt
    named = {f"input{k}": inputs[k] for k in wrt}

    def loss():
        return float(numpy.sum(forward(*inputs)[0] * dout))
    return check_gradients(loss, named, {f"input{k}": analytic[k] for k in wrt}, **kw)


def _one_hot(a, idx):
    u = numpy.zeros(a.shape)                                                 # a.shape
    u[idx] = 1.0
    return u


def _central(loss, a, u, h):
    """(loss(a + h u) - loss(a - h u)) / 2h, restoring a exactly afterwards."""
    keep = a.copy()
    a += h * u
    plus = loss()
    a[...] = keep
    a -= h * u
    minus = loss()
    a[...] = keep
    return (plus - minus) / (2 * h)
