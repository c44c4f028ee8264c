"""What the scores beside MIG and MIC need of one run (tinyvae/metrics/scores.py's OTHER_SCORES
take it): its models' records, its encoder, the data, and DCI's and SAP's points, each made
once, on first use.

Shapes: M models, N points, n images, Z latent, K factors.
"""
from ...metrics.checks import TEST_POINTS, TRAIN_POINTS
from .evaluate_models import encode_means, score_points


class RunInputs:
    """What the scores of one run need: its models' records, its model (the encoder), the data,
    and DCI's and SAP's points, encoded the first time a score asks for them. `points`: how
    many points (or votes) the recipes take, TRAIN_POINTS unless a quick check shrinks it."""

    def __init__(self, records, model, dataset, batch_size, points, progress):
        self.records, self.model, self.dataset = records, model, dataset
        self.batch_size, self.points, self.progress = batch_size, points, progress
        self._fit_points = None

    def encode(self, indices):
        """Encoder means (M, n, Z) on the host of the images `indices` (n,)."""
        return encode_means(self.model, self.dataset, indices, self.batch_size)

    def fit_points(self):
        """DCI's and SAP's points, shared: codes (M, N, Z), factors (N, K), and how many of
        them fit the classifiers (the rest test them)."""
        if self._fit_points is None:
            n_train, n_test = self.points, self.points * TEST_POINTS // TRAIN_POINTS
            indices = score_points(self.dataset, n_train + n_test)                  # (N,)
            codes = encode_means(self.model, self.dataset, indices, self.batch_size,
                                 self.progress, "encoding DCI/SAP points")          # (M, N, Z)
            self._fit_points = codes, self.dataset.factors(indices), n_train        # (N, K)
        return self._fit_points
