"""Seconds of the disentanglement scores for one model, on this machine: MIG and MIC, then DCI,
SAP, modularity and the FactorVAE score at their published sizes (minutes in all).

    python scripts/bench_metrics.py

Shapes: N images · D latent dimensions · K factors.
"""
import time

import numpy as np

from tinyvae.data.dataset import Dataset
from tinyvae.metrics.checks import TEST_POINTS, TRAIN_POINTS
from tinyvae.metrics.dci import dci
from tinyvae.metrics.factorvae import factorvae_score
from tinyvae.metrics.mig import factor_entropy, mic_from_mi, mig_from_mi, mutual_info_matrix
from tinyvae.metrics.modularity import modularity
from tinyvae.metrics.sap import sap
from tinyvae.vae import PIXELS


def bench_codes(n, sizes=(3, 6, 40, 32, 32), latent=6):
    """Codes (N, D) of one stand-in model that mixes the factors (N, K) linearly, plus noise."""
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)  # (N, K)
    mixing = rng.normal(size=(len(sizes), latent))                      # (K, D)
    codes = (factors / np.array(sizes)) @ mixing + 0.1 * rng.normal(size=(n, latent))  # (N, D)
    return codes, factors


def bench_mig(n=10_000, sizes=(3, 6, 40, 32, 32), latent=6, repeats=5):
    """Seconds for all metrics of one model: one MI matrix, MIG, and the MIC of each group."""
    codes, factors = bench_codes(n, sizes, latent)          # (N, D), (N, K)
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


def bench_scores(sizes=(3, 6, 40, 32, 32), latent=6):
    """Seconds of each score for one model at the study's sizes, on this machine."""
    codes, factors = bench_codes(TRAIN_POINTS + TEST_POINTS, sizes, latent)  # (N, D), (N, K)
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


if __name__ == "__main__":
    bench_mig()
    bench_scores()
