"""A trial, one model's record of metrics.json (evaluate.py), as every report reads it: a
per-latent quantity summed per group (group_sums, for records and log.csv rows alike), each
group's footprint, the headline number of each score, the paper's Table 1 values for its
configuration, one flat row of it, and every trial's row (trials.md, trials.csv).

A group's *footprint* (results/study-log.md): the test KL of its latents (nats; an upper bound
on the information it carries, eq. 5 summed over the group), how many of them are active, and each prefix's
reconstruction loss L_rec,i (eq. 8-9).

Shapes: T trials, G groups, Z latent.
"""
import csv

import numpy

from ...vae import DECODER_HIDDEN, ENCODER_HIDDEN, scales_kl
from ..run.configuration import config_key

# The paper's Table 1: (average MIG, average reconstruction loss) of its four configurations,
# all with latent size 6; Grouped-VAE has two groups of 3 and β = 1.
PAPER = {("grouped", (3, 3), 1.0): (0.023, 49.1), ("beta", (6,), 1.0): (0.014, 34.8),
         ("beta", (6,), 5.0): (0.027, 41.3), ("beta", (6,), 10.0): (0.025, 50.9)}
FIGURE1_FIRST = ("posX", "posY", "shape")  # the factors the paper's Figure 1 shows
# Table 1's rows for the other scores of evaluate.py --scores: (score, row name, the key of its
# headline number in a model's record[score] (None: the record holds the number), its name).
SCORE_ROWS = (("dci", "Average DCI disentanglement", "disentanglement", "DCI"),
              ("sap", "Average SAP", "sap", "SAP"),
              ("modularity", "Average modularity", None, "modularity"),
              ("factorvae", "Average FactorVAE score (eval accuracy)", "eval_accuracy",
               "the FactorVAE score"))


def paper_values(r):
    """(MIG, reconstruction loss) of the paper's Table 1 for a record's configuration, or
    None: the paper reports four configurations, all with its routing, loss and widths."""
    _, _, groups, unrouted, kl_scale, widths = config_key(r)
    if unrouted or scales_kl(kl_scale) or widths != (ENCODER_HIDDEN, DECODER_HIDDEN):
        return None
    return PAPER.get((r["model"], groups, float(r["beta"])))


def group_sums(values, groups):
    """The sums of the last axis of `values` (..., Z) over each group's latents, (..., G);
    `groups` holds the latents of each group, e.g. (3, 3)."""
    values = numpy.asarray(values)                                       # (..., Z)
    if values.shape[-1] != sum(groups):
        raise ValueError(f"values have {values.shape[-1]} latents on their last axis, groups "
                         f"{tuple(groups)} have {sum(groups)}")
    ends = numpy.cumsum(groups)                                          # (G,)
    return numpy.stack([values[..., e - g:e].sum(axis=-1)
                        for g, e in zip(groups, ends)], axis=-1)         # (..., G)


def footprint(r):
    """A model's footprint per group (G,) each: the test KL of the group's latents (nats),
    its active latents (those of the record's active_dims), and L_rec,i of each prefix."""
    kl = numpy.asarray(r["kl_per_dim"], dtype=float)                     # (Z,)
    is_active = numpy.zeros(len(kl), dtype=int)                          # (Z,)
    is_active[numpy.asarray(r["active_dims"], dtype=int)] = 1
    return {"kl": group_sums(kl, r["groups"]),
            "active": group_sums(is_active, r["groups"]),
            "rec": numpy.asarray(r["rec_loss_prefix"], dtype=float)}


def headline(r, score):
    """The number Table 1 averages of one model's `score` (SCORE_ROWS), e.g. DCI's
    disentanglement."""
    key = {name: key for name, _, key, _ in SCORE_ROWS}[score]
    return r[score] if key is None else r[score][key]


def summary(records):
    """One line of a run's scores: MIG, reconstruction loss and each other score, per model."""
    return ("MIG " + " ".join(f"{r['mig']:.3f}" for r in records) + ", rec loss "
            + " ".join(f"{r['rec_loss_full']:.1f}" for r in records)
            + "".join(f", {name} " + " ".join(f"{headline(r, name):.3f}" for r in records)
                      for name, *_ in SCORE_ROWS if name in records[0]))


def score_row(label, r, factors):
    """One model's scores as a flat row: its seed and step, reconstruction loss, MIG, and the
    MIC of every factor with the first three dimensions (Figure 1's dots, as numbers)."""
    fp = footprint(r)
    return {"configuration": label, "seed": r["seed"], "step": r["step"],
            "rec_loss_full": r["rec_loss_full"], "mig": r["mig"],
            **{f"mic_first3_{f}": r["mic_first3"][k] for k, f in enumerate(factors)},
            "active_dims": len(r["active_dims"]),
            **{f"kl_g{i + 1}": v for i, v in enumerate(fp["kl"])},
            **{f"active_g{i + 1}": int(v) for i, v in enumerate(fp["active"])},
            **{f"rec_{i + 1}": v for i, v in enumerate(fp["rec"])}}


def trial_rows(configs, factors):
    """One row per trial (model) of every configuration."""
    return [score_row(label, t, factors)
            for label, trials in configs for t in sorted(trials, key=lambda t: t["seed"])]


def per_group(row, name, spec, suffix="_mean"):
    """'a / b / ...' of one footprint quantity of a row (row[name + '1' + suffix], ...),
    group by group: Table 1's means, or a trial's values (suffix '')."""
    values, i = [], 1
    while f"{name}{i}{suffix}" in row:
        values.append(format(row[f"{name}{i}{suffix}"], spec))
        i += 1
    return " / ".join(values)


def trials_markdown(rows, factors):
    """trials.md: a line per trial, the Figure 1 factors first."""
    shown = [f for f in FIGURE1_FIRST if f in factors] + [f for f in factors
                                                          if f not in FIGURE1_FIRST]
    lines = ["| configuration | seed | " + " | ".join(f"MIC {f}" for f in shown)
             + " | MIG | rec. loss | KL per group | active per group | L_rec,i |",
             "|---|---:|" + "---:|" * (len(shown) + 5)]
    for r in rows:
        lines.append(f"| {r['configuration']} | {r['seed']} | "
                     + " | ".join(f"{r['mic_first3_' + f]:+.2f}" for f in shown)
                     + f" | {r['mig']:.3f} | {r['rec_loss_full']:.1f} | "
                     + " | ".join(per_group(r, name, spec, "") for name, spec in
                                  (("kl_g", ".1f"), ("active_g", "d"), ("rec_", ".1f"))) + " |")
    return "\n".join(lines + ["", "Every trial: MIC (eq. 13) of each factor with z1-z3 (the "
                               "dots of Figure 1), MIG (eq. 12), test reconstruction loss, and "
                               "each group's footprint, g1 / g2 / ...: the test KL of its "
                               "latents (nats), its active latents (mean KL over 0.1 nats), "
                               "and L_rec,i decoded from the prefix z_1 .. z_i.", ""])


def write_csv(path, rows):
    """rows (dicts) as a CSV file; None is an empty cell."""
    # Configurations with more groups have more footprint columns: the union, in first-seen
    # order; a group a configuration does not have is an empty cell.
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
