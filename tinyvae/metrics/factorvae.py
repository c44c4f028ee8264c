"""The FactorVAE score (Kim & Mnih 2018), as disentanglement_lib's factor_vae.py
(unsupervised_study_v1): 10,000 images for the variances, then 10,000 training and 5,000
evaluation votes of 64 images each.

Shapes: M models · n images · D latent dimensions (the encoder means) · K factors · V votes ·
B batch (the images of one vote).
"""
import numpy as np
from tqdm import tqdm

from ..data.render import classes_to_index
from .checks import MetricsInputError, as_codes, one_class_error


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
    return factorvae_scores(lambda indices: as_codes(encode(indices))[None], dataset, seed,
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
        raise one_class_error([k for k, s in enumerate(sizes) if s < 2],
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
    as_codes(codes.reshape(-1, codes.shape[2]))              # finite
    if codes.shape[1] != len(indices):
        raise MetricsInputError(
            f"encode gave {codes.shape[1]} rows for {len(indices)} image indices: it must "
            "return the encoder means (n, D) of exactly the images asked for, in order")
    bar.update(len(indices))
    return codes


def _chunks(n, size):
    """Lengths of consecutive chunks of at most `size` that add up to n."""
    return [min(size, n - start) for start in range(0, n, size)]
