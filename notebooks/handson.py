# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # tinyvae hands-on: a Grouped-VAE, its routed gradient, and what trained models learn
#
# A Grouped-VAE (the model of the paper that this repository implements; the README names it)
# encodes a 64 x 64 image into six numbers and decodes the image back from them. What you will
# see, in order:
#
# 1. a trained model, loaded in seconds, and what each part of its code carries;
# 2. a drawing of the model and of where each loss's gradient goes;
# 3. one training step, and the routing: the small function that makes a Grouped-VAE;
# 4. a check of every gradient against finite differences, and an exercise that breaks the
#    routing and watches the check fail;
# 5. the routing report: every loss term's gradient, term by term;
# 6. your own models, routed and unrouted, trained side by side;
# 7. your models next to the trained ones: reconstructions, traversals, new images drawn from
#    the prior, and where each gradient goes;
# 8. a summary.
#
# **Words used throughout.**
# - *Latents and groups.* The six numbers of an image's code are its latents, z1 .. z6 (no
#   underscore). The Grouped-VAE splits them into groups, here two of three: z_1 = (z1, z2,
#   z3) and z_2 = (z4, z5, z6) (an underscore: a group).
# - *Decoding i* decodes from [z_1 .. z_i | 0 ... 0], the first i groups with the rest set to
#   zero; its loss is L_rec,i, the binary cross-entropy of the image summed over its 4,096
#   pixels. Every group has its own decoding, so z_1 must describe the image on its own.
# - *Nats*: the unit of information with the natural logarithm (1 nat = 1.44 bits). The losses
#   are in nats per image.
# - *KL of a group*: how far the encoder's distribution of that group's latents is from the
#   prior N(0, I) (a standard normal for every latent), in nats, averaged over images: how
#   much the group carries about an image. A latent with a KL near 0 carries nothing; its
#   decoding ignores it.
# - *Open*: a group is open when its KL on test images is over 1 nat, and closed otherwise
#   (the line that docs/routing.md uses).
# - *The routing* (paper §4): L_rec,i's gradient reaches the whole decoder but the encoder only
#   through z_i; z_1 .. z_(i-1) count as constants inside L_rec,i. `routing="none"` is the
#   ablation: the same losses with their plain gradient.
#
# **Where to run it.** Reading needs nothing: the notebook is stored with the outputs of one
# run of its cells. To run it yourself, in the repository after the README's set-up, with any
# notebook front end: `pip install jupyterlab` if you have none, then `jupyter lab
# notebooks/handson.ipynb` from the repository root (the training cell takes minutes on a
# laptop CPU and prints its own time; the rest takes seconds). On Colab, pick a GPU runtime,
# get the repository into the session (clone or upload it), `%cd` into it and `%pip install
# -e ".[gpu]"` (CuPy for CUDA 12): the same cells then run on the GPU.
#
# **This file has a twin.** `notebooks/handson.py` holds the same cells as plain text
# (jupytext's percent format), which is what a diff shows. After editing it, `python
# scripts/execute_notebook.py` runs its cells top to bottom in a fresh kernel and writes this
# notebook with their outputs. `tests/test_notebook.py` checks that the two hold the same
# cells and that every cell that draws has its picture, and runs the cells itself with
# `TINYVAE_NOTEBOOK_QUICK=1`, which trains for a few dozen steps instead of thousands.

# %%
import glob
import inspect
import os
import time
from unittest import mock

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import FancyArrowPatch

import tinyvae.vae
from tinyvae import Adam, BackendError, GroupedVAE, get_xp, to_numpy
from tinyvae.data.dataset import BatchSampler, open_dataset, test_split
from tinyvae.experiment import load_run
from tinyvae.experiment.run.training_figures import (TRAVERSAL, prefix_reconstructions,
                                                     traversal_images)
from tinyvae.gradcheck import GradientMismatch, check_gradients
from tinyvae.losses import bernoulli_nll_forward, kl_normal_forward, reparameterize_forward
from tinyvae.routing_report import draw_gradient_flow, gradient_flow, routing_report
from tinyvae.vae import route

try:
    xp = get_xp(gpu=True)                  # CuPy, where a CUDA device and CuPy are present
