"""The measured multiplier c_g (docs/routing.md): by hand, against per-term gradients, in the
log, and read back by `python -m tinyvae.experiment.run.multiplier`."""
import csv

import numpy
import pytest

from tinyvae import GroupedVAE
from tinyvae.experiment.run import multiplier
from tinyvae.experiment.run.multiplier import as_scale, measured_c, multiplier_sums


def test_c_by_hand_on_two_groups_of_one():
    # One model, batch 2, groups (1, 1). Group 1's own gradient (decoding 1, column 0) is
    # [1, 2]; decoding 2 sends it [3, -1]. all_1 = [4, 1]: <all_1, own_1> = 4 + 2 = 6 and
    # |own_1|^2 = 5, so c_1 = 1.2; group 2 has only its own term, c_2 = 1.
    dzin = numpy.zeros((1, 2, 2, 2))                                      # (M, G, B, Z)
    dzin[0, 0, :, 0] = [1, 2]
    dzin[0, 1, :, 0] = [3, -1]
    dzin[0, 1, :, 1] = [0.5, 7]
    sums = multiplier_sums(dzin, [slice(0, 1), slice(1, 2)], numpy)
    c = sums["c_dot"] / sums["c_norm"]                                    # (M, G)
    numpy.testing.assert_allclose(c, [[1.2, 1.0]], rtol=1e-15)


def test_c_equals_its_definition_from_each_terms_own_gradient():
    """dzin's columns against the gradients each L_rec,i sends to the latents when it is the
    only term (backward with one rec weight, routing "none", no KL): dmu = dL_rec,i/dz."""
    model = GroupedVAE(groups=(2, 1, 2), pixels=9, encoder_hidden=(7, 6),
                       decoder_hidden=(5, 8, 6), dtype=numpy.float64, models=2,
                       routing="none")
    rng = numpy.random.default_rng(3)
    x = (rng.random((2, 6, 9)) < 0.4).astype(float)                       # (M, B, P)
    eps = rng.standard_normal((2, 6, 5))                                  # (M, B, Z)
    _, cache = model.forward(x, eps)
    dzin = model.backward(cache)[3].copy()                                # (M, G, B, Z)
    sums = multiplier_sums(dzin, model.group_slices, numpy)
    G = 3
    term = []
    for i in range(G):
        w = numpy.eye(G)[i]
        term.append(model.backward(cache, rec_weights=w, include_kl=False)[1].copy())
    for g, cols in enumerate(model.group_slices):
        own = term[g][..., cols]                                          # (M, B, |g|)
        every = sum(term[i][..., cols] for i in range(g, G))              # (M, B, |g|)
        want = (every * own).sum(axis=(1, 2)) / (own * own).sum(axis=(1, 2))
        numpy.testing.assert_allclose(sums["c_dot"][:, g] / sums["c_norm"][:, g], want,
                                      rtol=1e-12)
    assert numpy.all(sums["c_dot"][:, -1] == sums["c_norm"][:, -1])       # c_G = 1


def _write_log(path, rows):
    with open(path / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_measured_c_averages_rows_per_model_and_prints_a_scale(tmp_path, capsys):
    rows = [{"step": s, "model": m, "c_1": c1, "c_2": 1}
            for s, m, c1 in ((50, 0, 1.5), (50, 1, 2.0), (100, 0, 1.7), (100, 1, ""))]
    _write_log(tmp_path, rows)
    c = measured_c(tmp_path)                                              # (G, M)
    numpy.testing.assert_allclose(c, [[1.6, 2.0], [1, 1]])
    numpy.testing.assert_allclose(measured_c(tmp_path, first_step=100), [[1.7, numpy.nan],
                                                                           [1, 1]])
    assert as_scale(c) == "1.8,1"
    assert multiplier.main([str(tmp_path), "--scale"]) == 0
    assert capsys.readouterr().out == "1.8,1\n"
    assert multiplier.main([str(tmp_path)]) == 0
    assert "c_1   1.800" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["missing", "one group"])
def test_a_run_without_c_columns_is_one_line_and_exit_2(tmp_path, capsys, what):
    if what == "one group":
        _write_log(tmp_path, [{"step": 50, "model": 0, "kl": 3.0}])
    assert multiplier.main([str(tmp_path / ("nowhere" if what == "missing" else ""))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multiplier: error: ") and err.count("\n") == 1


def test_the_log_pools_the_interval_rather_than_averaging_each_steps_ratio(monkeypatch):
    """c_g of a log row is (sum of the interval's dot products) / (sum of its squared norms):
    recomputed here from the dzin of each step, and shown to differ from the mean of the
    per-step ratios, so that the assertion could fail."""
    import train
    from tinyvae.data.dataset import open_dataset
    from tinyvae.experiment.run.trainer import Trainer

    config = train.make_config(train.parse_args(
        ["--groups", "1,2,3", "--encoder-hidden", "8,6", "--decoder-hidden", "5,7,9",
         "--seeds", "2", "--batch-size", "4"]))
    trainer = Trainer(config, numpy, open_dataset(None))
    seen = []
    backward = trainer.model.backward

    def keep(cache, *args, **kw):
        out = backward(cache, *args, **kw)
        seen.append(out[3].copy())                                        # dzin (M, G, B, Z)
        return out
    monkeypatch.setattr(trainer.model, "backward", keep)
    for _ in range(3):
        assert trainer.train_step() is None
    rows = trainer.log_rows()
    sums = [multiplier_sums(d.astype(numpy.float64), trainer.model.group_slices, numpy)
            for d in seen]
    pooled = sum(s["c_dot"] for s in sums) / sum(s["c_norm"] for s in sums)      # (M, G)
    ratios = numpy.mean([s["c_dot"] / s["c_norm"] for s in sums], axis=0)          # (M, G)
    logged = numpy.array([[r[f"c_{g + 1}"] for g in range(3)] for r in rows])     # (M, G)
    numpy.testing.assert_allclose(logged, pooled, rtol=1e-5)
    assert numpy.abs(pooled - ratios)[:, :2].max() > 1e-4                  # they do differ


@pytest.mark.parametrize("c1, message", [
    ("-0.4", "c_1 = -0.4: not a positive KL weight"), ("", "c_1 = nan: not a positive")])
def test_a_scale_that_is_no_kl_weight_is_refused(tmp_path, capsys, c1, message):
    _write_log(tmp_path, [{"step": 50, "model": 0, "c_1": c1, "c_2": 1}])
    assert multiplier.main([str(tmp_path), "--scale"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_rows_past_the_end_and_a_log_without_steps_are_one_line(tmp_path, capsys):
    _write_log(tmp_path, [{"step": 50, "model": 0, "c_1": 1.5, "c_2": 1}])
    assert multiplier.main([str(tmp_path), "--from-step", "100"]) == 2
    assert "no rows from step 100 on (the last is step 50)" in capsys.readouterr().err
    _write_log(tmp_path, [{"model": 0, "c_1": 1.5, "c_2": 1}])
    assert multiplier.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no 'step' column" in err and err.count("\n") == 1
