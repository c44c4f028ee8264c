"""DCI, SAP, modularity and the FactorVAE score against known answers, as disentanglement_lib's
own tests check them (codes = factors, random codes, a duplicated latent space), plus hand
matrices and the bad inputs.

Shapes: N images · D latent dimensions · K factors.
"""
from math import log
from types import SimpleNamespace

import numpy as np
import pytest

from tinyvae.data.dataset import Dataset
from tinyvae.data.render import index_to_classes
from tinyvae.metrics.checks import MetricsInputError
from tinyvae.metrics.dci import dci, dci_from_importance
from tinyvae.metrics.factorvae import factorvae_score, factorvae_scores
from tinyvae.metrics.mig import mutual_info_matrix
from tinyvae.metrics.modularity import modularity
from tinyvae.metrics.sap import sap
from tinyvae.vae import PIXELS

SIZES = (2, 3, 4)                                            # small: the classifiers stay fast


def split(n_train=600, n_test=300, sizes=SIZES):
    """Factor classes (N, K) of a train and a test part, drawn uniformly."""
    rng = np.random.default_rng(0)
    return [np.stack([rng.integers(0, s, n) for s in sizes], axis=1) for n in (n_train, n_test)]


def fake_dataset(sizes=SIZES):
    """All factorvae_score reads of a dataset: its factor grid."""
    return SimpleNamespace(factor_sizes=sizes)


def factors_as_codes(sizes=SIZES, copies=1):
    """An encode that returns each image's factor classes, `copies` times side by side."""
    return lambda indices: np.hstack([index_to_classes(indices, sizes) * 1.0] * copies)


FEW_VOTES = {"variance_points": 1000, "train_votes": 300, "eval_votes": 300}


# ---------------------------------------------------------------- DCI

