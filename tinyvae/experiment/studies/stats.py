"""The few statistics the experiments report, each small enough to check by hand.

Seeds are few (5 to 20 a configuration), so no distribution is assumed:
- `permutation_p`: a difference of means against every split of the pooled trials (exact),
  or against `MONTE_CARLO` random splits where there are too many to list;
- `bootstrap_interval`: an interval for a statistic of two or more arms, each arm resampled
  with replacement on its own (percentile interval); `difference_interval`, the difference of
  two arms' means with it;
- `gap_fraction`: how much of the gap between two arms a third reproduces;
- `holm`: the Holm step-down correction over a family of p-values;
- `fisher_exact`: two rates (k of n) compared exactly, given both margins;
- `spread_p`: which arm is more consistent: a permutation test on the absolute deviations of
  each trial from its own arm's median (the Brown-Forsythe statistic).

Shapes: T trials of an arm (Ta, Tb, ...), R resamples.
"""
import itertools
import math

import numpy

TIE = 1e-9            # differences equal up to rounding count as "at least as large"
EXACT_SPLITS = 200_000   # up to this many splits p is exact (10 against 10: 184,756)
MONTE_CARLO = 100_000    # else this many random splits: p = (1 + hits) / (1 + MONTE_CARLO)
RESAMPLES = 10_000       # bootstrap resamples
SEED = 0                 # the default generator, default_rng(SEED): reproducible reports


def permutation_p(a, b, rng=None):
    """Two-sided permutation p-value of mean(a) - mean(b): the share of splits of the pooled
    trials into groups of len(a) and len(b) whose difference is at least as large in absolute
    value. Exact (the observed split is one of them, so p >= 1 / C) up to EXACT_SPLITS splits;
    beyond, MONTE_CARLO splits drawn by `rng` (default: default_rng(SEED))."""
    a, b = numpy.asarray(a, dtype=float), numpy.asarray(b, dtype=float)   # (Ta,), (Tb,)
    pooled = numpy.concatenate([a, b])                                    # (T,)
    observed = abs(a.mean() - b.mean())
    exact = math.comb(len(pooled), len(a)) <= EXACT_SPLITS
    if exact:
        picks = numpy.array(list(itertools.combinations(range(len(pooled)), len(a))))  # (C, Ta)
        in_a = numpy.zeros((len(picks), len(pooled)), dtype=bool)        # (C, T)
        numpy.put_along_axis(in_a, picks, True, axis=1)
    else:
        rng = numpy.random.default_rng(SEED) if rng is None else rng
        in_a = rng.random((MONTE_CARLO, len(pooled))).argsort(axis=1) < len(a)   # (R, T)
    mean_a = (in_a * pooled).sum(axis=1) / len(a)                         # (C,) or (R,)
    mean_b = (~in_a * pooled).sum(axis=1) / len(b)
    hits = int((numpy.abs(mean_a - mean_b) >= observed - TIE * (1 + observed)).sum())
    return hits / len(in_a) if exact else (1 + hits) / (1 + MONTE_CARLO)


def bootstrap_interval(statistic, arms, level=0.95, rng=None):
    """Percentile interval of statistic(*arms) with each arm (T_i,) resampled on its own,
    RESAMPLES times, by `rng` (default: default_rng(SEED))."""
    rng = numpy.random.default_rng(SEED) if rng is None else rng
    arms = [numpy.asarray(x, dtype=float) for x in arms]
    draws = [x[rng.integers(0, len(x), (RESAMPLES, len(x)))] for x in arms]   # (R, T_i) each
    values = numpy.array([statistic(*(d[r] for d in draws)) for r in range(RESAMPLES)])  # (R,)
    values = values[numpy.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")        # e.g. a gap of zero in every resample
    tail = (1 - level) / 2 * 100
    return tuple(float(v) for v in numpy.percentile(values, [tail, 100 - tail]))


def mean_difference(a, b):
    return float(numpy.mean(a) - numpy.mean(b))


def difference_interval(a, b, rng=None):
    """(mean(a) - mean(b), low, high): the difference with its 95% bootstrap interval."""
    return (mean_difference(a, b), *bootstrap_interval(mean_difference, [a, b], rng=rng))


def gap_fraction(scaled, routed, unrouted):
    """(mean(scaled) - mean(unrouted)) / (mean(routed) - mean(unrouted)): 1 where the scaled
    arm lands on the routed one, 0 where it stays with the unrouted one."""
    gap = numpy.mean(routed) - numpy.mean(unrouted)
    return float((numpy.mean(scaled) - numpy.mean(unrouted)) / gap) if gap else float("nan")


def holm(ps):
    """Holm-adjusted p-values (same order): the k-th smallest times (m - k + 1), kept
    non-decreasing and at most 1. A finding survives at level a where its adjusted p <= a."""
    ps = numpy.asarray(ps, dtype=float)                                   # (m,)
    order = numpy.argsort(ps, kind="stable")
    m = len(ps)
    adjusted = numpy.maximum.accumulate(ps[order] * (m - numpy.arange(m)))
    out = numpy.empty(m)
    out[order] = numpy.minimum(adjusted, 1.0)
    return out


def fisher_exact(k_a, n_a, k_b, n_b):
    """Two-sided exact p of k_a of n_a against k_b of n_b: the summed probability, with both
    margins fixed (hypergeometric), of every table no more probable than the one observed."""
    k, n = k_a + k_b, n_a + n_b
    low, high = max(0, k - n_b), min(k, n_a)

    def prob(x):
        return math.comb(n_a, x) * math.comb(n_b, k - x) / math.comb(n, k)
    observed = prob(k_a)
    return float(min(1.0, sum(prob(x) for x in range(low, high + 1)
                              if prob(x) <= observed * (1 + 1e-7))))


def spread_p(a, b):
    """Is one arm more spread than the other? (mean absolute deviation of a, of b, p): each
    trial's |x - median of its arm|, then the permutation test of their means; two-sided.
    results/study-log.md states it as it was chosen, before the runs it was applied to."""
    da = numpy.abs(numpy.asarray(a, float) - numpy.median(a))             # (Ta,)
    db = numpy.abs(numpy.asarray(b, float) - numpy.median(b))             # (Tb,)
    return float(da.mean()), float(db.mean()), permutation_p(da, db)


def p_text(p):
    """A p-value to four places, or in scientific notation where those would all be zero
    (10 against 10 trials can give 2/184756 = 1.1e-05)."""
    return f"{p:.4f}" if p >= 5e-5 else f"{p:.1e}"
