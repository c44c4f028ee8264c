"""The survival estimators and fits (tinyvae/experiment/studies/survival.py, survival_fits.py) against
answers known without them: Kaplan-Meier worked by hand, the log-rank test and Cox's hazard
ratio on a textbook data set whose risk table is written out below, the exponential fit
against its closed form, and the profile-likelihood ends where the profile has one."""
import math

import numpy
import pytest

from tinyvae.experiment.studies.survival import Z95, hazard_ratio, kaplan_meier, km_at, log_rank
from tinyvae.experiment.studies.survival_fits import CHI2_95, fit, never_interval, open_interval


def test_kaplan_meier_by_hand():
    # times 2, 3+, 4, 4, 6+, 7 (+: censored). At 2: 6 at risk, 1 opens, S = 5/6. The model
    # censored at 3 leaves. At 4: 4 at risk, 2 open, S = 5/6 * 2/4 = 5/12. The one censored
    # at 6 leaves. At 7: 1 at risk, 1 opens, S = 0.
    steps, at_risk, opened, s, low, high = kaplan_meier([2, 3, 4, 4, 6, 7], [1, 0, 1, 1, 0, 1])
    assert steps.tolist() == [2, 4, 7] and at_risk.tolist() == [6, 4, 1]
    assert opened.tolist() == [1, 2, 1]
    assert s == pytest.approx([5 / 6, 5 / 12, 0.0], abs=1e-15)
    # Greenwood at 4: 1/(6*5) + 2/(4*2) = 17/60; on the log(-log) scale se = sqrt(17/60) /
    # log(12/5), and the interval is S^exp(+-1.96 se): about 0.056 to 0.767
    se = math.sqrt(17 / 60) / math.log(12 / 5)
    assert low[1] == pytest.approx((5 / 12) ** math.exp(Z95 * se), rel=1e-12)
    assert high[1] == pytest.approx((5 / 12) ** math.exp(-Z95 * se), rel=1e-12)
    assert (round(low[1], 3), round(high[1], 3)) == (0.056, 0.767)
    assert low[2] == high[2] == 0.0                      # S = 0: no interval
    assert km_at((steps, at_risk, opened, s, low, high), 1) == (1.0, 1.0, 1.0)
    assert km_at((steps, at_risk, opened, s, low, high), 5)[0] == pytest.approx(5 / 12)


def test_a_model_censored_at_an_event_time_was_at_risk_then():
    # 3, 3+, 5: the model censored at 3 had not opened before 3, so 3 were at risk there:
    # S(3) = 2/3 (not 1/2, as if it had left first); at 5, 1 at risk, S = 0
    steps, at_risk, _, s, _, _ = kaplan_meier([3, 3, 5], [1, 0, 1])
    assert at_risk.tolist() == [3, 1] and s == pytest.approx([2 / 3, 0.0])
    # nothing opened: no event time, S = 1 throughout
    km = kaplan_meier([10, 20], [0, 0])
    assert len(km[0]) == 0 and km_at(km, 15) == (1.0, 1.0, 1.0)


# Freireich's leukaemia trial (weeks in remission; +: censored), the worked example of the
# log-rank test in Kleinbaum & Klein, Survival Analysis, chapter 2.
SIX_MP = [6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1] * 9 + [0] * 12
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
# The risk table at each relapse time: (time, at risk 6-MP, at risk placebo, relapses 6-MP,
# relapses placebo). Expected placebo relapses: sum d n_p / n; variance: sum d n_m n_p
# (n - d) / (n^2 (n - 1)). Summed as fractions by hand: E = 10.7495, V = 6.2570, so
# chi2 = (21 - 10.7495)^2 / 6.2570 = 16.793, the book's 16.79.
RISK_TABLE = [(1, 21, 21, 0, 2), (2, 21, 19, 0, 2), (3, 21, 17, 0, 1), (4, 21, 16, 0, 2),
              (5, 21, 14, 0, 2), (6, 21, 12, 3, 0), (7, 17, 12, 1, 0), (8, 16, 12, 0, 4),
              (10, 15, 8, 1, 0), (11, 13, 8, 0, 2), (12, 12, 6, 0, 2), (13, 12, 4, 1, 0),
              (15, 11, 4, 0, 1), (16, 11, 3, 1, 0), (17, 10, 3, 0, 1), (22, 7, 2, 1, 1),
              (23, 6, 1, 1, 1)]


