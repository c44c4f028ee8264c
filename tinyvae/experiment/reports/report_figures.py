"""The report's figures, across runs: Figure 1 (MIC of each factor with z1-z3), Figure 2 (MIG
per configuration), each group's footprint (its test KL) and the mean MI heat maps, from the
configurations of full_report.configurations. Paper style: a column per configuration, a dot
per trial. And opening.py's: when a group opens, per model, against training steps.

Shapes: C configurations, T trials of one configuration, Z latent, K factors, R log rows,
G groups.
"""
import textwrap

import numpy

from ..run.plotting import plt, save_figure
from ..scoring.model_record import FIGURE1_FIRST, footprint


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


def opening_figure(arms, curves, g, open_nats, path):
    """opening.py's figure. Per arm (a column): each model's training KL of group g against
    steps (orange: open at the end), and how many of its groups are over `open_nats`. arms:
    [rows] (opening.model_rows), curves: [[(steps (R,), KL (R, G)) per model]]."""
    fig, axes = plt.subplots(2, len(arms), figsize=(4.2 * len(arms), 6.4), sharex=True,
                             sharey="row", squeeze=False)
    for j, (rows, models) in enumerate(zip(arms, curves)):
        top, bottom = axes[0, j], axes[1, j]
        later = []
        for row, (steps, kl) in zip(rows, models):                        # (R,), (R, G)
            colour = "tab:orange" if row[f"open_{g}"] else "0.55"
            top.plot(steps, kl[:, g - 1], color=colour, lw=0.8, alpha=0.8)
            later.append(kl[steps > steps[-1] / 10, g - 1])
        top.axhline(open_nats, color="k", ls="--", lw=0.8)
        top.set_ylim(-0.1, max(3.0, 1.15 * numpy.concatenate(later).max()))  # past the start
        arm = textwrap.fill(rows[0]["arm"], 42)             # a long KL scale wraps, not overlaps
        top.set_title(f"{arm}\n{sum(r[f'open_{g}'] for r in rows)} of {len(rows)} "
                      f"open at the end", fontsize=9)
        counts = [(kl > open_nats).sum(axis=1) for _, kl in models]          # T x (R,)
        offsets = numpy.linspace(-0.1, 0.1, len(models))                      # (T,)
        for (steps, _), c, dy in zip(models, counts, offsets):  # apart where counts agree
            bottom.plot(steps, c + dy, color="0.55", lw=0.6, alpha=0.6)
        if len({len(steps) for steps, _ in models}) == 1:                     # a common grid
            bottom.plot(models[0][0], numpy.mean(counts, axis=0), color="tab:blue", lw=2,
                        label="mean")
        bottom.set_xlabel("training step")
    axes[0, 0].set_ylabel(f"training KL of group {g} (nats)")
    axes[1, 0].set_ylabel(f"groups over {open_nats:g} nat")
    if axes[1, 0].get_legend_handles_labels()[0]:
        axes[1, 0].legend(fontsize=8)
    save_figure(fig, path)
