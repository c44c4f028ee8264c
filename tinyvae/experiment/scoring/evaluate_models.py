"""What evaluate.py computes for a model, with explicit arguments: the fixed test images of a
run's data, encoded for all M models in one pass (means, KL per dimension, the loss of each
group prefix), MIG and MIC of one model's means, a record per model, the protocol that decides
the scores, and the points DCI and SAP are fitted and tested on.

Shapes: M models · N images · n images of one batch · P pixels · Z latent · G groups ·
K factors.
"""
import numpy
from tqdm import tqdm

from ...backend import device_name, to_numpy
from ...data.dataset import SPLIT_SEED, TEST_SIZE, open_dataset, test_split
from ...data.render import classes_to_index
from ...losses import bernoulli_nll_forward, kl_normal_forward
from ...metrics.checks import SCORE_SEED
from ...metrics.mig import factor_entropy, mic_from_mi, mig_from_mi, mutual_info_matrix

FIRST_DIMS = 3        # Figure 1: MIC of each factor in the first three latent dimensions
ACTIVE_NATS = 0.1     # a dimension is active when its mean KL over the test set exceeds this
BINS = 20             # equal-width bins per latent for the MI estimate: the paper's 20
BATCH = 1000          # test images encoded per pass: it sets memory and time, not what is scored


def test_images(n_images, n):
    """n of the fixed test images (n,), evenly spaced through them, so that a subset still
    holds every shape; n = TEST_SIZE gives them all."""
    test = test_split(n_images)[0]                                      # (TEST_SIZE,)
    return test[numpy.linspace(0, len(test) - 1, n).round().astype(numpy.int64)]


test_images.__test__ = False          # a `test_`-named function, but not a test


class FixedTestSets:
    """The fixed test images of each run's data (or of `data`, a dSprites .npz or "renderer",
    for all runs), `size` of them; each data source is opened once for all the runs."""

    def __init__(self, data=None, size=TEST_SIZE):
        self.data, self.size, self.opened = data, size, {}

    def of(self, config):
        """(dataset, indices (N,), factors (N, K), entropy (K,)) for the run of `config`."""
        data = self.data or config["data"]
        if data not in self.opened:
            self.opened[data] = open_dataset(None if data == "renderer" else data)
        dataset = self.opened[data]
        indices = test_images(dataset.n_images, self.size)                  # (N,)
        factors = dataset.factors(indices)                                  # (N, K)
        return dataset, indices, factors, factor_entropy(factors)


def prefix_codes(model, mu):
    """Eq. 8 at test time: decoding i sees the means [mu_1 .. mu_i | 0 ... 0]; the G inputs
    are stacked along the batch axis, so one decoder pass serves every prefix."""
    M, n, Z = mu.shape
    return model.prefix_inputs(mu).reshape(M, -1, Z)                        # (M, G n, Z)


def encoded_batches(model, dataset, indices, batch_size, progress, desc="encoding"):
    """Per batch of the images `indices` (N,): (x, mu, logvar), (M, n, P) and (M, n, Z) twice,
    all M models encoded in one pass."""
    xp, M = model.xp, model.models
    for start in tqdm(range(0, len(indices), batch_size), disable=not progress, leave=False,
                      unit="batch", desc=desc):
        x = dataset.images(indices[start:start + batch_size], xp, model.dtype)   # (n, P)
        # Every model sees the same images: one rendered copy, M broadcast views.
        x = xp.broadcast_to(x, (M,) + x.shape)                              # (M, n, P)
        yield (x, *model.encode(x))                                         # (M, n, Z) x 2


def encode_means(model, dataset, indices, batch_size, progress=False, desc="encoding"):
    """Encoder means (M, N, Z) on the host of the images `indices` (N,)."""
    return numpy.concatenate([to_numpy(mu) for _, mu, _ in encoded_batches(
        model, dataset, indices, batch_size, progress, desc)], axis=1)     # (M, N, Z)


