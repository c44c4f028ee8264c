"""The report across runs (evaluate.py --report): the paper's Table 1, a column per
configuration, a row per score and each group's footprint (model_record.py), written with every
trial's row and the figures (report_figures.py).

A configuration is one (model, groups, beta, routing, KL scale per group, widths, steps); its
trials are its seeds. Columns follow the paper: Grouped-VAE first (the routing ablation,
"grouped, no routing", beside it), then β-VAE by increasing β. Runs scored before a setting
existed count as its default (the paper's routing, KL scale all ones, 1200-wide networks).

Shapes: C configurations, T trials of one configuration, G groups.
"""
import os

import numpy

from ..run.configuration import config_key, config_label
from .report_figures import figure1, figure2, footprint_figure, mi_heatmaps
from ..scoring.model_record import (SCORE_ROWS, footprint, headline, paper_values, per_group,
                                    trial_rows, trials_markdown, write_csv)

# No published value stands beside these rows: the paper reports MIG and reconstruction loss
# only, and no value of the field for its configurations was found that could be cited from
# its source (searched: Kim & Mnih 2018 for the FactorVAE score of β-VAE on dSprites).
NO_PUBLISHED = ("the Grouped-VAE paper reports only MIG and reconstruction loss, and no "
                "published value for these configurations (this encoder, latent 6, these "
                "training lengths) could be checked against its source")


def configurations(records):
    """[(label, trials)] in the paper's column order; trials are the records of one config."""
    by_key = {}
    for r in records:
        key = config_key(r) + (r["step"],)
        by_key.setdefault(key, []).append(r)
    keys = sorted(by_key)
    labels = [config_label(*key[:-1]) for key in keys]
    # The same model trained for different lengths is two configurations: name the steps.
    labels = [f"{label} ({key[-1]} steps)" if labels.count(label) > 1 else label
              for label, key in zip(labels, keys)]
    return [(label, by_key[key]) for label, key in zip(labels, keys)]


def table1(configs):
    """One row per configuration: mean and standard deviation over its trials (seeds) of MIG
    and of the full-latent reconstruction loss, and the paper's values where it has them;
    then of each other score some trial has (SCORE_ROWS), None where a trial lacks it."""
    scored = [name for name, *_ in SCORE_ROWS
              if any(name in t for _, trials in configs for t in trials)]
    rows = []
    for label, trials in configs:
        mig = numpy.array([t["mig"] for t in trials])                     # (T,)
        rec = numpy.array([t["rec_loss_full"] for t in trials])           # (T,)
        first = trials[0]
        paper_mig, paper_rec = paper_values(first) or (None, None)
        rows.append({"configuration": label, "trials": len(trials), "steps": first["step"],
                     "mig_mean": mig.mean(), "mig_std": _std(mig),
                     "rec_loss_mean": rec.mean(), "rec_loss_std": _std(rec),
                     "paper_mig": paper_mig, "paper_rec_loss": paper_rec})
        prints = [footprint(t) for t in trials]
        for part, name in (("kl", "kl_g"), ("active", "active_g"), ("rec", "rec_")):
            values = numpy.array([p[part] for p in prints])               # (T, G)
            for i in range(values.shape[1]):
                rows[-1].update({f"{name}{i + 1}_mean": values[:, i].mean(),
                                 f"{name}{i + 1}_std": _std(values[:, i])})
        for name in scored:
            if all(name in t for t in trials):
                values = numpy.array([headline(t, name) for t in trials])          # (T,)
                mean, std = values.mean(), _std(values)
            else:
                mean = std = None                    # "—": some trial lacks the score
            rows[-1].update({f"{name}_mean": mean, f"{name}_std": std})
    return rows


def _std(values):
    """Sample standard deviation over seeds; undefined (None) for a single trial."""
    return float(values.std(ddof=1)) if len(values) > 1 else None


