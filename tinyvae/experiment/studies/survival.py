"""Times to an event, some of them censored: the nonparametric estimators the opening report
uses, each small enough to check by hand. A model either opened (event, at its time) or had
not by the end of its run (censored there: it may open later, or never).

- `kaplan_meier`: the fraction not yet opened, S(t), with Greenwood's variance and a
  log-log interval (it stays inside [0, 1] where a plain one would not); `km_at`, its value
  at a step;
- `log_rank`: two arms' times compared, observed against expected openings at every time
  an opening happened; `hazard_ratio`: Cox's proportional hazards with one binary covariate
  (the arm), Breslow's tie rule, a Wald interval on log HR.

Fitted curves, and what they say past the runs' end, are survival_fits.py's.

Shapes: N models (times, events), J distinct event times.
"""
import math

import numpy

Z95 = 1.959963984540054        # the two-sided 95% normal quantile
MONOTONE = 30.0                # |log HR| past which Cox's likelihood has no finite maximum


def as_arrays(times, events):
    """(times (N,) as floats, events (N,) as booleans)."""
    return (numpy.asarray(times, dtype=float),                           # (N,)
            numpy.asarray(events, dtype=bool))                           # (N,)


def kaplan_meier(times, events):
    """(steps (J,), at risk (J,), openings (J,), S (J,), low (J,), high (J,)): S just after
    each event time, with its 95% interval. A model censored at an event time was at risk at
    it (it had not opened before). Greenwood: var log S = sum d / (n (n - d)); the interval
    is S^exp(+-Z95 se) with se the standard error of log(-log S) (S = 1 or 0: no interval)."""
    t, d = as_arrays(times, events)
    steps = numpy.unique(t[d])                                           # (J,)
    at_risk = numpy.array([(t >= s).sum() for s in steps])               # (J,)
    opened = numpy.array([(t[d] == s).sum() for s in steps])             # (J,)
    survival = numpy.cumprod(1 - opened / at_risk)                       # (J,)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        greenwood = numpy.cumsum(opened / (at_risk * (at_risk - opened)))  # (J,)
        se = numpy.sqrt(greenwood) / numpy.abs(numpy.log(survival))      # (J,)
        low = survival ** numpy.exp(Z95 * se)                            # (J,)
        high = survival ** numpy.exp(-Z95 * se)                          # (J,)
    bare = (survival <= 0) | (survival >= 1)
    low[bare], high[bare] = survival[bare], survival[bare]
    return steps, at_risk, opened, survival, low, high


def km_at(km, step):
    """(S, low, high) of a kaplan_meier result at `step`: its value after the last event
    time at or before it (1, 1, 1 before the first)."""
    steps, _, _, survival, low, high = km
    j = numpy.searchsorted(steps, step, side="right") - 1
    return (1.0, 1.0, 1.0) if j < 0 else (float(survival[j]), float(low[j]), float(high[j]))


def _risk_table(times_a, events_a, times_b, events_b):
    """At each distinct event time of the pooled arms: at risk in a and in all, openings in
    a and in all: four (J,) arrays."""
    (ta, da), (tb, db) = as_arrays(times_a, events_a), as_arrays(times_b, events_b)
    steps = numpy.unique(numpy.concatenate([ta[da], tb[db]]))            # (J,)
    n_a = numpy.array([(ta >= s).sum() for s in steps], dtype=float)     # (J,)
    n = n_a + numpy.array([(tb >= s).sum() for s in steps])              # (J,)
    d_a = numpy.array([(ta[da] == s).sum() for s in steps], dtype=float)  # (J,)
    d = d_a + numpy.array([(tb[db] == s).sum() for s in steps])          # (J,)
    return n_a, n, d_a, d


def log_rank(times_a, events_a, times_b, events_b):
    """(observed in a, expected in a, variance, chi2, p): at each event time the openings in
    a are hypergeometric given the numbers at risk, expected d n_a / n with variance
    d (n_a / n)(1 - n_a / n)(n - d) / (n - 1); summed, chi2 = (O - E)^2 / V on 1 degree of
    freedom (two-sided p)."""
    n_a, n, d_a, d = _risk_table(times_a, events_a, times_b, events_b)
    expected = float((d * n_a / n).sum())
    with numpy.errstate(divide="ignore", invalid="ignore"):
        share = n_a / n                                                  # (J,)
        terms = d * share * (1 - share) * numpy.where(n > 1, (n - d) / (n - 1), 0.0)
    variance = float(terms.sum())
    observed = float(d_a.sum())
    chi2 = (observed - expected) ** 2 / variance if variance > 0 else float("nan")
    p = math.erfc(math.sqrt(chi2 / 2)) if variance > 0 else float("nan")
    return observed, expected, variance, chi2, p


def hazard_ratio(times_a, events_a, times_b, events_b):
    """(HR of a against b, low, high): Cox's partial likelihood with x = 1 in arm a, ties by
    Breslow, sum_j [d_a b - d log(n - n_a + n_a e^b)], maximized by Newton's method; the 95%
    Wald interval exp(b +- Z95 / sqrt(information)). NaN where an arm has no opening (the
    maximum is at infinity), and where every opening of one arm comes before every one of the
    other (the likelihood rises without end)."""
    n_a, n, d_a, d = _risk_table(times_a, events_a, times_b, events_b)
    if d_a.sum() in (0, d.sum()):
        return float("nan"), float("nan"), float("nan")
    b = 0.0
    for _ in range(100):
        share = n_a * math.exp(b) / (n - n_a + n_a * math.exp(b))        # (J,)
        score = float((d_a - d * share).sum())
        information = float((d * share * (1 - share)).sum())
        b += score / information
        if abs(score / information) < 1e-12:
            break
        if abs(b) > MONOTONE:    # the arms' times do not overlap: no finite maximum
            return float("nan"), float("nan"), float("nan")
    else:
        return float("nan"), float("nan"), float("nan")
    half = Z95 / math.sqrt(information)
    return math.exp(b), math.exp(b - half), math.exp(b + half)
