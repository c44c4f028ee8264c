"""The routing ablation through train.py's command line: --routing (and the per-group KL weight
--kl-scale, and the widths --encoder-hidden / --decoder-hidden) are recorded, name the run, are
part of what a resume must agree on, and show in the routing report; runs made before a setting
existed resume with the paper's value."""
import contextlib
import csv
import io
import json
import os

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (the command itself: pytest.ini puts the repository root on sys.path)
from tinyvae.experiment.run.configuration import run_name  # noqa: E402

FAST = ["--batch-size", "4", "--no-progress", "--log-every", "1", "--checkpoint-every", "2"]


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def rows(run_dir):
    with open(os.path.join(run_dir, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_routing_is_recorded_reported_and_part_of_a_runs_identity(tmp_path):
    out = tmp_path / "ablation"
    code, stdout, _ = run("--routing", "none", "--steps", "2", "--explain", "--out", out, *FAST)
    assert code == 0
    assert json.loads((out / "config.json").read_text())["routing"] == "none"
    report = stdout.splitlines()
    assert "routing 'none'" in report[0]
    header, rec2 = report[2].split(), report[4].split()       # two header lines
    assert header[-1] == "blocked" and rec2[0] == "L_rec,2" and rec2[-1] == "0"
    # L_rec,2 reaches z_1's mu and logvar: the first two columns are not zero
    assert float(rec2[1]) > 0 and float(rec2[2]) > 0
    # both routings log what L_rec,2 sends to z_1 .. z_3 and to z_4 .. z_6
    assert all(float(r["grad_rec_2_to_earlier"]) > 0 < float(r["grad_rec_2_to_own"])
               for r in rows(out))
    code, _, err = run("--steps", "4", "--resume", "--out", out, *FAST)
    assert code == 2 and "routing: run has 'none', flags give 'paper'" in err
    assert [r["step"] for r in rows(out)] == ["1", "2"]                 # nothing was touched
    code, _, _ = run("--routing", "none", "--steps", "3", "--resume", "--out", out, *FAST)
    assert code == 0 and [r["step"] for r in rows(out)] == ["1", "2", "3"]


def test_the_default_run_name_says_when_the_routing_is_not_the_papers():
    args = train.parse_args(["--routing", "none", "--seeds", "2"])
    assert run_name(train.make_config(args)) == "grouped-b1-g3,3-routing-none-s0-1"
    assert run_name(train.make_config(train.parse_args([]))) == "grouped-b1-g3,3-s0"


def test_a_run_from_before_the_routing_setting_resumes_as_the_papers(tmp_path):
    """Its config has no "routing" and its log none of the gradient-norm columns: the resume
    is accepted, and the log is rewritten under the new header with those cells empty."""
    out = tmp_path / "old"
    assert run("--steps", "2", "--out", out, *FAST)[0] == 0
    config = json.loads((out / "config.json").read_text())
    del config["routing"]
    (out / "config.json").write_text(json.dumps(config))
    old = [{k: v for k, v in r.items() if not k.startswith("grad_")} for r in rows(out)]
    with open(out / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(old[0]))
        writer.writeheader()
        writer.writerows(old)
    code, stdout, err = run("--steps", "3", "--resume", "--out", out, *FAST)
    assert code == 0, err
    new = rows(out)
    assert [r["step"] for r in new] == ["1", "2", "3"]
    assert new[0]["grad_rec_2_to_own"] == "" and float(new[2]["grad_rec_2_to_own"]) > 0
    assert new[0]["total"] == old[0]["total"]


NARROW = ["--encoder-hidden", "8,6", "--decoder-hidden", "5,7,9"]


def test_kl_scale_and_widths_are_recorded_named_and_part_of_a_runs_identity(tmp_path):
    out = tmp_path / "scaled"
    code, stdout, err = run("--routing", "none", "--kl-scale", "2,1", *NARROW, "--steps", "2",
                            "--explain", "--out", out, *FAST)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["kl_scale"] == [2.0, 1.0]
    assert config["encoder_hidden"] == [8, 6] and config["decoder_hidden"] == [5, 7, 9]
    assert stdout.splitlines()[0].endswith(", KL scale per group 2,1")
    weights = numpy.load(out / "checkpoint.npz")
    assert weights["param/encoder.0.W"].shape == (1, 4096, 8)
    assert weights["param/decoder.2.W"].shape == (1, 7, 9)
    for flags, difference in ((["--kl-scale", "3,1", *NARROW], "kl_scale: run has [2.0, 1.0]"),
                              (["--kl-scale", "2,1", "--encoder-hidden", "8,8",
                                "--decoder-hidden", "5,7,9"], "encoder_hidden: run has [8, 6]"),
                              ([*NARROW], "kl_scale: run has [2.0, 1.0], flags give [1.0, 1.0]")):
        code, _, err = run("--routing", "none", *flags, "--steps", "4", "--resume", "--out",
                           out, *FAST)
        assert code == 2 and difference in err, err
    assert [r["step"] for r in rows(out)] == ["1", "2"]                 # nothing was touched
    code, _, err = run("--routing", "none", "--kl-scale", "2,1", *NARROW, "--steps", "3",
                       "--resume", "--out", out, *FAST)
    assert code == 0, err
    args = train.parse_args(["--routing", "none", "--kl-scale", "2,1", *NARROW])
    assert (run_name(train.make_config(args))
            == "grouped-b1-g3,3-routing-none-kl2,1-eh8,6-dh5,7,9-s0")
    args = train.parse_args(["--kl-scale", "1,1", "--decoder-hidden", "1200,1200,1200"])
    assert run_name(train.make_config(args)) == "grouped-b1-g3,3-s0"


def test_a_run_from_before_the_scale_and_width_settings_resumes_with_the_papers(tmp_path):
    out = tmp_path / "old"
    assert run("--steps", "2", "--out", out, *FAST)[0] == 0
    config = json.loads((out / "config.json").read_text())
    for key in ("kl_scale", "encoder_hidden", "decoder_hidden"):
        del config[key]
    (out / "config.json").write_text(json.dumps(config))
    code, _, err = run("--steps", "3", "--resume", "--out", out, *FAST)
    assert code == 0, err
    code, _, err = run("--steps", "4", "--resume", "--kl-scale", "2,1", "--out", out, *FAST)
    assert code == 2 and "kl_scale: run has [1.0, 1.0], flags give [2.0, 1.0]" in err


@pytest.mark.parametrize("args, message", [
    (["--kl-scale", "2"], "--kl-scale 2: give one positive, finite number per group (2 for "
                          "groups 3,3), e.g. --kl-scale 1,1"),
    (["--kl-scale", "2,0"], "one positive, finite number per group"),
    (["--kl-scale", "2,-1"], "one positive, finite number per group"),
    (["--kl-scale", "inf,1"], "one positive, finite number per group"),
    (["--kl-scale", "nan,1"], "one positive, finite number per group"),
    (["--kl-scale", "2,x"], "--kl-scale must be a comma-separated list of numbers like 2,1"),
    (["--encoder-hidden", "0,5"], "--encoder-hidden widths must be positive integers, got 0,5"),
    (["--decoder-hidden", "5.5"], "--decoder-hidden must be a comma-separated list of numbers"),
    (["--encoder-hidden", ""], "--encoder-hidden must be a comma-separated list of numbers"),
])
def test_bad_scale_or_widths_give_one_line(tmp_path, args, message):
    code, _, err = run(*args, "--steps", "1", "--out", tmp_path / "bad", *FAST)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