except BackendError:
    xp = numpy                             # the same cells, on the CPU
print("array module:", xp.__name__)
QUICK = os.environ.get("TINYVAE_NOTEBOOK_QUICK") == "1"    # the tests' short setting
plt.rcParams.update({"figure.dpi": 72, "font.size": 9})   # small pictures, a small file

dataset = open_dataset()                   # dSprites, rendered on the fly: nothing to download
test_idx, train_idx = test_split()         # the fixed 10,000 test images, and the rest
SIDE = 64                                  # the images' side, px


def mosaic(rows, names, title):
    """Draw rows[r] (C images of P = 64*64 values in [0, 1]) as one picture with grey gaps,
    one labelled row each: a single imshow, which draws far faster than one axes per image."""
    gap, cell = 2, SIDE + 2
    R, C = len(rows), len(rows[0])
    canvas = numpy.full((R * cell + gap, C * cell + gap), 0.35)            # (H, W)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = gap + r * cell, gap + c * cell
            canvas[top:top + SIDE, left:left + SIDE] = numpy.reshape(image, (SIDE, SIDE))
    fig, ax = plt.subplots(figsize=(0.6 * C + 2.2, 0.6 * R + 0.4))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([gap + r * cell + SIDE / 2 for r in range(R)], names, fontsize=8)
    ax.set_title(title, fontsize=9)
    plt.show()


test_1000 = test_idx[numpy.linspace(0, len(test_idx) - 1, 1000).round().astype(int)]
x_test = dataset.images(test_1000[None], xp, numpy.float32)               # (1, N, P)


def group_kl(m):
    """KL per group (M, G) of model m on the 1,000 test images x_test, nats per image."""
    xs = xp.broadcast_to(x_test, (m.models, *x_test.shape[1:]))             # (M, N, P)
    kl_dim = to_numpy(kl_normal_forward(*m.encode(xs))[0]).mean(axis=1)     # (M, Z)
    return numpy.stack([kl_dim[:, g].sum(axis=1) for g in m.group_slices], axis=1)


# %% [markdown]
# ## 1. A trained model, in seconds
#
# `results/models/` holds three small trained models (256 wide, 10,000 steps; its README says
# how each was trained). `load_run` builds a `GroupedVAE` and puts the trained weights in.
# Below, for each: the KL of each group on 1,000 test images; then nine large test images
# (three squares, three ellipses, three hearts) decoded from z_1 alone, [z_1 | 0], and from
# both groups, [z_1 | z_2] (from the means of the code, no noise).

# %%
ROOT = os.getcwd()                  # Jupyter starts in notebooks/; Colab where you %cd
while not os.path.isfile(os.path.join(ROOT, "pyproject.toml")) and os.path.dirname(ROOT) != ROOT:
    ROOT = os.path.dirname(ROOT)
committed = []                                              # (name, model)
for path in sorted(glob.glob(os.path.join(ROOT, "results", "models", "*", "params.npz"))):
    config, m, state = load_run(os.path.dirname(path), xp)
    committed.append((os.path.basename(os.path.dirname(path)), m))
    print(f"{committed[-1][0]:20} routing {m.routing!r:7} seed {m.seeds[0]:2}, "
          f"{state['step']} steps, widths {m.encoder_sizes} / {m.decoder_sizes}")

factors = dataset.factors(test_idx)                    # (N_test, K): shape, scale, ...
pick = numpy.concatenate([test_idx[(factors[:, 0] == shape) & (factors[:, 1] >= 4)][:3]
                          for shape in range(3)])      # (9,): large squares, ellipses, hearts
print("\nKL per group on 1,000 test images, nats:")
rows, names = [to_numpy(dataset.images(pick, xp, numpy.float32))], ["test images"]
for name, m in committed:
    print(f"  {name:20} " + "  ".join(f"z_{g + 1} {k:5.2f}"
                                      for g, k in enumerate(group_kl(m)[0])))
    recon = prefix_reconstructions(m, dataset.images(pick[None], xp, numpy.float32))
    rows += [recon[0, 0], recon[1, 0]]                                      # (N, P) each
    names += [f"{name}: from z_1", f"{name}: from z_1, z_2"]
mosaic(rows, names, "Nine test images and the trained models' reconstructions")

