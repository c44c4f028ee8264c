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
# # tinyvae hands-on: the Grouped-VAE's routing, one step and a few minutes of training
#
# Run the cells top to bottom. You will build a small Grouped-VAE (groups (3, 3): z_1 is
# latents 1-3, z_2 latents 4-6), take one training step and see its routed backward pass
# (L_rec,i reaches the encoder only through group i), read the routing report, check the
# gradients against finite differences, train a routed and an unrouted model side by side for
# a few minutes, and look at what they learned: reconstructions from each group prefix,
# traversals labelled by group, each group's KL over the steps, and where each L_rec,i's
# gradient goes.
#
# **Where to run it.** In the repository, after the README's set-up, with any notebook front
# end: `pip install jupyterlab` if you have none, then `jupyter lab notebooks/handson.ipynb`
# from the repository root (the first cells take seconds, the training a few minutes). On
# Colab, pick a GPU runtime, get the repository into the session (clone or upload it), `%cd`
# into it and `%pip install -e ".[gpu]"` (CuPy for CUDA 12): the same cells then run on the
# GPU.
#
# **This file has a twin.** `notebooks/handson.ipynb` is the notebook, stored without outputs;
# `notebooks/handson.py` is the same cells as plain text (jupytext's percent format), which is
# what a diff shows. After editing either, `jupytext --sync notebooks/handson.ipynb` updates
# the other. `tests/test_notebook.py` checks that the two hold the same cells and runs the
# notebook (on CuPy where it can run, as you would, else on NumPy) with
# `TINYVAE_NOTEBOOK_QUICK=1`, which trains for a few dozen steps instead of thousands (the
# cell that trains says where).

# %%
import glob
import inspect
import os
import time

import matplotlib.pyplot as plt
import numpy

from tinyvae import Adam, BackendError, GroupedVAE, get_xp, to_numpy
from tinyvae.data.dataset import BatchSampler, open_dataset, test_split
from tinyvae.experiment.scoring.evaluate_models import encode_test_set
from tinyvae.experiment.run.training_figures import TRAVERSAL, prefix_reconstructions, traversal_images
from tinyvae.routing_report import draw_gradient_flow, gradient_flow
from tinyvae.experiment import load_run
from tinyvae.losses import kl_normal_forward
from tinyvae.routing_report import routing_report

# tinyvae's figure module draws to files only; this puts the pictures back in the notebook.
# %matplotlib inline

try:
    xp = get_xp(gpu=True)                  # CuPy, where a CUDA device and CuPy are present
except BackendError:
    xp = numpy                             # the same cells, on the CPU
print("array module:", xp.__name__)
QUICK = os.environ.get("TINYVAE_NOTEBOOK_QUICK") == "1"    # the tests' short setting

# %% [markdown]
# ## 1. A small Grouped-VAE and a batch
#
# The paper's networks are 1200 wide; these are 128 wide (encoder 4096-128-128-12, decoder
# 6-128-128-128-4096), so that a laptop CPU trains them in minutes. Every array carries a
# models axis M first: here M = 1. The images are dSprites, rendered on the fly.

# %%
WIDTH = 128
model = GroupedVAE(groups=(3, 3), beta=1.0, seed=0, xp=xp,
                   encoder_hidden=(WIDTH, WIDTH), decoder_hidden=(WIDTH, WIDTH, WIDTH))
for name, p in model.params.items():
    print(f"{name:12} {p.shape}")
print("parameters:", sum(p.size for p in model.params.values()))

dataset = open_dataset()
test_idx, train_idx = test_split()         # the fixed 10,000 test images, and the rest
x = dataset.images(test_idx[None, :8], xp, numpy.float32)                  # (M, B, P)
eps = xp.asarray(numpy.random.default_rng(0).standard_normal((1, 8, 6)), dtype=numpy.float32)
print("x", x.shape, " eps", eps.shape)

# %% [markdown]
# ## 2. One step, and its routed backward
#
# `forward` gives the losses: L_rec,1 decodes from [z_1 | 0], L_rec,2 from [z_1 | z_2]; KL is
# over all six latents. `backward` is the forward read upside down; the routing is these
# lines of it:

# %%
source = inspect.getsource(GroupedVAE.backward).splitlines()
first = next(k for k, line in enumerate(source) if "dz = xp.zeros" in line)
print("\n".join(line[4:] for line in source[first:first + 6]))

