"""The list of scores evaluate.py --scores can compute, and the ones beside MIG and MIC behind
one calling convention.

MIG and MIC come from every run's test-set pass (experiment/scoring/evaluate_models.py). Each
other score is an entry of OTHER_SCORES, in the order they are computed: a function of a
RunInputs (experiment/scoring/score_inputs.py: what the scores of one run need, each made once,
on first use) that returns one value per model and what metrics.json's protocol records of it
beside the images it saw (SCORE_IMAGES):

    modularity   needs each model's record: MIG's MI matrix
    dci, sap     need DCI's and SAP's points, encoded for all M models at once
    factorvae    needs the encoder: it draws its own batches

Shapes: M models, N points, Z latent, K factors.
"""
from tqdm import tqdm

from .checks import SCORE_SEED, TEST_POINTS, TRAIN_POINTS
from .dci import dci
from .factorvae import factorvae_scores
from .modularity import modularity
from .sap import sap

SCORES = ("mig", "mic", "dci", "sap", "modularity", "factorvae")  # --scores, in this order
ALWAYS = ("mig", "mic")                  # Table 1 and the figures need them
DEFAULT_SCORES = ("mig", "mic", "sap", "modularity")  # seconds per model; DCI, FactorVAE: minutes
# Which images each score sees (metrics.json's protocol, Table 1's caption).
TEST_IMAGES = "the fixed test images (n_images of the test_size held out by test_split_seed)"
DRAWN = ("drawn at random from the whole factor grid, every factor's class uniform and "
         "independent, with replacement, by numpy.random.default_rng(seed): so they may include "
         "training images, as in disentanglement_lib")
SCORE_IMAGES = {
    "mig": TEST_IMAGES, "mic": TEST_IMAGES,
    "modularity": "the MI matrix of MIG, over " + TEST_IMAGES,
    "dci": f"train_points then test_points more, {DRAWN}; the same points as SAP",
    "sap": f"train_points then test_points more, {DRAWN}; the same points as DCI",
    "factorvae": f"its own batches, {DRAWN}"}
RECIPES = {"dci": "disentanglement_lib dci.py: a GradientBoostingClassifier (100 trees of depth "
                  "3) per factor, importance from its feature importances",
           "sap": "disentanglement_lib sap_score.py: a LinearSVC(C=0.01, class_weight="
                  "'balanced') per dimension and factor, gaps of test accuracy"}


def _modularity(inputs):
    return [modularity(r["mi"]) for r in inputs.records], {}


def _fitted(score, name):
    """DCI or SAP: classifiers fit per model on the first points and tested on the rest."""
    def run(inputs):
        codes, factors, n = inputs.fit_points()                    # (M, N, Z), (N, K)
        values = [score(codes[m, :n], factors[:n], codes[m, n:], factors[n:])
                  for m in tqdm(range(inputs.model.models), disable=not inputs.progress,
                                leave=False, unit="model", desc=name)]
        return values, {"seed": SCORE_SEED, "train_points": n,
                        "test_points": len(factors) - n, "recipe": RECIPES[name]}
    return run


def _factorvae(inputs):
    n = inputs.points
    results = factorvae_scores(inputs.encode, inputs.dataset, SCORE_SEED, variance_points=n,
                               train_votes=n, eval_votes=n * TEST_POINTS // TRAIN_POINTS,
                               progress=inputs.progress)
    used = {}
    for result in results:
        used.update(result.pop("protocol"))
    return results, used


# name -> function(RunInputs) -> (a value per model, its protocol), in computing order
OTHER_SCORES = {"modularity": _modularity, "dci": _fitted(dci, "dci"),
                "sap": _fitted(sap, "sap"), "factorvae": _factorvae}
