"""The opening as survival data: the opening report's section on *when* group g opens, with
the estimators of survival.py and the fits of survival_fits.py, and its figure (survival.png).

A model's time to open is the logged step from which the group's training KL stays over the
line to the run's last logged step (opening.py's time_to_open_g); a model under the line at
the end is censored at its last logged step. Openings are treated as final: a model that
opens and closes again after its run ends is counted open.

Shapes: T models of an arm, J event times, S steps drawn.
"""
import textwrap

import numpy

from ..run.configuration import config_label
from ..run.plotting import plt, save_figure
from .stats import p_text
from .survival import hazard_ratio, kaplan_meier, km_at, log_rank
from .survival_fits import MODELS, fit, never_interval, open_interval, survival_at

HORIZONS = (50_000, 100_000)   # steps past the runs at which the fits are read
FEWEST = 2                     # openings an arm needs before a model is fitted to it
COLOURS = {"exponential": "tab:green", "Weibull": "tab:red", "cure": "tab:purple"}


def longest(arms):
    """[rows] per configuration (its settings, whatever its steps), each model (seed) in its
    longest run: a model trained to 10,000 steps and continued to 20,000 is followed to
    20,000."""
    merged = {}
    for rows in arms:
        for r in rows:
            seeds = merged.setdefault(r["key"][:-1], {})
            if r["seed"] not in seeds or r["step"] > seeds[r["seed"]]["step"]:
                seeds[r["seed"]] = r
    return [sorted(seeds.values(), key=lambda r: r["seed"]) for seeds in merged.values()]


def times(rows, g):
    """An arm's (times (T,), opened (T,)): each model's time to open group g, or the step at
    which it is censored."""
    return (numpy.array([r[f"time_to_open_{g}"] for r in rows], dtype=float),
            numpy.array([r[f"last_open_{g}"] for r in rows], dtype=bool))


def _open(km, step, followed):
    """'F [low, high]': the Kaplan-Meier fraction open by `step` (F = 1 - S); '—' past the
    last step the arm was followed to, where the curve is not data."""
    if step > followed:
        return "—"
    s, low, high = km_at(km, step)
    return f"{1 - s:.2f}" + (f" [{1 - high:.2f}, {1 - low:.2f}]" if low != high else "")


def _median(km):
    """The first event time at which half the arm has opened, or 'not reached'."""
    steps, survival = km[0], km[3]
    reached = steps[survival <= 0.5]
    return f"{int(reached[0])}" if len(reached) else "not reached"


def _read(value, low, high):
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def arm_fits(t, d):
    """{model: (theta, log-likelihood, [(F, low, high) at each of HORIZONS])}, and the cure
    model's never-opening fraction (pi, low, high); ({}, None) below FEWEST openings."""
    if d.sum() < FEWEST:
        return {}, None
    fits = {}
    for model in MODELS:
        fitted = fit(model, t, d)
        fits[model] = (*fitted, [open_interval(model, t, d, h, fitted) for h in HORIZONS])
    return fits, never_interval(t, d, fits["cure"][:2])


def _fitted_text(model, theta, never):
    pi, sigma, k = theta
    if model == "exponential":
        return f"mean time {sigma:,.0f} steps"
    shape = f"shape k {k:.2f}, scale {sigma:,.0f} steps"
    return shape if model == "Weibull" else f"never opening {_read(*never)}; latency {shape}"