# %%
losses, cache = model.forward(x, eps)
grads, dmu, dlogvar, dzin = model.backward(cache)
rec, kl = to_numpy(losses["rec"])[0], to_numpy(losses["kl"])[0]            # (G,), scalar
print("L_rec,1 %.1f  L_rec,2 %.1f  KL %.4f" % (*rec, kl))
print("gradients:", len(grads), "arrays, shaped like the parameters")

# %% [markdown]
# Follow L_rec,2 alone (`rec_weights=[0, 1]`, no KL). Decoding 2 sends a gradient back to
# all six latents it saw (`dzin`), but under the paper's routing only z_2's part reaches the
# encoder: what reaches z_1's mu is exactly zero. A model with `routing="none"` and the same
# seed (so the same weights) passes it on.

# %%
def show(a):
    return " ".join(f"{v:+.4f}" if v else "      0" for v in to_numpy(a).tolist())

_, dmu2, _, dzin2 = model.backward(cache, rec_weights=[0, 1], kl_weight=False)
print("decoding 2 sends to [z_1 | z_2]:", show(dzin2[0, 1, 0]))
print("routing 'paper', into mu:       ", show(dmu2[0, 0]))

plain = GroupedVAE(groups=(3, 3), beta=1.0, seed=0, xp=xp, routing="none",
                   encoder_hidden=(WIDTH, WIDTH), decoder_hidden=(WIDTH, WIDTH, WIDTH))
_, plain_cache = plain.forward(x, eps)
_, dmu2_plain, _, _ = plain.backward(plain_cache, rec_weights=[0, 1], kl_weight=False)
print("routing 'none', into mu:        ", show(dmu2_plain[0, 0]))
print("z_1's columns exactly zero under the routing:", bool(xp.all(dmu2[..., :3] == 0)))

# %% [markdown]
# ## 3. The routing report
#
# The same for every loss term at once: the gradient norm each term sends into each group's
# mu and logvar and into each layer. `0` means exactly zero; `blocked` is what L_rec,i would
# have sent to the earlier groups without the routing (`train.py --explain` prints this).

# %%
print(routing_report(model, x, eps)[3])

# %% [markdown]
# ## 4. A gradient check
#
# Finite differences in float64 on a tiny model (7 pixels, hidden layers of 6, 5 and 5, 4, 6,
# groups (2, 2)), always on the CPU. With `routing="none"` every gradient is the plain
# gradient of the total loss. With the paper's routing the encoder's gradients are not; they
# are the gradients of the surrogate in which decoding i sees z_1 .. z_(i-1) as constants
# (docs/walkthrough.md, section 3).

# %%
from tinyvae.gradcheck import GradientMismatch, check_gradients
from tinyvae.losses import bernoulli_nll_forward, reparameterize_forward

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
    print("routing 'paper' against the total loss:", str(err).count("encoder."),
          "encoder arrays fail, as they should")

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
# ## 5. Routed and unrouted, side by side
#
# Two seeds of each routing, from the same initial weights, on the same batches and the same
# noise: the routing is the only difference. The whole training loop is the cell below.
#
# **Width and learning rate, measured.** 128 wide and Adam's learning rate 1e-3 (the paper's
# is 1e-4 at 1200 wide). Each pair of seeds below was trained 3,000 steps at batch 64 (groups
# (3, 3), beta 1) with `python train.py --groups 3,3 --encoder-hidden 128,128
# --decoder-hidden 128,128,128 --lr LR --seeds 2 --steps 3000 --log-every 100 --routing
# ROUTING`; from the last row of each log.csv (means over steps 2,901-3,000), L_rec,2 in nats
# per image and the KL of z_1 / z_2, for seeds 0 and 1:
#
# | lr | L_rec,2 routed | L_rec,2 unrouted | KL z_1 / z_2 routed | KL z_1 / z_2 unrouted |
# | --- | --- | --- | --- | --- |
# | 1e-4 | 550.6, 554.7 | 508.4, 497.0 | 3.5 / 0.45, 3.5 / 0.33 | 8.5 / 0.58, 8.7 / 0.35 |
# | 3e-4 | 168.8, 165.7 | 159.4, 175.2 | 10.2 / 0.20, 10.9 / 0.44 | 12.9 / 1.04, 12.2 / 0.94 |
# | 1e-3 | 111.8, 112.4 | 110.6, 115.2 | 11.0 / 0.06, 11.2 / 0.05 | 12.4 / 0.04, 12.4 / 0.06 |
# | 3e-3 | 112.1, 119.9 | 110.2, 112.3 | 11.0 / 0.08, 12.9 / 1.17 | 12.8 / 0.05, 13.0 / 0.08 |
#
# At 1e-4 and 3e-4 the models are still far from where 1e-3 gets them in the same steps; 3e-3
# does no better than 1e-3 and differs more between seeds. At 1e-3 both routed seeds carry
# less in z_1 than both unrouted ones (11.0 and 11.2 against 12.4 nats), the routing's
# footprint that the curves below show; z_2 stays nearly closed in all four.
#
# **Time.** The 3,000 steps of the four models below took 328 s on our 2-core machine while
# two other trainings ran on it (load average about 4); an idle machine takes less, and the
# cell prints its own time. With
# `TINYVAE_NOTEBOOK_QUICK=1` (the tests) it trains 40 steps, too few to learn anything: the
# pictures below then show untrained models.