def table1_markdown(rows, protocol):
    scored = [row for row in SCORE_ROWS if f"{row[0]}_mean" in rows[0]]   # (name, title, ...)

    def cell(mean, std, digits):
        if mean is None:
            return "—"
        return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")

    def line(name, cells):
        return f"| {name} | " + " | ".join(cells) + " |"

    return "\n".join([
        line("", [r["configuration"] for r in rows]),
        line("---", ["---:"] * len(rows)),
        line("Average MIG", [cell(r["mig_mean"], r["mig_std"], 3) for r in rows]),
        line("Average reconstruction loss",
             [cell(r["rec_loss_mean"], r["rec_loss_std"], 1) for r in rows]),
        *[line(title, [cell(r[f"{name}_mean"], r[f"{name}_std"], 3) for r in rows])
          for name, title, *_ in scored],
        line("KL per group (nats)", [per_group(r, "kl_g", ".1f") for r in rows]),
        line("active latents per group", [per_group(r, "active_g", ".1f") for r in rows]),
        line("L_rec,i per prefix (nats)", [per_group(r, "rec_", ".1f") for r in rows]),
        line("trials (seeds)", [str(r["trials"]) for r in rows]),
        line("steps", [str(r["steps"]) for r in rows]),
        line("paper: Average MIG", [cell(r["paper_mig"], None, 3) for r in rows]),
        line("paper: Average reconstruction loss",
             [cell(r["paper_rec_loss"], None, 1) for r in rows]),
        "",
        f"Table 1: mean ± standard deviation over trials (seeds) of MIG (eq. 12; "
        f"{protocol['bins']} bins, {protocol['n_images']} test images) and of the test "
        "reconstruction loss per image (BCE summed over pixels, decoded from the encoder "
        "means, full latent). Footprint rows, means over trials, a value per group (\"g1 / "
        "g2 / ...\"; standard deviations in table1.csv): the test KL of each group's latents "
        f"(nats), its active latents (mean KL over {protocol['active_threshold_nats']} nats), and "
        "L_rec,i, the test reconstruction loss decoded from the prefix z_1 .. z_i (eq. 8)."
        + scores_caption([row[0] for row in scored], protocol)
        + " Paper rows: the paper's Table 1, where the configuration is one "
        "of its four (grouped 3+3 β=1, β-VAE β=1, 5, 10; latent 6)."
        + (f" No published values of {', '.join(row[3] for row in scored)}: {NO_PUBLISHED}."
           if scored else ""), ""])


def scores_caption(names, protocol):
    """The caption's sentences on the other scores of Table 1: what each is and which images
    it used, from metrics.json's protocol (evaluate.py)."""
    if not names:
        return ""
    scores = protocol.get("scores", {})          # runs scored before --scores record none
    parts = []
    split = [n for n in ("dci", "sap") if n in names]
    if split:
        p = scores[split[0]]
        what = {"dci": "DCI disentanglement (gradient-boosted trees, Eastwood & Williams 2018)",
                "sap": "SAP (linear SVMs on single dimensions, Kumar et al. 2018)"}
        parts.append(" and ".join(what[n] for n in split) + f" fit on {p['train_points']} and "
                     f"test on {p['test_points']} points drawn at random (seed {p['seed']}) "
                     "from the whole dSprites grid, so they may include training images, as in "
                     "disentanglement_lib")
    if "modularity" in names:
        parts.append("modularity (Ridgeway & Zemel 2018) from MIG's MI matrix of the same "
                     f"{protocol['n_images']} test images")
    if "factorvae" in names:
        p = scores["factorvae"]
        parts.append("the FactorVAE score (Kim & Mnih 2018: the evaluation accuracy of its "
                     "majority-vote classifier) on its own random batches from the whole grid "
                     f"(seed {p['seed']}; {p['variance_points']} images for the variances, "
                     f"{p['train_votes']} training and {p['eval_votes']} evaluation votes of "
                     f"{p['batch_size']} images)")
    return " Other rows, each on the encoder means: " + "; ".join(parts) + "."


def write_report(records, protocol, out_dir):
    """Write table1.md, table1.csv, trials.md, trials.csv, figure1_mic.png, figure2_mig.png,
    footprint_kl.png and mi_heatmaps.png to out_dir; return Table 1 as Markdown."""
    os.makedirs(out_dir, exist_ok=True)
    configs = configurations(records)
    rows = table1(configs)
    markdown = table1_markdown(rows, protocol)
    with open(os.path.join(out_dir, "table1.md"), "w") as f:
        f.write(markdown)
    write_csv(os.path.join(out_dir, "table1.csv"), rows)
    per_trial = trial_rows(configs, protocol["factors"])
    write_csv(os.path.join(out_dir, "trials.csv"), per_trial)
    with open(os.path.join(out_dir, "trials.md"), "w") as f:
        f.write(trials_markdown(per_trial, protocol["factors"]))
    figure1(configs, protocol["factors"], os.path.join(out_dir, "figure1_mic.png"))
    figure2(configs, rows, os.path.join(out_dir, "figure2_mig.png"))
    footprint_figure(configs, os.path.join(out_dir, "footprint_kl.png"))
    mi_heatmaps(configs, protocol["factors"], os.path.join(out_dir, "mi_heatmaps.png"))
    return markdown
