"""When does a group open, and what does it hold? `python -m tinyvae.experiment.studies.opening
RUN_A RUN_B ... --report DIR [--group G]` (run directories that evaluate.py has scored).

A group is *open* when the KL of its latents on the test images exceeds OPEN_NATS (it
carries information about the image); else *closed*. Per model: each group's status at the
end (metrics.json), when it first opened and when its status last changed (its training KL,
summed over the group's latents, in log.csv every --log-every steps), what it holds (each
factor's MIC with it, eq. 13, and each of its latents' MI with each factor over the factor's
entropy) and the reconstruction loss. Per run (arm): how many models have the group open,
compared between arms with Fisher's exact test and a bootstrap interval; the shape MIC of the
open and the closed models; group 1's KL and its spread, compared with stats.spread_p
(docs/routing.md states the test). Then when the group opens, as survival data
(opening_survival.py: Kaplan-Meier, the log-rank test, fitted curves and survival.png).

Shapes: T models (trials) of an arm, R log rows, G groups, Z latent, K factors.
"""
import argparse
import os
import sys

import numpy

from .compare import load
from ..run.configuration import config_key, config_label
from ..run.storage import LOG, read_log
from .opening_survival import survival_figure, survival_markdown
from ..reports.report_figures import opening_figure
from .stats import difference_interval, fisher_exact, p_text, spread_p
from ..scoring.model_record import footprint, group_sums, write_csv

OPEN_NATS = 1.0       # a group is open when its test KL is over this many nats


def kl_curve(log_rows, index, groups):
    """Training KL of each group of model `index`: steps (R,), KL (R, G)."""
    rows = [r for r in log_rows if int(r["model"]) == index]
    steps = numpy.array([int(r["step"]) for r in rows])                       # (R,)
    kl_dim = numpy.array([[float(r[f"kl_z{d + 1}"]) for d in range(sum(groups))]
                          for r in rows]).reshape(len(rows), sum(groups))     # (R, Z)
    return steps, group_sums(kl_dim, groups)                                  # (R, G)


def status_changes(steps, kl):
    """(first step the group opened, last step its status changed, number of changes) of a
    training KL curve (R,). Every group starts closed (a new encoder's KL is near zero), and
    in the first logged steps, before the posterior collapse, every latent carries a little:
    a group over the line from the first row on counts as opening only if it never fell
    under it (then it opened at the first row); otherwise from where it first fell."""
    above = kl > OPEN_NATS                                                    # (R,)
    if above[0] and not above.all():
        above[:above.argmin()] = False               # the start's transient, not an opening
    above = numpy.concatenate([[False], above])                               # (R + 1,)
    changed = numpy.flatnonzero(above[1:] != above[:-1])                      # (changes,)
    first = int(steps[above[1:].argmax()]) if above.any() else None
    return first, (int(steps[changed[-1]]) if len(changed) else None), len(changed)


def model_rows(run_dir):
    """One dict per model of a scored run, with its training KL curve: [(row, (steps (R,),
    KL (R, G)))]. A row: its arm's key and label, seed, step, and per group g (1-based):
    kl_g (test), open_g (test KL over the line), last_open_g (the last training row over
    it), first_open_g, last_change_g, changes_g (training), time_to_open_g (the step from
    which it stays over the line, last_change_g, where last_open_g; else the last logged
    step, where it is censored), mic_<factor>_g; mi_<factor>_z<d> (MI over the factor's
    entropy); open_groups; rec."""
    records, protocol = load(run_dir)
    factors = protocol["factors"]
    log_rows = read_log(os.path.join(run_dir, LOG))
    out = []
    for r in records:
        groups = tuple(r["groups"])
        steps, kl_train = kl_curve(log_rows, r["index"], groups)              # (R,), (R, G)
        if not len(steps):
            raise ValueError(f"{run_dir}: no {LOG} rows of model {r['index']}; give the run "
                             "directory train.py wrote (its log.csv beside evaluate.py's "
                             "metrics.json)")
        kl_test = footprint(r)["kl"]                                          # (G,)
        row = {"key": config_key(r) + (r["step"],), "arm": config_label(*config_key(r)),
               "seed": r["seed"], "step": r["step"],
               "open_groups": int((kl_test > OPEN_NATS).sum()), "rec": r["rec_loss_full"]}
        for g in range(len(groups)):
            first, last, changes = status_changes(steps, kl_train[:, g])
            row.update({f"kl_{g + 1}": kl_test[g], f"open_{g + 1}": bool(kl_test[g] > OPEN_NATS),
                        f"last_open_{g + 1}": bool(kl_train[-1, g] > OPEN_NATS),
                        f"first_open_{g + 1}": first, f"last_change_{g + 1}": last,
                        f"changes_{g + 1}": changes,
                        f"time_to_open_{g + 1}": int(last if kl_train[-1, g] > OPEN_NATS
                                                     else steps[-1])})
            row.update({f"mic_{f}_{g + 1}": r["mic_groups"][g][k] for k, f in enumerate(factors)})
        mi = numpy.asarray(r["mi"]) / numpy.asarray(r["entropy"])             # (Z, K)
        row.update({f"mi_{f}_z{d + 1}": mi[d, k] for d in range(len(mi))
                    for k, f in enumerate(factors)})
        out.append((row, (steps, kl_train)))
    return out, factors


