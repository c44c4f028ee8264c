"""Disentanglement scores of paper §5: MIG (eq. 12) and MIC (eq. 13), both from one MI matrix.

Shapes: N evaluated images · D latent dimensions (the model's Z) · K factors of variation.

The protocol is the field's (Chen et al. 2018; Locatello et al. 2018), so that scores compare
with published ones: each dimension of the encoder means is cut on its own into `bins`
equal-width bins over its observed range, and I(d_j; f_k) is scikit-learn's plug-in estimate
between the bin indices and the factor's classes, in nats. Runs on the host: pass NumPy arrays
(`backend.to_numpy`).

The field's other scores beside it have a file each in this folder (dci.py, sap.py,
modularity.py, factorvae.py); all check their inputs with checks.py.
"""
import numpy as np
from sklearn.metrics import mutual_info_score

from .checks import MetricsInputError, as_codes, as_factors, as_mi, as_pair, need_gap


def discretize(codes, bins=20):
    """Bin index in 1..bins (N, D) of each code, every latent dimension binned on its own range."""
    codes = as_codes(codes)                                  # (N, D)
    binned = np.empty(codes.shape, dtype=np.int64)           # (N, D)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins)[1]           # (bins+1,) min..max; constant: v±0.5
        # all edges but the last, as disentanglement_lib: the maximum lands in bin `bins`
        binned[:, j] = np.digitize(codes[:, j], edges[:-1])  # (N,)
    return binned


def mutual_info_matrix(codes, factors, bins=20):
    """I(d_j; f_k) in nats (D, K); a constant dimension falls in one bin and scores exactly 0."""
    codes, factors = as_pair(codes, factors)                 # (N, D), (N, K)
    binned = discretize(codes, bins)                         # (N, D)
    mi = np.empty((binned.shape[1], factors.shape[1]))       # (D, K)
    for j in range(binned.shape[1]):
        for k in range(factors.shape[1]):
            mi[j, k] = mutual_info_score(factors[:, k], binned[:, j])
    return mi


def factor_entropy(factors):
    """Plug-in entropy H(f_k) in nats (K,) of each factor's empirical class frequencies."""
    factors = as_factors(factors)                            # (N, K)
    entropy = np.empty(factors.shape[1])                     # (K,)
    for k in range(factors.shape[1]):
        p = np.unique(factors[:, k], return_counts=True)[1] / len(factors)  # (classes,)
        entropy[k] = -(p * np.log(p)).sum()
    return entropy


def mig_from_mi(mi, entropy):
    """Eq. 12 from a (D, K) MI matrix: (MIG, gaps (K,)), each gap divided by its H(f_k)."""
    mi, entropy = as_mi(mi, entropy)                         # (D, K), (K,)
    need_gap(mi.shape[0], "MIG", "the MI matrix")
    top2 = np.sort(mi, axis=0)[-2:]                          # (2, K) runner-up, I(d_{j_k}, f_k)
    gaps = (top2[1] - top2[0]) / entropy                     # (K,)
    return float(gaps.mean()), gaps


def mic_from_mi(mi, entropy, dims):
    """Eq. 13 from a (D, K) MI matrix: (K,) MI inside the set `dims` minus MI outside, over H(f)."""
    mi, entropy = as_mi(mi, entropy)                         # (D, K), (K,)
    dims = list(dims)
    if not all(isinstance(j, (int, np.integer)) and 0 <= j < len(mi) for j in dims):
        raise MetricsInputError(
            f"dims must be latent indices in 0..{len(mi) - 1}, got {dims}: "
            "pass the subset S as integers, e.g. range(3) for the first group")
    inside = np.zeros(len(mi), dtype=bool)                   # (D,) membership of S
    inside[dims] = True
    return (mi[inside].sum(0) - mi[~inside].sum(0)) / entropy  # (K,)


def mig(codes, factors, bins=20):
    """MIG of eq. 12 with its parts: {"mig", "gaps" (K,), "mi" (D, K), "entropy" (K,)}."""
    mi = mutual_info_matrix(codes, factors, bins)            # (D, K)
    entropy = factor_entropy(factors)                        # (K,)
    score, gaps = mig_from_mi(mi, entropy)
    return {"mig": score, "gaps": gaps, "mi": mi, "entropy": entropy}


def mic(codes, factors, dims, bins=20):
    """MIC of eq. 13 (K,) of every factor in the latent subset `dims`."""
    return mic_from_mi(mutual_info_matrix(codes, factors, bins), factor_entropy(factors), dims)