# %% [markdown]
# What the cell shows. All three models carry most of what they encode in z_1 (10.6 to 11.9
# nats), and decoded from z_1 alone they already place and size each sprite, as a round
# blob. In `g33-routed-open-s11` z_2 is open (2.7 nats): decoded from both groups, its
# ellipses come out long, which z_1 alone did not give. In the other two z_2 is closed (0.01
# nats), and adding it changes nothing that shows. The routed seed 0 carries less in z_1 than
# the unrouted seed 0 (10.6 against 11.9 nats). Why the routing does that, and how often z_2
# opens over many seeds, with and without the routing, is the subject of docs/routing.md.
#
# ## 2. The model, drawn
#
# The encoder maps an image x to a mean and a log-variance (log sigma^2) per latent; the code
# is one sample z = mu + sigma * eps, eps ~ N(0, I). The same decoder then decodes each
# prefix of groups, and the loss is L_rec,1 + L_rec,2 + beta * KL (paper eq. 8-11). Black
# arrows: the forward pass. Coloured arrows: where each L_rec,i's gradient reaches the
# encoder's outputs. Grey, crossed out: the path the routing blocks.

# %%
def draw_model(groups=(3, 3), width=10.0):
    """The Grouped-VAE of `groups` as boxes: forward in black; each L_rec,i's gradient in
    colour, back through the decoder to z_i and into the encoder; grey and crossed out, what
    the paper's routing blocks."""
    G, ends = len(groups), numpy.cumsum(groups)
    height = 1.8 + 1.3 * G
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ys = numpy.linspace(0.7, 0.36, G) if G > 1 else numpy.array([0.55])   # (G,)

    def node(x, y, text, colour="black"):
        return ax.text(x, y, text, ha="center", va="center", color=colour, fontsize=9,
                       bbox=dict(boxstyle="round,pad=0.4", fc="white", ec=colour))

    def arrow(a, b, colour="black", style="-", rad=0.0, lw=1.0):
        """From box a to box b, clipped at their edges; returns the curve's middle."""
        (xa, ya), (xb, yb) = a.get_position(), b.get_position()
        ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), patchA=a.get_bbox_patch(),
                                     patchB=b.get_bbox_patch(), arrowstyle="-|>", lw=lw,
                                     mutation_scale=11, color=colour, ls=style, zorder=4,
                                     connectionstyle=f"arc3,rad={rad}"))
        # arc3 bends the line towards its control point; the curve's middle is halfway there
        dx, dy = (xb - xa) * width, (yb - ya) * height                      # inches
        return ((xa + xb) / 2 + rad * dy / 2 / width, (ya + yb) / 2 - rad * dx / 2 / height)

    mid = ys.mean()
    image = node(0.04, mid, "x\n64 x 64")
    encoder = node(0.15, mid, "encoder")
    head = node(0.29, mid, "\u03bc, log \u03c3\u00b2\nz = \u03bc + \u03c3\u00b7\u03b5")
    kl = node(0.29, 0.08, "\u03b2 \u00b7 KL\n(every latent)")
    for a, b in ((image, encoder), (encoder, head), (head, kl)):
        arrow(a, b)
    zs = [node(0.45, y, f"z_{i + 1}: z{ends[i] - groups[i] + 1}-z{ends[i]}", f"C{i}")
          for i, y in enumerate(ys)]
    for i, y in enumerate(ys):
        c = f"C{i}"
        seen = ", ".join(f"z_{j + 1}" for j in range(i + 1)) + (" | 0" if i < G - 1 else "")
        zin = node(0.62, y, f"[{seen}]")
        decoder = node(0.78, y, "decoder")
        loss = node(0.93, y, f"L_rec,{i + 1}", c)
        arrow(head, zs[i])
        for a, b in ((zin, decoder), (decoder, loss)):
            arrow(a, b)
        for j in range(i + 1):                                   # decoding i sees z_1 .. z_i
            arrow(zs[j], zin, lw=0.7)
        bend = 0.45 if i == 0 else -0.45                         # away from the other rows
        for a, b in ((loss, decoder), (decoder, zin), (zin, zs[i])):     # L_rec,i's gradient
            arrow(a, b, c, rad=bend, lw=1.8)
        arrow(zs[i], head, c, rad=0.3, lw=1.8)
        for j in range(i):                                       # the routing blocks it
            where = arrow(zin, zs[j], "grey", "--", rad=0.25, lw=1.2)
            ax.plot(*where, marker="X", ms=12, color="red", zorder=5)
            ax.text(where[0] + 0.015, where[1], "blocked", color="red", fontsize=8,
                    va="center")
    ax.text(0.5, 0.98, "Black: the forward pass. Coloured: L_rec,i's gradient, through the "
            "whole decoder, to z_i only, and on into the encoder.\nGrey, crossed out in red: "
            "blocked by the paper's routing (routing 'none' lets it through). The KL's "
            "gradient reaches every group.", ha="center", va="top", fontsize=9)
    plt.show()


