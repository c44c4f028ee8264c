"""GroupedVAE: the paper's model, with its forward pass and a hand-written backward pass.

Shapes: M models trained in lockstep, B batch, P pixels (4096), H hidden (1200),
Z latent (6), G groups. Parameters: W (M, fan_in, fan_out), b (M, fan_out).

The loss (paper eq. 8-11), per model:
    L = sum_i L_rec,i + beta * KL,   L_rec,i = BCE(x, decoder([z_1 .. z_i | 0 ... 0]))
Its gradient is *routed* (paper §4, the function `route`): L_rec,i reaches the whole decoder
but the encoder only through z_i. β-VAE is the case G = 1, where the routing is the ordinary
gradient. routing="none" is the ablation: the same losses with their plain gradient, L_rec,i
reaching the encoder through z_1 .. z_i, so that what the routing adds beyond the prefix
losses shows.

An optional KL weight per group (kl_scale s, all ones in the paper) makes the KL term
beta * sum_g s_g KL_g, with KL_g the KL of group g's latents. To first order, what the
routing does to each group is such a weight (docs/routing.md).
"""
import numpy

from .backend import array_module
from .layers import (dense_backward, dense_forward, relu_backward, relu_forward,
                     tanh_backward, tanh_forward)
from .losses import (bernoulli_nll_backward, bernoulli_nll_forward, kl_normal_backward,
                     kl_normal_forward, reparameterize_backward, reparameterize_forward)

IMAGE_SIZE = 64                 # dSprites' 64 x 64 images
PIXELS = IMAGE_SIZE * IMAGE_SIZE
# A seed's stream of initial weights, numpy.random.default_rng((seed, INIT_STREAM, layer)); its
# other streams serve training: experiment/run/trainer.py's noise (1, 2), data/dataset.py's
# batches (3).
INIT_STREAM = 0
# How far back L_rec,i reaches: "paper" (§4) z_i only; "none" z_1 .. z_i, the plain gradient.
ROUTINGS = ("paper", "none")
ENCODER_HIDDEN, DECODER_HIDDEN = (1200, 1200), (1200, 1200, 1200)   # the paper's widths (§5)


