"""SAP (Kumar et al. 2018), as disentanglement_lib's sap_score.py (unsupervised_study_v1:
TRAIN_POINTS points to fit, TEST_POINTS more to test).

Shapes: N images · D latent dimensions (the encoder means) · K factors.
"""
import numpy as np
from sklearn.svm import LinearSVC

from .checks import as_split, need_gap


def sap(codes_train, factors_train, codes_test, factors_test):
    """SAP (Kumar et al. 2018) for discrete factors: mean over factors of the gap in test
    accuracy between the two best single-dimension linear classifiers.

    Returns {"sap", "gaps" (K,), "scores" (D, K) test accuracy of dimension d for factor k}."""
    codes_train, factors_train, codes_test, factors_test = as_split(
        codes_train, factors_train, codes_test, factors_test, "SAP")  # (N, D), (N, K) x 2
    D, K = codes_train.shape[1], factors_train.shape[1]
    need_gap(D, "SAP", "the scores of single dimensions")
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
