"""The paper's Table 1, Figures 1-2 and MI heat maps, from the models evaluate.py scored.

A configuration is one (model, groups, beta, routing, KL scale per group, widths, steps); its
trials are its seeds. Columns follow the paper: Grouped-VAE first (the routing ablation,
"grouped, no routing", beside it), then β-VAE by increasing β. Runs scored before a setting
existed count as its default (the paper's routing, KL scale all ones, 1200-wide networks).

Beside the scores, each report shows every group's *footprint* (docs/routing.md): the test
KL of its latents (nats; the information it carries, eq. 5 summed over the group), how many
of them are active, and each prefix's reconstruction loss L_rec,i (eq. 8-9).

Shapes: C configurations, T trials of one configuration, Z latent, K factors.
"""
import csv
import os

import matplotlib

matplotlib.use("Agg")                      # files only: no display is needed or assumed
import matplotlib.pyplot as plt            # noqa: E402
import numpy                               # noqa: E402

from ..vae import DECODER_HIDDEN, ENCODER_HIDDEN   # noqa: E402
from .runs import setting                          # noqa: E402

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


def config_key(r):
    """(is β-VAE, β, groups, unrouted, KL scale per group, (encoder, decoder) widths) of a
    run's record: what makes two runs one configuration. Sorted, the keys give the paper's
    column order (Grouped-VAE first, its routing ablation next to it, then β-VAE by β)."""
    return (r["model"] != "grouped", float(r["beta"]), tuple(r["groups"]),
            setting(r, "routing") != "paper",
            tuple(float(s) for s in setting(r, "kl_scale")),
            (tuple(setting(r, "encoder_hidden")), tuple(setting(r, "decoder_hidden"))))


def config_label(beta_vae, beta, groups, unrouted=False, kl_scale=None, widths=None):
    if beta_vae:
        label = f"β-VAE β={beta:g}" + ("" if groups == (6,) else f" Z={groups[0]}")
    else:
        sizes = (f"{len(groups)}×{groups[0]}" if len(set(groups)) == 1 and len(groups) > 2
                 else "+".join(map(str, groups)))                  # 6×1 for 1+1+1+1+1+1
        label = ("grouped" + ("" if groups == (3, 3) else " " + sizes)
                 + ("" if beta == 1 else f" β={beta:g}") + (", no routing" if unrouted else ""))
    if kl_scale and set(kl_scale) != {1.0}:
        label += ", KL scale " + ",".join(f"{s:g}" for s in kl_scale)
    if widths and widths != (ENCODER_HIDDEN, DECODER_HIDDEN):
        both = set(widths[0] + widths[1])
        label += (f", H={both.pop()}" if len(both) == 1 else
                  ", H=" + ",".join(map(str, widths[0])) + "/" + ",".join(map(str, widths[1])))
    return label


def paper_values(r):
    """(MIG, reconstruction loss) of the paper's Table 1 for a record's configuration, or
    None: the paper reports four configurations, all with its routing, loss and widths."""
    _, _, groups, unrouted, kl_scale, widths = config_key(r)
    if unrouted or set(kl_scale) != {1.0} or widths != (ENCODER_HIDDEN, DECODER_HIDDEN):
        return None
    return PAPER.get((r["model"], groups, float(r["beta"])))


def footprint(r):
    """A model's footprint per group (G,) each: the test KL of the group's latents (nats),
    its active latents (those of the record's active_dims), and L_rec,i of each prefix."""
    ends = numpy.cumsum(r["groups"])                                     # (G,)
    starts = ends - numpy.asarray(r["groups"])                           # (G,)
    kl = numpy.asarray(r["kl_per_dim"])                                  # (Z,)
    active = numpy.asarray(r["active_dims"])                             # (A,)
    return {"kl": numpy.array([kl[a:b].sum() for a, b in zip(starts, ends)]),
            "active": numpy.array([((active >= a) & (active < b)).sum()
                                   for a, b in zip(starts, ends)]),
            "rec": numpy.asarray(r["rec_loss_prefix"], dtype=float)}


def headline(r, score):
    """The number Table 1 averages of one model's `score` (SCORE_ROWS), e.g. DCI's
    disentanglement."""
    key = {name: key for name, _, key, _ in SCORE_ROWS}[score]
    return r[score] if key is None else r[score][key]


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


def _per_group(row, name, spec, suffix="_mean"):
    """'a / b / ...' of one footprint quantity of a row (row[name + '1' + suffix], ...),
    group by group: Table 1's means, or a trial's values (suffix '')."""
    values, i = [], 1
    while f"{name}{i}{suffix}" in row:
        values.append(format(row[f"{name}{i}{suffix}"], spec))
        i += 1
    return " / ".join(values)


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
        line("KL per group (nats)", [_per_group(r, "kl_g", ".1f") for r in rows]),
        line("active latents per group", [_per_group(r, "active_g", ".1f") for r in rows]),
        line("L_rec,i per prefix (nats)", [_per_group(r, "rec_", ".1f") for r in rows]),
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


def trials_markdown(rows, factors):
    shown = [f for f in FIGURE1_FIRST if f in factors] + [f for f in factors
                                                          if f not in FIGURE1_FIRST]
    lines = ["| configuration | seed | " + " | ".join(f"MIC {f}" for f in shown)
             + " | MIG | rec. loss | KL per group | active per group | L_rec,i |",
             "|---|---:|" + "---:|" * (len(shown) + 5)]
    for r in rows:
        lines.append(f"| {r['configuration']} | {r['seed']} | "
                     + " | ".join(f"{r['mic_first3_' + f]:+.2f}" for f in shown)
                     + f" | {r['mig']:.3f} | {r['rec_loss_full']:.1f} | "
                     + " | ".join(_per_group(r, name, spec, "") for name, spec in
                                  (("kl_g", ".1f"), ("active_g", "d"), ("rec_", ".1f"))) + " |")
    return "\n".join(lines + ["", "Every trial: MIC (eq. 13) of each factor with z1-z3 (the "
                               "dots of Figure 1), MIG (eq. 12), test reconstruction loss, and "
                               "each group's footprint, g1 / g2 / ...: the test KL of its "
                               "latents (nats), its active latents (mean KL over 0.1 nats), "
                               "and L_rec,i decoded from the prefix z_1 .. z_i.", ""])