draw_model((3, 3))

# %% [markdown]
# L_rec,i's gradient reaches all of the decoder either way; the routing acts only where the
# decoding's input meets the groups. The KL's gradient reaches every group's mu and
# log sigma^2 directly.
#
# ## 3. One training step, and the routing
#
# A small model to step through: the paper's networks are 1,200 wide, these 128 (encoder
# 4096-128-128-12, decoder 6-128-128-128-4096). Every array carries a models axis M first:
# here M = 1. Then a batch of eight test images and its noise eps.

# %%
WIDTH = 128
model = GroupedVAE(groups=(3, 3), beta=1.0, seed=0, xp=xp,
                   encoder_hidden=(WIDTH, WIDTH), decoder_hidden=(WIDTH, WIDTH, WIDTH))
for name, p in model.params.items():
    print(f"{name:12} {p.shape}")
print("parameters:", sum(p.size for p in model.params.values()))

x = dataset.images(test_idx[None, :8], xp, numpy.float32)                  # (M, B, P)
eps = xp.asarray(numpy.random.default_rng(0).standard_normal((1, 8, 6)), dtype=numpy.float32)
print("x", x.shape, " eps", eps.shape)

# %% [markdown]
# `forward` gives the losses; `backward` is the forward read upside down. Between the
# decoder's backward and the encoder's, `GroupedVAE.backward` calls one function, `route`:
# the decodings' input gradients `dzin` come in, the gradient `dz` of the code z goes out.
# This is all of it:

# %%
print(inspect.getsource(route))

# %% [markdown]
# The same routing, as it is usually written with automatic differentiation (PyTorch-style
# pseudocode, for comparison; nothing here runs it). There the routing is one `.detach()`:
# the earlier groups enter decoding i as constants, so autograd sends L_rec,i's gradient
# nowhere but into z_i.
#
# ```python
# mu, logvar = encoder(x).chunk(2, dim=-1)
# z = mu + torch.exp(0.5 * logvar) * eps                 # one sample, shared by every decoding
# loss = beta * kl_normal(mu, logvar).sum(-1).mean()
# for g in group_slices:                                 # g: group i's columns
#     earlier = z[..., :g.start].detach()                # z_1 .. z_(i-1): constants here
#     later = torch.zeros_like(z[..., g.stop:])          # the groups decoding i does not see
#     zin = torch.cat([earlier, z[..., g], later], dim=-1)          # [z_1 .. z_i | 0]
#     loss = loss + bce_with_logits(decoder(zin), x).sum(-1).mean()    # L_rec,i
# loss.backward()
# ```
#
# Without the `.detach()` it is routing "none". tinyvae has no autograd: its backward is
# written out by hand, and `route` is where that `.detach()` went.

# %%
losses, cache = model.forward(x, eps)
grads, dmu, dlogvar, dzin = model.backward(cache)
rec, kl = to_numpy(losses["rec"])[0], to_numpy(losses["kl"])[0]            # (G,), scalar
print("L_rec,1 %.1f  L_rec,2 %.1f  KL %.4f" % (*rec, kl))
print("gradients:", len(grads), "arrays, shaped like the parameters")

# %% [markdown]
# Follow L_rec,2 alone (`rec_weights=[0, 1]`, no KL). Decoding 2 sends a gradient back to
# all six latents it saw (`dzin`), but under the routing only z_2's part reaches the
# encoder: what reaches z_1's mu is exactly zero. A model with `routing="none"` and the same
# seed (so the same weights) passes it on. `backward` returns arrays that are yours: the
# second call below leaves the first call's `grads` as they were.