def survival_markdown(arms, g):
    """The section on every model of `arms` ([rows] as opening.by_arm gives them), each in
    its longest run; and what the figure draws: (labels, [steps each model was followed (T,)],
    [(times, opened, fits)] per arm)."""
    arms = longest(arms)
    labels = [config_label(*rows[0]["key"][:-1]) for rows in arms]
    data = [times(rows, g) for rows in arms]
    followed = [numpy.array([r["step"] for r in rows]) for rows in arms]   # (T,) each
    lasts = sorted({int(f.max()) for f in followed})
    steps = sorted({lasts[-1] // 2, *lasts})
    lines = ["", f"## When group {g} opens, as survival data", "",
             f"Time to open: the logged step from which group {g}'s training KL stays over "
             "the line to the run's last logged step (open since, above). A model under the "
             "line in its last rows has not opened by the end of its run: its time is "
             "censored there (it may open later, or never). The start-up transient is "
             "dropped: in the first logged steps, before the posterior collapses, every "
             "latent carries a little, so a group over the line from the first row counts as "
             "open from there only if it never fell under the line; otherwise its time "
             "counts from where it first fell. An opening is taken as final. Each model is "
             "followed to the last logged step of its longest run (followed to): an arm here "
             "is a configuration, whatever the length of its runs.", "",
             "| arm | models | opened | followed to | "
             + " | ".join(f"open by {s} (KM)" for s in steps) + " | median time to open |",
             "|---|---:|---:|---:|" + "---:|" * len(steps) + "---:|"]
    kms = [kaplan_meier(t, d) for t, d in data]
    for label, (t, d), f, km in zip(labels, data, followed, kms):
        span = f"{f.max()}" if f.min() == f.max() else f"{f.min()}–{f.max()}"
        lines.append(f"| {label} | {len(t)} | {int(d.sum())} | {span} | "
                     + " | ".join(_open(km, s, f.max()) for s in steps) + f" | {_median(km)} |")
    lines += ["", "| arm A | arm B | opened: A / B | log-rank: observed / expected in A | "
              "χ² | p | hazard ratio A / B (Cox) |", "|---|---|---:|---:|---:|---:|---:|"]
    for i, (ta, da) in enumerate(data):
        for j in range(i + 1, len(data)):
            tb, db = data[j]
            observed, expected, _, chi2, p = log_rank(ta, da, tb, db)
            hr = hazard_ratio(ta, da, tb, db)
            lines.append(f"| {labels[i]} | {labels[j]} | {int(da.sum())}/"
                         f"{len(da)} / {int(db.sum())}/{len(db)} | {observed:.0f} / "
                         f"{expected:.2f} | {chi2:.2f} | {p_text(p)} | "
                         + ("—" if numpy.isnan(hr[0]) else _read(*hr)) + " |")
    lines += ["", "| arm | model | fitted | log-likelihood | "
              + " | ".join(f"open at {h:,}" for h in HORIZONS) + " |",
              "|---|---|---|---:|" + "---:|" * len(HORIZONS)]
    fitted = []
    for label, (t, d), km in zip(labels, data, kms):
        fits, never = arm_fits(t, d)
        fitted.append((t, d, km, fits))
        if not fits:
            lines.append(f"| {label} | — | fewer than {FEWEST} openings | | "
                         + " | " * (len(HORIZONS) - 1) + " |")
        for model, (theta, loglik, reads) in fits.items():
            lines.append(f"| {label} | {model} | {_fitted_text(model, theta, never)}"
                         f" | {loglik:.2f} | " + " | ".join(_read(*r) for r in reads) + " |")
    lines += ["", "KM: the Kaplan–Meier fraction open (one minus the fraction not yet open) "
              "with its 95% interval from Greenwood's variance on the log(−log) scale. "
              "Log-rank: the openings in arm A against those expected were the two arms' "
              "hazards equal, χ² on one degree of freedom. Hazard ratio: Cox's proportional "
              "hazards with the arm as one binary covariate (ties by Breslow), the 95% Wald "
              "interval. Fitted by maximum likelihood with censoring (an opening contributes "
              "the density, a censored model the survival): the exponential, the Weibull, and "
              "a cure model, a never-opening fraction with Weibull times for the others. Open "
              "at a step: the fitted fraction with its 95% profile-likelihood interval (the "
              "values whose best likelihood is within χ²(1, 95%) / 2 = 1.92 of the maximum); "
              "the never-opening fraction's upper end is the largest one the data do not "
              "exclude. Past the last logged step the fits are their shapes' assumptions, not "
              f"data; an arm with fewer than {FEWEST} openings is not fitted.", ""]
    return "\n".join(lines), (labels, followed, fitted)


def survival_figure(drawn, g, path):
    """Per arm (a panel): the Kaplan–Meier fraction open with its interval, censored models
    as ticks, and the three fits drawn to the last of HORIZONS. drawn: survival_markdown's
    (labels, [steps followed (T,)], [(times, opened, Kaplan–Meier, fits)])."""
    labels, followed, fitted = drawn
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), sharey=True,
                             squeeze=False)
    grid = numpy.linspace(1, HORIZONS[-1], 400)                          # (S,)
    for ax, label, f, (t, d, km, fits) in zip(axes[0], labels, followed, fitted):
        steps, _, _, survival, low, high = km                            # (J,) each
        x = numpy.concatenate([[0], steps, [f.max()]])                   # (J + 2,)
        def along(y):                           # (J,) -> (J + 2,): 0 before, held to the end
            return numpy.concatenate([[0], y, [y[-1] if len(y) else 0]])
        ax.fill_between(x, along(1 - high), along(1 - low), step="post", color="0.8",
                        label="95% interval")
        ax.step(x, along(1 - survival), where="post", color="k", lw=1.5, label="Kaplan–Meier")
        censored = t[~d]                                                 # (C,)
        ax.plot(censored, [1 - km_at(km, c)[0] for c in censored], "k|", ms=8)
        for model, (theta, _, _) in fits.items():
            ax.plot(grid, 1 - survival_at(theta, grid), color=COLOURS[model], lw=1,
                    label=model)
        ax.axvline(f.max(), color="0.7", lw=0.8, ls="--")
        ax.set_title(textwrap.fill(label, 42) + f"\n{int(d.sum())} of {len(t)} "
                     f"opened by {f.max()}", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"fraction with group {g} open")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    save_figure(fig, path)
