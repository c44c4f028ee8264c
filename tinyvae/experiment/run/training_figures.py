"""Training figures: reconstructions from every group prefix, latent traversals, loss curves,
and (G > 1) the routing at work: what each L_rec,i sends to the earlier groups and to its own.

Everything is computed on the model's backend and brought to the host once per figure.
Shapes: M models, N images shown, P pixels (64*64), Z latent, S traversal steps.
"""
import os
import textwrap

import numpy

from ...backend import to_numpy
from ...losses import kl_normal_forward
from ...vae import IMAGE_SIZE as SIDE        # the images' side, px
from .storage import FIGURES, LOG, read_log
from .plotting import plt, save_figure

FIGURE_IMAGES = 8         # test images shown in the reconstruction figures
FIGURE_MODELS = 4         # models with their own reconstruction and traversal figures
TRAVERSAL = numpy.linspace(-2.5, 2.5, 9)   # prior standard deviations swept per latent


def _sigmoid(logits):
    return 1.0 / (1.0 + numpy.exp(-logits))


def prefix_reconstructions(model, x):
    """Reconstruction probabilities of x (M, N, P) from the means of z_1..z_i, i = 1..G:
    what each prefix of groups alone carries (paper eq. 8). Returns (G, M, N, P) on the host."""
    M, N = model.models, x.shape[1]
    mu, _ = model.encode(x)                                             # (M, N, Z)
    zin = model.prefix_inputs(mu)                                       # (M, G, N, Z)
    logits = model.decode(zin.reshape(M, -1, model.latent))             # (M, GN, P)
    out = to_numpy(logits).reshape(M, len(model.groups), N, -1)         # (M, G, N, P)
    return _sigmoid(out.astype(numpy.float64)).transpose(1, 0, 2, 3)    # (G, M, N, P)


def traversal_images(model, x0, order):
    """Decode the mean code of one image x0 (M, 1, P) with latent `order[r]` swept over
    TRAVERSAL, for each model. Returns (M, Z, S, P) on the host."""
    xp, S, Z = model.xp, len(TRAVERSAL), model.latent
    mu, _ = model.encode(x0)                                            # (M, 1, Z)
    z = xp.repeat(xp.repeat(mu[:, :, None, :], Z, 1), S, 2)             # (M, Z, S, Z)
    sweep = xp.asarray(TRAVERSAL, dtype=model.dtype)                    # (S,)
    for m in range(model.models):
        for r, d in enumerate(order[m]):
            z[m, r, :, int(d)] = sweep
    logits = model.decode(z.reshape(model.models, Z * S, Z))            # (M, ZS, P)
    return _sigmoid(to_numpy(logits).astype(numpy.float64)).reshape(model.models, Z, S, -1)


def save_training_figures(fig_dir, model, x, kl_dim, log_rows, labels, shown=4):
    """Write reconstructions_m{m}.png and traversals_m{m}.png for the first `shown` models,
    and losses.png (and, with more than one group, routing.png) for all of them.

    x (M, N, P): the same test images for every model; kl_dim (M, Z) host array: latent
    dimensions are drawn in decreasing KL order, the most informative first."""
    os.makedirs(fig_dir, exist_ok=True)
    recon = prefix_reconstructions(model, x)                            # (G, M, N, P)
    order = numpy.argsort(-numpy.asarray(kl_dim), axis=1)               # (M, Z)
    trav = traversal_images(model, x[:, :1], order)                     # (M, Z, S, P)
    xs = to_numpy(x).astype(numpy.float64)                              # (M, N, P)
    for m in range(min(shown, model.models)):
        rows = [xs[m]] + list(recon[:, m])
        names = ["x"] + [f"from z_1..z_{i + 1}" if i else "from z_1"
                         for i in range(len(model.groups))]
        _grid(os.path.join(fig_dir, f"reconstructions_m{m}.png"), rows, names,
              f"{labels[m]}: test images and their reconstructions from each group prefix")
        names = [f"z{d + 1} (KL {kl_dim[m][d]:.2f})" for d in order[m]]
        _grid(os.path.join(fig_dir, f"traversals_m{m}.png"), list(trav[m]), names,
              f"{labels[m]}: each latent swept over {TRAVERSAL[0]}..{TRAVERSAL[-1]}, "
              "most informative first")
    log_figures(fig_dir, log_rows, labels, model.routing)


def log_figures(fig_dir, log_rows, labels, routing):
    """losses.png and, with more than one group, routing.png: what log.csv alone draws, so a
    committed run (its config.json and log.csv, no checkpoint) redraws them."""
    os.makedirs(fig_dir, exist_ok=True)
    _loss_curves(os.path.join(fig_dir, "losses.png"), log_rows, labels)
    _routing_curves(os.path.join(fig_dir, "routing.png"), log_rows, labels, routing)


def shape_reconstructions(fig_dir, model, dataset, test_idx, label, per_shape=4):
    """shapes.png for one model: `per_shape` large test images of each shape (scale classes
    4 and 5, where a shape shows) and their reconstructions from each group prefix: which
    group carries what tells a square from an ellipse from a heart."""
    factors = dataset.factors(test_idx)                                 # (N_test, K)
    pick = numpy.concatenate([test_idx[(factors[:, 0] == s) & (factors[:, 1] >= 4)][:per_shape]
                              for s in range(dataset.factor_sizes[0])])  # (N,)
    x = dataset.images(pick[None, :], model.xp, model.dtype)            # (1, N, P)
    recon = prefix_reconstructions(model, x)                            # (G, 1, N, P)
    rows = [to_numpy(x[0]).astype(numpy.float64)] + list(recon[:, 0])
    names = ["x"] + [f"from z_1..z_{i + 1}" if i else "from z_1" for i in range(len(recon))]
    os.makedirs(fig_dir, exist_ok=True)
    _grid(os.path.join(fig_dir, "shapes.png"), rows, names,
          f"{label}: {per_shape} test images of each shape, reconstructed from each group prefix")