# %%
def show(a):
    return " ".join(f"{v:+.4f}" if v else "      0" for v in to_numpy(a).tolist())

first = {name: g.copy() for name, g in grads.items()}
_, dmu2, _, dzin2 = model.backward(cache, rec_weights=[0, 1], include_kl=False)
print("decoding 2 sends to [z_1 | z_2]:", show(dzin2[0, 1, 0]))
print("routing 'paper', into mu:       ", show(dmu2[0, 0]))

plain = GroupedVAE(groups=(3, 3), beta=1.0, seed=0, xp=xp, routing="none",
                   encoder_hidden=(WIDTH, WIDTH), decoder_hidden=(WIDTH, WIDTH, WIDTH))
_, plain_cache = plain.forward(x, eps)
_, dmu2_plain, _, _ = plain.backward(plain_cache, rec_weights=[0, 1], include_kl=False)
print("routing 'none', into mu:        ", show(dmu2_plain[0, 0]))
print("z_1's columns exactly zero under the routing:", bool(xp.all(dmu2[..., :3] == 0)))
print("the first backward's gradients kept after the second:",
      all(bool(xp.array_equal(first[name], grads[name])) for name in grads))

# %% [markdown]
# ## 4. A gradient check
#
# Finite differences in float64 on a tiny model (7 pixels, hidden layers of 6, 5 and 5, 4, 6,
# groups (2, 2)), always on the CPU. With `routing="none"` every gradient is the plain
# gradient of the total loss. With the paper's routing the encoder's gradients are not; they
# are the gradients of the surrogate in which decoding i sees z_1 .. z_(i-1) as constants
# (docs/walkthrough.md, section 3): the `.detach()` above, written as a loss.

# %%
tiny = dict(pixels=7, encoder_hidden=(6, 5), decoder_hidden=(5, 4, 6), dtype=numpy.float64)
r = numpy.random.default_rng(1)
xt = (r.random((1, 4, 7)) < 0.4).astype(numpy.float64)                     # (M, B, P)
et = r.standard_normal((1, 4, 4))                                          # (M, B, Z)
plain_t = GroupedVAE(groups=(2, 2), beta=1.5, routing="none", **tiny)
paper_t = GroupedVAE(groups=(2, 2), beta=1.5, **tiny)                      # the same weights


def total(m):
    return lambda: float(m.forward(xt, et)[0]["total"].sum())


_, g_plain = plain_t.loss_and_grads(xt, et)
errors = check_gradients(total(plain_t), plain_t.params, g_plain, rtol=1e-6)
print("routing 'none' against the total loss:", len(errors), "arrays within tolerance")

_, g_paper = paper_t.loss_and_grads(xt, et)
try:
    check_gradients(total(paper_t), paper_t.params, g_paper, rtol=1e-6)
except GradientMismatch as err:
    print("routing 'paper' against the total loss:", len(err.failed),
          "encoder arrays fail, as they should:", ", ".join(err.failed))

z0, _ = reparameterize_forward(*paper_t.encode(xt), et)   # this step's z, frozen


def surrogate():
    mu_t, logvar_t = paper_t.encode(xt)
    z_t, _ = reparameterize_forward(mu_t, logvar_t, et)
    rec_t = 0.0
    for g in paper_t.group_slices:
        zin_t = numpy.zeros_like(z_t)
        zin_t[..., :g.start] = z0[..., :g.start]          # z_1 .. z_(i-1): constants
        zin_t[..., g] = z_t[..., g]                       # z_i: the variable
        rec_t += bernoulli_nll_forward(paper_t.decode(zin_t), xt)[0].mean()
    return float(rec_t + 1.5 * kl_normal_forward(mu_t, logvar_t)[0].sum(axis=2).mean())


errors = check_gradients(surrogate, paper_t.params, g_paper, rtol=1e-6)
print("routing 'paper' against the surrogate:", len(errors), "arrays within tolerance")

