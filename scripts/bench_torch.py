"""The same Grouped-VAE training step in PyTorch (CPU): timed against tinyvae, and used as an
autograd reference for tinyvae's hand-written, routed gradients.

    /tmp/torchvenv/bin/python scripts/bench_torch.py [--steps N] [--check]

Run from the repository root, with a Python that has torch (not a tinyvae requirement):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 \\
        numpy scikit-learn matplotlib tqdm pillow

The torch model is built from a tinyvae GroupedVAE and starts from its very weights; its
forward is tinyvae's (paper eq. 8-11) written with torch operations, and the routing is one
`.detach()`: decoding i sees [z_1 .. z_(i-1) detached | z_i | 0], so z_1 .. z_(i-1) enter
L_rec,i as constants, which is what tinyvae's backward does by keeping group i's columns only.

Default: for β-VAE (groups 6) and Grouped-VAE (groups 3,3), batch 64, float32, the median ms
of a training step (forward, backward, Adam lr 1e-4) over --steps rounds after 3 warm-up
steps, for torch's default Adam, then its foreach=True and fused=True Adam (whichever is not
the default; fused is one compiled kernel over each parameter), and tinyvae's own step, all
in this process; then tinyvae's floor (the step's matmuls alone,
`tinyvae.experiment.tools.bench.make_floor`) and each step's floor ratio. Each round runs every
step and the floor one after another, so all of them see the same machine load.

--check: in float64, one batch, groups (3,3), (2,2,2) and (6,): every gradient of tinyvae's
`loss_and_grads` against torch autograd's, and the losses. Prints the largest relative error
per configuration and exits 1 if one exceeds 1e-9. As a negative control it also shows that
the ordinary gradient (no detach) is *not* what tinyvae computes when there are two groups or
more, so the comparison can tell routed gradients from plain ones.

Shapes: B batch, P pixels (4096), Z latent (6), G groups, I fan-in, O fan-out.
"""
import argparse
import os
import sys
import time

# tinyvae before NumPy, so that its OPENBLAS_THREAD_TIMEOUT reaches OpenBLAS (see
# tinyvae/__init__.py) as in train.py
import tinyvae  # noqa: E402
from tinyvae.experiment.tools.bench import BATCH, CONFIGS, make_floor  # noqa: E402
from tinyvae.optim_fast import FastAdam, usable_cpus  # noqa: E402
from tinyvae.vae import GroupedVAE  # noqa: E402

import numpy  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print(f"error: scripts/bench_torch.py needs PyTorch, which {sys.executable} cannot import; "
          "install it with: pip install torch==2.13.0", file=sys.stderr)
    sys.exit(2)

CHECK_CONFIGS = ((3, 3), (2, 2, 2), (6,))
CHECK_TOLERANCE = 1e-9


class TorchVAE:
    """tinyvae's GroupedVAE (one model) in torch: the same layers, the same loss, the same
    initial weights, with the routing done by autograd through `.detach()`."""

    def __init__(self, model, routed=True):
        if model.models != 1:
            raise ValueError("TorchVAE mirrors one tinyvae model (models=1)")
        self.groups, self.latent, self.routed = model.groups, model.latent, routed
        self.group_slices = model.group_slices
        self.beta = float(model.beta[0])
        # tinyvae keeps a models axis in front: W (1, I, O) -> (I, O), b (1, O) -> (O,).
        # Copies, so that training one side never moves the other's weights.
        self.params = {name: torch.tensor(numpy.array(p[0]), requires_grad=True)
                       for name, p in model.params.items()}
        self.n_encoder = len(model.encoder_sizes) - 1
        self.n_decoder = len(model.decoder_sizes) - 1

    def _mlp(self, part, h, n, act):
        """x @ W + b per layer, `act` between layers, none after the last (as tinyvae)."""
        for k in range(n):
            W, b = self.params[f"{part}.{k}.W"], self.params[f"{part}.{k}.b"]     # (I, O), (O,)
            h = torch.addmm(b, h, W)                                              # (N, O)
            if k < n - 1:
                h = act(h)
        return h

    def prefix_inputs(self, z):
        """Eq. 8 with the routing: decoding i sees [z_1 .. z_(i-1) | z_i | 0], the earlier
        groups detached, so L_rec,i reaches the encoder only through z_i. Stacked along the
        batch, group-major, as tinyvae stacks them: (G B, Z)."""
        B, Z = z.shape
        rows = []
        for g in self.group_slices:
            before = z[:, :g.start].detach() if self.routed else z[:, :g.start]   # (B, start)
            pad = z.new_zeros((B, Z - g.stop))                                    # (B, Z - stop)
            rows.append(torch.cat([before, z[:, g], pad], dim=1))                 # (B, Z)
        return torch.cat(rows, dim=0)                                             # (G B, Z)

    def loss(self, x, eps):
        """x (B, P) in {0, 1}, eps (B, Z); returns (total, rec (G,), kl), per-image means."""
        B, Z, G = x.shape[0], self.latent, len(self.groups)
        h = self._mlp("encoder", x, self.n_encoder, torch.relu)                  # (B, 2Z)
        mu, logvar = h[:, :Z], h[:, Z:]                                           # (B, Z) x2
        z = mu + torch.exp(0.5 * logvar) * eps                                    # (B, Z)
        logits = self._mlp("decoder", self.prefix_inputs(z), self.n_decoder,
                           torch.tanh)                                            # (G B, P)
        logits = logits.reshape(G, B, -1)                                         # (G, B, P)
        # Bernoulli NLL from logits, summed over pixels: the one fused torch kernel.
        nll = F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none").sum(dim=2)             # (G, B)
        rec = nll.mean(dim=1)                                                     # (G,)  eq. 9
        kl = (0.5 * (mu * mu + torch.exp(logvar) - 1 - logvar)).sum(dim=1).mean()  # () eq. 5
        return rec.sum() + self.beta * kl, rec, kl                                # eq. 10-11


