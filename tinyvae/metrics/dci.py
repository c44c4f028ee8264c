"""DCI (Eastwood & Williams 2018): disentanglement, completeness and informativeness from one
gradient-boosted classifier per factor, as disentanglement_lib's dci.py (unsupervised_study_v1:
TRAIN_POINTS points to fit, TEST_POINTS more to test).

Shapes: N images · D latent dimensions (the encoder means) · K factors.
"""
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from .checks import MetricsInputError, as_split


def dci(codes_train, factors_train, codes_test, factors_test, random_state=0):
    """DCI (Eastwood & Williams 2018) from one gradient-boosted classifier per factor.

    Returns {"disentanglement", "completeness", "informativeness_train", "informativeness_test"
    (mean accuracy over factors), "importance" (D, K), "disentanglement_per_code" (D,),
    "completeness_per_factor" (K,)}. Minutes at TRAIN_POINTS: the classifiers grow 100 trees
    per class of every factor."""
    codes_train, factors_train, codes_test, factors_test = as_split(
        codes_train, factors_train, codes_test, factors_test, "DCI")  # (N, D), (N, K) x 2
    D, K = codes_train.shape[1], factors_train.shape[1]
    _check_importance(np.zeros((D, K)))                      # refuse D or K < 2 before the fits
    importance = np.empty((D, K))                            # (D, K)
    accuracy = np.empty((2, K))                              # (2, K) train, test
    for k in range(K):
        # disentanglement_lib's defaults (100 trees of depth 3); random_state only fixes ties
        model = GradientBoostingClassifier(random_state=random_state)
        model.fit(codes_train, factors_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy[0, k] = np.mean(model.predict(codes_train) == factors_train[:, k])
        accuracy[1, k] = np.mean(model.predict(codes_test) == factors_test[:, k])
    disentanglement, completeness, per_code, per_factor = dci_from_importance(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness_train": float(accuracy[0].mean()),
            "informativeness_test": float(accuracy[1].mean()), "importance": importance,
            "disentanglement_per_code": per_code, "completeness_per_factor": per_factor}


def dci_from_importance(importance):
    """(disentanglement, completeness, per code (D,), per factor (K,)) of a (D, K) importance.

    Code d scores 1 - H_K(P_d.), P_d. its row normalised, weighted by its share of all
    importance; factor k scores 1 - H_D(P_.k) over its column, weighted likewise."""
    importance = _check_importance(importance)               # (D, K)
    D, K = importance.shape
    # + 1e-11 as disentanglement_lib: an all-zero row or column reads as uniform (score 0),
    # and no 0/0 arises; a zero row also weighs 0 below, so it adds nothing.
    per_code = 1 - _entropy(importance + 1e-11, axis=1, base=K)       # (D,)
    per_factor = 1 - _entropy(importance + 1e-11, axis=0, base=D)     # (K,)
    weight = importance if importance.sum() > 0 else np.ones_like(importance)  # (D, K)
    code_share = weight.sum(axis=1) / weight.sum()                    # (D,) rho_d
    factor_share = weight.sum(axis=0) / weight.sum()                  # (K,) rho_k
    return float(per_code @ code_share), float(per_factor @ factor_share), per_code, per_factor


def _check_importance(importance):
    importance = np.asarray(importance, dtype=float)        # (D, K)
    if importance.ndim != 2 or min(importance.shape) < 2 or not (importance >= 0).all():
        raise MetricsInputError(
            f"DCI needs a (D, K) importance matrix of non-negative numbers with D, K >= 2 "
            f"(its entropies take logs base K and D), got shape {importance.shape}: "
            "score at least 2 latent dimensions against at least 2 factors")
    return importance


def _entropy(p, axis, base):
    """Entropy in log base `base` of p normalised along `axis` (p > 0 everywhere)."""
    p = p / p.sum(axis=axis, keepdims=True)
    return -(p * np.log(p)).sum(axis=axis) / np.log(base)