def by_arm(run_dirs):
    """[(rows, curves)] of every configuration (arm) in the runs, as Table 1 counts them (its
    settings and its steps), in order of first appearance: a run that trained several β is
    several arms, and runs of one configuration and length are one. Same label, other
    lengths: the label says the steps."""
    arms, factors = {}, None
    for run_dir in run_dirs:
        models, factors = model_rows(run_dir)
        for row, curve in models:
            rows, curves = arms.setdefault(row["key"], ([], []))
            rows.append(row)
            curves.append(curve)
    labels = [rows[0]["arm"] for rows, _ in arms.values()]
    for rows, _ in arms.values():
        if labels.count(rows[0]["arm"]) > 1:
            for row in rows:
                row["arm"] += f" ({row['step']} steps)"
    return list(arms.values()), factors


def arm_summary(rows, g):
    """What an arm's T models say about group g (1-based): counts, steps, shape, group 1."""
    opened = [r for r in rows if r[f"open_{g}"]]
    closed = [r for r in rows if not r[f"open_{g}"]]
    since = [r[f"last_change_{g}"] for r in rows if r[f"last_open_{g}"]]   # over to the end
    return {"arm": rows[0]["arm"], "models": len(rows), "open": len(opened),
            "ever": sum(r[f"first_open_{g}"] is not None for r in rows),
            "disagree": sum(r[f"open_{g}"] != r[f"last_open_{g}"] for r in rows),
            "open_since": since, "last_change": max((r[f"last_change_{g}"] or 0) for r in rows),
            "steps": max(r["step"] for r in rows),
            "shape_open": [r[f"mic_shape_{g}"] for r in opened],
            "shape_closed": [r[f"mic_shape_{g}"] for r in closed],
            "rec_open": [r["rec"] for r in opened], "rec_closed": [r["rec"] for r in closed],
            "opened": numpy.array([r[f"open_{g}"] for r in rows], dtype=float),   # (T,)
            "kl_1": numpy.array([r["kl_1"] for r in rows])}                   # (T,)


def _difference(a, b):
    """mean(a) - mean(b) with its 95% bootstrap interval, as one table cell."""
    diff, low, high = difference_interval(a, b)
    return f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]"


def _mean(values, digits=2):
    return f"{numpy.mean(values):.{digits}f}" if len(values) else "—"


