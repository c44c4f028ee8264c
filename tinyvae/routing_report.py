"""The routing report: where each loss term's gradient goes, for one batch.

For every term (L_rec,1 .. L_rec,G, and beta*KL) it follows the backward pass alone and prints
the gradient norm that term sends into each latent group's mu and logvar and into each layer
of the encoder and decoder. The routing shows as exact zeros: L_rec,i sends nothing to the
mu/logvar of any group but i, and KL sends nothing to the decoder. A last column shows what
L_rec,i *would* have sent to the earlier groups without the routing (paper §4). Under the
ablation (routing "none") that column is zero and the same gradient shows in the earlier
groups' own columns instead.

Shapes: M models, B batch, P pixels, Z latent, G groups.
"""
import numpy

from .backend import to_numpy
from .vae import scales_kl


def routing_report(model, x, eps):
    """Gradient norms per loss term for images x (M, B, P) and noise eps (M, B, Z).

    Returns (rows, columns, norms, text): `norms[t, c]` is the norm, over all M models, of the
    gradient that term `rows[t]` sends into `columns[c]`."""
    G = len(model.groups)
    _, cache = model.forward(x, eps)
    layers = sorted({name.rsplit(".", 1)[0] for name in model.params},
                    key=lambda n: (n.startswith("decoder"), int(n.split(".")[1])))
    columns = ([f"{v} z{j + 1}" for j in range(G) for v in ("mu", "logvar")] + layers
               + ["blocked"])
    rows = [f"L_rec,{i + 1}" for i in range(G)] + ["beta*KL"]
    norms = numpy.zeros((len(rows), len(columns)))                       # (G+1, C)
    for t in range(G + 1):
        weights = numpy.eye(G)[t] if t < G else numpy.zeros(G)           # (G,)
        grads, dmu, dlogvar, dzin = model.backward(cache, rec_weights=weights, kl_weight=t == G)
        values = []
        for g in model.group_slices:
            values += [_norm(dmu[..., g]), _norm(dlogvar[..., g])]
        for layer in layers:
            W, b = grads[layer + ".W"], grads[layer + ".b"]
            values.append(float(numpy.hypot(_norm(W), _norm(b))))
        # What the routing drops: decoding t's gradient on the earlier groups' columns
        # (nothing under routing "none", which passes it on to them).
        blocked = t < G and model.routing == "paper"
        earlier = model.group_slices[t].start if blocked else 0
        values.append(_norm(dzin[:, t, :, :earlier]) if earlier else 0.0)
        norms[t] = values
    return rows, columns, norms, _format(model, rows, columns, norms)


def _norm(a):
    return float(numpy.sqrt(numpy.sum(to_numpy(a).astype(numpy.float64) ** 2)))


def _format(model, rows, columns, norms):
    def cell(v):
        return "0" if v == 0 else f"{v:.3g}"
    width = 2 + max(len(c) for c in columns)
    # A KL weight per group shows in the header (and in beta*KL's row, which it scales).
    scale = (", KL scale per group " + ",".join(f"{s:g}" for s in model.kl_scale)
             if scales_kl(model.kl_scale) else "")
    lines = [f"Routing report: gradient norm each loss term sends into each block "
             f"(groups {model.groups}, beta {to_numpy(model.beta).tolist()}{scale}, "
             f"{model.models} model(s), routing {model.routing!r}); 0 means exactly zero.",
             f"{'':>10}" + "".join(f"{c:>{width}}" for c in columns)]
    for r, row in zip(rows, norms):
        lines.append(f"{r:>10}" + "".join(f"{cell(v):>{width}}" for v in row))
    if model.routing == "paper":
        lines.append("'blocked': what L_rec,i would have sent to z_1 .. z_(i-1) without the "
                     "routing; the paper holds those groups constant inside L_rec,i.")
    else:
        lines.append("routing 'none' (the ablation): L_rec,i reaches z_1 .. z_i, so nothing is "
                     "blocked and what it sends to the earlier groups shows in their columns.")
    return "\n".join(lines)
