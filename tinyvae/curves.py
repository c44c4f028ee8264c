"""Learning curves: evaluate.py's test scores against training steps, one line per seed.

`evaluate.py --curves` scores every parameter snapshot of a run (train.py --snapshot-every)
exactly as it scores a finished run. Drawn here: the test reconstruction loss, MIG (eq. 12)
and the MIC (eq. 13) of posX and posY with the first three dimensions, the Figure 1 claim, in
one colour per configuration; thin lines are seeds, the thick line their mean, dashed lines
the paper's Table 1 value. They show where a number of steps stops paying.

Shapes: S snapshot steps, K factors.
"""
import os

import numpy

from .report import (config_key, config_label, paper_values, plt, save_figure, score_row,
                     write_csv)

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
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    for c, (label, seeds) in enumerate(by_configuration(records).items()):
        color = f"C{c}"
        trials = list(seeds.values())
        first = trials[0][0]
        paper = paper_values(first)
        for ax, (title, value, paper_value) in zip(axes, panels):
            for t in trials:
                ax.plot([r["step"] for r in t], [value(r) for r in t], color=color, lw=0.7,
                        alpha=0.5)
            # the mean over the seeds that reached each step
            steps = sorted({r["step"] for t in trials for r in t})               # (S,)
            mean = [numpy.mean([value(r) for t in trials for r in t if r["step"] == s])
                    for s in steps]                                              # (S,)
            ax.plot(steps, mean, color=color, lw=2, marker="o", ms=3,
                    label=f"{label} (n={len(trials)})")
            if paper is not None and paper_value(paper) is not None:
                ax.axhline(paper_value(paper), color=color, ls="--", lw=1)
    for ax, (title, _, _) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].axhline(0, color="gray", lw=0.8)
    axes[0].legend(fontsize=7)
    fig.suptitle("Learning curves on the fixed test images (dashed: the paper's Table 1)",
                 fontsize=9)
    save_figure(fig, path)


def curves_markdown(records, factors, protocol):
    """Mean test reconstruction loss and MIG per configuration (columns) at each step (rows)."""
    configs = by_configuration(records)
    steps = sorted({r["step"] for r in records})
    lines = ["| step | " + " | ".join(configs) + " |", "|---:|" + "---:|" * len(configs)]
    for s in steps:
        cells = []
        for seeds in configs.values():
            at = [r for t in seeds.values() for r in t if r["step"] == s]
            cells.append("—" if not at else
                         f"{numpy.mean([r['rec_loss_full'] for r in at]):.1f} / "
                         f"{numpy.mean([r['mig'] for r in at]):.3f} / "
                         f"{numpy.mean([_position_mic(r, factors) for r in at]):.2f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Learning curves: test reconstruction loss (nats per image) / MIG / MIC of "
              f"posX and posY with z1-z3, means over seeds ({protocol['bins']} bins, "
              f"{protocol['n_images']} test images).", ""]
    return "\n".join(lines)


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
