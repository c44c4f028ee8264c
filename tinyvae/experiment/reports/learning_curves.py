"""Learning curves: evaluate.py's test scores against training steps, one line per seed.

`evaluate.py --curves` scores every parameter snapshot of a run (train.py --snapshot-every)
exactly as it scores a finished run. Drawn here: the test reconstruction loss, MIG (eq. 12)
and the MIC (eq. 13) of posX and posY with the first three dimensions, the Figure 1 claim, in
one colour per configuration; thin lines are seeds, the thick line their mean, dashed lines
the paper's Table 1 value; and each group's footprint (model_record.footprint), its test KL against
steps. They show where a number of steps stops paying.

Shapes: S snapshot steps, K factors.
"""
import os

import numpy

from ..run.configuration import config_key, config_label
from ..run.plotting import plt, save_figure
from ..scoring.model_record import footprint, paper_values, score_row, write_csv

POSITION = ("posX", "posY")        # the factors the paper says Grouped-VAE puts first


def by_configuration(records):
    """{label: {seed: [records by ascending step]}} in the paper's column order. Give each
    (configuration, seed) once: two runs of it would join into one line."""
    out = {}
    for r in sorted(records, key=lambda r: config_key(r) + (r["seed"], r["step"])):
        label = config_label(*config_key(r))
        out.setdefault(label, {}).setdefault(r["seed"], []).append(r)
    return out


def _position_mic(r, factors):
    return float(numpy.mean([r["mic_first3"][factors.index(f)] for f in POSITION]))


def curve_rows(records, factors):
    """One CSV row per (configuration, seed, step)."""
    return [score_row(label, r, factors) for label, seeds in by_configuration(records).items()
            for trial in seeds.values() for r in trial]


def figure(records, factors, path):
    # (title, value of a record, the paper's Table 1 value of a configuration or None)
    panels = (("test reconstruction loss (nats / image)", lambda r: r["rec_loss_full"],
               lambda paper: paper[1]),
              ("MIG (eq. 12)", lambda r: r["mig"], lambda paper: paper[0]),
              ("MIC of posX, posY with z1-z3 (mean)", lambda r: _position_mic(r, factors),
               lambda paper: None))
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8), layout="constrained")
    for c, (label, seeds) in enumerate(by_configuration(records).items()):
        color = f"C{c}"
        trials = list(seeds.values())
        first = trials[0][0]
        paper = paper_values(first)
        for ax, (title, value, paper_value) in zip(axes, panels):
            for t in trials:
                ax.plot([r["step"] for r in t], [value(r) for r in t], color=color, lw=0.7,
                        alpha=0.5)
            steps, mean = _mean_by_step(trials, value)
            ax.plot(steps, mean, color=color, lw=2, marker="o", ms=3,
                    label=f"{label} (n={len(trials)})")
            if paper is not None and paper_value(paper) is not None:
                ax.axhline(paper_value(paper), color=color, ls="--", lw=1)
        # Each group's KL, mean over seeds: group 1 solid, 2 dashed, later ones dotted.
        for g in range(len(first["groups"])):
            steps, mean = _mean_by_step(trials, lambda r: footprint(r)["kl"][g])
            axes[3].plot(steps, mean, color=color, lw=1.5, ls=("-", "--", ":")[min(g, 2)],
                         label=f"{label}: group {g + 1}" if len(first["groups"]) > 1 else label)
    panels += (("test KL per group (nats)", None, None),)
    for ax, (title, _, _) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].axhline(0, color="gray", lw=0.8)
    axes[0].legend(fontsize=7)
    axes[3].legend(fontsize=6)
    fig.suptitle("Learning curves on the fixed test images (dashed: the paper's Table 1)",
                 fontsize=9)
    save_figure(fig, path)


def _mean_by_step(trials, value):
    """The steps (S,) any seed reached and the mean over the seeds that reached each (S,)."""
    steps = sorted({r["step"] for t in trials for r in t})                       # (S,)
    return steps, [numpy.mean([value(r) for t in trials for r in t if r["step"] == s])
                   for s in steps]                                               # (S,)


def curves_markdown(records, factors, protocol):
    """Mean test reconstruction loss and MIG per configuration (columns) at each step (rows)."""
    configs = by_configuration(records)
    steps = sorted({r["step"] for r in records})
    header = ["| step | " + " | ".join(configs) + " |", "|---:|" + "---:|" * len(configs)]

    def table(cell):
        lines = list(header)
        for s in steps:
            cells = []
            for seeds in configs.values():
                at = [r for t in seeds.values() for r in t if r["step"] == s]
                cells.append("—" if not at else cell(at))
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        return lines

    def scores(at):
        return (f"{numpy.mean([r['rec_loss_full'] for r in at]):.1f} / "
                f"{numpy.mean([r['mig'] for r in at]):.3f} / "
                f"{numpy.mean([_position_mic(r, factors) for r in at]):.2f}")

    def kl_per_group(at):
        return " / ".join(f"{v:.1f}" for v in numpy.mean([footprint(r)["kl"] for r in at], 0))

    return "\n".join(
        table(scores) + ["", "Learning curves: test reconstruction loss (nats per image) / MIG / "
                         f"MIC of posX and posY with z1-z3, means over seeds ({protocol['bins']} "
                         f"bins, {protocol['n_images']} test images).", ""]
        + table(kl_per_group) + ["", "The footprint: test KL of each group's latents (nats, g1 "
                                 "/ g2 / ...), means over seeds; curves.csv has every seed's "
                                 "KL, active latents and L_rec,i per group.", ""])


def write_curves(records, protocol, out_dir):
    """Write curves.md, curves.csv and learning_curves.png to out_dir; return the Markdown."""
    os.makedirs(out_dir, exist_ok=True)
    factors = list(protocol["factors"])
    markdown = curves_markdown(records, factors, protocol)
    with open(os.path.join(out_dir, "curves.md"), "w") as f:
        f.write(markdown)
    write_csv(os.path.join(out_dir, "curves.csv"), curve_rows(records, factors))
    figure(records, factors, os.path.join(out_dir, "learning_curves.png"))
    return markdown