# %% [markdown]
# ### Exercise: break the routing, and watch the check fail
#
# Change one line of `route`: make L_rec,i reach z_1 .. z_i, as routing "none" does, while
# the model still says it follows the paper. To do it for real, edit that line in
# tinyvae/vae.py, restart the kernel and run this section again; then undo the edit. The
# cell below does the same without touching the file: it compiles a copy of `route` with the
# one line changed and puts it in place for the next backward only (`mock.patch` puts the
# real one back when the `with` block ends, even on an error), so the notebook stays whole.
# Try your own change in `BROKEN`: any slip in the routing shows up here.

# %%
LINE = "dz[..., g] += dzin[:, i, :, g]"                        # the routing's own line
BROKEN = "dz[..., :g.stop] += dzin[:, i, :, :g.stop]"          # the exercise: your change
source = inspect.getsource(route)
assert source.count(LINE) == 1, "the line to change is not in route: see its source above"
scope = dict(vars(tinyvae.vae))
exec(source.replace(LINE, BROKEN), scope)                      # defines scope["route"]
with mock.patch.object(tinyvae.vae, "route", scope["route"]):
    _, g_broken = paper_t.loss_and_grads(xt, et)
try:
    check_gradients(surrogate, paper_t.params, g_broken, rtol=1e-6)
    print("the broken routing passed the check: the change did not alter the gradient")
except GradientMismatch as err:
    print("the broken routing against the surrogate:", len(err.failed), "arrays fail:",
          ", ".join(err.failed))
_, g_again = paper_t.loss_and_grads(xt, et)                    # the real route is back
print("the real routing, again:",
      len(check_gradients(surrogate, paper_t.params, g_again, rtol=1e-6)),
      "arrays within tolerance")

# %% [markdown]
# Only the encoder's six arrays fail: the routing acts between the decoder and the encoder,
# so the decoder's gradients are the same either way. The change above is routing "none"
# under another name, which passes the check against the total loss (the first check of
# this section); the check against the surrogate is the one that tells the two apart.
#
# ## 5. The routing report
#
# The same for every loss term at once, on the small model of section 3: the gradient norm
# each term sends into each group's mu and logvar and into each layer. `0` means exactly
# zero; `blocked` is what L_rec,i would have sent to the earlier groups without the routing
# (`train.py --explain` prints this).

# %%
print(routing_report(model, x, eps)[3])

# %% [markdown]
# ## 6. Your own models: routed and unrouted, side by side
#
# Two seeds of each routing, from the same initial weights, on the same batches and the same
# noise: the routing is the only difference. The whole training loop is the cell below: 128
# wide, Adam's learning rate 1e-3 (the paper's is 1e-4 at 1,200 wide; docs/usage.md has the
# sweep that chose it), batch 64, 2,000 steps. With `TINYVAE_NOTEBOOK_QUICK=1` (the tests)
# it trains 40 steps, too few to learn anything: the pictures below then show untrained
# models. The cell prints its own time. `Adam` is tinyvae.optim's, which runs `adam_rule`
# as it reads; train.py uses its drop-in `FastAdam` (tinyvae.optim_fast), the same bits on
# NumPy.

# %%
LR, SEEDS, BATCH = 1e-3, [0, 1], 64
STEPS, LOG_EVERY = (40, 10) if QUICK else (2000, 50)
M, Z = len(SEEDS), 6


def grouped(routing):
    return GroupedVAE(groups=(3, 3), beta=1.0, models=M, seed=SEEDS, routing=routing, xp=xp,
                      encoder_hidden=(WIDTH, WIDTH), decoder_hidden=(WIDTH, WIDTH, WIDTH))


trained = {"paper": grouped("paper"), "none": grouped("none")}
opts = {routing: Adam(m.params, lr=LR) for routing, m in trained.items()}
sampler = BatchSampler(train_idx, SEEDS)   # one stream per seed, shared by both routings
noise = numpy.random.default_rng(2026)
kl_sums = {routing: 0.0 for routing in trained}
history = {routing: [] for routing in trained}  # (step, KL per group (M, G)) per LOG_EVERY
rec_last = {}                                    # each routing's L_rec,2 (M,) of the last step

