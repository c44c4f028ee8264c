"""The field's other disentanglement scores beside MIG: DCI, SAP, modularity, FactorVAE score.

Shapes: N images · D latent dimensions (the encoder means) · K factors · V votes · B batch
(the images of one vote).

Each recipe is disentanglement_lib's (Locatello et al. 2019, `evaluation/metrics/*.py` with the
unsupervised_study_v1 metric configs), so that the scores compare with published ones. Sizes of
that study: DCI and SAP fit on 10,000 points and test on 5,000 more (TRAIN_POINTS, TEST_POINTS);
modularity takes the MI matrix of 10,000 points, like MIG; the FactorVAE score takes 10,000
images for the variances, then 10,000 training and 5,000 evaluation votes of 64 images each.
Host NumPy and scikit-learn; inputs are checked as `metrics.mig` checks them (MetricsInputError).
"""
import time

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.svm import LinearSVC
from tqdm import tqdm

from .metrics import (MetricsInputError, _as_codes, _as_pair, _need_gap, _one_class_error)
from .render import classes_to_index

TRAIN_POINTS, TEST_POINTS = 10_000, 5_000    # dci.gin and sap_score.gin: num_train, num_test


def dci(codes_train, factors_train, codes_test, factors_test, random_state=0):
    """DCI (Eastwood & Williams 2018) from one gradient-boosted classifier per factor.

    Returns {"disentanglement", "completeness", "informativeness_train", "informativeness_test"
    (mean accuracy over factors), "importance" (D, K), "disentanglement_per_code" (D,),
    "completeness_per_factor" (K,)}. Minutes at TRAIN_POINTS: the classifiers grow 100 trees
    per class of every factor."""
    codes_train, factors_train, codes_test, factors_test = _as_split(
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


def sap(codes_train, factors_train, codes_test, factors_test):
    """SAP (Kumar et al. 2018) for discrete factors: mean over factors of the gap in test
    accuracy between the two best single-dimension linear classifiers.

    Returns {"sap", "gaps" (K,), "scores" (D, K) test accuracy of dimension d for factor k}."""
    codes_train, factors_train, codes_test, factors_test = _as_split(
        codes_train, factors_train, codes_test, factors_test, "SAP")  # (N, D), (N, K) x 2
    D, K = codes_train.shape[1], factors_train.shape[1]
    _need_gap(D, "SAP", "the scores of single dimensions")
    scores = np.empty((D, K))                                # (D, K)
    for d in range(D):
        for k in range(K):
            # disentanglement_lib's LinearSVC(C=0.01, class_weight="balanced"), solved in the
            # primal (dual=False): the same squared-hinge objective and optimum as its old dual
            # default, but on one feature it converges at once (no ConvergenceWarning), and it does
            # not rest on scikit-learn's default, which changed (True, "auto" from 1.5; 1.3-1.4
            # warn about the change).
            svm = LinearSVC(C=0.01, class_weight="balanced", dual=False)
            svm.fit(codes_train[:, d:d + 1], factors_train[:, k])
            scores[d, k] = np.mean(svm.predict(codes_test[:, d:d + 1]) == factors_test[:, k])
    top2 = np.sort(scores, axis=0)[-2:]                      # (2, K) runner-up, best
    gaps = top2[1] - top2[0]                                 # (K,)
    return {"sap": float(gaps.mean()), "gaps": gaps, "scores": scores}


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


def factorvae_score(encode, dataset, seed=0, batch_size=64, variance_points=10_000,
                    train_votes=10_000, eval_votes=5_000, prune_std=0.05, chunk=4096,
                    progress=False):
    """The FactorVAE score (Kim & Mnih 2018): accuracy of a majority-vote classifier that tells
    which factor a batch holds fixed from its least-varying code dimension.

    `encode(indices) -> codes (n, D)` maps image indices (n,) of `dataset` (anything with
    `factor_sizes`, e.g. data.Dataset) to encoder means on the host; it is called on about
    `chunk` images at a time. Images are drawn with factor classes uniform, as
    disentanglement_lib samples them, from a Generator seeded with `seed`. A vote fixes one
    random factor's class for `batch_size` images, divides each dimension's variance over them by
    its global variance (over `variance_points` images) and votes for the least one among the
    active dimensions: std >= prune_std (0.05, the study's prune_dims.threshold) and never a
    constant one. Returns {"train_accuracy", "eval_accuracy", "num_active_dims", "active" (D,),
    "variances" (D,), "votes" (D, K) of the training votes, "classifier" (D,) the factor each
    dimension votes for, "protocol" {the settings}}. With no active dimension both accuracies
    are 0, as in disentanglement_lib."""
    return factorvae_scores(lambda indices: _as_codes(encode(indices))[None], dataset, seed,
                            batch_size, variance_points, train_votes, eval_votes, prune_std,
                            chunk, progress)[0]


def factorvae_scores(encode, dataset, seed=0, batch_size=64, variance_points=10_000,
                     train_votes=10_000, eval_votes=5_000, prune_std=0.05, chunk=4096,
                     progress=False):
    """`factorvae_score` of M models at once: `encode(indices) -> codes (M, n, D)`, every
    model's means of the same images, so that one pass of a batched encoder serves all M
    (evaluate.py). The images drawn depend on `seed` alone, never on the codes, so model m gets
    exactly the result factorvae_score gives it alone. Returns a list of M such results."""
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    counts = {"batch_size": batch_size, "variance_points": variance_points,
              "train_votes": train_votes, "eval_votes": eval_votes, "chunk": chunk}
    small = {k: v for k, v in counts.items() if not (isinstance(v, (int, np.integer)) and v >= 2)}
    if small:
        raise MetricsInputError(
            f"factorvae_score needs integer sizes >= 2 (a variance needs 2 images), got "
            f"{small}: pass counts such as batch_size=64, variance_points=10000")
    if min(sizes) < 2:
        raise _one_class_error([k for k, s in enumerate(sizes) if s < 2],
                               "a batch that holds such a factor fixed holds nothing fixed")
    rng = np.random.default_rng(seed)
    bar = tqdm(total=variance_points + (train_votes + eval_votes) * batch_size, unit="image",
               desc="FactorVAE score", disable=not progress, leave=False)
    # global variances, ddof=1 as disentanglement_lib (np.var(..., ddof=1))
    parts = [_encode(encode, classes_to_index(rng.integers(0, sizes, (n, len(sizes))), sizes), bar)
             for n in _chunks(variance_points, chunk)]      # list of (M, n, D)
    variances = np.concatenate(parts, axis=1).var(axis=1, ddof=1)  # (M, D)
    active = (np.sqrt(variances) >= prune_std) & (variances > 0)  # (M, D)
    protocol = {"seed": seed, "prune_std": prune_std, **counts,
                "recipe": "disentanglement_lib factor_vae.py, unsupervised_study_v1 config"}
    (M, D), K = variances.shape, len(sizes)
    votes = np.zeros((2, M, D, K), np.int64)                 # (2, M, D, K) train, eval
    if active.any():
        for part, n_votes in enumerate((train_votes, eval_votes)):
            votes[part] = _votes(encode, sizes, rng, n_votes, batch_size, chunk, variances,
                                 active, bar)
    bar.close()
    results = []
    for m in range(M):
        result = {"train_accuracy": 0.0, "eval_accuracy": 0.0,
                  "num_active_dims": int(active[m].sum()), "active": active[m],
                  "variances": variances[m], "votes": np.zeros((D, K), np.int64),
                  "classifier": np.zeros(D, np.int64), "protocol": dict(protocol)}
        if active[m].any():
            classifier = votes[0, m].argmax(axis=1)          # (D,) majority factor per dim
            result.update(train_accuracy=_vote_accuracy(votes[0, m], classifier),
                          eval_accuracy=_vote_accuracy(votes[1, m], classifier),
                          votes=votes[0, m], classifier=classifier)
        results.append(result)
    return results


def _votes(encode, sizes, rng, n_votes, batch_size, chunk, variances, active, bar):
    """Vote counts (M, D, K): per vote and model, the active dim of least relative variance,
    and the factor the vote held fixed. Models without an active dim cast no vote."""
    (M, D), K = variances.shape, len(sizes)
    votes = np.zeros((M, D, K), dtype=np.int64)              # (M, D, K)
    voters = np.flatnonzero(active.any(axis=1))              # (M',)
    scale = np.where(active, variances, 1.0)[:, None]        # (M, 1, D) 1: no 0/0 below
    # many votes' images go to one encode call, so per-call overhead does not dominate
    for v in _chunks(n_votes, max(1, chunk // batch_size)):
        fixed = rng.integers(0, K, v)                        # (V,) factor held fixed
        classes = rng.integers(0, sizes, (v, batch_size, K))  # (V, B, K)
        rows = np.arange(v)                                  # (V,)
        classes[rows, :, fixed] = classes[rows, :1, fixed]   # (V, B) all the first image's class
        codes = _encode(encode, classes_to_index(classes, sizes).reshape(-1), bar)  # (M, V B, D)
        local = codes.reshape(M, v, batch_size, D).var(axis=2, ddof=1)  # (M, V, D)
        # an inactive dim's ratio is +inf, so argmin picks the first least active dim, as an
        # argmin over the active dims alone would (disentanglement_lib records the index within
        # the active subset: the same accuracy, rows shifted)
        ratio = np.where(active[:, None], local / scale, np.inf)  # (M, V, D)
        least = ratio.argmin(axis=2)                         # (M, V)
        np.add.at(votes, (voters[:, None], least[voters], fixed[None]), 1)
    return votes


def _vote_accuracy(votes, classifier):
    """Fraction of votes (D, K) whose dimension's classifier (D,) names their factor."""
    return float(votes[np.arange(len(votes)), classifier].sum() / votes.sum())


def _encode(encode, indices, bar):
    """encode(indices), checked to be (M, n, D) finite codes, one row per index."""
    codes = np.asarray(encode(indices))                      # (M, n, D)
    if codes.ndim != 3:
        raise MetricsInputError(
            f"encode must return the codes (M, n, D) of M models, got shape {codes.shape}: "
            "for one model use factorvae_score, which takes (n, D)")
    _as_codes(codes.reshape(-1, codes.shape[2]))             # finite
    if codes.shape[1] != len(indices):
        raise MetricsInputError(
            f"encode gave {codes.shape[1]} rows for {len(indices)} image indices: it must "
            "return the encoder means (n, D) of exactly the images asked for, in order")
    bar.update(len(indices))
    return codes


def _chunks(n, size):
    """Lengths of consecutive chunks of at most `size` that add up to n."""
    return [min(size, n - start) for start in range(0, n, size)]


def _entropy(p, axis, base):
    """Entropy in log base `base` of p normalised along `axis` (p > 0 everywhere)."""
    p = p / p.sum(axis=axis, keepdims=True)
    return -(p * np.log(p)).sum(axis=axis) / np.log(base)


def _as_split(codes_train, factors_train, codes_test, factors_test, score):
    """The four checked arrays of a train/test score that fits one classifier per factor."""
    codes_train, factors_train = _as_pair(codes_train, factors_train)  # (N, D), (N, K)
    codes_test, factors_test = _as_pair(codes_test, factors_test)      # (N', D), (N', K)
    D, K = codes_train.shape[1], factors_train.shape[1]
    if (codes_test.shape[1], factors_test.shape[1]) != (D, K):
        raise MetricsInputError(
            f"train has D={D}, K={K} but test has D={codes_test.shape[1]}, "
            f"K={factors_test.shape[1]}: pass the same model's means and factors for both parts")
    one = [k for k in range(K) if (factors_train[:, k] == factors_train[0, k]).all()]
    if one:
        raise _one_class_error(one, f"{score} fits a classifier to each factor's train classes")
    return codes_train, factors_train, codes_test, factors_test


def _bench(sizes=(3, 6, 40, 32, 32), latent=6):
    """Seconds of each score for one model at the study's sizes, on this machine."""
    from .data import PIXELS, Dataset
    from .metrics import _bench_codes, mutual_info_matrix
    codes, factors = _bench_codes(TRAIN_POINTS + TEST_POINTS, sizes, latent)  # (N, D), (N, K)
    split = (codes[:TRAIN_POINTS], factors[:TRAIN_POINTS],
             codes[TRAIN_POINTS:], factors[TRAIN_POINTS:])
    shape = f"D={latent}, K={len(sizes)} {sizes}"
    for name, score in (("DCI", dci), ("SAP", sap)):
        # CPU seconds too: one thread fits, so they are the wall time on an idle machine
        start, cpu = time.perf_counter(), time.process_time()
        score(*split)
        print(f"{name}, {TRAIN_POINTS} train + {TEST_POINTS} test points, {shape}: "
              f"{time.perf_counter() - start:.1f} s ({time.process_time() - cpu:.1f} s CPU)")
    start = time.perf_counter()
    mi = mutual_info_matrix(split[0], split[1])              # (D, K)
    middle = time.perf_counter()
    modularity(mi)
    print(f"modularity, {TRAIN_POINTS} points, {shape}: {time.perf_counter() - start:.3f} s "
          f"({1e3 * (time.perf_counter() - middle):.2f} ms given MIG's MI matrix)")
    # stand-in encoder: a fixed random projection of the rendered images, so the metric and
    # the renderer are timed, not a model
    dataset, spent = Dataset(), [0.0]
    projection = np.random.default_rng(0).normal(size=(PIXELS, latent)).astype(np.float32)

    def encode(indices):
        begin = time.perf_counter()
        codes = dataset.images(indices, np, np.float32) @ projection  # (n, D)
        spent[0] += time.perf_counter() - begin
        return codes

    start = time.perf_counter()
    result = factorvae_score(encode, dataset)
    total = time.perf_counter() - start
    p = result["protocol"]
    n = p["variance_points"] + p["batch_size"] * (p["train_votes"] + p["eval_votes"])
    print(f"FactorVAE score, defaults ({n:,} images), stand-in encoder (random projection of "
          f"the rendered images, D={latent}): {total:.1f} s, of which {spent[0]:.1f} s render "
          f"+ project, {total - spent[0]:.1f} s the metric itself")