# %%
LR, SEEDS, BATCH = 1e-3, [0, 1], 64
STEPS, LOG_EVERY = (40, 10) if QUICK else (3000, 50)
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
    if step % (STEPS // 5) == 0:
        print(f"step {step:5d}  {time.perf_counter() - start:6.1f} s  L_rec,2 of the batch: "
              + "  ".join(f"{routing} " + " ".join(f"{v:.1f}" for v in rec_last[routing])
                          for routing in trained))
print(f"{STEPS} steps of {2 * M} models in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# Each group's KL (nats per image, averaged over every `LOG_EVERY` steps' batches) for both
# routings: the KL is what a group carries. Where the routing acts, z_1 carries less under it:
# under the routing z_1's outputs answer to one reconstruction term against its KL, without it
# to two (L_rec,1 and L_rec,2). Counting terms, the routing acts like the plain gradient with
# z_1's KL weighted twice. The multiplier a run really has, c_1, is smaller where z_2 holds
# something of its own: train.py measures it over each log interval and logs it as `c_1` in
# log.csv, and docs/routing.md discusses it.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
for routing, colour in (("paper", "C0"), ("none", "C1")):
    steps = [s for s, _ in history[routing]]
    kl = numpy.stack([k for _, k in history[routing]])                    # (T, M, G)
    for g, ax in enumerate(axes):
        for m_, seed in enumerate(SEEDS):
            ax.plot(steps, kl[:, m_, g], "-:"[m_ % 2], color=colour, lw=1.2,
                    label=f"routing {routing!r}, seed {seed}")
        ax.set_title(f"KL of group {g + 1} (z_{g + 1})")
        ax.set_xlabel("step")
axes[0].set_ylabel("nats per image")
axes[1].legend(fontsize=8)
plt.show()

test_images = test_idx[numpy.linspace(0, len(test_idx) - 1, 1000).round().astype(int)]
print("on 1,000 test images (decoded from the means):")
for routing, m in trained.items():
    _, kl_dim, rec = encode_test_set(m, dataset, test_images, 500, False)  # (M, Z), (M, G)
    for m_, seed in enumerate(SEEDS):
        groups_kl = [kl_dim[m_, g].sum() for g in m.group_slices]
        print(f"  routing {routing!r:7} seed {seed}: KL per group "
              + " ".join(f"{k:5.2f}" for k in groups_kl)
              + f"   L_rec from z_1 {rec[m_, 0]:6.1f}, from z_1..z_2 {rec[m_, 1]:6.1f}")

# %% [markdown]
# ## 6. A trained model in seconds
#
# `results/models/` holds small models trained for 10,000 steps (256 wide), each a few MB;
# `load_run` loads one into a ready `GroupedVAE`. Where the repository has them, the pictures
# below show them; where it has none yet, they show the models trained above (seed 0).

# %%
ROOT = os.getcwd()
while not os.path.isfile(os.path.join(ROOT, "pyproject.toml")) and os.path.dirname(ROOT) != ROOT:
    ROOT = os.path.dirname(ROOT)
committed = sorted(glob.glob(os.path.join(ROOT, "results", "models", "*", "params.npz")))
look = []                                   # (name, label, model, which of its models)
for path in committed:
    config, m, state = load_run(os.path.dirname(path), xp)
    name = os.path.basename(os.path.dirname(path))
    look.append((name, f"{name}: routing {m.routing!r}, seed {m.seeds[0]}, "
                       f"{state['step']} steps", m, 0))
if look:
    print("COMMITTED MODELS, loaded from results/models/:")
else:
    print("No committed model in results/models/ here: showing the models trained above.")
    look = [(f"{routing!r}", f"trained above: routing {routing!r}, seed {SEEDS[0]}, "
                             f"{STEPS} steps", m, 0) for routing, m in trained.items()]
for _, label, _, _ in look:
    print(" ", label)

# %% [markdown]
# ## 7. Reconstructions from each group prefix
#
# The same test images decoded from [z_1 | 0] and from [z_1 | z_2] (the means): what the
# first group alone carries, then what the second adds.

# %%
pick = test_idx[numpy.linspace(0, len(test_idx) - 1, 8).round().astype(int)]   # (N,)
rows, names = [], []
for name, _, m, k in look:
    xs = dataset.images(numpy.broadcast_to(pick, (m.models, len(pick))), xp, numpy.float32)
    recon = prefix_reconstructions(m, xs)                                   # (G, M, N, P)
    if not rows:
        rows.append(to_numpy(xs[k]))
        names.append("test images")
    for g in range(len(m.groups)):
        rows.append(recon[g, k])
        names.append(f"{name}: from z_1" + (f"..z_{g + 1}" if g else ""))
fig, axes = plt.subplots(len(rows), len(pick), figsize=(len(pick) * 0.9, len(rows) * 0.95))
for r_, (row, name) in enumerate(zip(rows, names)):
    for c in range(len(pick)):
        axes[r_, c].imshow(row[c].reshape(64, 64), cmap="gray", vmin=0, vmax=1)
        axes[r_, c].set_xticks([])
        axes[r_, c].set_yticks([])
    axes[r_, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
plt.show()

# %% [markdown]
# ## 8. Traversals, labelled by group
#
# One test image's code, each latent swept over -2.5 .. 2.5 prior standard deviations while
# the others stay at their means; rows in latent order, so the first three rows are group 1.
# A latent with a KL near 0 carries nothing: its row does not change.

# %%
for _, label, m, k in look:
    xs = dataset.images(numpy.broadcast_to(pick[:1], (m.models, 1)), xp, numpy.float32)
    kl_dim = to_numpy(kl_normal_forward(*m.encode(xs))[0])[k, 0]            # (Z,)
    order = numpy.broadcast_to(numpy.arange(m.latent), (m.models, m.latent))
    trav = traversal_images(m, xs, order)[k]                                # (Z, S, P)
    group_of = numpy.repeat(numpy.arange(len(m.groups)), m.groups)          # (Z,)
    fig, axes = plt.subplots(m.latent, len(TRAVERSAL),
                             figsize=(len(TRAVERSAL) * 0.8, m.latent * 0.85))
    for d in range(m.latent):
        for s in range(len(TRAVERSAL)):
            axes[d, s].imshow(trav[d, s].reshape(64, 64), cmap="gray", vmin=0, vmax=1)
            axes[d, s].set_xticks([])
            axes[d, s].set_yticks([])
        axes[d, 0].set_ylabel(f"z{d + 1} · group {group_of[d] + 1}\nKL {kl_dim[d]:.2f}",
                              rotation=0, ha="right", va="center", fontsize=8,
                              color=f"C{group_of[d]}")
    fig.suptitle(label, fontsize=9)
    plt.show()

# %% [markdown]
# ## 9. Where each L_rec,i's gradient goes
#
# On one batch of test images: an arrow from each loss term to each group it decoded from,
# labelled with the gradient norm that reaches that group's mu and logvar. The paper's
# routing blocks L_rec,2 -> z_1 (crossed out: exactly zero reaches it; the label says how much
# it holds back); without the routing the same arrow passes.

# %%
for _, label, m, k in look:
    xs = dataset.images(numpy.broadcast_to(test_idx[:64], (m.models, 64)), xp, numpy.float32)
    eb = xp.asarray(numpy.random.default_rng(0).standard_normal((m.models, 64, m.latent)),
                    dtype=numpy.float32)                                   # (M, B, Z)
    sent, reached = gradient_flow(m, xs, eb)                                # (M, G, G) x2
    fig, ax = plt.subplots(figsize=(6, 3.6))
    draw_gradient_flow(ax, sent[k], reached[k], label)
    plt.show()
