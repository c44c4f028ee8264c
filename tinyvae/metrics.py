"""Disentanglement scores of paper §5: MIG (eq. 12) and MIC (eq. 13), both from one MI matrix.

Shapes: N evaluated images · D latent dimensions (the model's Z) · K factors of variation.

The protocol is the field's (Chen et al. 2018; Locatello et al. 2018), so that scores compare
with published ones: each dimension of the encoder means is cut on its own into `bins`
equal-width bins over its observed range, and I(d_j; f_k) is scikit-learn's plug-in estimate
between the bin indices and the factor's classes, in nats. Runs on the host: pass NumPy arrays
(`backend.to_numpy`).

The field's other scores (DCI, SAP, modularity, the FactorVAE score) live in scores.py, which
shares this module's input checks; they import from here too (`from tinyvae.metrics import dci`).
"""
import numpy as np
from sklearn.metrics import mutual_info_score


class MetricsInputError(ValueError):
    """Inputs the metrics cannot score; the message says what was wrong and what to do."""


def discretize(codes, bins=20):
    """Bin index in 1..bins (N, D) of each code, every latent dimension binned on its own range."""
    codes = _as_codes(codes)                                 # (N, D)
    binned = np.empty(codes.shape, dtype=np.int64)           # (N, D)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins)[1]           # (bins+1,) min..max; constant: v±0.5
        # all edges but the last, as disentanglement_lib: the maximum lands in bin `bins`
        binned[:, j] = np.digitize(codes[:, j], edges[:-1])  # (N,)
    return binned


def mutual_info_matrix(codes, factors, bins=20):
    """I(d_j; f_k) in nats (D, K); a constant dimension falls in one bin and scores exactly 0."""
    codes, factors = _as_pair(codes, factors)                # (N, D), (N, K)
    binned = discretize(codes, bins)                         # (N, D)
    mi = np.empty((binned.shape[1], factors.shape[1]))       # (D, K)
    for j in range(binned.shape[1]):
        for k in range(factors.shape[1]):
            mi[j, k] = mutual_info_score(factors[:, k], binned[:, j])
    return mi


def factor_entropy(factors):
    """Plug-in entropy H(f_k) in nats (K,) of each factor's empirical class frequencies."""
    factors = _as_factors(factors)                           # (N, K)
    entropy = np.empty(factors.shape[1])                     # (K,)
    for k in range(factors.shape[1]):
        p = np.unique(factors[:, k], return_counts=True)[1] / len(factors)  # (classes,)
        entropy[k] = -(p * np.log(p)).sum()
    return entropy


def mig_from_mi(mi, entropy):
    """Eq. 12 from a (D, K) MI matrix: (MIG, gaps (K,)), each gap divided by its H(f_k)."""
    mi, entropy = _as_mi(mi, entropy)                        # (D, K), (K,)
    _need_gap(mi.shape[0], "MIG", "the MI matrix")
    top2 = np.sort(mi, axis=0)[-2:]                          # (2, K) runner-up, I(d_{j_k}, f_k)
    gaps = (top2[1] - top2[0]) / entropy                     # (K,)
    return float(gaps.mean()), gaps


def mic_from_mi(mi, entropy, dims):
    """Eq. 13 from a (D, K) MI matrix: (K,) MI inside the set `dims` minus MI outside, over H(f)."""
    mi, entropy = _as_mi(mi, entropy)                        # (D, K), (K,)
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


def _as_codes(codes):
    codes = np.asarray(codes)                                # (N, D)
    if codes.ndim != 2:
        raise MetricsInputError(
            f"codes must be (N, D), got shape {codes.shape}: for one dimension pass c[:, None]")
    if not np.isfinite(codes).all():
        raise MetricsInputError(
            "codes contain NaN or inf, which have no bin: the model has likely diverged; "
            "check its training log before scoring it")
    return codes