# ---- --check: tinyvae's gradients against autograd ------------------------------------------

def relative_error(a, b):
    """max |a - b| over max |b| (b the torch reference): the error on the scale of the whole
    array, so that entries near zero (dead ReLUs, tiny biases) do not turn rounding into a
    large ratio. An all-zero reference gives max |a| itself."""
    scale = numpy.max(numpy.abs(b))
    diff = numpy.max(numpy.abs(numpy.asarray(a) - b))
    return float(diff / scale if scale > 0 else diff)


def check_config(groups, x, eps):
    """(worst relative error over losses and gradients, its name, the negative control's
    error or None): tinyvae and torch in float64 from the same weights, one batch."""
    model = GroupedVAE(groups=groups, models=1, seed=0, dtype=numpy.float64)
    losses, grads = model.loss_and_grads(x, eps)           # x (1, B, P), eps (1, B, Z)
    xt, et = torch.from_numpy(x[0]), torch.from_numpy(eps[0])                # (B, P), (B, Z)
    errors = {}
    controls = []
    for routed in (True, False) if len(groups) > 1 else (True,):
        tv = TorchVAE(model, routed=routed)
        total, rec, kl = tv.loss(xt, et)
        total.backward()
        if routed:
            errors["loss total"] = relative_error(losses["total"][0], total.item())
            errors["loss rec"] = relative_error(losses["rec"][0], rec.detach().numpy())
            errors["loss kl"] = relative_error(losses["kl"][0], kl.item())
        for name, p in tv.params.items():
            err = relative_error(grads[name][0], p.grad.numpy())
            if routed:
                errors[name] = err
            else:
                controls.append(err)
    worst = max(errors, key=errors.get)
    return errors[worst], worst, (max(controls) if controls else None)