class GroupedVAE:
    """M independent Grouped-VAEs (or β-VAEs, groups=(Z,)) trained in lockstep."""

    def __init__(self, groups=(3, 3), beta=1.0, models=1, seed=0, xp=numpy, dtype=numpy.float32,
                 pixels=PIXELS, encoder_hidden=ENCODER_HIDDEN, decoder_hidden=DECODER_HIDDEN,
                 routing="paper", kl_scale=None):
        groups = tuple(int(g) for g in groups)
        if not groups or min(groups) < 1:
            raise ValueError(f"groups must be positive sizes, got {groups}; e.g. groups=(3, 3)")
        if routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, got {routing!r}")
        self.routing = routing
        if models < 1:
            raise ValueError(f"models must be >= 1, got {models}")
        self.xp, self.dtype, self.models = xp, numpy.dtype(dtype), int(models)
        self.groups, self.latent, self.pixels = groups, sum(groups), int(pixels)
        ends = numpy.cumsum(groups)
        # Group i owns latent columns [start_i, end_i): the named slices the routing writes to.
        self.group_slices = [slice(int(e - g), int(e)) for g, e in zip(groups, ends)]
        self.seeds = _per_model(seed, self.models, "seed", int)
        beta = _per_model(beta, self.models, "beta", float)
        self.beta = xp.asarray(beta, dtype=self.dtype)                     # (M,)
        self.kl_scale = check_kl_scale(kl_scale, groups)
        # The scale of every latent column, its group's: (Z,). All ones multiplies by 1.0,
        # which is exact, so the paper's loss and gradients come out bit for bit.
        self.kl_dim_scale = xp.asarray(numpy.repeat(self.kl_scale, groups), dtype=self.dtype)
        self.encoder_sizes, self.decoder_sizes = layer_sizes(self.latent, encoder_hidden,
                                                             decoder_hidden, self.pixels)
        self.params = {}
        self._grads = None                 # gradient buffers for backward(reuse_buffers=True)
        for part, sizes in (("encoder", self.encoder_sizes), ("decoder", self.decoder_sizes)):
            for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                self.params[f"{part}.{k}.W"] = xp.asarray(
                    self._glorot(part, k, fan_in, fan_out), dtype=self.dtype)   # (M, I, O)
                self.params[f"{part}.{k}.b"] = xp.zeros(
                    (self.models, fan_out), dtype=self.dtype)                   # (M, O)

    def _glorot(self, part, k, fan_in, fan_out):
        """Glorot-uniform weights (biases start at zero), drawn on the host from each model's
        own seed, so a model's start depends on its seed alone and not on M or the backend."""
        limit = numpy.sqrt(6.0 / (fan_in + fan_out))
        W = numpy.empty((self.models, fan_in, fan_out), dtype=self.dtype)        # (M, I, O)
        layer = (0 if part == "encoder" else 1, k)
        for m, seed in enumerate(self.seeds):
            rng = numpy.random.default_rng((seed, INIT_STREAM, *layer))
            W[m] = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        return W

    # ---- the two networks (paper §5) ------------------------------------------------------

    def _layers(self, part):
        n = len(self.encoder_sizes if part == "encoder" else self.decoder_sizes) - 1
        return [(self.params[f"{part}.{k}.W"], self.params[f"{part}.{k}.b"]) for k in range(n)]

    def _mlp_forward(self, part, h):
        """Dense layers with ReLU (encoder) or tanh (decoder) between them, none after the last."""
        act_forward = relu_forward if part == "encoder" else tanh_forward
        layers = self._layers(part)
        caches = []
        for k, (W, b) in enumerate(layers):
            h, dense_cache = dense_forward(h, W, b)                      # (M, N, O)
            act_cache = None
            if k < len(layers) - 1:
                h, act_cache = act_forward(h)                            # (M, N, O)
            caches.append((dense_cache, act_cache))
        return h, caches

    def _mlp_backward(self, part, dout, caches, grads):
        """The forward's layers in reverse; writes dW, db into `grads`, returns d(input)."""
        act_backward = relu_backward if part == "encoder" else tanh_backward
        for k in reversed(range(len(caches))):
            dense_cache, act_cache = caches[k]
            if act_cache is not None:
                dout = act_backward(dout, act_cache)                     # (M, N, O)
            # The encoder's input is the data: its gradient is never needed.
            need_dx = not (part == "encoder" and k == 0)
            # Each layer is used once per step (the G decodings are one stacked pass), so
            # its gradient is written straight into its buffer: nothing meets there to add.
            dW_db = (grads[f"{part}.{k}.W"], grads[f"{part}.{k}.b"])     # (M, I, O), (M, O)
            dout, _, _ = dense_backward(dout, dense_cache, need_dx, out=dW_db)   # (M, N, I)
        return dout

    def prefix_inputs(self, z):
        """Eq. 8: decoding i sees [z_1 .. z_i | 0 ... 0]. Returns the G decoder inputs of codes
        z (M, N, Z) as (M, G, N, Z); stacked along the batch axis they make one decoder pass
        serve every group (training shares the one sample z among them)."""
        M, N, Z = z.shape
        zin = self.xp.zeros((M, len(self.groups), N, Z), dtype=self.dtype)  # (M, G, N, Z)
        for i, g in enumerate(self.group_slices):
            zin[:, i, :, :g.stop] = z[:, :, :g.stop]
        return zin

    def encode(self, x):
        """Encoder means and log-variances (log sigma^2) of images x (M, N, P)."""
        h, _ = self._mlp_forward("encoder", x.astype(self.dtype, copy=False))     # (M, N, 2Z)
        return h[..., :self.latent], h[..., self.latent:]                         # (M, N, Z) x2

    def decode(self, z):
        """Pixel logits (M, N, P) of latent codes z (M, N, Z)."""
        logits, _ = self._mlp_forward("decoder", z.astype(self.dtype, copy=False))
        return logits

    # ---- one training step ----------------------------------------------------------------

    def forward(self, x, eps):
        """Losses of images x (M, B, P) in {0, 1} with noise eps (M, B, Z); returns
        (losses, cache). Each loss is a per-image mean over the batch."""
        M, G, Z = self.models, len(self.groups), self.latent
        x = x.astype(self.dtype, copy=False)                             # (M, B, P)
        B = x.shape[1]
        h, enc_caches = self._mlp_forward("encoder", x)                  # (M, B, 2Z)
        mu, logvar = h[..., :Z], h[..., Z:]                              # (M, B, Z) x2
        z, rep_cache = reparameterize_forward(mu, logvar, eps.astype(self.dtype, copy=False))
        zin = self.prefix_inputs(z)                                      # (M, G, B, Z)
        logits, dec_caches = self._mlp_forward("decoder", zin.reshape(M, G * B, Z))  # (M, GB, P)
        nll, nll_cache = bernoulli_nll_forward(
            logits.reshape(M, G, B, self.pixels), x[:, None])            # (M, G, B)
        kl_dim, kl_cache = kl_normal_forward(mu, logvar)                 # (M, B, Z)
        rec = nll.mean(axis=2)                                           # (M, G)  eq. 9
        kl = kl_dim.sum(axis=2).mean(axis=1)                             # (M,)    eq. 5
        kl_scaled = (kl_dim * self.kl_dim_scale).sum(axis=2).mean(axis=1)   # (M,)  sum_g s_g KL_g
        total = rec.sum(axis=1) + self.beta * kl_scaled                  # (M,)    eq. 10-11
        losses = {"total": total, "rec": rec, "kl": kl, "kl_dim": kl_dim.mean(axis=1)}
        cache = (B, enc_caches, rep_cache, dec_caches, nll_cache, kl_cache)
        return losses, cache

    def backward(self, cache, rec_weights=None, include_kl=True, reuse_buffers=False):
        """Gradients of the loss, routed as self.routing says: (grads, dmu, dlogvar, dzin),
        `grads` a dict shaped like `params`, dmu and dlogvar what reached the latent means and
        log-variances, dzin (M, G, B, Z) what each decoding sent back to its input.

        rec_weights (G,) and include_kl select loss terms (default: all of them, i.e. the
        training loss); the routing report uses them to follow one term at a time.
        The arrays returned are the caller's. With reuse_buffers=True `grads` are instead the
        model's own buffers, which the next such call overwrites: the trainer's choice, as its
        Adam consumes them at once and the step allocates no 57 MB of gradients."""
        B, enc_caches, rep_cache, dec_caches, nll_cache, kl_cache = cache
        xp, M, G, Z = self.xp, self.models, len(self.groups), self.latent
        w = (xp.ones(G, self.dtype) if rec_weights is None
             else xp.asarray(rec_weights, self.dtype))                   # (G,)
        grads = self._grad_buffers(reuse_buffers)
        # rec = mean over the batch of nll, for every group i (weighted for the report).
        dnll = xp.broadcast_to(w[None, :, None] / B, (M, G, B))          # (M, G, B)
        dlogits = bernoulli_nll_backward(dnll, nll_cache)                # (M, G, B, P)
        dzin = self._mlp_backward("decoder", dlogits.reshape(M, G * B, self.pixels),
                                  dec_caches, grads)                     # (M, GB, Z)
        dzin = dzin.reshape(M, G, B, Z)                                  # (M, G, B, Z)
        # The routing (paper §4): "For every reconstruction loss L_rec,i, we propagate the
        # loss back to the full decoder, but only to the part of the encoder responsible for
        # generating z_i." The decoder's gradients are already written; `route` decides what
        # reaches z (the zero padding is no variable: its columns are dropped under both).
        dz = route(dzin, self.group_slices, self.routing)                # (M, B, Z)
        dmu, dlogvar = reparameterize_backward(dz, rep_cache)            # (M, B, Z) x2
        if include_kl:
            # "The KL divergence remains the same, taking into account the entire latent
            # vector": beta * KL reaches every group's mu and logvar (times its kl_scale).
            dkl = xp.broadcast_to(self.beta[:, None, None] * self.kl_dim_scale / B,
                                  (M, B, Z))                             # (M, B, Z)
            dmu_kl, dlogvar_kl = kl_normal_backward(dkl, kl_cache)       # (M, B, Z) x2
            dmu += dmu_kl
            dlogvar += dlogvar_kl
        # The join: the encoder head's output h was [mu | logvar].
        dh = xp.concatenate([dmu, dlogvar], axis=2)                      # (M, B, 2Z)
        self._mlp_backward("encoder", dh, enc_caches, grads)
        return grads, dmu, dlogvar, dzin

    def _grad_buffers(self, reuse):
        """One gradient array per parameter, each filled whole by the backward: new ones, or
        (reuse) the model's own, made once and overwritten by every later call, so that a
        training step neither allocates nor zeroes its 57 MB of gradients."""
        if not reuse:
            return {name: self.xp.empty_like(p) for name, p in self.params.items()}
        if self._grads is None:
            self._grads = self._grad_buffers(reuse=False)
        return self._grads

    def loss_and_grads(self, x, eps, reuse_buffers=False):
        """One step's losses and routed gradients: x (M, B, P), eps (M, B, Z); reuse_buffers
        as in `backward`."""
        losses, cache = self.forward(x, eps)
        grads, _, _, _ = self.backward(cache, reuse_buffers=reuse_buffers)
        return losses, grads


