"""Two configurations side by side: each group's footprint and the scores, with exact
permutation tests. `python -m tinyvae.experiment.compare RUN_A RUN_B` (run directories or
metrics.json).

Seeds are few (5 or 10 a configuration), so no distribution is assumed: the p-value of a
difference of means is the share of all C(n_a + n_b, n_a) ways of splitting the pooled trials
into two groups of those sizes whose difference is at least as large in absolute value
(two-sided, exact; the observed split is one of them, so p >= 1 / C).

Shapes: T trials, G groups.
"""
import argparse
import itertools
import json
import os
import sys

import numpy

from .files import METRICS
from .trials import FIGURE1_FIRST, footprint

TIE = 1e-9            # differences equal up to rounding count as "at least as large"


def permutation_p(a, b):
    """Exact two-sided permutation p-value of mean(a) - mean(b)."""
    a, b = numpy.asarray(a, dtype=float), numpy.asarray(b, dtype=float)   # (Ta,), (Tb,)
    pooled = numpy.concatenate([a, b])                                    # (T,)
    observed = abs(a.mean() - b.mean())
    picks = numpy.array(list(itertools.combinations(range(len(pooled)), len(a))))  # (C, Ta)
    in_a = numpy.zeros((len(picks), len(pooled)), dtype=bool)            # (C, T)
    numpy.put_along_axis(in_a, picks, True, axis=1)
    mean_a = (in_a * pooled).sum(axis=1) / len(a)                         # (C,)
    mean_b = (~in_a * pooled).sum(axis=1) / len(b)                        # (C,)
    return float(numpy.mean(numpy.abs(mean_a - mean_b) >= observed - TIE * (1 + observed)))


def quantities(records, factors):
    """{name: (T,) values} of one configuration's trials: each group's test KL, active
    latents and L_rec,i (the last is the full reconstruction), then MIG and the MIC with
    z1-z3 of the Figure 1 factors and of position (mean of posX and posY)."""
    prints = [footprint(r) for r in records]
    out = {}
    for part, name in (("kl", "KL of group {}"), ("active", "active latents of group {}"),
                       ("rec", "L_rec,{}")):
        for g in range(len(prints[0][part])):
            out[name.format(g + 1)] = numpy.array([p[part][g] for p in prints])
    out["MIG"] = numpy.array([r["mig"] for r in records])
    for f in FIGURE1_FIRST:
        out[f"MIC {f} with z1-z3"] = numpy.array([r["mic_first3"][factors.index(f)]
                                                  for r in records])
    out["MIC position with z1-z3"] = (out["MIC posX with z1-z3"]
                                      + out["MIC posY with z1-z3"]) / 2
    return out


def compare(a, b, factors):
    """Rows (name, mean a, sd a, mean b, sd b, p) for every quantity both have."""
    qa, qb = quantities(a, factors), quantities(b, factors)
    return [(name, qa[name].mean(), qa[name].std(ddof=1), qb[name].mean(), qb[name].std(ddof=1),
             permutation_p(qa[name], qb[name])) for name in qa if name in qb]


def load(path):
    """(records, protocol) of a run directory's metrics.json, or of that file."""
    if os.path.isdir(path):
        path = os.path.join(path, METRICS)
    with open(path) as f:
        scored = json.load(f)
    return scored["models"], scored["protocol"]


def markdown(rows, name_a, name_b, n_a, n_b):
    lines = [f"| | {name_a} (n={n_a}) | {name_b} (n={n_b}) | p |", "|---|---:|---:|---:|"]
    for name, ma, sa, mb, sb, p in rows:
        lines.append(f"| {name} | {ma:.3f} ± {sa:.3f} | {mb:.3f} ± {sb:.3f} | {_p(p)} |")
    return "\n".join(lines + ["", "Mean ± standard deviation over trials; p: exact two-sided "
                              "permutation test of the difference of the means.", ""])


def _p(p):
    """A p-value to four places, or in scientific notation where those would all be zero
    (10 against 10 trials can give 2/184756 = 1.1e-05)."""
    return f"{p:.4f}" if p >= 5e-5 else f"{p:.1e}"


def main(argv=None):
    p = argparse.ArgumentParser(description="Compare two scored runs (evaluate.py's "
                                "metrics.json): footprint per group and scores, with exact "
                                "permutation tests.")
    p.add_argument("run_a")
    p.add_argument("run_b")
    a = p.parse_args(argv)
    try:
        (ra, pa), (rb, pb) = load(a.run_a), load(a.run_b)
    except (OSError, ValueError, KeyError) as err:
        print(f"compare: error: cannot read a scored run ({err}); give run directories that "
              "evaluate.py has scored, or their metrics.json", file=sys.stderr)
        return 2
    if len(ra) < 2 or len(rb) < 2:
        print("compare: error: each run needs at least two trials (seeds) to compare",
              file=sys.stderr)
        return 2
    print(markdown(compare(ra, rb, pa["factors"]), a.run_a, a.run_b, len(ra), len(rb)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
