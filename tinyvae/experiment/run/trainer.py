"""One training step and its state: model, optimizer, data streams and noise streams, one step at a
time, the log rows' running means, and all of it saved and restored for an exact resume.

Shapes: M models trained in lockstep, B batch, P pixels, Z latent, G groups.
"""
import numpy

from ...backend import to_numpy
from ...data.dataset import BatchSampler, test_split
from ...optim_fast import FastAdam
from .checkpoint import load_params
from .configuration import build_model
from .multiplier import multiplier_sums

# A seed's noise streams, numpy.random.default_rng((seed, stream)): the noise eps of every step,
# and the --explain report's own noise. Its other streams: vae.INIT_STREAM (0) and
# data.dataset.SAMPLER_STREAM (3).
NOISE_STREAM, EXPLAIN_STREAM = 1, 2


class Trainer:
    """Everything one training loop holds: model, optimizer, data streams, noise streams."""

    def __init__(self, config, xp, dataset):
        self.config, self.xp, self.dataset = config, xp, dataset
        self.model = build_model(config, xp)
        self.opt = FastAdam(self.model.params, lr=config["lr"])       # optim.Adam, faster
        test_idx, train_idx = test_split(dataset.n_images)
        self.test_idx = test_idx
        self.sampler = BatchSampler(train_idx, config["model_seeds"])
        self.noise = [numpy.random.default_rng((s, NOISE_STREAM)) for s in config["model_seeds"]]
        self.step = 0
        self.labels = [f"{config['model']} β={b:g} seed={s}" for b, s in
                       zip(config["model_betas"], config["model_seeds"])]
        self._reset_sums()

    def _reset_sums(self):
        self.sums, self.count = None, 0

    def batch(self):
        B, Z = self.config["batch_size"], self.config["latent"]
        idx = self.sampler.next(B)                                         # (M, B)
        x = self.dataset.images(idx, self.xp, self.model.dtype)            # (M, B, P)
        eps = numpy.stack([g.standard_normal((B, Z)) for g in self.noise])  # (M, B, Z)
        return x, self.xp.asarray(eps, dtype=self.model.dtype)

    def explain_batch(self):
        """The routing report's batch (train.py --explain): the first test images and a noise
        stream of their own, so that explaining leaves training unchanged."""
        B, M, Z = self.config["batch_size"], self.model.models, self.config["latent"]
        x = self.dataset.images(numpy.broadcast_to(self.test_idx[:B], (M, B)), self.xp,
                                self.model.dtype)                          # (M, B, P)
        eps = numpy.random.default_rng((self.config["seed"], EXPLAIN_STREAM)).standard_normal(
            (M, B, Z))                                                     # (M, B, Z)
        return x, self.xp.asarray(eps, dtype=self.model.dtype)

    def train_step(self):
        """One step; returns None, or the name of the first non-finite term and the images."""
        x, eps = self.batch()
        losses, cache = self.model.forward(x, eps)
        grads, _, _, dzin = self.model.backward(cache, reuse_buffers=True)   # Adam takes them now
        bad = self._first_nonfinite(losses, grads)
        if bad:
            return bad, x
        self.opt.step(grads)
        self.step += 1
        keep = {k: losses[k] for k in ("total", "rec", "kl", "kl_dim")}
        if len(self.model.groups) > 1:
            keep.update(self._routing_norms(dzin))
            keep.update(multiplier_sums(dzin, self.model.group_slices, self.xp))
        self.sums = keep if self.sums is None else {k: self.sums[k] + v for k, v in keep.items()}
        self.count += 1
        return None

    def _routing_norms(self, dzin):
        """The routing at work: for each decoding i > 1, the norm over the batch of the
        gradient L_rec,i sends to the earlier groups z_1 .. z_(i-1) (held back under the
        paper's routing, passed on under "none": the same quantity under both) and to its own
        group z_i. dzin (M, G, B, Z) -> two (M, G-1) arrays."""
        xp = self.xp
        slices = self.model.group_slices[1:]
        earlier = [xp.sqrt((dzin[:, i + 1, :, :g.start] ** 2).sum(axis=(1, 2)))
                   for i, g in enumerate(slices)]                          # (G-1) x (M,)
        own = [xp.sqrt((dzin[:, i + 1, :, g] ** 2).sum(axis=(1, 2)))
               for i, g in enumerate(slices)]                              # (G-1) x (M,)
        return {"to_earlier": xp.stack(earlier, axis=1), "to_own": xp.stack(own, axis=1)}

    def _first_nonfinite(self, losses, grads):
        """The first non-finite loss term, or bias gradient, of this step (None if all finite).
        The biases' gradients are sums of the layers' output gradients, so a non-finite value
        anywhere upstream shows there; checking them costs almost nothing."""
        xp = self.xp
        checks = [("total loss", losses["total"]), ("KL", losses["kl"])]
        checks += [(f"L_rec,{i + 1}", losses["rec"][:, i]) for i in range(len(self.model.groups))]
        checks += [(f"gradient of {k}", g) for k, g in grads.items() if k.endswith(".b")]
        flags = to_numpy(xp.stack([xp.isfinite(v).all() for _, v in checks]))
        for (name, _), ok in zip(checks, flags):
            if not ok:
                return name
        return None

    def log_rows(self):
        """Means since the last log row: one dict per model."""
        sums = {k: to_numpy(v) / self.count for k, v in self.sums.items()}
        rows = []
        for m in range(self.model.models):
            row = {"step": self.step, "model": m, "beta": self.config["model_betas"][m],
                   "seed": self.config["model_seeds"][m], "total": sums["total"][m]}
            row.update({f"rec_{i + 1}": r for i, r in enumerate(sums["rec"][m])})
            row["kl"] = sums["kl"][m]
            row.update({f"kl_z{d + 1}": k for d, k in enumerate(sums["kl_dim"][m])})
            for i in range(sums["to_own"].shape[1] if "to_own" in sums else 0):
                row[f"grad_rec_{i + 2}_to_earlier"] = sums["to_earlier"][m, i]
                row[f"grad_rec_{i + 2}_to_own"] = sums["to_own"][m, i]
            for g in range(sums["c_dot"].shape[1] if "c_dot" in sums else 0):
                row[f"c_{g + 1}"] = sums["c_dot"][m, g] / sums["c_norm"][m, g]
            rows.append(row)
        self._reset_sums()
        return rows

    def state(self):
        # The running sums of a log interval cut by a checkpoint travel with it, so a resumed
        # run writes the same log rows as one that never stopped.
        sums = {k: to_numpy(v).tolist() for k, v in (self.sums or {}).items()}
        return {"step": self.step, "sampler": self.sampler.state(),
                "noise": [g.bit_generator.state for g in self.noise],
                "log_sums": sums, "log_count": self.count, "config": self.config}

    def restore(self, arrays, state, where):
        load_params(self.model, arrays, where)
        self.opt.load_state({"t": state["adam_t"],
                             "m": {k: arrays["adam_m/" + k] for k in self.model.params},
                             "v": {k: arrays["adam_v/" + k] for k in self.model.params}})
        self.sampler.set_state(state["sampler"])
        for g, s in zip(self.noise, state["noise"]):
            g.bit_generator.state = s
        self.step = int(state["step"])
        self.count = int(state["log_count"])
        self.sums = {k: self.xp.asarray(v, dtype=self.model.dtype)
                     for k, v in state["log_sums"].items()} or None
        if self.sums is not None and len(self.model.groups) > 1:
            # A checkpoint from before the routing norms (or the multiplier's sums) were
            # logged: their sums over the interval it cut are unknown, so that one log row
            # says nan for them.
            M, G = self.model.models, len(self.model.groups)
            for key, width in (("to_earlier", G - 1), ("to_own", G - 1), ("c_dot", G),
                               ("c_norm", G)):
                if key not in self.sums:
                    self.sums[key] = self.xp.full((M, width), numpy.nan,
                                                  dtype=self.model.dtype)  # (M, G-1) or (M, G)