def _as_factors(factors):
    factors = np.asarray(factors)                            # (N, K)
    if factors.ndim != 2 or not np.issubdtype(factors.dtype, np.integer):
        raise MetricsInputError(
            f"factors must be integer classes (N, K), got {factors.dtype} {factors.shape}: "
            "pass class indices (e.g. factors.astype(int)), not the factors' continuous values")
    return factors


def _as_pair(codes, factors):
    """Checked codes (N, D) and factors (N, K) of the same N images."""
    codes, factors = _as_codes(codes), _as_factors(factors)  # (N, D), (N, K)
    if len(codes) != len(factors):
        raise MetricsInputError(
            f"codes have N={len(codes)} rows but factors have N={len(factors)}: pass the "
            "encoder means and the factor classes of the same images, in the same order")
    return codes, factors


def _one_class_error(ks, why):
    """The error for factors `ks` that hold one class, which no score can use: `why` says so."""
    return MetricsInputError(
        f"factors {list(map(int, ks))} have zero entropy (one class only), and {why}: "
        "drop constant factors before scoring")


def _need_gap(D, score, instead):
    """Refuse D < 2: `score` is a gap between the two best latent dimensions."""
    if D < 2:
        raise MetricsInputError(
            f"{score} needs at least 2 latent dimensions to take a gap, got D={D}: "
            f"score a model with Z >= 2, or report {instead} instead")


def _as_mi(mi, entropy):
    mi, entropy = np.asarray(mi, dtype=float), np.asarray(entropy, dtype=float)  # (D, K), (K,)
    if mi.ndim != 2 or entropy.shape != mi.shape[1:]:
        raise MetricsInputError(
            f"need mi (D, K) and entropy (K,), got {mi.shape} and {entropy.shape}: "
            "pass mutual_info_matrix(...) and factor_entropy(...) of the same factors")
    if not (entropy > 0).all():
        raise _one_class_error(np.flatnonzero(entropy <= 0), "eq. 12-13 divide by H(f)")
    return mi, entropy


# scores.py imports this module's checks, so its scores are re-exported lazily: an eager import
# here would be circular and fail for a caller who imports tinyvae.scores first.
_SCORES = ("dci", "dci_from_importance", "sap", "modularity", "factorvae_score")


def __getattr__(name):
    if name in _SCORES:
        from . import scores
        return getattr(scores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _bench_codes(n, sizes=(3, 6, 40, 32, 32), latent=6):
    """Codes (N, D) of one stand-in model that mixes the factors (N, K) linearly, plus noise."""
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)  # (N, K)
    mixing = rng.normal(size=(len(sizes), latent))                      # (K, D)
    codes = (factors / np.array(sizes)) @ mixing + 0.1 * rng.normal(size=(n, latent))  # (N, D)
    return codes, factors


def _bench(n=10_000, sizes=(3, 6, 40, 32, 32), latent=6, repeats=5):
    """Seconds for all metrics of one model: one MI matrix, MIG, and the MIC of each group."""
    import time
    codes, factors = _bench_codes(n, sizes, latent)          # (N, D), (N, K)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mi = mutual_info_matrix(codes, factors)              # (D, K)
        entropy = factor_entropy(factors)                    # (K,)
        mig_from_mi(mi, entropy)
        for group in (range(latent // 2), range(latent // 2, latent)):
            mic_from_mi(mi, entropy, group)
        times.append(time.perf_counter() - start)
    print(f"metrics of one model, N={n}, D={latent}, K={len(sizes)} {sizes}: "
          f"median {np.median(times):.3f} s, max {max(times):.3f} s over {repeats} runs")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="Benchmark the disentanglement metrics.")
    parser.add_argument("--bench", action="store_true",
                        help="time the metrics of one model: MIG/MIC, then DCI, SAP, modularity "
                             "and the FactorVAE score at their published sizes (minutes)")
    if parser.parse_args().bench:
        _bench()
        from tinyvae.scores import _bench as _bench_scores
        _bench_scores()
    else:
        parser.print_help()