def layer_sizes(latent, encoder_hidden, decoder_hidden, pixels=PIXELS):
    """(encoder, decoder) layer widths, input to output: the encoder P -> hidden -> 2Z (mu,
    then logvar), the decoder Z -> hidden -> P logits."""
    return (pixels, *encoder_hidden, 2 * latent), (latent, *decoder_hidden, pixels)


def route(dzin, group_slices, routing):
    """dz (M, B, Z), the gradient that reaches z, from dzin (M, G, B, Z), what each decoding i
    sends back to its input [z_1 .. z_i | 0]; group i owns the columns group_slices[i]."""
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {ROUTINGS}, got {routing!r}")
    xp = array_module(dzin)                                          # NumPy or CuPy
    dz = xp.zeros(dzin[:, 0].shape, dtype=dzin.dtype)                # (M, B, Z)
    for i, g in enumerate(group_slices):
        if routing == "paper":  # z_1 .. z_(i-1) act as constants inside L_rec,i
            dz[..., g] += dzin[:, i, :, g]                           # L_rec,i -> z_i only
        else:                   # "none", the ablation: the plain gradient of L
            dz[..., :g.stop] += dzin[:, i, :, :g.stop]               # L_rec,i -> z_1 .. z_i
    return dz


def check_kl_scale(kl_scale, groups):
    """One positive, finite KL weight per group (G,) as floats; None: all ones (the paper)."""
    if kl_scale is None:
        return (1.0,) * len(groups)
    scale = tuple(float(s) for s in numpy.atleast_1d(kl_scale))
    if len(scale) != len(groups) or not all(numpy.isfinite(scale)) or min(scale) <= 0:
        raise ValueError(f"kl_scale must be one positive, finite number per group "
                         f"({len(groups)} for groups {groups}), got {kl_scale}")
    return scale


def scales_kl(kl_scale):
    """Whether a KL weight per group changes the loss: all ones is the paper's loss."""
    return set(kl_scale) != {1.0}


def _per_model(value, models, name, cast):
    """A scalar for every model, or one value per model."""
    values = list(numpy.atleast_1d(numpy.asarray(value)).tolist())
    if len(values) == 1:
        values = [values[0] + m if name == "seed" else values[0] for m in range(models)]
    if len(values) != models:
        raise ValueError(f"{name}: got {len(values)} values for {models} models; "
                         f"give one value, or one per model")
    return [cast(v) for v in values]