def _grid(path, rows, names, title):
    """rows[r] is (C, P): one mosaic image with a thin grey gap between cells, drawn with a
    single imshow (one axes per cell would cost seconds per figure)."""
    R, C, gap = len(rows), len(rows[0]), 2
    cell = SIDE + gap
    mosaic = numpy.full((R * cell + gap, C * cell + gap), 0.35)                   # (H, W)
    for r, row in enumerate(rows):
        for c in range(C):
            top, left = gap + r * cell, gap + c * cell
            mosaic[top:top + SIDE, left:left + SIDE] = row[c].reshape(SIDE, SIDE)
    fig, ax = plt.subplots(figsize=(C * 0.8 + 1.8, R * 0.8 + 0.5))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([gap + r * cell + SIDE / 2 for r in range(R)], names, fontsize=8)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path, dpi=80)


def _loss_curves(path, log_rows, labels):
    """Total, each L_rec,i and KL against step; one line per model."""
    if not log_rows:
        return
    terms = [k for k in log_rows[0] if k == "total" or k.startswith("rec_") or k == "kl"]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for m, label in enumerate(labels):
            rows = [r for r in log_rows if int(r["model"]) == m]
            ax.plot([int(r["step"]) for r in rows], [float(r[term]) for r in rows],
                    label=label, lw=1, marker=_few(rows))
        ax.set_title(term.replace("rec_", "L_rec,"), fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    if len(labels) <= 10:
        axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=80, bbox_inches=None)


def _few(rows):
    """A marker where a line has too few points to show as a line (a run of one log row)."""
    return "o" if len(rows) < 3 else None


def _routing_curves(path, log_rows, labels, routing):
    """Per decoding i > 1, the gradient norm L_rec,i sends to z_1 .. z_(i-1) (solid) and to
    z_i (dotted) against step, one colour per model: under routing "paper" the solid line is
    what is held back, under "none" what reaches the encoder. The legend says which line is
    which, then names the models (up to 10)."""
    groups = sorted({int(k.split("_")[2]) for k in (log_rows[0] if log_rows else {})
                     if k.startswith("grad_rec_") and k.endswith("_to_own")})
    if not groups:
        return
    fate = "held back" if routing == "paper" else "passed on"
    width = 5.5 * len(groups)                                          # inches
    fig, axes = plt.subplots(1, len(groups), figsize=(width, 3.6), squeeze=False)
    for ax, i in zip(axes[0], groups):
        earlier = "z_1" if i == 2 else f"z_1..z_{i - 1}"
        ax.plot([], [], color="black", lw=1, label=f"solid: to {earlier} ({fate})")
        ax.plot([], [], color="black", lw=1, ls=":", label=f"dotted: to z_{i}")
        for m, label in enumerate(labels):
            rows = [r for r in log_rows if int(r["model"]) == m]
            steps = [int(r["step"]) for r in rows]
            line, = ax.plot(steps, [float(r[f"grad_rec_{i}_to_earlier"] or "nan") for r in rows],
                            lw=1, label=label, marker=_few(rows))
            ax.plot(steps, [float(r[f"grad_rec_{i}_to_own"] or "nan") for r in rows], lw=1,
                    ls=":", color=line.get_color(), marker=_few(rows))
        ax.set_title(f"L_rec,{i}: what it sends to {earlier} and to z_{i}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("gradient norm over the batch", fontsize=8)
        ax.set_yscale("log")
    shown = 2 + (len(labels) if len(labels) <= 10 else 0)       # the two styles, the models
    handles, names = axes[0, -1].get_legend_handles_labels()
    axes[0, -1].legend(handles[:shown], names[:shown], fontsize=6)
    why = ("Where solid lies above dotted, the decoding leans on the earlier groups, which "
           "carry most of what is encoded, more than on z_i: a loss's gradient into a latent "
           "is as large as the decoding's dependence on it.")
    fig.suptitle(f"The routing at work (routing {routing!r})\n"
                 + textwrap.fill(why, width=int(15 * width)), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80, bbox_inches=None)


def draw_run_figures(out, trainer):
    """A run's figures/ from a Trainer (trainer.py) and the run's log.csv:
    reconstructions and traversals of the first test images, and the loss curves."""
    M = trainer.model.models
    # Spread over the sorted test set, so all three shapes appear.
    pick = numpy.linspace(0, len(trainer.test_idx) - 1, FIGURE_IMAGES).astype(int)   # (N,)
    idx = numpy.broadcast_to(trainer.test_idx[pick], (M, FIGURE_IMAGES))              # (M, N)
    x = trainer.dataset.images(idx, trainer.xp, trainer.model.dtype)            # (M, N, P)
    mu, logvar = trainer.model.encode(x)                                        # (M, N, Z)
    kl_dim = to_numpy(kl_normal_forward(mu, logvar)[0]).mean(axis=1)            # (M, Z)
    save_training_figures(os.path.join(out, FIGURES), trainer.model, x, kl_dim,
                          read_log(os.path.join(out, LOG)), trainer.labels, FIGURE_MODELS)
