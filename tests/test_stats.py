"""The experiments' statistics (tinyvae/experiment/studies/stats.py) against answers worked by
hand."""
import itertools
import math

import numpy
import pytest

from tinyvae.experiment.studies import stats
from tinyvae.experiment.studies.stats import (bootstrap_interval, difference_interval,
                                              fisher_exact, gap_fraction, holm, mean_difference,
                                              permutation_p, spread_p)


def test_permutation_p_is_exact():
    # completely separated fives: only the observed split and its mirror are as extreme
    assert permutation_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert permutation_p([3, 3, 3], [3, 3, 3]) == 1.0
    rng = numpy.random.default_rng(0)
    a, b = rng.normal(size=4), rng.normal(size=3)
    pooled = numpy.concatenate([a, b])
    by_hand = [abs(pooled[list(s)].mean() - numpy.delete(pooled, list(s)).mean())
               for s in itertools.combinations(range(7), 4)]                # all 35 splits
    observed = abs(a.mean() - b.mean())
    assert permutation_p(a, b) == pytest.approx(
        numpy.mean(numpy.array(by_hand) >= observed - 1e-12))
    assert permutation_p(a, b) == permutation_p(b, a)


def test_random_splits_stand_in_for_too_many_and_agree_with_the_exact_p(monkeypatch):
    rng = numpy.random.default_rng(1)
    a, b = rng.normal(0, 1, 10), rng.normal(0.9, 1, 10)
    exact = permutation_p(a, b)                                 # 184,756 splits: exact
    monkeypatch.setattr(stats, "EXACT_SPLITS", 1000)
    sampled = permutation_p(a, b)
    assert sampled != exact and abs(sampled - exact) < 0.005   # 100,000 splits: sd ~0.001
    # 20 against 20 (1.4e11 splits), completely separated: no random split is as extreme,
    # and the p is the smallest the draw can give, never 0
    monkeypatch.undo()
    assert permutation_p(range(20), range(100, 120)) == 1 / (1 + stats.MONTE_CARLO)


def test_fisher_exact_by_hand():
    # 3 of 4 against 1 of 4: tables with x = 0..4 have probabilities (1, 16, 36, 16, 1) / 70;
    # those no more probable than the observed 16/70 are x = 0, 1, 3, 4
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(34 / 70)
    assert fisher_exact(0, 20, 0, 20) == 1.0 and fisher_exact(5, 10, 5, 10) == 1.0
    # all against none: only the two extreme tables, each 1 / C(20, 10)
    assert fisher_exact(10, 10, 0, 10) == pytest.approx(2 / math.comb(20, 10))
    assert fisher_exact(2, 20, 9, 20) == fisher_exact(9, 20, 2, 20)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; kept
    # non-decreasing: 0.02, 0.03, 0.06, 0.06
    numpy.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9])[1] == 1.0                           # at most 1


def test_gap_fraction_and_its_interval():
    assert gap_fraction([11.8], [11.5], [14.9]) == pytest.approx(3.1 / 3.4)
    assert gap_fraction([14.9], [11.5], [14.9]) == 0.0
    assert numpy.isnan(gap_fraction([1.0], [2.0], [2.0]))      # no gap to share
    # constant arms: every resample gives the same statistic, so does the interval
    assert bootstrap_interval(mean_difference, [[2.0] * 4, [0.5] * 6]) == (1.5, 1.5)
    assert difference_interval([2.0] * 4, [0.5] * 6) == (1.5, 1.5, 1.5)
    rng = numpy.random.default_rng(2)
    a, b = rng.normal(3, 1, 20), rng.normal(0, 1, 20)
    low, high = bootstrap_interval(mean_difference, [a, b])
    assert low < mean_difference(a, b) < high and 0 < high - low < 2


def test_spread_p_tells_a_tight_arm_from_a_loose_one():
    tight = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0]
    loose = [8.0, 12.0, 9.0, 11.0, 7.5, 12.5]
    mad_tight, mad_loose, p = spread_p(tight, loose)
    assert mad_tight == pytest.approx(0.05) and mad_loose == pytest.approx(11 / 6)
    assert p == pytest.approx(2 / math.comb(12, 6))             # fully separated deviations
    # the same spread about different centres: nothing to tell
    assert spread_p([1, 2, 3], [11, 12, 13])[2] == 1.0
