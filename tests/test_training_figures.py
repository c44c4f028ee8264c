"""The training figures say what they show: routing.png's legend names each kind of line."""
import pytest

from tinyvae.experiment.run import training_figures


def log_rows(models, steps=(1, 2, 3)):
    return [{"step": str(s), "model": str(m), "grad_rec_2_to_earlier": "3.0",
             "grad_rec_2_to_own": "0.5", "grad_rec_3_to_earlier": "2.0",
             "grad_rec_3_to_own": "0.1"} for s in steps for m in range(models)]


@pytest.mark.parametrize("routing, fate", [("paper", "held back"), ("none", "passed on")])
@pytest.mark.parametrize("models", [2, 12])
def test_the_routing_figure_says_which_line_is_which(tmp_path, monkeypatch, routing, fate,
                                                     models):
    drawn = []
    monkeypatch.setattr(training_figures, "save_figure",
                        lambda fig, path, **kw: drawn.append(fig))
    labels = [f"grouped β=1 seed={m}" for m in range(models)]
    training_figures._routing_curves(tmp_path / "routing.png", log_rows(models), labels, routing)
    legend = [t.get_text() for t in drawn[0].axes[-1].get_legend().get_texts()]
    assert legend[:2] == [f"solid: to z_1..z_2 ({fate})", "dotted: to z_3"]
    assert legend[2:] == (labels if models <= 10 else [])       # the models, while they fit
    assert "leans on the earlier groups" in drawn[0]._suptitle.get_text()
