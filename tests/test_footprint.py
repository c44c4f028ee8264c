"""The routing's footprint in the reports: each group's test KL, active latents and prefix
reconstruction loss, from the records evaluate.py writes (a small fixture of them here), in
Table 1, trials.md/csv, the footprint figure and the learning curves; configurations told
apart by their KL scale and widths."""
import csv
import json

import numpy
import pytest
from PIL import Image

from tinyvae.experiment.studies.compare import main as compare_main, markdown
from tinyvae.experiment.reports.learning_curves import curves_markdown, write_curves
from tinyvae.experiment.run.configuration import config_key, config_label
from tinyvae.experiment.reports.full_report import write_report
from tinyvae.experiment.scoring.model_record import footprint, group_sums, paper_values

FACTORS = ["shape", "scale", "orientation", "posX", "posY"]
PROTOCOL = {"bins": 20, "n_images": 100, "factors": FACTORS, "active_threshold_nats": 0.1}


def record(seed, groups=(3, 3), kl=(4.0, 3.0, 2.0, 0.5, 0.05, 0.0), rec=(150.0, 140.0),
           step=1500, **setting):
    """One model's record as evaluate.py writes it (the fields the report reads)."""
    kl = numpy.asarray(kl, dtype=float) + 0.01 * seed                    # (Z,)
    rng = numpy.random.default_rng(seed)
    return {"seed": seed, "beta": setting.pop("beta", 1.0), "model": "grouped",
            "groups": list(groups), "step": step, "mig": 0.05 + 0.01 * seed,
            "mic_first3": rng.uniform(-0.3, 0.3, len(FACTORS)).tolist(),
            "mi": rng.uniform(0, 1, (len(kl), len(FACTORS))).tolist(),
            "entropy": [1.1, 1.8, 3.7, 3.5, 3.5],
            "kl_per_dim": kl.tolist(), "active_dims": numpy.flatnonzero(kl > 0.1).tolist(),
            "rec_loss_prefix": [r + seed for r in rec], "rec_loss_full": rec[-1] + seed,
            **setting}


def test_footprint_sums_each_groups_kl_and_counts_its_active_latents():
    r = record(0, groups=(1, 2, 3), kl=(4.0, 3.0, 0.05, 2.0, 0.0, 0.2), rec=(9.0, 8.0, 7.0))
    fp = footprint(r)
    numpy.testing.assert_allclose(fp["kl"], [4.0, 3.05, 2.2])
    assert fp["active"].tolist() == [1, 1, 2]           # 0.05 and 0.0 are under 0.1 nats
    assert fp["rec"].tolist() == [9.0, 8.0, 7.0]


def test_group_sums_sums_the_last_axis_group_by_group():
    values = numpy.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6)       # (2, 4, Z)
    sums = group_sums(values, (1, 2, 3))                                 # (2, 4, G)
    assert sums.shape == (2, 4, 3)
    numpy.testing.assert_array_equal(sums, numpy.stack(
        [values[..., 0], values[..., 1] + values[..., 2],
         values[..., 3] + values[..., 4] + values[..., 5]], axis=-1))
    with pytest.raises(ValueError, match="5 latents on their last axis, groups .3, 3. have 6"):
        group_sums(values[..., :5], (3, 3))


def test_configurations_differ_by_kl_scale_and_widths_and_say_so():
    plain = record(0, routing="none")
    scaled = record(0, routing="none", kl_scale=[2.0, 1.0])
    narrow = record(0, encoder_hidden=[256, 256], decoder_hidden=[256, 256, 256])
    mixed = record(0, encoder_hidden=[64, 32], decoder_hidden=[256, 256, 256])
    keys = [config_key(r) for r in (plain, scaled, narrow, mixed)]
    assert len(set(keys)) == 4
    assert config_key(plain) == config_key(record(0, routing="none", kl_scale=[1.0, 1.0],
                                                  encoder_hidden=[1200, 1200]))
    assert [config_label(*k) for k in keys] == [
        "grouped, no routing", "grouped, no routing, KL scale 2,1", "grouped, H=256",
        "grouped, H=64,32/256,256,256"]
    # the paper's Table 1 stands beside its own configuration only
    assert paper_values(record(0)) == (0.023, 49.1)
    assert paper_values(scaled) is None and paper_values(narrow) is None


@pytest.fixture
def records():
    two = [record(s) for s in range(3)] + [record(s, routing="none", kl=(5, 5, 5, 0.5, 0, 0))
                                           for s in range(2)]
    six = [record(s, groups=(1,) * 6, kl=(6, 2, 0.05, 0, 0, 0), rec=(9, 8, 7, 7, 7, 7),
                  beta=4.0, encoder_hidden=[256, 256], decoder_hidden=[256, 256, 256])
           for s in range(2)]
    return two + six


