"""The routing report: where each loss term's gradient goes, for one batch.

For every term (L_rec,1 .. L_rec,G, and beta*KL) it follows the backward pass alone and prints
the gradient norm that term sends into each latent group's mu and logvar and into each layer
of the encoder and decoder. The routing shows as exact zeros: L_rec,i sends nothing to the
mu/logvar of any group but i, and KL sends nothing to the decoder. A last column shows what
L_rec,i *would* have sent to the earlier groups without the routing (paper §4). Under the
ablation (routing "none") that column is zero and the same gradient shows in the earlier
groups' own columns instead.

The same walk per model and group (`gradient_flow`), drawn with the blocked paths crossed out
(`draw_gradient_flow`, the notebook's picture of the routing): decoding i sees [z_1 .. z_i | 0],
so L_rec,i sends a gradient back to every group j <= i (`sent`, the decoder's answer: the same
under both routings). What reaches group j's encoder outputs mu and logvar (`reached`) is the
routing's decision: under "paper" only j = i, under "none" every j <= i. A path with sent > 0
and reached == 0 is blocked: exactly zero, not small. The drawing goes on axes the caller
makes: the core imports no plotting library.

Shapes: M models, B batch, P pixels, Z latent, G groups.
"""
import numpy

from .backend import to_numpy
from .vae import scales_kl


def term_backwards(model, cache):
    """The backward pass of each loss term alone, L_rec,1 .. L_rec,G then beta*KL: per term
    (grads, dmu, dlogvar, dzin) of model.backward, arrays the caller owns."""
    G = len(model.groups)
    for t in range(G + 1):
        weights = numpy.eye(G)[t] if t < G else numpy.zeros(G)           # (G,)
        yield model.backward(cache, rec_weights=weights, include_kl=t == G)


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
    for t, (grads, dmu, dlogvar, dzin) in enumerate(term_backwards(model, cache)):
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


def gradient_flow(model, x, eps):
    """(sent, reached), each (M, G, G) with [m, i, j] the norm over the batch of the gradient
    L_rec,(i+1) of model m sends to group j+1 and of what reaches its mu and logvar; x
    (M, B, P), eps (M, B, Z). Zero where j > i: decoding i never sees those groups."""
    M, G = model.models, len(model.groups)
    _, cache = model.forward(x, eps)
    sent, reached = numpy.zeros((M, G, G)), numpy.zeros((M, G, G))        # (M, G, G) x2
    for i, (_, dmu, dlogvar, dzin) in zip(range(G), term_backwards(model, cache)):  # L_rec only
        for j, g in enumerate(model.group_slices[:i + 1]):
            sent[:, i, j] = _norms(dzin[:, i, :, g])
            reached[:, i, j] = numpy.hypot(_norms(dmu[..., g]), _norms(dlogvar[..., g]))
    return sent, reached


def _norms(a):
    """The norm of each model's part of a (M, ...): (M,), on the host, in float64."""
    a = to_numpy(a).astype(numpy.float64)
    return numpy.sqrt((a * a).reshape(len(a), -1).sum(axis=1))


def draw_gradient_flow(ax, sent, reached, title):
    """One model's `sent` and `reached` (G, G) drawn on `ax`: loss terms on the right, groups
    (the encoder's outputs) on the left, an arrow from L_rec,i to each group j <= i: solid
    and labelled with the norm that reaches z_j, or, where the routing blocks it, dashed and
    grey, crossed out in red, labelled with what it holds back. Returns the number of blocked
    paths drawn."""
    G = len(sent)
    ys = numpy.linspace(0.72, 0.12, G)                # (G,), below the two headers
    colours = [f"C{i}" for i in range(G)]
    for j, y in enumerate(ys):
        ax.text(0.1, y, f"z_{j + 1}", ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round", fc="#eeeeee"))
        ax.text(0.9, y, f"L_rec,{j + 1}", ha="center", va="center", fontsize=11,
                color=colours[j], bbox=dict(boxstyle="round", fc="white", ec=colours[j]))
    ax.text(0.0, 0.99, "each group's mu, logvar\n(into the encoder)", ha="left", va="top",
            fontsize=8)
    ax.text(1.0, 0.99, "loss terms\n(decoding i sees z_1..z_i)", ha="right", va="top",
            fontsize=8)
    label = dict(boxstyle="round,pad=0.15", fc="white", ec="none")
    blocked = 0
    for i in range(G):
        for j in range(i + 1):
            start, end = numpy.array([0.8, ys[i]]), numpy.array([0.2, ys[j]])
            passes = reached[i, j] > 0
            ax.annotate("", xy=end, xytext=start, arrowprops=dict(
                arrowstyle="-|>", lw=2 if passes else 1.2, ls="-" if passes else "--",
                color=colours[i] if passes else "grey", shrinkA=14, shrinkB=14))
            where = start + 0.4 * (end - start) if i != j else start + 0.5 * (end - start)
            if passes:
                ax.text(*where, f"{reached[i, j]:.3g}", ha="center", va="center", fontsize=9,
                        color=colours[i], bbox=label)
            else:
                blocked += 1
                ax.plot(*where, marker="X", ms=16, color="red")
                ax.text(where[0], where[1] - 0.04, f"blocked: {sent[i, j]:.3g} held back",
                        ha="center", va="top", fontsize=8, color="red", bbox=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return blocked