def test_dci_of_hand_importance_matrices():
    eye = dci_from_importance(np.eye(3))
    assert eye[:2] == pytest.approx((1.0, 1.0), abs=1e-8)
    assert dci_from_importance(np.ones((3, 4)))[:2] == pytest.approx((0.0, 0.0), abs=1e-8)
    # rows [.5 .5] (entropy 1: scores 0) and [1 0] (scores 1) weigh 1/2 each; columns
    # [.5 1] (p = 1/3, 2/3) weighs 3/4 and [.5 0] (scores 1) weighs 1/4
    h = -(1 / 3 * log(1 / 3) + 2 / 3 * log(2 / 3)) / log(2)
    d, c, per_code, per_factor = dci_from_importance([[0.5, 0.5], [1.0, 0.0]])
    assert d == pytest.approx(0.5, abs=1e-8) and c == pytest.approx(0.75 * (1 - h) + 0.25, abs=1e-8)
    np.testing.assert_allclose(per_factor, [1 - h, 1], atol=1e-8)
    # an all-zero row scores 0 and weighs 0: the others' score stands, no 0/0
    d, c, per_code, _ = dci_from_importance([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert d == pytest.approx(1.0, abs=1e-8) and per_code[2] == pytest.approx(0.0, abs=1e-8)
    assert dci_from_importance(np.zeros((2, 2)))[:2] == (0.0, 0.0)


def test_dci_of_codes_equal_to_factors_is_one():
    train, test = split()
    order = [2, 0, 1]
    result = dci(3.0 * train[:, order] - 1, train, 3.0 * test[:, order] - 1, test)
    assert result["disentanglement"] > 0.99 and result["completeness"] > 0.99
    assert result["informativeness_train"] == result["informativeness_test"] == 1.0
    assert result["importance"].argmax(0).tolist() == [order.index(k) for k in range(3)]


def test_dci_of_random_codes_is_near_zero():
    train, test = split()
    rng = np.random.default_rng(1)
    result = dci(rng.normal(size=(600, 3)), train, rng.normal(size=(300, 3)), test)
    assert result["disentanglement"] < 0.05 and result["completeness"] < 0.05
    chance = np.mean([1 / s for s in SIZES])
    assert abs(result["informativeness_test"] - chance) < 0.1
    assert result["informativeness_train"] > result["informativeness_test"] + 0.2  # overfit


def test_dci_of_a_duplicated_latent_space():
    # disentanglement_lib's test: [F, F] splits each factor over 2 of 2K codes
    train, test = split()
    result = dci(np.hstack([train, train]) * 1.0, train, np.hstack([test, test]) * 1.0, test)
    assert result["disentanglement"] > 0.9
    assert result["completeness"] == pytest.approx(1 - log(2) / log(6), abs=0.1)
    # D = 2 copies of one factor: its importance splits evenly, completeness near 0
    twice = np.hstack([train[:, :1], train[:, :1]]) * 1.0    # (N, 2)
    result = dci(twice, train, np.hstack([test[:, :1], test[:, :1]]) * 1.0, test)
    assert result["completeness_per_factor"][0] < 0.2 and result["completeness"] < 0.1


# ---------------------------------------------------------------- SAP

def test_sap_of_codes_equal_to_factors_beats_random_codes():
    train, test = split()
    perfect = sap(train * 1.0, train, test * 1.0, test)
    rng = np.random.default_rng(1)
    random = sap(rng.normal(size=(600, 3)), train, rng.normal(size=(300, 3)), test)
    # a linear classifier on one dimension cannot give every one of 3-4 classes a region, so
    # even a perfect code stays below 1; the binary factor's best dimension scores 1
    assert perfect["sap"] > 0.3 and random["sap"] < 0.05
    assert perfect["scores"][0, 0] == 1.0 and perfect["scores"].argmax(0).tolist() == [0, 1, 2]


def test_sap_of_a_duplicated_dimension_is_zero():
    train, test = split()
    result = sap(np.hstack([train, train]) * 1.0, train, np.hstack([test, test]) * 1.0, test)
    assert (result["gaps"] == 0.0).all() and result["sap"] == 0.0
    assert (result["scores"].max(0) > 0.5).all()             # the copies are informative


# ---------------------------------------------------------------- modularity

def test_modularity_of_hand_matrices():
    assert modularity([[0.5, 0.0, 0.0], [0.0, 0.0, 0.2]]) == 1.0
    assert modularity([[1.0, 1.0, 1.0]]) == 0.0
    assert modularity([[1.0, 0.5]]) == pytest.approx(0.75)  # delta = 0.5^2 / (1^2 * 1)
    assert modularity([[1.0, 0.0], [0.0, 0.0]]) == 0.5       # the zero row scores 0


def test_modularity_of_codes_equal_to_factors_and_of_random_codes():
    train, _ = split(2000, 1)
    assert modularity(mutual_info_matrix(train * 1.0, train)) > 0.99
    # equal class counts, so the estimator's bias favours no factor; note that with dSprites'
    # unequal ones (3 to 40 classes) a random code scores about 0.66 by that bias alone
    even, _ = split(2000, 1, sizes=(4, 4, 4))
    noise = np.random.default_rng(1).normal(size=(2000, 3))  # (N, D)
    assert modularity(mutual_info_matrix(noise, even)) < 0.5


# ---------------------------------------------------------------- FactorVAE score

def test_factorvae_of_codes_equal_to_factors_is_one():
    result = factorvae_score(factors_as_codes(), fake_dataset(), **FEW_VOTES)
    assert result["train_accuracy"] == result["eval_accuracy"] == 1.0
    assert result["votes"].sum() == 300 and np.count_nonzero(result["votes"]) == 3
    assert result["classifier"].tolist() == [0, 1, 2] and result["num_active_dims"] == 3
    # disentanglement_lib's duplicated latent space: either copy wins, both are right
    twice = factorvae_score(factors_as_codes(copies=2), fake_dataset(), **FEW_VOTES)
    assert twice["eval_accuracy"] == 1.0


def test_factorvae_of_random_codes_is_chance():
    rng = np.random.default_rng(1)
    result = factorvae_score(lambda i: rng.normal(size=(len(i), 4)), fake_dataset(),
                             variance_points=1000, train_votes=1000, eval_votes=1000)
    assert abs(result["eval_accuracy"] - 1 / 3) < 0.06
    assert result["train_accuracy"] >= result["eval_accuracy"] - 0.06


def test_factorvae_prunes_collapsed_dimensions():
    rng = np.random.default_rng(1)

    def encode(indices):                                     # dims 1, 2: std 0 and 0.01
        c = index_to_classes(indices) * 1.0                  # (n, K)
        return np.column_stack([c[:, 0], np.zeros(len(c)), 0.01 * rng.normal(size=len(c)),
                                c[:, 1:]])                   # (n, 7)

    result = factorvae_score(encode, SimpleNamespace(factor_sizes=(3, 6, 40, 32, 32)),
                             **FEW_VOTES)
    assert result["active"].tolist() == [True, False, False, True, True, True, True]
    assert result["eval_accuracy"] == 1.0 and result["votes"][1:3].sum() == 0
    nothing = factorvae_score(lambda i: np.zeros((len(i), 2)), fake_dataset(), **FEW_VOTES)
    assert nothing["num_active_dims"] == 0 and nothing["eval_accuracy"] == 0.0


def test_factorvae_on_the_renderer_encodes_in_chunks():
    dataset = Dataset()
    projection = np.random.default_rng(0).normal(size=(PIXELS, 3))  # (P, D)
    calls = []

    def encode(indices):
        calls.append(len(indices))
        return dataset.images(indices, np, np.float64) @ projection  # (n, D)

    result = factorvae_score(encode, dataset, seed=3, variance_points=500, train_votes=100,
                             eval_votes=100, chunk=4096)
    # 500 images, then 64 votes of 64 images a call: 64 + 36, twice
    assert calls == [500, 4096, 2304, 4096, 2304]
    assert result["votes"].shape == (3, 5) and result["votes"].sum() == 100
    assert 0.0 <= result["eval_accuracy"] <= 1.0 and result["protocol"]["seed"] == 3
    again = factorvae_score(encode, dataset, seed=3, variance_points=500, train_votes=100,
                            eval_votes=100)
    assert (again["votes"] == result["votes"]).all()         # the seed fixes every draw


def test_factorvae_of_models_together_is_each_model_alone():
    """factorvae_scores on M models' codes of the same images: model by model, what
    factorvae_score gives each alone, one without an active dimension among them."""
    def perfect(i):
        return index_to_classes(i, SIZES) * 1.0                       # (n, K)

    def noisy(i):                                                    # a fixed code per image
        return perfect(i) + np.sin(i)[:, None] * np.arange(1, 4)      # (n, K)

    def collapsed(i):
        return np.zeros((len(i), 3))                                 # (n, D)

    alone = [factorvae_score(f, fake_dataset(), seed=5, **FEW_VOTES)
             for f in (perfect, noisy, collapsed)]
    together = factorvae_scores(lambda i: np.stack([perfect(i), noisy(i), collapsed(i)]),
                                fake_dataset(), seed=5, **FEW_VOTES)
    assert len(together) == 3
    for one, batched in zip(alone, together):
        assert batched.keys() == one.keys()
        for key in one:
            assert np.array_equal(batched[key], one[key]) if key != "protocol" \
                else batched[key] == one[key], key
    assert alone[0]["eval_accuracy"] == 1.0 and 0 < alone[1]["eval_accuracy"] < 1
    assert alone[2]["num_active_dims"] == 0 and together[2]["votes"].sum() == 0
    with pytest.raises(MetricsInputError, match=r"\(M, n, D\)"):
        factorvae_scores(perfect, fake_dataset(), **FEW_VOTES)     # (n, D): one model's


# ---------------------------------------------------------------- constant and bad inputs

def test_a_constant_dimension_is_scored_not_refused():
    train, test = split()
    def pad(f):                                              # (N, K + 1): the last is constant
        return np.column_stack([f, np.full(len(f), 4.2)])
    result = dci(pad(train), train, pad(test), test)
    assert (result["importance"][3] == 0).all() and result["disentanglement"] > 0.99
    assert np.isfinite(sap(pad(train), train, pad(test), test)["scores"]).all()
    assert modularity(mutual_info_matrix(pad(train), train)) == pytest.approx(0.75, abs=0.01)


def _bad_pairs():
    train, _ = split(20, 1)
    codes = np.zeros((20, 3))
    return [
        ((codes, train, codes[:5], train[:4]), "N=5"),
        ((codes, train * 1.0, codes, train), "integer classes"),
        ((codes, np.column_stack([train[:, :2], np.zeros(20, int)]), codes, train),
         r"factors \[2\] have zero entropy"),
        ((codes, train, codes[:, :2], train), "test has D=2"),
        ((np.full((20, 3), np.nan), train, codes, train), "NaN"),
        ((codes[:, 0], train, codes, train), r"must be \(N, D\)"),
    ]


@pytest.mark.parametrize("score", [dci, sap])
@pytest.mark.parametrize("args, message", _bad_pairs())
def test_dci_and_sap_refuse_bad_inputs(score, args, message):
    with pytest.raises(MetricsInputError, match=message):
        score(*args)


def test_too_few_dimensions_or_factors():
    train, _ = split(20, 1)
    with pytest.raises(MetricsInputError, match="SAP needs at least 2 latent"):
        sap(train[:, :1] * 1.0, train, train[:, :1] * 1.0, train)
    with pytest.raises(MetricsInputError, match="D, K >= 2"):
        dci(train * 1.0, train[:, :1], train * 1.0, train[:, :1])
    with pytest.raises(MetricsInputError, match="K >= 2"):
        modularity([[0.3], [0.1]])
    with pytest.raises(MetricsInputError, match=r"\(D, K\) matrix"):
        modularity([[0.3, -0.1]])


@pytest.mark.parametrize("encode, dataset, counts, message", [
    (factors_as_codes((2, 1)), fake_dataset((2, 1)), {}, r"factors \[1\] have zero entropy"),
    (factors_as_codes(), fake_dataset(), {"batch_size": 1}, "batch_size"),
    (lambda i: np.zeros((3, 2)), fake_dataset(), {}, "gave 3 rows for 1000"),
    (lambda i: np.full((len(i), 2), np.inf), fake_dataset(), {}, "NaN or inf"),
])
def test_factorvae_refuses_bad_inputs(encode, dataset, counts, message):
    with pytest.raises(MetricsInputError, match=message):
        factorvae_score(encode, dataset, **{**FEW_VOTES, **counts})