def write_csv(path, rows):
    # Configurations with more groups have more footprint columns: the union, in first-seen
    # order; a group a configuration does not have is an empty cell.
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])


def _columns(ax, labels, per_config, paper=None):
    """Paper style: one column per configuration, a blue dot per trial, the mean in red."""
    shown = set()

    def once(name):
        """The legend label the first time a kind of marker is drawn, then None."""
        if name in shown:
            return None
        shown.add(name)
        return name

    for c, values in enumerate(per_config):
        values = numpy.asarray(values)                                    # (T,)
        spread = numpy.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]  # (T,)
        # the mean underneath, so that a lone trial still shows on top of it
        ax.scatter([c], [values.mean()], s=70, color="red", label=once("mean"), zorder=2)
        ax.scatter(c + numpy.asarray(spread), values, s=16, color="tab:blue", alpha=0.8,
                   label=once("trial"), zorder=3)
        if paper and paper[c] is not None:
            ax.scatter([c + 0.3], [paper[c]], s=45, marker="x", color="black",
                       label=once("paper, Table 1"), zorder=3)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.grid(axis="y", alpha=0.3)


def figure1(configs, factor_names, path):
    """MIC (eq. 13) of each factor with the first three latent dimensions, a panel a factor."""
    order = [f for f in FIGURE1_FIRST if f in factor_names]
    order += [f for f in factor_names if f not in order]
    labels = [label for label, _ in configs]
    fig, axes = plt.subplots(1, len(order), sharey=True, squeeze=False,
                             figsize=(1.2 + len(order) * (0.55 * len(labels) + 1.0), 3.6))
    for ax, name in zip(axes[0], order):
        k = list(factor_names).index(name)
        _columns(ax, labels, [[t["mic_first3"][k] for t in trials] for _, trials in configs])
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_title(name, fontsize=10)
    axes[0, 0].set_ylabel("MIC(f, {z1, z2, z3})")
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.suptitle("Figure 1: MIC of each factor with the first three latent dimensions "
                 "(eq. 13: MI inside minus MI outside, over H(f)); the paper shows posX, posY, "
                 "shape", fontsize=9)
    save_figure(fig, path)


def figure2(configs, rows, path):
    """MIG (eq. 12) per configuration; the paper's averages as black crosses."""
    labels = [label for label, _ in configs]
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * len(labels), 3.6))
    _columns(ax, labels, [[t["mig"] for t in trials] for _, trials in configs],
             paper=[r["paper_mig"] for r in rows])
    ax.set_ylabel("MIG")
    ax.legend(fontsize=7)
    ax.set_title("Figure 2: MIG per configuration (eq. 12)", fontsize=9)
    save_figure(fig, path)


def footprint_figure(configs, path):
    """Beside Figure 1: the test KL of each group's latents (nats), a panel per group
    position, a dot per trial, for every configuration that has that many groups."""
    G = max(len(trials[0]["groups"]) for _, trials in configs)
    fig, axes = plt.subplots(1, G, sharey=True, squeeze=False,
                             figsize=(1.2 + G * (0.55 * len(configs) + 1.0), 3.6))
    for g, ax in enumerate(axes[0]):
        shown = [(label, trials) for label, trials in configs if len(trials[0]["groups"]) > g]
        _columns(ax, [label for label, _ in shown],
                 [[footprint(t)["kl"][g] for t in trials] for _, trials in shown])
        ax.set_title(f"group {g + 1}", fontsize=10)
    axes[0, 0].set_ylabel("test KL of the group's latents (nats)")
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.suptitle("The routing's footprint: what each group encodes (its KL), per trial",
                 fontsize=9)
    save_figure(fig, path)


def mi_heatmaps(configs, factor_names, path):
    """Per configuration, the MI matrix normalized by each factor's entropy, I(z_j; f_k) /
    H(f_k) in [0, 1], averaged over its trials."""
    cols = min(len(configs), 4)
    rows = -(-len(configs) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(3.3 * cols + 1, 3.2 * rows + 0.8))
    for ax, (label, trials) in zip(axes.flat, configs):
        mi = numpy.mean([numpy.asarray(t["mi"]) / numpy.asarray(t["entropy"])
                         for t in trials], axis=0)                          # (Z, K)
        image = ax.imshow(mi, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (j, k), v in numpy.ndenumerate(mi):
            ax.text(k, j, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.6 else "black")
        for end in numpy.cumsum(trials[0]["groups"])[:-1]:
            ax.axhline(end - 0.5, color="red", lw=1.5)                      # group boundary
        ax.set_xticks(range(len(factor_names)), factor_names, rotation=30, fontsize=7)
        ax.set_yticks(range(len(mi)), [f"z{j + 1}" for j in range(len(mi))], fontsize=7)
        ax.set_title(f"{label} (n={len(trials)})", fontsize=9)
    for ax in list(axes.flat)[len(configs):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="I(z; f) / H(f)")
    fig.suptitle("MI of each latent dimension with each factor over H(factor), mean over "
                 "trials\nred lines: group boundaries; β-VAE dimensions are unordered across "
                 "seeds, so their mean blurs", fontsize=9)
    save_figure(fig, path)


def save_figure(fig, path):
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


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
