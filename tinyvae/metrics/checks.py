"""What the scores share: the checks of their inputs, and the sizes of the study they follow.

Shapes: N images · D latent dimensions (the encoder means) · K factors of variation.
"""
import numpy as np

TRAIN_POINTS, TEST_POINTS = 10_000, 5_000    # dci.gin and sap_score.gin: num_train, num_test
SCORE_SEED = 0        # DCI's and SAP's points, and the FactorVAE score's batches


class MetricsInputError(ValueError):
    """Inputs the metrics cannot score; the message says what was wrong and what to do."""


def as_codes(codes):
    codes = np.asarray(codes)                                # (N, D)
    if codes.ndim != 2:
        raise MetricsInputError(
            f"codes must be (N, D), got shape {codes.shape}: for one dimension pass c[:, None]")
    if not np.isfinite(codes).all():
        raise MetricsInputError(
            "codes contain NaN or inf, which have no bin: the model has likely diverged; "
            "check its training log before scoring it")
    return codes


def as_factors(factors):
    factors = np.asarray(factors)                            # (N, K)
    if factors.ndim != 2 or not np.issubdtype(factors.dtype, np.integer):
        raise MetricsInputError(
            f"factors must be integer classes (N, K), got {factors.dtype} {factors.shape}: "
            "pass class indices (e.g. factors.astype(int)), not the factors' continuous values")
    return factors


def as_pair(codes, factors):
    """Checked codes (N, D) and factors (N, K) of the same N images."""
    codes, factors = as_codes(codes), as_factors(factors)    # (N, D), (N, K)
    if len(codes) != len(factors):
        raise MetricsInputError(
            f"codes have N={len(codes)} rows but factors have N={len(factors)}: pass the "
            "encoder means and the factor classes of the same images, in the same order")
    return codes, factors


def as_split(codes_train, factors_train, codes_test, factors_test, score):
    """The four checked arrays of a train/test score that fits one classifier per factor."""
    codes_train, factors_train = as_pair(codes_train, factors_train)   # (N, D), (N, K)
    codes_test, factors_test = as_pair(codes_test, factors_test)       # (N', D), (N', K)
    D, K = codes_train.shape[1], factors_train.shape[1]
    if (codes_test.shape[1], factors_test.shape[1]) != (D, K):
        raise MetricsInputError(
            f"train has D={D}, K={K} but test has D={codes_test.shape[1]}, "
            f"K={factors_test.shape[1]}: pass the same model's means and factors for both parts")
    one = [k for k in range(K) if (factors_train[:, k] == factors_train[0, k]).all()]
    if one:
        raise one_class_error(one, f"{score} fits a classifier to each factor's train classes")
    return codes_train, factors_train, codes_test, factors_test


def as_mi(mi, entropy):
    mi, entropy = np.asarray(mi, dtype=float), np.asarray(entropy, dtype=float)  # (D, K), (K,)
    if mi.ndim != 2 or entropy.shape != mi.shape[1:]:
        raise MetricsInputError(
            f"need mi (D, K) and entropy (K,), got {mi.shape} and {entropy.shape}: "
            "pass mutual_info_matrix(...) and factor_entropy(...) of the same factors")
    if not (entropy > 0).all():
        raise one_class_error(np.flatnonzero(entropy <= 0), "eq. 12-13 divide by H(f)")
    return mi, entropy


def need_gap(D, score, instead):
    """Refuse D < 2: `score` is a gap between the two best latent dimensions."""
    if D < 2:
        raise MetricsInputError(
            f"{score} needs at least 2 latent dimensions to take a gap, got D={D}: "
            f"score a model with Z >= 2, or report {instead} instead")


def one_class_error(ks, why):
    """The error for factors `ks` that hold one class, which no score can use: `why` says so."""
    return MetricsInputError(
        f"factors {list(map(int, ks))} have zero entropy (one class only), and {why}: "
        "drop constant factors before scoring")
