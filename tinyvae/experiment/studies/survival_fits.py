"""Survival curves fitted by maximum likelihood with censoring, and what they say past the
runs' end: an opening contributes the density f(t), a model still closed the survival S(t).
One family covers the three models,

    S(t) = pi + (1 - pi) exp(-(t / sigma)^k)

the exponential (pi = 0, k = 1), the Weibull (pi = 0) and the cure model (a never-opening
fraction pi, the others' times Weibull).

- `fit`: the maximum-likelihood theta and its log-likelihood;
- `open_interval`: the fraction open at a step t* with its profile-likelihood interval (the
  values of F(t*) = 1 - S(t*) whose best likelihood is within chi2(1, 95%) / 2 of the
  maximum); `never_interval`: the never-opening fraction pi with its own.

Shapes: N models (times, events), P candidate parameters, U free coordinates.
"""
import math

import numpy
from scipy.optimize import brentq, minimize

from .survival import as_arrays

CHI2_95 = 3.841458820694124    # chi2 with 1 degree of freedom, 95%
MODELS = ("exponential", "Weibull", "cure")
FREE = {"exponential": (), "Weibull": ("k",), "cure": ("pi", "k")}   # besides sigma
K_RANGE = (0.02, 100.0)        # Weibull shapes searched; past these the fit is degenerate
EDGE = 1e-6                    # never-opening fractions searched in [EDGE, 1 - EDGE]
MOVES = 60                     # local grids a profile's search may look at
CLOGLOG = (-25.0, 5.0)         # log(-log S) searched: S from 1 - 1e-11 to e^-148


# theta = (pi, sigma, k), each an array of P candidates (P,); time in units of the longest
# time given, so that sigma is near 1 whatever the run's length.

def log_likelihood(theta, t, d):
    """(P,): sum over models of d log f(t) + (1 - d) log S(t) for each candidate, with
    S = pi + (1 - pi) exp(-(t/sigma)^k), f = -dS/dt = (1 - pi) (k/sigma) (t/sigma)^(k-1)
    exp(-(t/sigma)^k)."""
    pi, sigma, k = (numpy.asarray(v, dtype=float)[..., None] for v in theta)   # (P, 1)
    with numpy.errstate(divide="ignore", over="ignore", invalid="ignore"):
        z = (t / sigma) ** k                                             # (P, N)
        log_f = (numpy.log1p(-pi) + numpy.log(k / sigma)
                 + (k - 1) * numpy.log(t / sigma) - z)                   # (P, N)
        log_s = numpy.log(pi + (1 - pi) * numpy.exp(-z))                 # (P, N)
        value = numpy.where(d, log_f, log_s).sum(axis=-1)                # (P,)
    return numpy.where(numpy.isfinite(value), value, -numpy.inf)


def _k(u):
    return numpy.clip(numpy.exp(numpy.clip(u, -30, 30)), *K_RANGE)


def _pi(u, top=1.0):
    """A fraction in [0, top) from an unbounded u (a logistic), exactly 0 from u = -30 down:
    a cure model can then be the Weibull it contains, S(t) reaching 0."""
    u = numpy.clip(u, -30, 30)
    return numpy.where(u > -30, top / (1 + numpy.exp(-u)), 0.0)


def _profile(t, d, theta_of, grid):
    """The best log-likelihood over the free coordinates u (unbounded; `theta_of(u (P, U))
    -> theta`): the best point of `grid` (P, U), then the best of a 9-point-a-side grid
    around it, a quarter as fine each time the best is inside it (and moved, as fine, where
    it is at an edge: a ridge is followed), down to 1e-4. Grids, not a local search: a
    second local maximum cannot hold it, and the profile it gives is smooth enough for a
    root finder. Returns (log-likelihood, u (U,))."""
    values = log_likelihood(theta_of(grid), t, d)                        # (P,)
    best = values.argmax()
    u0, value = grid[best], float(values[best])                          # (U,)
    if not grid.shape[1]:
        return value, u0
    spacing = numpy.array([numpy.diff(numpy.unique(grid[:, i])).min()
                           for i in range(grid.shape[1])])               # (U,)
    steps = _grid(*[numpy.arange(-4, 5)] * grid.shape[1])                # (9^U, U)
    for _ in range(MOVES):
        values = log_likelihood(theta_of(u0 + steps * spacing), t, d)    # (9^U,)
        best = values.argmax()
        if values[best] > value:
            u0, value = u0 + steps[best] * spacing, float(values[best])
        if numpy.abs(steps[best]).max() < 4:      # inside: look closer; at an edge: move on
            spacing = spacing / 4
            if spacing.max() < 1e-4:
                break
    return value, u0


def _grid(*axes):
    """(P, U): every combination of the axes' values."""
    if not axes:
        return numpy.zeros((1, 0))
    return numpy.stack(numpy.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))


# The coarse grids the searches start from: Weibull shapes, never-opening fractions (logit)
# and scales (log sigma, in units of the longest time, around a start)
LOG_K = numpy.linspace(numpy.log(K_RANGE[0]), numpy.log(K_RANGE[1]), 41)
LOGIT_PI = numpy.linspace(-12, 12, 25)
LOG_SIGMA = numpy.linspace(-4, 4, 17)


