"""The gradient-flow picture (tinyvae/routing_report.py): what each L_rec,i sends to each
group and what reaches it, exactly zero on the paths the paper's routing blocks, and drawn
with one red cross per blocked path."""
import numpy
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from tinyvae import GroupedVAE
from tinyvae.routing_report import draw_gradient_flow, gradient_flow, routing_report

TINY = dict(pixels=7, encoder_hidden=(6, 5), decoder_hidden=(5, 4, 6), dtype=numpy.float64)


def batch(Z, seed=0):
    rng = numpy.random.default_rng(seed)
    x = (rng.random((1, 5, 7)) < 0.4).astype(numpy.float64)               # (M, B, P)
    return x, rng.standard_normal((1, 5, Z))                              # (M, B, Z)


@pytest.mark.parametrize("groups", [(2, 2, 2), (1, 3)])
def test_the_routing_blocks_exactly_the_earlier_groups_and_none_passes_them(groups):
    x, eps = batch(sum(groups))
    paper = GroupedVAE(groups=groups, seed=3, **TINY)
    plain = GroupedVAE(groups=groups, seed=3, routing="none", **TINY)     # the same weights
    (sent,), (reached,) = gradient_flow(paper, x, eps)
    (sent_plain,), (reached_plain,) = gradient_flow(plain, x, eps)
    G = len(groups)
    below, diagonal = numpy.tril_indices(G, -1), numpy.diag_indices(G)
    assert numpy.array_equal(sent, sent_plain)          # the decoder's answer: no routing there
    assert numpy.all(numpy.triu(sent, 1) == 0) and numpy.all(numpy.triu(reached_plain, 1) == 0)
    assert numpy.all(sent[below] > 0) and numpy.all(reached[below] == 0)
    assert numpy.all(reached_plain[below] >= sent[below])       # mu's part alone is `sent`
    assert numpy.all(reached[diagonal] >= sent[diagonal]) and numpy.all(sent[diagonal] > 0)
    assert numpy.array_equal(reached[diagonal], reached_plain[diagonal])


def test_what_is_held_back_is_the_routing_report_s_blocked_column():
    x, eps = batch(6)
    model = GroupedVAE(groups=(3, 3), seed=1, **TINY)
    (sent,), _ = gradient_flow(model, x, eps)
    rows, columns, norms, _ = routing_report(model, x, eps)
    assert sent[1, 0] == pytest.approx(norms[rows.index("L_rec,2"), columns.index("blocked")],
                                       rel=1e-12)


def test_each_model_of_m_has_its_own_flow():
    """Models 0 and 1 of an M = 2 model are the single models of seeds 3 and 4."""
    x, eps = batch(4)
    x2, eps2 = batch(4, seed=1)
    pair = GroupedVAE(groups=(2, 2), models=2, seed=[3, 4], **TINY)
    sent, reached = gradient_flow(pair, numpy.concatenate([x, x2]),
                                  numpy.concatenate([eps, eps2]))
    for m, (seed, xm, em) in enumerate(((3, x, eps), (4, x2, eps2))):
        one = GroupedVAE(groups=(2, 2), seed=seed, **TINY)
        one_sent, one_reached = gradient_flow(one, xm, em)
        numpy.testing.assert_allclose(sent[m], one_sent[0], rtol=1e-12)
        numpy.testing.assert_allclose(reached[m], one_reached[0], rtol=1e-12)
    assert not numpy.allclose(sent[0], sent[1])


@pytest.mark.parametrize("routing, crosses", [("paper", 3), ("none", 0)])
def test_the_drawing_crosses_out_each_blocked_path(routing, crosses, tmp_path):
    x, eps = batch(6)
    model = GroupedVAE(groups=(2, 2, 2), routing=routing, **TINY)
    (sent,), (reached,) = gradient_flow(model, x, eps)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    assert draw_gradient_flow(ax, sent, reached, routing) == crosses
    assert sum(line.get_marker() == "X" for line in ax.lines) == crosses
    arrows = [t for t in ax.texts if isinstance(t, Annotation)]
    assert len(arrows) == 6 and len(ax.texts) - len(arrows) == 2 * 3 + 2 + 6  # and labels
    fig.savefig(tmp_path / "flow.png")
