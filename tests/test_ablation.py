"""The routing ablation through train.py's command line: --routing is recorded, names the
run, is part of what a resume must agree on, and shows in the routing report; runs made
before the setting existed resume as the paper's routing."""
import contextlib
import csv
import io
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import train  # noqa: E402

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
    header, rec2 = report[1].split(), report[3].split()
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
    assert train.default_out(train.make_config(args)) == os.path.join(
        "runs", "grouped-b1-g3,3-routing-none-s0-1")
    assert train.default_out(train.make_config(train.parse_args([]))) == os.path.join(
        "runs", "grouped-b1-g3,3-s0")


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
