"""When a group opens and what it holds (tinyvae/experiment/studies/opening.py), on a small
fixture of scored runs whose answer is known: the opening counts, the steps, Fisher's test between arms."""
import csv
import json
import os

import numpy
import pytest

from tinyvae.experiment.studies import opening
from tinyvae.experiment.studies.opening import status_changes

FACTORS = ["shape", "scale", "orientation", "posX", "posY"]
STEPS = numpy.arange(50, 1001, 50)                                         # (R,) 20 rows


def test_status_changes_by_hand():
    closed = numpy.zeros(20)
    assert status_changes(STEPS, closed) == (None, None, 0)
    # the start's transient (over the line at steps 50-100, under from 150) is no opening;
    # it opens at 600, closes at 800, opens again at 900 and stays
    kl = numpy.where((STEPS <= 100) | ((STEPS >= 600) & (STEPS < 800)) | (STEPS >= 900),
                     2.0, 0.2)
    assert status_changes(STEPS, kl) == (600, 900, 3)
    # over the line from the first row to the end: open from the first row on
    assert status_changes(STEPS, numpy.full(20, 5.0)) == (50, 50, 1)


def _mi(is_open):
    """Position in z1, shape in z4 where group 2 is open (else nowhere much)."""
    mi = numpy.full((6, 5), 0.02)                                          # (Z, K)
    mi[0, 3:] = 0.5
    mi[3 if is_open else 1, 0] = 0.4 if is_open else 0.03
    return mi.tolist()