def run_check():
    rng = numpy.random.default_rng(0)
    x = (rng.random((1, BATCH, 64 * 64)) < 0.5).astype(numpy.float64)    # (1, B, P) in {0, 1}
    failed = False
    print(f"check: tinyvae's routed gradients against torch {torch.__version__} autograd, "
          f"float64, batch {BATCH}, tolerance {CHECK_TOLERANCE:g} (max |diff| / max |torch|, "
          "per array)")
    for groups in CHECK_CONFIGS:
        eps = rng.standard_normal((1, BATCH, sum(groups)))                 # (1, B, Z)
        err, where, control = check_config(groups, x, eps)
        ok = err <= CHECK_TOLERANCE
        line = (f"  groups {str(groups):10s} max relative error {err:.2e} ({where}) "
                f"{'ok' if ok else 'FAIL'}")
        if control is not None:
            # Without the detach torch computes the plain gradient of the total loss; it must
            # differ from tinyvae's, or the check above could not tell routing from none.
            seen = control > 1e-6
            line += (f"; without the detach: {control:.2e} "
                     f"{'(differs, as it must)' if seen else 'FAIL: routing not visible'}")
            ok = ok and seen
        print(line)
        failed |= not ok
    print("check " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


# ---- timing ---------------------------------------------------------------------------------

def torch_step(tv, opt, xt, et, marks):
    """One torch training step; appends the time after forward, backward and Adam."""
    opt.zero_grad()                                        # set_to_none: nothing to zero
    total = tv.loss(xt, et)[0]                             # ()
    marks.append(time.perf_counter())
    total.backward()
    marks.append(time.perf_counter())
    opt.step()
    marks.append(time.perf_counter())


def tinyvae_step(model, opt, x, eps, marks):
    """One tinyvae training step, as train.py runs it (the data excluded), timed by part."""
    _, cache = model.forward(x, eps)
    marks.append(time.perf_counter())
    grads = model.backward(cache, reuse_buffers=True)[0]
    marks.append(time.perf_counter())
    opt.step(grads)
    marks.append(time.perf_counter())


def default_adam():
    """Which implementation torch.optim.Adam() picks for CPU tensors: 'for-loop', 'foreach' or
    'fused' (a private helper of torch's; 'default' if it moved)."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach
        fused, foreach = _default_to_fused_or_foreach(
            [torch.zeros(1, requires_grad=True)], differentiable=False, use_fused=False)
    except (ImportError, TypeError):
        return "default"
    return "fused" if fused else "foreach" if foreach else "for-loop"


def bench_config(groups, steps, warmup, default_kind):
    """{implementation: (steps, 4) ms of [step, forward, backward, Adam]}, floor ms (steps,)
    and the step's flops, for one configuration."""
    model = GroupedVAE(groups=groups, models=1, seed=0, dtype=numpy.float32)
    rng = numpy.random.default_rng(1)
    # One batch, made before any timing: the step alone is measured, not the data.
    x = (rng.random((1, BATCH, model.pixels)) < 0.5).astype(numpy.float32)   # (1, B, P)
    eps = rng.standard_normal((1, BATCH, model.latent)).astype(numpy.float32)  # (1, B, Z)
    xt, et = torch.from_numpy(x[0]), torch.from_numpy(eps[0])                 # (B, P), (B, Z)
    runs = {}
    kinds = [(f"torch {default_kind}", {})] + [
        (f"torch {kind}", {kind: True}) for kind in ("foreach", "fused") if kind != default_kind]
    for label, kwargs in kinds:
        tv = TorchVAE(model)
        opt = torch.optim.Adam(list(tv.params.values()), lr=1e-4, **kwargs)
        runs[label] = lambda marks, tv=tv, opt=opt: torch_step(tv, opt, xt, et, marks)
    # tinyvae trains its own copy last: TorchVAE copied the initial weights already.
    opt = FastAdam(model.params, lr=1e-4)
    runs["tinyvae"] = lambda marks: tinyvae_step(model, opt, x, eps, marks)
    floor, flops = make_floor(model, BATCH)

    def timed(fn):
        marks = [time.perf_counter()]
        fn(marks)
        parts = numpy.diff(marks) * 1e3                                   # (3,) ms
        return [parts.sum(), *parts]                                      # step and its parts

    for _ in range(warmup):
        for fn in runs.values():
            timed(fn)
        floor()
    times = {label: [] for label in runs}
    floors = []
    for _ in range(steps):
        for label, fn in runs.items():
            times[label].append(timed(fn))
        start = time.perf_counter()
        floor()
        floors.append(1e3 * (time.perf_counter() - start))
    return {k: numpy.asarray(v) for k, v in times.items()}, numpy.asarray(floors), flops


def run_bench(steps, warmup=3):
    kind = default_adam()
    load = ", load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    print(f"bench_torch: torch {torch.__version__} on {torch.get_num_threads()} thread(s) "
          f"(torch.optim.Adam default on CPU: {kind}), numpy {numpy.__version__}; "
          f"{usable_cpus()} CPUs{load}; B = {BATCH}, float32, median of {steps} steps after "
          f"{warmup} warm-up")
    print(f"{'ms per step':28s} {'step':>7s} {'(p90)':>7s} {'forward':>8s} {'backward':>8s} "
          f"{'Adam':>6s} | {'GFLOP':>6s} {'floor':>7s} {'floor ratio':>11s}")
    for name, groups in CONFIGS:
        times, floors, flops = bench_config(groups, steps, warmup, kind)
        floor_ms = numpy.median(floors)
        for label, t in times.items():                                   # t (steps, 4)
            step, fwd, bwd, adam = numpy.median(t, axis=0)
            p90 = numpy.percentile(t[:, 0], 90)
            print(f"{name:13s} {label:14s} {step:7.2f} {p90:7.2f} {fwd:8.2f} {bwd:8.2f} "
                  f"{adam:6.2f} | {flops / 1e9:6.2f} {floor_ms:7.2f} {step / floor_ms:11.2f}")
    print("floor: tinyvae's matmuls alone on NumPy (tinyvae.experiment.tools.bench.make_floor), timed in "
          "each round right after the steps; torch's forward includes zero_grad")


def main(argv=None):
    p = argparse.ArgumentParser(prog="scripts/bench_torch.py",
                                description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20, help="timed rounds (each: every step, "
                   "then the floor)")
    p.add_argument("--check", action="store_true", help="compare tinyvae's gradients with "
                   "torch autograd in float64 instead of timing")
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error(f"--steps must be positive, got {a.steps}")
    if a.check:
        return run_check()
    run_bench(a.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
