"""Two configurations side by side: each group's footprint and the scores, each difference
with its exact permutation test, a bootstrap interval and the Holm-adjusted p over the whole
table. `python -m tinyvae.experiment.studies.compare RUN_A RUN_B [--gap-from RUN_C] [--beta B]`
(run directories or metrics.json; --beta keeps the models of one β). With --gap-from (an unrouted run, A scaled, B routed, say), each row also
says what share of the gap between B and C the run A reproduces, with its interval.

The statistics are in stats.py (no distribution assumed: 5 to 20 seeds a configuration).

Shapes: T trials, G groups.
"""
import argparse
import json
import os
import sys

import numpy

from ..run.storage import METRICS
from .stats import (bootstrap_interval, difference_interval, gap_fraction, holm, p_text,
                    permutation_p)
from ..scoring.model_record import FIGURE1_FIRST, footprint


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


def compare(a, b, factors, c=None):
    """One row per quantity all runs have: {name, mean_a, sd_a, mean_b, sd_b, diff, low, high,
    p, holm} and, given a third run c, {mean_c, share, share_low, share_high}: the share of
    the gap between b and c that a reproduces (1: a lands on b; 0: a stays with c)."""
    qa, qb = quantities(a, factors), quantities(b, factors)
    qc = quantities(c, factors) if c is not None else None
    names = [n for n in qa if n in qb and (qc is None or n in qc)]
    rows = []
    for name in names:
        x, y = qa[name], qb[name]
        diff, low, high = difference_interval(x, y)
        row = {"name": name, "mean_a": x.mean(), "sd_a": x.std(ddof=1), "mean_b": y.mean(),
               "sd_b": y.std(ddof=1), "diff": diff, "low": low, "high": high,
               "p": permutation_p(x, y)}
        if qc is not None:
            row["mean_c"] = qc[name].mean()
            row["share"] = gap_fraction(x, y, qc[name])
            row["share_low"], row["share_high"] = bootstrap_interval(gap_fraction,
                                                                     [x, y, qc[name]])
        rows.append(row)
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["holm"] = adjusted
    return rows


def load(path):
    """(records, protocol) of a run directory's metrics.json, or of that file."""
    if os.path.isdir(path):
        path = os.path.join(path, METRICS)
    with open(path) as f:
        scored = json.load(f)
    return scored["models"], scored["protocol"]


def markdown(rows, name_a, name_b, n_a, n_b, name_c=None, n_c=None):
    gap = name_c is not None
    head = f"| | {name_a} (n={n_a}) | {name_b} (n={n_b}) | A − B [95% interval] | p | Holm |"
    head += f" {name_c} (n={n_c}) | share of the B − C gap [95%] |" if gap else ""
    lines = [head, "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if gap else "")]
    for r in rows:
        line = (f"| {r['name']} | {r['mean_a']:.3f} ± {r['sd_a']:.3f} | {r['mean_b']:.3f} ± "
                f"{r['sd_b']:.3f} | {r['diff']:.3f} [{r['low']:.3f}, {r['high']:.3f}] | "
                f"{p_text(r['p'])} | {p_text(r['holm'])} |")
        if gap:
            line += (f" {r['mean_c']:.3f} | {_share(r['share'])} [{_share(r['share_low'])}, "
                     f"{_share(r['share_high'])}] |")
        lines.append(line)
    notes = ["", "Mean ± standard deviation over trials. A − B: difference of the means, with "
             "a 95% percentile bootstrap interval (each run resampled on its own). p: two-sided "
             "permutation test of that difference (exact over every split of the pooled trials "
             "where there are at most 200,000, else 100,000 random splits). Holm: p adjusted "
             "for the whole table's tests (Holm's step-down); a row holds at 0.05 when it is "
             "at most 0.05."]
    if gap:
        notes.append("Share of the gap: (mean A − mean C) / (mean B − mean C), 1 where A "
                     "lands on B, 0 where it stays with C; its interval from the same "
                     "bootstrap (wide or meaningless where B and C hardly differ).")
    return "\n".join(lines + notes + [""])


def _share(x):
    return "—" if numpy.isnan(x) else f"{x:.2f}"


def main(argv=None):
    p = argparse.ArgumentParser(description="Compare two scored runs (evaluate.py's "
                                "metrics.json): footprint per group and scores, with "
                                "permutation tests, bootstrap intervals and Holm's correction.")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--gap-from", metavar="RUN_C", default=None, help="a third run: also say "
                   "what share of the gap between RUN_B and RUN_C the run RUN_A reproduces "
                   "(e.g. A scaled, B routed, C unrouted)")
    p.add_argument("--beta", type=float, default=None, help="compare only the models "
                   "trained with this β (for runs that trained several)")
    a = p.parse_args(argv)
    paths = [a.run_a, a.run_b] + ([a.gap_from] if a.gap_from else [])
    try:
        loaded = [load(path) for path in paths]
    except (OSError, ValueError, KeyError) as err:
        print(f"compare: error: cannot read a scored run ({err}); give run directories that "
              "evaluate.py has scored, or their metrics.json", file=sys.stderr)
        return 2
    try:
        records = [[r for r in rs if a.beta is None or float(r["beta"]) == a.beta]
                   for rs, _ in loaded]
        if any(len(rs) < 2 for rs in records):
            which = "" if a.beta is None else f" with β = {a.beta:g}"
            print(f"compare: error: each run needs at least two trials (seeds){which} to "
                  "compare", file=sys.stderr)
            return 2
        rows = compare(*records[:2], loaded[0][1]["factors"], *records[2:])
    except (KeyError, TypeError, IndexError) as err:
        print(f"compare: error: a run's records lack what evaluate.py writes "
              f"({type(err).__name__}: {err}); score the runs again with evaluate.py",
              file=sys.stderr)
        return 2
    sizes = [len(rs) for rs in records]
    third = (paths[2], sizes[2]) if a.gap_from else ()
    print(markdown(rows, paths[0], paths[1], sizes[0], sizes[1], *third))
    return 0


if __name__ == "__main__":
    sys.exit(main())