def test_table_1_and_trials_carry_every_groups_footprint(records, tmp_path):
    markdown = write_report(records, PROTOCOL, tmp_path)
    lines = {line.split(" | ")[0]: line for line in markdown.splitlines()}
    # columns: grouped, grouped no routing, grouped 1+1+1+1+1+1 β=4 (H=256)
    assert lines["| KL per group (nats)"] == (
        "| KL per group (nats) | 9.0 / 0.6 | 15.0 / 0.5 | 6.0 / 2.0 / 0.1 / 0.0 / 0.0 / 0.0 |")
    assert lines["| active latents per group"] == (
        "| active latents per group | 3.0 / 1.0 | 3.0 / 1.0 | 1.0 / 1.0 / 0.0 / 0.0 / 0.0 / 0.0 |")
    assert lines["| L_rec,i per prefix (nats)"].startswith(
        "| L_rec,i per prefix (nats) | 151.0 / 141.0 | 150.5 / 140.5 | 9.5 / 8.5 / 7.5")
    with open(tmp_path / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["kl_g1_std"]) == pytest.approx(numpy.std([9.0, 9.03, 9.06], ddof=1))
    assert rows[0]["kl_g6_mean"] == "" and float(rows[2]["kl_g6_mean"]) == pytest.approx(0.01 / 2)
    assert rows[2]["configuration"] == "grouped 6×1 β=4, H=256"
    with open(tmp_path / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert float(trials[1]["kl_g1"]) == pytest.approx(9.03)
    assert trials[1]["active_g2"] == "1" and trials[1]["rec_2"] == "141.0"
    assert trials[0]["kl_g3"] == "" and trials[-1]["rec_6"] == "8.0"    # seed 1: 7 + 1
    text = (tmp_path / "trials.md").read_text()
    assert "| grouped | 1 | " in text and "| 9.0 / 0.6 | 3 / 1 | 151.0 / 141.0 |" in text
    with Image.open(tmp_path / "footprint_kl.png") as image:
        assert image.format == "PNG" and image.size[0] > 3 * image.size[1]   # six panels


def test_learning_curves_carry_each_groups_kl(records, tmp_path):
    early = [dict(r, step=500, kl_per_dim=[v / 2 for v in r["kl_per_dim"]]) for r in records]
    markdown = curves_markdown(records + early, FACTORS, PROTOCOL)
    kl_table = markdown.split("The footprint")[0].split("test images).")[1]
    assert "| 500 | 4.5 / 0.3 | 7.5 / 0.3 | 3.0 / 1.0 / 0.0 / 0.0 / 0.0 / 0.0 |" in kl_table
    assert "| 1500 | 9.0 / 0.6 | 15.0 / 0.5 | " in kl_table
    write_curves(records + early, PROTOCOL, tmp_path)
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"kl_g1", "active_g6", "rec_6"} <= set(rows[0])


def test_compare_shows_the_smallest_p_and_the_gap_share():
    row = {"name": "KL of group 1", "mean_a": 1.0, "sd_a": 0.1, "mean_b": 2.0, "sd_b": 0.1,
           "diff": -1.0, "low": -1.1, "high": -0.9, "p": 2 / 184756, "holm": 4 / 184756,
           "mean_c": 3.0, "share": 1.5, "share_low": 1.2, "share_high": float("nan")}
    table = markdown([row], "a", "b", 10, 10, "c", 10)
    # the smallest p of 10 against 10 is shown, not rounded to 0.0000
    assert ("| KL of group 1 | 1.000 ± 0.100 | 2.000 ± 0.100 | -1.000 [-1.100, -0.900] | "
            "1.1e-05 | 2.2e-05 | 3.000 | 1.50 [1.20, —] |") in table


def test_compare_tabulates_both_configurations(records, tmp_path, capsys):
    for name, chosen in (("a", records[:3]), ("b", records[3:5])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(
            json.dumps({"protocol": PROTOCOL, "models": chosen}))
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("| KL of group 1 |"))
    assert line.startswith("| KL of group 1 | 9.030 ± 0.030 | 15.015 ± 0.021 | -5.985 [")
    assert " | 0.1000 | " in line          # exact: of the 10 splits only the observed one
    assert "| L_rec,2 | " in out and "| MIC position with z1-z3 | " in out
    # a third run equal to a: a reproduces none of the gap between b and it
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--gap-from",
                         str(tmp_path / "a")]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines()
                if row.startswith("| KL of group 1 |"))
    assert "| 9.030 | 0.00 [" in line
    # only the models of one β: the fixture's are all β = 1
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--beta", "1"]) == 0
    assert "| KL of group 1 | 9.030 ± 0.030 | 15.015 ± 0.021 |" in capsys.readouterr().out
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--beta", "4"]) == 2
    assert "at least two trials (seeds) with β = 4" in capsys.readouterr().err
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "cannot read a scored run" in capsys.readouterr().err


def test_compare_on_records_that_lack_a_score_is_one_line(records, tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        chosen = [{k: v for k, v in r.items() if k != "mig"} for r in records[:3]]
        (tmp_path / name / "metrics.json").write_text(
            json.dumps({"protocol": PROTOCOL, "models": chosen}))
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compare: error: a run's records lack what evaluate.py writes "
                          "(KeyError: 'mig')") and err.count("\n") == 1