def _run(tmp_path, name, routing, opens, steps=STEPS, train_opens=None):
    """A scored run of (3, 3) models; model m's group 2 is open on the test images when
    opens[m], and in training from step 500 on when train_opens[m] (default: opens[m])."""
    train_opens = opens if train_opens is None else train_opens
    run = tmp_path / name
    run.mkdir()
    records, rows = [], []
    for m, is_open in enumerate(opens):
        kl2 = 2.5 if is_open else 0.1
        records.append({"index": m, "seed": m, "beta": 1.0, "model": "grouped",
                        "groups": [3, 3], "routing": routing, "kl_scale": [1.0, 1.0],
                        "encoder_hidden": [256, 256], "decoder_hidden": [256, 256, 256],
                        "step": int(steps[-1]), "kl_per_dim": [4.0 + m, 3.0, 2.0, kl2, 0.0, 0.0],
                        "active_dims": [0, 1, 2] + ([3] if is_open else []),
                        "rec_loss_prefix": [150.0, 140.0 - 10 * is_open],
                        "rec_loss_full": 140.0 - 10 * is_open,
                        "mic_groups": [[-0.2, 0, 0, 0.3, 0.3],
                                       [0.4 if is_open else -0.1, 0, 0, -0.3, -0.3]],
                        "mi": _mi(is_open), "entropy": [1.0] * 5})
        for step in steps:
            late = train_opens[m] and step >= 500
            rows.append({"step": step, "model": m, "kl_z1": 4.0, "kl_z2": 3.0, "kl_z3": 2.0,
                         "kl_z4": 2.5 if late else 0.1, "kl_z5": 0.0, "kl_z6": 0.0})
    (run / "metrics.json").write_text(json.dumps(
        {"protocol": {"factors": FACTORS}, "models": records}))
    with open(run / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(run)


def test_the_report_counts_openings_and_tests_them(tmp_path, capsys):
    routed = _run(tmp_path, "routed", "paper", [True, True, True, False])
    plain = _run(tmp_path, "plain", "none", [True, False, False, False])
    assert opening.main([routed, plain, "--report", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "opening.md").read_text()
    assert text.startswith("# Group 2:")
    routed_row = next(line for line in text.splitlines() if line.startswith("| grouped, H=256 |"))
    # 3 of 4 open since step 500, test and training agree, the shape MIC of the open ones
    # 0.40, of the closed -0.10; group 1's KL per model 9, 10, 11, 12 nats: mean 10.5, sd 1.29
    assert routed_row == ("| grouped, H=256 | 4 | 3 | 3 | 500 (500–500) | 500 of 1000 | 0 | "
                          "0.40 / -0.10 | 130.0 / 140.0 | 10.50 ± 1.29 |")
    # 3 of 4 against 1 of 4: Fisher's p = 34/70; group 1 alike in both: spread p = 1
    pair = next(line for line in text.splitlines() if "| 3/4 / 1/4 |" in line)
    cells = [c.strip() for c in pair.split("|")[4:-1]]
    assert cells[1] == "0.4857" and cells[3:] == ["1.00 / 1.00", "1.0000"]
    # 3 of 4 against 1 of 4 open: +0.50, its interval around it within [-1, 1]; group 1's
    # KL the same in both arms: 0, and an interval of 0 (each arm resampled alone moves it)
    share, low, high = (float(v) for v in cells[0].replace("[", "").replace("]", "")
                        .replace(",", "").split())
    assert share == 0.5 and -1 <= low < share < high <= 1
    assert cells[2].startswith("+0.00 [")
    assert ("| grouped, H=256 | z4 3, z2 1 (0.31) | z1 4 (0.02) | z1 4 (0.02) | z1 4 (0.50) | "
            "z1 4 (0.50) |") in text                       # (3 * 0.4 + 0.03) / 4 = 0.31
    with open(tmp_path / "report" / "opening.csv", newline="") as f:
        per_model = list(csv.DictReader(f))
    assert len(per_model) == 8 and per_model[0]["open_2"] == "True"
    assert per_model[3]["first_open_2"] == "" and per_model[0]["changes_2"] == "1"
    assert [r["time_to_open_2"] for r in per_model[:4]] == ["500", "500", "500", "1000"]
    assert (tmp_path / "report" / "opening.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "survival.png").stat().st_size > 10_000


def test_the_survival_section_by_hand(tmp_path):
    """Routed: 3 of 4 open at 500, one censored at 1000; plain: 1 of 4 at 500. Kaplan-Meier:
    S(500) = 1/4 routed, 3/4 plain. Log-rank, one event time (8 at risk, 4 open, 4 of them
    routed): expected 2 routed openings, variance 4 (1/2)(1/2)(8 - 4)/(8 - 1) = 4/7, chi2 =
    (3 - 2)^2 / (4/7) = 1.75, p = 0.1859. Cox (Breslow), one tied time: 3 b - 4 log(4 + 4
    e^b) is highest at e^b / (1 + e^b) = 3/4, HR 3; information 4 (3/4)(1/4) = 3/4, so the
    interval is 3 exp(+-1.96 / sqrt(3/4)) = [0.31, 28.84]. A longer run of the same models,
    given only to the survival section, replaces their shorter one there."""
    routed = _run(tmp_path, "routed", "paper", [True, True, True, False])
    plain = _run(tmp_path, "plain", "none", [True, False, False, False])
    longer = _run(tmp_path, "longer", "none", [True, True, False, False],
                  steps=numpy.arange(50, 3001, 50))
    assert opening.main([routed, plain, "--report", str(tmp_path / "r"),
                         "--survival-also", longer]) == 0
    text = (tmp_path / "r" / "opening.md").read_text()
    head, survival = text.split("## When group 2 opens, as survival data")
    assert "3000" not in head and "stays over the line" in survival
    # plain followed to 3000 (its longer run): 2 of 4 opened at 500; routed, 3 of 4 by 500
    # routed, S(500) = 1/4, Greenwood 3/(4*1), se of log(-log S) sqrt(3/4)/ln 4 = 0.62: open
    # 1 - 0.25^exp(-+1.96 se) = [0.33, 0.99]; past its 1000 steps, no reading ("—")
    assert "| grouped, H=256 | 4 | 3 | 1000 | 0.75 [0.33, 0.99] | — | — | 500 |" in survival
    assert "| grouped, no routing, H=256 | 4 | 2 | 3000 | 0.50 [" in survival
    # at 500, 8 at risk and 5 open: E = 5 * 4/8 = 2.5, V = 5 (1/2)(1/2)(3/7) = 15/28, chi2 =
    # 0.25 / (15/28) = 0.47; Cox: 3 = 5 e^b / (1 + e^b), HR 1.5, information 5 (3/5)(2/5)
    assert "| 3/4 / 2/4 | 3 / 2.50 | 0.47 | 0.4945 | 1.50 [0.25, 8.98] |" in survival
    short = _run(tmp_path, "short", "none", [True, False, False, False])
    survival = opening.opening_report([routed, short])[1].split("## When group 2 opens")[1]
    assert "| 3/4 / 1/4 | 3 / 2.00 | 1.75 | 0.1859 | 3.00 [0.31, 28.84] |" in survival
    # an arm with fewer than 2 openings is not fitted; one with 3 is, with all three models
    assert "| grouped, no routing, H=256 | — | fewer than 2 openings |" in survival
    assert all(f"| grouped, H=256 | {m} | " in survival for m in ("exponential", "Weibull", "cure"))


@pytest.mark.parametrize("args", [["--group", "3"], ["--group", "0"]])
def test_a_group_the_runs_lack_is_one_line_and_exit_2(tmp_path, capsys, args):
    run = _run(tmp_path, "routed", "paper", [True, False])
    assert opening.main([run, "--report", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert err == "opening: error: --group " + args[1] + ": the runs have groups 1 to 2\n"


def test_an_unscored_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert opening.main([str(tmp_path), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("opening: error: cannot read a scored run") and err.count("\n") == 1


def test_test_and_training_disagreeing_and_runs_of_other_lengths(tmp_path):
    """A model open on the test images whose training KL never crossed is counted, not a
    crash; the same configuration trained to two lengths is two arms, told apart by steps."""
    short = _run(tmp_path, "short", "paper", [True, False], train_opens=[False, False])
    long = _run(tmp_path, "long", "paper", [True, True], steps=numpy.arange(50, 2001, 50))
    assert opening.main([short, long, "--report", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "opening.md").read_text()
    assert ("| grouped, H=256 (1000 steps) | 2 | 1 | 0 | — | — of 1000 | 1 | " in text)
    assert ("| grouped, H=256 (2000 steps) | 2 | 2 | 2 | 500 (500–500) | 500 of 2000 | 0 | "
            in text)


def test_a_run_without_its_log_and_a_report_that_cannot_be_written(tmp_path, capsys):
    run = _run(tmp_path, "routed", "paper", [True, False])
    (tmp_path / "blocker").write_text("a file where the report folder should go")
    assert opening.main([run, "--report", str(tmp_path / "blocker" / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("opening: error: cannot write --report ") and err.count("\n") == 1
    os.remove(os.path.join(run, "log.csv"))
    assert opening.main([run, "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no log.csv rows of model 0" in err and err.count("\n") == 1
