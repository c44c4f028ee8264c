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
    columns = ([f"{v} z_{j + 1}" for j in range(G) for v in ("mu", "logvar")] + layers
               + ["blocked"])
    rows = [f"L_rec,{i + 1}" for i in range(G)] + ["beta*KL"]
    norms = numpy.zeros((len(rows), len(columns)))                       # (G+1, C)
    for t in range(G + 1):
        weights = numpy.eye(G)[t] if t < G else numpy.zeros(G)           # (G,)
        grads, dmu, dlogvar, dzin = model.backward(cache, rec_weights=weights, include_kl=t == G)
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
    cells = [["0" if v == 0 else f"{v:.3g}" for v in row] for row in norms]
    # Two header lines, "mu z_1" as z_1 over mu and "encoder.0" as encoder over 0, and every
    # column as wide as its widest entry: for two groups the report fits in 100 characters.
    heads = [c.split(" ")[::-1] if " " in c else c.split(".") if "." in c else ["", c]
             for c in columns]
    widths = [max(len(h[1]), *(len(row[k]) for row in cells)) for k, h in enumerate(heads)]
    label = max(len(r) for r in rows)
    top, under = " " * label, " " * label
    for k, ((head, name), w) in enumerate(zip(heads, widths)):
        if k == 0 or head != heads[k - 1][0]:
            top = f"{top:<{len(under)}}  {head}"          # a block's name over its first column
        under += f"  {name:>{w}}"
    # A KL weight per group shows in the header (and in beta*KL's row, which it scales).
    scale = (", KL scale per group " + ",".join(f"{s:g}" for s in model.kl_scale)
             if scales_kl(model.kl_scale) else "")
    lines = [f"Routing report: gradient norms, groups {model.groups}, beta "
             f"{to_numpy(model.beta).tolist()}, {model.models} model(s), routing "
             f"{model.routing!r}{scale}", top.rstrip(), under]
    for r, row in zip(rows, cells):
        lines.append(f"{r:>{label}}" + "".join(f"  {v:>{w}}" for v, w in zip(row, widths)))
    if model.routing == "paper":
        lines.append("0 means exactly zero; blocked: what L_rec,i would have sent to "
                     "z_1 .. z_(i-1) without the routing.")
    else:
        lines.append("0 means exactly zero; routing 'none' (the ablation) blocks nothing: "
                     "L_rec,i reaches z_1 .. z_i.")
    return "\n".join(lines)
