"""MIG (eq. 12) and MIC (eq. 13) against known answers and a hand computation.

Shapes: N evaluated images · D latent dimensions · K factors.
"""
from math import log

import numpy as np
import pytest

from tinyvae.metrics.checks import MetricsInputError
from tinyvae.metrics.mig import (discretize, factor_entropy, mic, mic_from_mi, mig, mig_from_mi,
                                 mutual_info_matrix)


def independent_factors(sizes, n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)  # (N, K)


# the tiny example: 8 images, 2 latent dimensions, 2 factors
F0 = [0, 0, 0, 1, 1, 1, 1, 1]
F1 = [0, 1, 0, 1, 0, 1, 0, 1]
TINY_FACTORS = np.array([F0, F1]).T                          # (8, 2)
TINY_CODES = np.array([[0, 1, 2, 3, 4, 5, 6, 7],             # 2 bins, edge 3.5: 4 and 4
                       [-1, -1, -1, 2, 2, 2, 2, 2]]).T * 1.0  # (8, 2) 2 bins = F0's classes


def tiny_by_hand():
    """MI (D, K) and H (K,) of the tiny example, from its counts written out by hand."""
    h0 = -(3 / 8 * log(3 / 8) + 5 / 8 * log(5 / 8))
    h1 = log(2)
    # d0 bins x F0 counts: [[3, 1], [0, 4]];  p(bin) = 1/2, 1/2;  p(F0) = 3/8, 5/8
    i00 = 3 / 8 * log((3 / 8) / (1 / 2 * 3 / 8)) + 1 / 8 * log((1 / 8) / (1 / 2 * 5 / 8)) \
        + 4 / 8 * log((4 / 8) / (1 / 2 * 5 / 8))
    # d0 bins x F1 counts: [[2, 2], [2, 2]]: independent
    i01 = 0.0
    # d1 bins are F0's classes, so I(d1; F0) = H(F0)
    i10 = h0
    # d1 bins x F1 counts: [[2, 1], [2, 3]];  p(bin) = 3/8, 5/8;  p(F1) = 1/2, 1/2
    i11 = 2 / 8 * log((2 / 8) / (3 / 8 * 1 / 2)) + 1 / 8 * log((1 / 8) / (3 / 8 * 1 / 2)) \
        + 2 / 8 * log((2 / 8) / (5 / 8 * 1 / 2)) + 3 / 8 * log((3 / 8) / (5 / 8 * 1 / 2))
    return np.array([[i00, i01], [i10, i11]]), np.array([h0, h1])


def test_discretize_follows_the_histogram_edge_convention():
    # 2 bins over [0, 2] have edges 0, 1, 2: an interior edge value goes up, the maximum stays in
    binned = discretize(np.array([[0.0, 0.5, 1.0, 1.5, 2.0]]).T, bins=2)  # (5, 1)
    assert binned[:, 0].tolist() == [1, 1, 2, 2, 2]


def test_tiny_example_matches_hand_computation():
    mi_hand, h_hand = tiny_by_hand()
    result = mig(TINY_CODES, TINY_FACTORS, bins=2)
    np.testing.assert_allclose(result["mi"], mi_hand, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result["entropy"], h_hand, rtol=1e-12)
    gaps_hand = [(h_hand[0] - mi_hand[0, 0]) / h_hand[0], mi_hand[1, 1] / h_hand[1]]
    np.testing.assert_allclose(result["gaps"], gaps_hand, rtol=1e-12)
    assert result["mig"] == pytest.approx(np.mean(gaps_hand), rel=1e-12)
    mic_hand = (mi_hand[0] - mi_hand[1]) / h_hand                 # S = {d0}
    np.testing.assert_allclose(mic(TINY_CODES, TINY_FACTORS, [0], bins=2), mic_hand, rtol=1e-12)