start = time.perf_counter()
for step in range(1, STEPS + 1):
    xb = dataset.images(sampler.next(BATCH), xp, numpy.float32)           # (M, B, P)
    eb = xp.asarray(noise.standard_normal((M, BATCH, Z)), dtype=numpy.float32)   # (M, B, Z)
    for routing, m in trained.items():
        losses, grads = m.loss_and_grads(xb, eb)
        opts[routing].step(grads)
        kl_dim = to_numpy(losses["kl_dim"])                                # (M, Z)
        kl_sums[routing] = kl_sums[routing] + numpy.stack(
            [kl_dim[:, g].sum(axis=1) for g in m.group_slices], axis=1)   # (M, G)
        rec_last[routing] = to_numpy(losses["rec"][:, 1])                 # (M,)
    if step % LOG_EVERY == 0:
        for routing in trained:
            history[routing].append((step, kl_sums[routing] / LOG_EVERY))
            kl_sums[routing] = 0.0
    if step % (STEPS // 4) == 0:
        print(f"step {step:5d}  {time.perf_counter() - start:6.1f} s  L_rec,2 of the batch: "
              + "  ".join(f"{routing} " + " ".join(f"{v:.1f}" for v in rec_last[routing])
                          for routing in trained))
print(f"{STEPS} steps of {2 * M} models in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# Each group's KL over the steps (nats per image, averaged over every `LOG_EVERY` steps'
# batches), then on 1,000 test images at the end. Under the routing, z_1's outputs answer to
# one reconstruction term (L_rec,1) against their KL; without it, to two (L_rec,1 and
# L_rec,2). Counting terms, the routing acts like the plain gradient with z_1's KL weighted
# twice, so where it acts, z_1 carries less under it (docs/routing.md measures how much).

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
for routing, colour in (("paper", "C0"), ("none", "C1")):
    steps = [s for s, _ in history[routing]]
    kls = numpy.stack([k for _, k in history[routing]])                   # (T, M, G)
    for g, ax in enumerate(axes):
        for m_, seed in enumerate(SEEDS):
            ax.plot(steps, kls[:, m_, g], "-:"[m_ % 2], color=colour, lw=1.2,
                    label=f"routing {routing!r}, seed {seed}")
        ax.set_title(f"KL of group {g + 1} (z_{g + 1})")
        ax.set_xlabel("step")
axes[0].set_ylabel("nats per image")
axes[1].legend(fontsize=8)
plt.show()

print("on 1,000 test images:")
for routing, m in trained.items():
    for m_, (seed, kls) in enumerate(zip(SEEDS, group_kl(m))):
        print(f"  routing {routing!r:7} seed {seed}: KL of z_1 {kls[0]:5.2f}, z_2 {kls[1]:5.2f}")

# %% [markdown]
# What the run stored with this notebook shows (2,000 steps): z_1 carries most of what each
# model encodes, and both routed seeds carry less in z_1 than both unrouted ones (11.0 and
# 11.1 against 12.5 and 12.9 nats on the test images). z_2 stays closed in all four (0.06 to
# 0.42 nats). That is one short run: on another machine the same cell rounds differently,
# and a z_2 near the line may open in one of the models. Your own numbers are the ones
# printed above.
#
# ## 7. Your models next to the trained ones
#
# Seed 0 of each of your routings beside the three trained models. First the reconstructions
# from each group prefix, as in section 1.

# %%
look = committed + [(f"yours, routing {routing!r}", m) for routing, m in trained.items()]
rows, names = [to_numpy(dataset.images(pick, xp, numpy.float32))], ["test images"]
for name, m in look:
    recon = prefix_reconstructions(m, dataset.images(
        numpy.broadcast_to(pick, (m.models, len(pick))), xp, numpy.float32))  # (G, M, N, P)
    rows += [recon[0, 0], recon[1, 0]]
    names += [f"{name}: from z_1", f"{name}: from z_1, z_2"]
mosaic(rows, names, "Reconstructions from each group prefix: trained, and yours (seed 0)")

# %% [markdown]
# ### Traversals
#
# One test image's code, each latent swept over -2.5 .. 2.5 prior standard deviations while
# the others stay at their means; rows in latent order, so the first three rows are z_1.
# Each row names its latent, its group and its KL for this image. A latent whose KL is near 0
# carries nothing: its row does not change.

# %%
x0 = pick[6:7]                                                            # a heart
for name, m in look:
    xs = dataset.images(numpy.broadcast_to(x0, (m.models, 1)), xp, numpy.float32)   # (M, 1, P)
    kl_dim = to_numpy(kl_normal_forward(*m.encode(xs))[0])[0, 0]            # (Z,)
    order = numpy.broadcast_to(numpy.arange(m.latent), (m.models, m.latent))
    trav = traversal_images(m, xs, order)[0]                                # (Z, S, P)
    group_of = numpy.repeat(numpy.arange(len(m.groups)), m.groups)          # (Z,)
    mosaic(trav, [f"z{d + 1} of z_{group_of[d] + 1}: KL {kl_dim[d]:.2f}" for d in range(m.latent)],
           f"{name}: each latent swept over {TRAVERSAL[0]} .. {TRAVERSAL[-1]}")

# %% [markdown]
# ### New images, drawn from the prior
#
# A VAE is also a generator: draw a code from the prior N(0, I), the distribution the KL pulls
# the codes towards, and decode it. Each row: ten codes decoded by one model (the same ten
# codes for every model). Most draws decode to one sprite; some decode to a faint blur or
# to two sprites at once, where the draw lands in a part of the prior that the encoder's
# codes seldom reach.

# %%
z_prior = numpy.random.default_rng(7).standard_normal((1, 10, 6))            # (1, S, Z)
rows, names = [], []
for name, m in look:
    z = xp.asarray(numpy.broadcast_to(z_prior, (m.models, 10, 6)), dtype=m.dtype)  # (M, S, Z)
    logits = to_numpy(m.decode(z)[0]).astype(numpy.float64)                 # (S, P)
    rows.append(1 / (1 + numpy.exp(-logits)))
    names.append(name)
mosaic(rows, names, "Ten codes drawn from N(0, I), decoded by each model")

# %% [markdown]
# ### Where each L_rec,i's gradient goes, in each model
#
# The drawing of section 2 with numbers: on 64 test images, the gradient norm each L_rec,i
# sends into each group's mu and logvar. Under the paper's routing the arrow L_rec,2 -> z_1
# is crossed out (exactly zero reaches z_1) and labelled with what it holds back; without
# the routing it passes.

# %%
fig, axes = plt.subplots(2, 3, figsize=(14, 7.2))
for ax, (name, m) in zip(axes.flat, look):
    xs = dataset.images(numpy.broadcast_to(test_idx[:64], (m.models, 64)), xp, numpy.float32)
    eb = xp.asarray(numpy.random.default_rng(0).standard_normal((m.models, 64, m.latent)),
                    dtype=numpy.float32)                                   # (M, B, Z)
    sent, reached = gradient_flow(m, xs, eb)                                # (M, G, G) x2
    draw_gradient_flow(ax, sent[0], reached[0], name)
for ax in axes.flat[len(look):]:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 8. What you have seen
#
# - A Grouped-VAE encodes an image into groups of latents, z_1 then z_2, and decodes every
#   prefix [z_1 .. z_i | 0] with one decoder; each decoding has its loss L_rec,i.
# - The routing is one function, `route`: of what decoding i sends back to the groups it saw,
#   only z_i's part reaches the encoder. With autograd it is a `.detach()` on the earlier
#   groups.
# - The routed gradient is not the gradient of the total loss but of a surrogate, and the
#   finite-difference check says so exactly; a one-line slip in the routing fails it.
# - Trained models carry most of what they encode in z_1. Of the three committed models one
#   has z_2 open, and its z_2 makes the ellipses long; docs/routing.md counts how often a
#   z_2 opens over many seeds, with and without the routing.
# - In each routed and unrouted pair here, the routed model's z_1 carries less: under the
#   routing only L_rec,1 pulls on z_1's code, without it L_rec,1 and L_rec,2.
# - Traversals show what each latent does; a latent with a KL near 0 does nothing.
# - Decoding codes drawn from the prior N(0, I) makes new images.
#
# Next: docs/walkthrough.md derives every gradient of one step; docs/routing.md measures what
# the routing does over many seeds; `python train.py --help` trains your own runs, and
# `python evaluate.py` scores them.