def _open_family(model, step, cloglog):
    """theta from the free coordinates u (P, U) with S(step) fixed through its complementary
    log-log c = log(-log S(step)) (unbounded either way, so that S near 0 or 1 stays exact).
    Exponential and Weibull: sigma solved from (step / sigma)^k = -log S, k free. Cure: the
    latency's (log sigma, log k) free and pi solved from S = pi + (1 - pi) S_w(step), which
    needs S_w(step) <= S (else no pi: the candidate is out, its likelihood -inf)."""
    log_s = -math.exp(cloglog)

    def theta(u):
        k = _k(u[:, -1]) if "k" in FREE[model] else numpy.ones(len(u))  # (P,)
        with numpy.errstate(all="ignore"):      # the far ends give 0, inf or nan: -inf
            if model != "cure":
                return numpy.zeros(len(u)), step / (-log_s) ** (1 / k), k
            sigma = numpy.exp(numpy.clip(u[:, 0], -30, 30))              # (P,)
            latency = numpy.exp(-(step / sigma) ** k)                    # (P,) S_w(step)
            pi = (math.exp(log_s) - latency) / (1 - latency)             # (P,)
            return numpy.where(pi >= 0, pi, numpy.nan), sigma, k
    grid = (_grid(LOG_SIGMA, LOG_K) if model == "cure"
            else _grid(*([LOG_K] if "k" in FREE[model] else [])))
    return theta, grid


def _scaled(times, events):
    """Times in units of the longest, the events, that unit, and what the log-likelihood in
    those units exceeds the one in steps by (each event's density is unit times larger)."""
    t, d = as_arrays(times, events)
    unit = t.max()
    return t / unit, d, unit, d.sum() * math.log(unit)


def fit(model, times, events):
    """The maximum-likelihood fit: (theta = (pi, sigma in steps, k), its log-likelihood with
    densities per step), over (log sigma, log k, logit pi) as the model frees them, from a
    grid around the exponential's closed form sigma = total time / openings."""
    t, d, unit, shift = _scaled(times, events)

    def theta(u):
        return (_pi(u[:, 2]) if model == "cure" else numpy.zeros(len(u)),
                numpy.exp(numpy.clip(u[:, 0], -30, 30)),
                _k(u[:, 1]) if "k" in FREE[model] else numpy.ones(len(u)))
    log_sigma = numpy.log(t.sum() / max(d.sum(), 1)) + LOG_SIGMA
    axes = [log_sigma] + [LOG_K] * ("k" in FREE[model]) + [LOGIT_PI] * (model == "cure")
    starts = [_profile(t, d, theta, _grid(*axes))[1]]
    if model == "cure":                  # and from the Weibull it contains (pi = 0)
        (_, sigma, k), _ = fit("Weibull", times, events)
        starts.append(numpy.array([math.log(sigma / unit), math.log(k), -30.0]))
    best = None
    for u0 in starts:                    # polished: the grid's best is near, not on, the top
        r = minimize(lambda u: -log_likelihood(theta(u[None]), t, d)[0], u0,
                     method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12})
        if best is None or r.fun < best.fun:
            best = r
    pi, sigma, k = (float(v[0]) for v in theta(best.x[None]))
    return (pi, sigma * unit, k), -float(best.fun) - shift


def survival_at(theta, steps):
    """S at `steps` of a fitted theta (sigma in steps)."""
    pi, sigma, k = theta
    return pi + (1 - pi) * numpy.exp(-(numpy.asarray(steps, float) / sigma) ** k)


def _cloglog_at(theta, step):
    """log(-log S(step)) of a fitted theta, exact where S is within rounding of 0 or 1."""
    pi, sigma, k = theta
    with numpy.errstate(divide="ignore"):
        log_s = numpy.logaddexp(numpy.log(pi), numpy.log1p(-pi) - (step / sigma) ** k)
        return float(numpy.log(-log_s))


def _interval(profile, best, best_log_likelihood, edges):
    """The values v within `edges` with 2 (best log-likelihood - profile(v)) <= CHI2_95, as
    (low, high) around the best value; an end the data do not reach, or a best value past
    it, is the edge."""
    def excess(v):
        return 2 * (best_log_likelihood - profile(v)) - CHI2_95
    low = (edges[0] if best <= edges[0] or excess(edges[0]) <= 0
           else brentq(excess, edges[0], best, xtol=1e-4))
    high = (edges[1] if best >= edges[1] or excess(edges[1]) <= 0
            else brentq(excess, best, edges[1], xtol=1e-4))
    return low, high


def open_interval(model, times, events, step, fitted=None):
    """(F(step), low, high): the fitted fraction open at `step` and its 95% profile-
    likelihood interval, searched on c = log(-log S(step)) over CLOGLOG (F from 1e-11 to 1
    within rounding: the ends print as 0 and 1). `fitted`: fit(model, times, events)."""
    theta, best = fitted or fit(model, times, events)
    t, d, unit, shift = _scaled(times, events)
    value = float(1 - survival_at(theta, step))
    c_low, c_high = _interval(lambda c: _profile(t, d, *_open_family(model, step / unit, c))[0],
                              _cloglog_at(theta, step), best + shift, CLOGLOG)
    low = 0.0 if c_low == CLOGLOG[0] else float(-numpy.expm1(-numpy.exp(c_low)))
    high = 1.0 if c_high == CLOGLOG[1] else float(-numpy.expm1(-numpy.exp(c_high)))
    return value, low, high


def never_interval(times, events, fitted=None):
    """(pi, low, high): the cure model's never-opening fraction with its 95% profile-
    likelihood interval; `high` is the largest fraction the data do not exclude."""
    theta, best = fitted or fit("cure", times, events)
    t, d, _, shift = _scaled(times, events)
    grid = _grid(LOG_SIGMA, LOG_K)                                       # (P, 2)

    def profile(pi):
        def theta_of(u):
            return (numpy.full(len(u), pi), numpy.exp(numpy.clip(u[:, 0], -30, 30)),
                    _k(u[:, 1]))
        return _profile(t, d, theta_of, grid)[0]
    low, high = _interval(profile, theta[0], best + shift, (EDGE, 1 - EDGE))
    return theta[0], 0.0 if low == EDGE else low, 1.0 if high == 1 - EDGE else high