def test_codes_equal_to_factors_give_gaps_of_one():
    # at most 20 classes: each class gets its own bin; the permutation makes j_k be found
    sizes = (3, 6, 10, 16, 20)
    factors = independent_factors(sizes)                     # (N, K)
    order = [3, 0, 4, 1, 2]
    codes = 2.5 * factors[:, order] - 7.0                     # (N, D) affine: bins don't care
    result = mig(codes, factors)
    np.testing.assert_allclose(result["gaps"], 1.0, atol=0.01)
    assert result["mi"].argmax(0).tolist() == [order.index(k) for k in range(5)]
    assert (result["gaps"] < 1.0).all()                      # plug-in bias of the runner-up


def test_independent_codes_give_mig_near_zero():
    factors = independent_factors((3, 6, 40, 32, 32))        # (N, K)
    codes = np.random.default_rng(1).normal(size=(10_000, 6))  # (N, D)
    result = mig(codes, factors)
    assert 0.0 <= result["mig"] < 0.01
    assert (result["mi"] > 0).all()                          # the bias is there, the gap cancels it


def test_duplicated_dimension_gives_gap_zero():
    factors = independent_factors((3, 6, 10))                # (N, K)
    noise = np.random.default_rng(2).normal(size=(10_000, 2))  # (N, 2)
    code = factors[:, :1] + 0.1 * noise[:, :1]               # (N, 1) informative about factor 0
    codes = np.hstack([code, code, noise])                   # (N, 4)
    result = mig(codes, factors)
    assert result["mi"][0, 0] > 0.5
    assert result["gaps"][0] == 0.0


def test_constant_dimension_has_mi_zero():
    factors = independent_factors((3, 6), n=1000)            # (N, K)
    codes = np.column_stack([factors[:, 0], np.full(1000, 4.2)]) * 1.0  # (N, 2)
    mi = mutual_info_matrix(codes, factors)                  # (2, 2)
    assert np.isfinite(mi).all() and (mi[1] == 0.0).all()


def test_mic_of_all_and_of_none():
    factors = independent_factors((3, 6, 10))                # (N, K)
    codes = np.column_stack([factors[:, 0], factors[:, 0] + factors[:, 1],
                             np.zeros(10_000)]) * 1.0        # (N, 3) d2 carries nothing
    mi = mutual_info_matrix(codes, factors)                  # (3, 3)
    h = factor_entropy(factors)                              # (3,)
    # a single dimension that is the factor, the rest constant: MIC = H/H = 1
    only = np.column_stack([factors[:, 1], np.zeros(10_000), np.ones(10_000)]) * 1.0  # (N, 3)
    assert mic(only, factors, [0])[1] == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(mic_from_mi(mi, h, []), -mi.sum(0) / h, rtol=1e-12)
    np.testing.assert_allclose(mic_from_mi(mi, h, range(3)), mi.sum(0) / h, rtol=1e-12)


def test_mig_from_mi_on_a_hand_matrix():
    mi = np.array([[0.1, 0.9], [0.7, 0.2], [0.4, 0.0]])     # (3, 2)
    score, gaps = mig_from_mi(mi, np.array([1.0, 2.0]))
    np.testing.assert_allclose(gaps, [(0.7 - 0.4) / 1.0, (0.9 - 0.2) / 2.0])
    assert score == pytest.approx((0.3 + 0.35) / 2)


@pytest.mark.parametrize("codes, factors, message", [
    (np.zeros((5, 2)), np.zeros((4, 1), int), "N=5"),
    (np.zeros((5, 2)), np.zeros((5, 1)), "integer classes"),
    (np.zeros(5), np.zeros((5, 1), int), r"must be \(N, D\)"),
    (np.full((5, 2), np.nan), np.zeros((5, 1), int), "NaN"),
    (np.zeros((5, 1)), np.arange(5)[:, None], "at least 2 latent"),
    (np.zeros((5, 2)), np.column_stack([np.zeros(5, int), np.arange(5)]), r"factors \[0\] have"),
])
def test_bad_inputs_get_a_clear_error(codes, factors, message):
    with pytest.raises(MetricsInputError, match=message):
        mig(codes, factors)


def test_mic_rejects_dims_outside_the_latent():
    mi, h = tiny_by_hand()
    with pytest.raises(MetricsInputError, match=r"0\.\.1"):
        mic_from_mi(mi, h, [2])
    assert issubclass(MetricsInputError, ValueError)