def test_log_rank_on_the_textbook_example():
    observed, expected, variance, chi2, p = log_rank(PLACEBO, [1] * 21, SIX_MP, SIX_MP_EVENT)
    assert observed == 21
    assert expected == pytest.approx(10.7495, abs=1e-4)
    assert variance == pytest.approx(6.2570, abs=1e-4)
    assert chi2 == pytest.approx(16.793, abs=1e-3)
    assert p == pytest.approx(4.17e-5, rel=0.01)         # chi2(1) tail at 16.793
    # the other arm's view: the same test
    assert log_rank(SIX_MP, SIX_MP_EVENT, PLACEBO, [1] * 21)[3] == pytest.approx(chi2)


def test_the_risk_table_is_the_data():
    """The table the expected values were summed from is the data's (a check of the fixture,
    so that the hand sums above are of these times)."""
    for time, n_m, n_p, d_m, d_p in RISK_TABLE:
        assert n_m == sum(t >= time for t in SIX_MP) and n_p == sum(t >= time for t in PLACEBO)
        assert d_m == sum(t == time and e for t, e in zip(SIX_MP, SIX_MP_EVENT))
        assert d_p == PLACEBO.count(time)


def test_cox_hazard_ratio_on_the_textbook_example():
    # Kleinbaum & Klein, chapter 3 (Breslow ties): coefficient 1.509, se 0.410, hazard ratio
    # 4.523, 95% interval 2.027 to 10.094
    hr, low, high = hazard_ratio(PLACEBO, [1] * 21, SIX_MP, SIX_MP_EVENT)
    assert (round(hr, 3), round(low, 3), round(high, 2)) == (4.523, 2.027, 10.09)
    assert math.log(high / low) / (2 * Z95) == pytest.approx(0.410, abs=1e-3)
    # every opening of one arm before every one of the other: no finite maximum
    assert math.isnan(hazard_ratio([1, 2], [1, 1], [5, 6], [1, 1])[0])


TIMES = [100, 250, 400, 700, 1000]
EVENTS = [1, 1, 0, 1, 0]


def test_the_exponential_fit_is_events_over_exposure():
    (pi, sigma, k), loglik = fit("exponential", TIMES, EVENTS)
    # rate = 3 openings / 2450 steps of exposure; log-likelihood 3 log(rate) - rate * 2450
    assert (pi, k) == (0.0, 1.0) and sigma == pytest.approx(2450 / 3, rel=1e-6)
    assert loglik == pytest.approx(3 * math.log(3 / 2450) - 3, abs=1e-9)


def test_the_exponential_interval_ends_where_its_profile_says():
    """With one parameter the profile is the likelihood itself: at an end, F(t) = 1 -
    exp(-rate t) and 3 log(rate / rate_hat) - (rate - rate_hat) 2450 = -chi2 / 2."""
    value, low, high = open_interval("exponential", TIMES, EVENTS, 3000)
    assert value == pytest.approx(1 - math.exp(-3000 * 3 / 2450), rel=1e-6)
    for end in (low, high):
        rate = -math.log(1 - end) / 3000
        drop = 3 * math.log(rate * 2450 / 3) - (rate * 2450 - 3)
        assert drop == pytest.approx(-CHI2_95 / 2, abs=1e-4)


def test_the_fits_nest_and_a_never_opening_fraction_is_bounded():
    exponential, weibull, cure = (fit(m, TIMES, EVENTS)[1] for m in ("exponential", "Weibull",
                                                                      "cure"))
    assert exponential <= weibull + 1e-9 <= cure + 2e-9       # each contains the one before
    # every model opened (no censoring): the latency fits the times whatever pi is, so the
    # profile of pi is N log(1 - pi) plus a constant, and its upper end 1 - exp(-chi2 / 2N)
    times = [1000, 1200, 1000, 1200, 1050]
    pi, low, high = never_interval(times, [1] * 5)
    assert pi == 0.0 and low == 0.0
    assert high == pytest.approx(1 - math.exp(-CHI2_95 / 10), abs=1e-5)
    # ten open early and ten are still closed long after: about half never open
    times = numpy.r_[numpy.linspace(100, 1000, 10), numpy.full(10, 100_000)]
    pi, low, high = never_interval(times, [1] * 10 + [0] * 10)
    assert pi == pytest.approx(0.5, abs=0.01) and low < 0.5 < high < 0.8
