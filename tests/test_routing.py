"""The routing report shows the method: exact zeros where the routing blocks gradient."""
import numpy

from tinyvae import GroupedVAE
from tinyvae.routing import routing_report


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
                value = norms[i, col[f"{v} z{j + 1}"]]
                assert (value > 0) if i == j else (value == 0)
        assert (norms[i, col["blocked"]] > 0) == (i > 0)   # L_rec,1 has no earlier group
        assert all(norms[i, col[f"decoder.{k}"]] > 0 for k in range(4))
    assert all(norms[3, col[f"decoder.{k}"]] == 0 for k in range(4))      # KL: encoder only
    assert all(norms[3, col[f"{v} z{j}"]] > 0 for v in ("mu", "logvar") for j in (1, 2, 3))
    assert "L_rec,3" in text and "blocked" in text