def encode_test_set(model, dataset, indices, batch_size, progress):
    """Encoder means (M, N, Z) on the host, and per model the test-set means of the KL per
    dimension (M, Z) and of the BCE summed over pixels from each group prefix (M, G)."""
    xp, M, G, Z = model.xp, model.models, len(model.groups), model.latent
    kl_sum = xp.zeros((M, Z), dtype=xp.float64)                             # (M, Z)
    rec_sum = xp.zeros((M, G), dtype=xp.float64)                            # (M, G)
    mus = []
    for x, mu, logvar in encoded_batches(model, dataset, indices, batch_size, progress):
        kl, _ = kl_normal_forward(mu, logvar)                               # (M, n, Z)
        kl_sum += kl.sum(axis=1, dtype=xp.float64)
        # The reconstruction is decoded from the means, not a sample: the loss of the code.
        logits = model.decode(prefix_codes(model, mu))                      # (M, G n, P)
        logits = logits.reshape(M, G, x.shape[1], -1)                       # (M, G, n, P)
        nll, _ = bernoulli_nll_forward(logits, x[:, None])                  # (M, G, n)
        rec_sum += nll.sum(axis=2, dtype=xp.float64)
        mus.append(to_numpy(mu))                                            # (M, n, Z)
    N = len(indices)
    return numpy.concatenate(mus, axis=1), to_numpy(kl_sum) / N, to_numpy(rec_sum) / N


def score_model(mu, factors, entropy, group_slices, bins):
    """MI matrix, MIG (eq. 12) and MICs (eq. 13) of one model's means mu (N, Z)."""
    mi = mutual_info_matrix(mu, factors, bins)                              # (Z, K)
    mig, gaps = mig_from_mi(mi, entropy)                                    # float, (K,)
    mic_groups = [mic_from_mi(mi, entropy, range(g.start, g.stop))
                  for g in group_slices]                                    # G x (K,)
    mic_first3 = mic_from_mi(mi, entropy, range(min(FIRST_DIMS, len(mi))))  # (K,)
    return {"mig": mig, "gaps": gaps, "mi": mi, "entropy": entropy,
            "mic_groups": numpy.stack(mic_groups), "mic_first3": mic_first3}  # (G, K)


def score_points(dataset, n, seed=SCORE_SEED):
    """n image indices (n,) as disentanglement_lib draws DCI's and SAP's points (scores.py's
    SCORE_IMAGES): the first ones fit the classifiers, the rest test them."""
    sizes = dataset.factor_sizes
    classes = numpy.random.default_rng(seed).integers(0, sizes, (n, len(sizes)))  # (n, K)
    return classes_to_index(classes, sizes)                                 # (n,)


def score_models(model, config, step, test, batch_size, bins, progress=False):
    """One record per model of `model` as it stands (at training step `step`) on the test set
    `test` (dataset, indices (N,), factors (N, K), entropy (K,)), MIs over `bins` bins."""
    dataset, indices, factors, entropy = test
    mu, kl_dim, rec = encode_test_set(model, dataset, indices, batch_size,
                                      progress)              # (M, N, Z), (M, Z), (M, G)
    models = []
    for m in range(model.models):
        scores = score_model(mu[m], factors, entropy, model.group_slices, bins)
        models.append({"index": m, "seed": config["model_seeds"][m],
                       "beta": config["model_betas"][m], "model": config["model"],
                       "groups": list(model.groups), "routing": model.routing,
                       "kl_scale": list(model.kl_scale),
                       "encoder_hidden": list(model.encoder_sizes[1:-1]),
                       "decoder_hidden": list(model.decoder_sizes[1:-1]),
                       "step": step, **scores,
                       "kl_per_dim": kl_dim[m],
                       "active_dims": numpy.flatnonzero(kl_dim[m] > ACTIVE_NATS),
                       # The last prefix is the whole latent: the full reconstruction.
                       "rec_loss_full": rec[m, -1], "rec_loss_prefix": rec[m]})
    return models


def make_protocol(bins, test, config, xp):
    """What decides a run's scores; from its config alone, so that a committed run's records
    are checked against it without building its models."""
    dataset, indices = test[:2]
    latent = sum(config["groups"])                          # the model's Z
    return {"estimator": "sklearn.metrics.mutual_info_score (nats) between each factor's "
                         "classes and equal-width bins of each encoder mean over its range",
            "bins": bins, "n_images": len(indices), "test_size": TEST_SIZE,
            "test_split_seed": SPLIT_SEED, "factors": list(dataset.factor_names),
            "factor_sizes": list(dataset.factor_sizes), "data_source": dataset.source,
            "trained_on": config.get("data_source", config["data"]),
            "first_dims": list(range(min(FIRST_DIMS, latent))),
            "active_threshold_nats": ACTIVE_NATS,
            "rec_loss": "BCE summed over pixels per image, decoded from the encoder means",
            "backend": xp.__name__, "device": device_name(xp)}
