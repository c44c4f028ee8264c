"""The routing report shows the method: exact zeros where the routing blocks gradient."""
import re

import numpy
import pytest

from tinyvae import GroupedVAE
from tinyvae.routing_report import routing_report


def test_report_has_exact_zeros_where_the_routing_blocks_gradient():
    model = GroupedVAE(groups=(1, 2, 1), pixels=7, encoder_hidden=(6, 5),
                       decoder_hidden=(5, 4, 6), dtype=numpy.float64, beta=2.0)
    rng = numpy.random.default_rng(0)
    x = (rng.random((1, 5, 7)) < 0.4).astype(float)                      # (M, B, P)
    eps = rng.standard_normal((1, 5, 4))                                  # (M, B, Z)
    rows, columns, norms, text = routing_report(model, x, eps)
    assert rows == ["L_rec,1", "L_rec,2", "L_rec,3", "beta*KL"]
    col = {c: k for k, c in enumerate(columns)}
    for i in range(3):
        for j in range(3):
            for v in ("mu", "logvar"):
                value = norms[i, col[f"{v} z_{j + 1}"]]
                assert (value > 0) if i == j else (value == 0)
        assert (norms[i, col["blocked"]] > 0) == (i > 0)   # L_rec,1 has no earlier group
        assert all(norms[i, col[f"decoder.{k}"]] > 0 for k in range(4))
    assert all(norms[3, col[f"decoder.{k}"]] == 0 for k in range(4))      # KL: encoder only
    assert all(norms[3, col[f"{v} z_{j}"]] > 0 for v in ("mu", "logvar") for j in (1, 2, 3))
    assert "L_rec,3" in text and "blocked" in text


def test_without_routing_nothing_is_blocked_and_it_reaches_the_earlier_groups():
    """routing="none": the 'blocked' column is zero, and what the paper's routing blocks
    shows up instead in the earlier groups' mu columns (dmu = dz: the same gradient)."""
    reports = {}
    for routing in ("paper", "none"):
        model = GroupedVAE(groups=(1, 2, 1), pixels=7, encoder_hidden=(6, 5),
                           decoder_hidden=(5, 4, 6), dtype=numpy.float64, routing=routing)
        rng = numpy.random.default_rng(0)
        x = (rng.random((1, 5, 7)) < 0.4).astype(float)                  # (M, B, P)
        eps = rng.standard_normal((1, 5, 4))                              # (M, B, Z)
        reports[routing] = routing_report(model, x, eps)
    rows, columns, paper, _ = reports["paper"]
    _, _, plain, text = reports["none"]
    col = {c: k for k, c in enumerate(columns)}
    assert numpy.all(plain[:, col["blocked"]] == 0)
    assert "routing 'none'" in text and "routing 'paper'" in reports["paper"][3]
    for i in range(3):
        for j in range(3):
            value = plain[i, col[f"mu z_{j + 1}"]]
            assert (value > 0) if j <= i else (value == 0)             # z_1 .. z_i, not later
    # L_rec,2 sends to z_1 exactly what the paper's routing blocks (z_1 is group 1 alone)
    assert plain[1, col["mu z_1"]] == pytest.approx(paper[1, col["blocked"]], rel=1e-12)
    # the decoder's columns do not depend on the routing
    for k in range(4):
        numpy.testing.assert_array_equal(plain[:, col[f"decoder.{k}"]],
                                         paper[:, col[f"decoder.{k}"]])


def test_the_report_shows_a_kl_scale_in_its_header_and_in_the_kl_row():
    """beta*KL's row is the KL's gradient: a scale (2, 1, 3) doubles what reaches group 1's
    mu and logvar and triples group 3's, and the header names the scale."""
    rng = numpy.random.default_rng(0)
    x = (rng.random((1, 5, 7)) < 0.4).astype(float)                      # (M, B, P)
    eps = rng.standard_normal((1, 5, 4))                                  # (M, B, Z)
    out = {}
    for scale in (None, (2.0, 1.0, 3.0)):
        model = GroupedVAE(groups=(1, 2, 1), pixels=7, encoder_hidden=(6, 5),
                           decoder_hidden=(5, 4, 6), dtype=numpy.float64, kl_scale=scale)
        out[scale] = routing_report(model, x, eps)
    _, columns, plain, text = out[None]
    _, _, scaled, scaled_text = out[(2.0, 1.0, 3.0)]
    col = {c: k for k, c in enumerate(columns)}
    assert "KL scale" not in text and "KL scale per group 2,1,3\n" in scaled_text
    for j, s in enumerate((2.0, 1.0, 3.0)):
        for v in ("mu", "logvar"):
            c = col[f"{v} z_{j + 1}"]
            assert scaled[3, c] == pytest.approx(s * plain[3, c], rel=1e-12)
    numpy.testing.assert_array_equal(scaled[:3], plain[:3])     # the L_rec rows are unchanged


def test_the_report_prints_every_norm_under_its_column():
    """Each number right-aligned under its column's name, that name under its block's (z_j,
    encoder, decoder), and each number the norm it stands for, to the 3 digits printed."""
    model = GroupedVAE(groups=(1, 2, 1), pixels=7, encoder_hidden=(6, 5),
                       decoder_hidden=(5, 4, 6), dtype=numpy.float64)
    rng = numpy.random.default_rng(0)
    x = (rng.random((1, 5, 7)) < 0.4).astype(float)                      # (M, B, P)
    eps = rng.standard_normal((1, 5, 4))                                  # (M, B, Z)
    rows, columns, norms, text = routing_report(model, x, eps)
    lines = text.split("\n")
    top, under, table = lines[1], lines[2], lines[3:3 + len(rows)]
    assert top.split() == ["z_1", "z_2", "z_3", "encoder", "decoder"]
    assert under.split() == ["mu", "logvar"] * 3 + ["0", "1", "2"] + ["0", "1", "2", "3",
                                                                      "blocked"]
    starts = {m.group(): m.start() for m in re.finditer(r"\S+", top)}
    name_ends = [m.end() for m in re.finditer(r"\S+", under)]
    ends = [len("beta*KL")] + name_ends                     # where each column's field begins
    for head, first in (("z_1", 0), ("z_2", 2), ("z_3", 4), ("encoder", 6), ("decoder", 9)):
        assert starts[head] == ends[first] + 2, head       # over its first column, two apart
    for label, line, want in zip(rows, table, norms):
        cells = list(re.finditer(r"\S+", line))
        assert cells[0].group() == label and [m.end() for m in cells[1:]] == name_ends
        assert [float(m.group()) for m in cells[1:]] == pytest.approx(want, rel=5e-3, abs=0)
