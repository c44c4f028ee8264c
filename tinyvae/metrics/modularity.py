"""Modularity (Ridgeway & Zemel 2018), as disentanglement_lib's modularity_explicitness.py:
from the MI matrix of 10,000 points, like MIG (mig.mutual_info_matrix).

Shapes: D latent dimensions · K factors.
"""
import numpy as np

from .checks import MetricsInputError


def modularity(mi):
    """Modularity (Ridgeway & Zemel 2018) of a (D, K) MI matrix (`mutual_info_matrix`).

    Dimension d scores 1 - delta_d, delta_d = sum_k (MI_dk - t_k)^2 / (theta^2 (K - 1)) with
    theta = max_k MI_dk and t the template that keeps theta and zeroes the rest; a dimension
    whose largest MI is 0 scores 0. Returns the mean over dimensions."""
    mi = np.asarray(mi, dtype=float)                         # (D, K)
    if mi.ndim != 2 or mi.shape[1] < 2 or not (mi >= 0).all():
        raise MetricsInputError(
            f"modularity needs a (D, K) matrix of mutual informations (>= 0) with K >= 2 "
            f"(delta divides by K - 1), got shape {mi.shape}: pass mutual_info_matrix(...)")
    K = mi.shape[1]
    theta = mi.max(axis=1)                                   # (D,)
    # (MI - t)^2 is MI^2 everywhere but at the argmax, where it is 0
    off = (mi ** 2).sum(axis=1) - theta ** 2                 # (D,)
    score = np.zeros(len(mi))                                # (D,) 0 where theta = 0
    live = theta > 0                                         # (D,)
    score[live] = 1 - off[live] / (theta[live] ** 2 * (K - 1))
    return float(score.mean())
