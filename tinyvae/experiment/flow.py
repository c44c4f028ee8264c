"""Where each L_rec,i's gradient goes, per group, and a drawing of it with the blocked paths
marked (the notebook's picture of the routing).

Decoding i sees [z_1 .. z_i | 0], so L_rec,i sends a gradient back to every group j <= i
(`sent`, the decoder's answer: the same under both routings). What reaches group j's encoder
outputs mu and logvar (`reached`) is the routing's decision: under "paper" only j = i, under
"none" every j <= i. A path with sent > 0 and reached == 0 is blocked: exactly zero, not small.

Shapes: M models, B batch, P pixels, Z latent, G groups.
"""
import numpy

from ..backend import to_numpy


def gradient_flow(model, x, eps):
    """(sent, reached), each (M, G, G) with [m, i, j] the norm over the batch of the gradient
    L_rec,(i+1) of model m sends to group j+1 and of what reaches its mu and logvar; x
    (M, B, P), eps (M, B, Z). Zero where j > i: decoding i never sees those groups."""
    M, G = model.models, len(model.groups)
    _, cache = model.forward(x, eps)
    sent, reached = numpy.zeros((M, G, G)), numpy.zeros((M, G, G))        # (M, G, G) x2
    for i in range(G):
        _, dmu, dlogvar, dzin = model.backward(cache, rec_weights=numpy.eye(G)[i],
                                               include_kl=False)
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
    ys = numpy.linspace(0.85, 0.15, G)                                      # (G,)
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