def report_markdown(arms, g):
    """The report: per arm, group g's opening and group 1's spread; then every pair of arms."""
    summaries = [arm_summary(rows, g) for rows in arms]
    lines = [f"# Group {g}: open at the end, when, and what it holds", "",
             f"Open: the group's KL on the test images is over {OPEN_NATS:g} nat. Ever over: "
             f"its training KL (log.csv) went over {OPEN_NATS:g} nat at some logged step, the "
             "start-up transient dropped (below, as survival data, says how). Open "
             "since: the logged step from which a group over the line in the last training "
             "rows stayed over it. Latest change: the last logged step at which any model's "
             "group crossed the line (either way). Test ≠ training: models whose test KL and "
             "last training rows fall on opposite sides of the line. Shape MIC: eq. 13 of "
             "shape with the group (positive: more of shape's information there than in the "
             "other groups).", "",
             "| arm | models | open at the end | ever over | open since (median, range) "
             "| latest change | test ≠ training | shape MIC, open / closed | reconstruction, "
             "open / closed | group 1 KL (mean ± sd) |",
             "|---|---:|---:|---:|---|---:|---:|---|---|---:|"]
    for s in summaries:
        since = (f"{int(numpy.median(s['open_since']))} ({min(s['open_since'])}–"
                 f"{max(s['open_since'])})" if s["open_since"] else "—")
        lines.append(f"| {s['arm']} | {s['models']} | {s['open']} | {s['ever']} | {since} | "
                     f"{s['last_change'] or '—'} of {s['steps']} | {s['disagree']} | "
                     f"{_mean(s['shape_open'])} / {_mean(s['shape_closed'])} | "
                     f"{_mean(s['rec_open'], 1)} / {_mean(s['rec_closed'], 1)} | "
                     f"{s['kl_1'].mean():.2f} ± {s['kl_1'].std(ddof=1):.2f} |")
    lines += ["", "| arm A | arm B | open: A / B | share open, A − B | Fisher p | "
              "group 1 KL, A − B | group 1 KL spread: A / B | spread p |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for i, a in enumerate(summaries):
        for b in summaries[i + 1:]:
            mad_a, mad_b, p = spread_p(a["kl_1"], b["kl_1"])
            fisher = fisher_exact(a["open"], a["models"], b["open"], b["models"])
            lines.append(f"| {a['arm']} | {b['arm']} | {a['open']}/{a['models']} / "
                         f"{b['open']}/{b['models']} | {_difference(a['opened'], b['opened'])} "
                         f"| {p_text(fisher)} | {_difference(a['kl_1'], b['kl_1'])} | "
                         f"{mad_a:.2f} / {mad_b:.2f} | {p_text(p)} |")
    lines += ["", "Share open and group 1 KL: the difference of the means with its 95% "
              "bootstrap interval (each arm resampled on its own). Fisher p: two-sided exact "
              "test of the two opening rates. Spread: each model's |group 1 KL − its arm's "
              "median|, averaged; spread p: permutation test of those deviations "
              "(stats.spread_p).", ""]
    return "\n".join(lines)


def top_latents(rows, factors):
    """Per factor, how many models hold most of it (MI over its entropy) in each latent:
    {factor: {latent (1-based): models}}."""
    latents = sorted({int(k.rsplit("_z", 1)[1]) for k in rows[0] if k.startswith("mi_")})
    out = {}
    for f in factors:
        tops = [max(latents, key=lambda d: r[f"mi_{f}_z{d}"]) for r in rows]
        out[f] = {d: tops.count(d) for d in latents if tops.count(d)}
    return out


def where_factors_sit(arms, factors):
    lines = ["", "## Where each factor sits", "",
             "The latent holding most of each factor's information (its MI over the factor's "
             "entropy), counted over the models: z1 8, z2 2 means 8 models hold most of it in "
             "z1. In brackets, that largest share averaged over the models: where it is a few "
             "hundredths, the factor is hardly encoded and its place is the estimator's noise.",
             "", "| arm | " + " | ".join(factors) + " |",
             "|---|" + "---|" * len(factors)]
    for rows in arms:
        tops = top_latents(rows, factors)
        most = {f: numpy.mean([max(v for k, v in r.items() if k.startswith(f"mi_{f}_z"))
                               for r in rows]) for f in factors}
        cells = [", ".join(f"z{d} {n}" for d, n in sorted(tops[f].items(),
                                                          key=lambda t: -t[1]))
                 + f" ({most[f]:.2f})" for f in factors]
        lines.append(f"| {rows[0]['arm']} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def opening_report(run_dirs, g=None, also=()):
    """Everything the report holds, read and computed before a file is written: (g, markdown,
    csv rows, arms, curves, the survival section's arms and fits). `also`: runs whose models
    join the survival section only (each model is followed to its longest run of all).
    ValueError when the runs have no group g; OSError, KeyError when a run cannot be read."""
    loaded, factors = by_arm(run_dirs)
    arms = [rows for rows, _ in loaded]
    curves = [curve for _, curve in loaded]
    fewest = min(sum(k.startswith("open_") and k != "open_groups" for k in rows[0])
                 for rows in arms)                                           # groups
    if g is not None and not 1 <= g <= fewest:
        raise ValueError(f"--group {g}: the runs have groups 1 to {fewest}")
    g = g or fewest                                                          # the last
    survival, drawn = survival_markdown(arms + [rows for rows, _ in by_arm(also)[0]], g)
    markdown = report_markdown(arms, g) + where_factors_sit(arms, factors) + survival
    csv_rows = [{k: v for k, v in r.items() if k != "key"} for rows in arms for r in rows]
    return g, markdown, csv_rows, arms, curves, drawn


def write_opening_report(report, out_dir):
    """opening.md, opening.csv (a row per model), opening.png and survival.png in out_dir."""
    g, markdown, csv_rows, arms, curves, drawn = report
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "opening.md"), "w") as f:
        f.write(markdown)
    write_csv(os.path.join(out_dir, "opening.csv"), csv_rows)
    opening_figure(arms, curves, g, OPEN_NATS, os.path.join(out_dir, "opening.png"))
    survival_figure(drawn, g, os.path.join(out_dir, "survival.png"))


def main(argv=None):
    p = argparse.ArgumentParser(description="When groups open and what they hold, per model "
                                "and per run, with exact tests between runs")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories scored by "
                   "evaluate.py (metrics.json and log.csv)")
    p.add_argument("--report", required=True, help="folder for opening.md, .csv, .png "
                   "and survival.png")
    p.add_argument("--survival-also", nargs="+", default=[], metavar="RUN_DIR",
                   help="scored runs whose models join the survival section only (e.g. the "
                   "same models trained longer): each model is followed to its longest run")
    p.add_argument("--group", type=int, default=None, help="the group to follow (1-based; "
                   "default: the last)")
    a = p.parse_args(argv)
    try:
        report = opening_report(a.runs, a.group, a.survival_also)
    except (OSError, KeyError, TypeError, IndexError) as err:
        print(f"opening: error: cannot read a scored run ({type(err).__name__}: {err}); give "
              "run directories with the metrics.json of evaluate.py and the log.csv of "
              "train.py", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"opening: error: {err}", file=sys.stderr)
        return 2
    try:
        write_opening_report(report, a.report)
    except OSError as err:
        print(f"opening: error: cannot write --report {a.report} ({err}); choose a folder "
              "that can be written", file=sys.stderr)
        return 1
    print(f"group {report[0]}: {os.path.join(a.report, 'opening.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
