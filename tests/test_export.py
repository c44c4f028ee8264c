"""Exported models (scripts/export_model.py, tinyvae/experiment/export.py): one model of a run,
its parameters stored small, loaded by `load_run` into the model the run trained (to float16
rounding), and every committed one scoring as its metrics.json says.

tests/fixtures/exported-tiny is a committed export of a tiny run, so that the committed-model
check runs before any real model is in results/models/. It was made in the repository root by
    python train.py --encoder-hidden 8,8 --decoder-hidden 8,8,8 --lr 1e-3 --steps 200 \
        --seeds 2 --no-progress --out runs/fixture-tiny
    python scripts/export_model.py runs/fixture-tiny --model 1 --out tests/fixtures/exported-tiny
"""
import glob
import json
import os
import runpy
import subprocess
import sys

import numpy
import pytest

import train  # noqa: E402  (the command itself: pytest.ini puts the repository root on sys.path)
from tinyvae.experiment.export import METRICS, export_model, models_of_run, rescore
from tinyvae.experiment.checkpoint import load_checkpoint, load_run
from tinyvae.experiment.files import PARAMS, RunError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "export_model.py")
COMMITTED = sorted(glob.glob(os.path.join(ROOT, "results", "models", "*", PARAMS))
                   + [os.path.join(ROOT, "tests", "fixtures", "exported-tiny", PARAMS)])
# Scored again under another BLAS, a float32 encoder mean can move by its last bit, and an
# image may then cross one of the 20 bin edges of the MI estimate: losses and KL agree to
# 1e-5 relative, the MI-based scores to 0.005 (one image of 2000 moves each by about 1e-3).
LOSS_RTOL, MI_ATOL = 1e-5, 5e-3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run of two models (seeds 4 and 5)."""
    out = tmp_path_factory.mktemp("export") / "run"
    assert train.main(["--encoder-hidden", "8,8", "--decoder-hidden", "8,8,8", "--steps", "20",
                       "--seed", "4", "--seeds", "2", "--batch-size", "16", "--no-progress",
                       "--out", str(out)]) == 0
    return out


def export(*args):
    """The command as a shell runs it: exit status, stdout, stderr."""
    done = subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    return done.returncode, done.stdout, done.stderr


def export_here(capsys, monkeypatch, *args):
    """The same in this process (a new interpreter costs seconds on a loaded machine)."""
    monkeypatch.setattr(sys, "argv", [SCRIPT, *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(SCRIPT, run_name="__main__")
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def test_an_exported_model_is_the_run_s_model_and_scores_as_at_its_export(run, tmp_path):
    out = tmp_path / "seed5"
    code, printed, errors = export(run, "--model", 1, "--out", out, "--test-size", 300)
    assert code == 0, errors
    assert printed.startswith(f"{out}: model 1 of {run} (seed 5, step 20), float16; on "
                                  "300 test images: MIG ")
    config, model, state = load_run(out)
    assert (config["model_seeds"], model.models, model.seeds, state["step"]) == ([5], 1, [5], 20)
    assert config["exported"] == {"run": str(run), "model": 1, "step": 20,
                                  "params_dtype": "float16"}
    trained, _ = load_checkpoint(run, params_only=True)
    stored, _ = load_checkpoint(out, params_only=True, path=os.path.join(out, PARAMS))
    for name, p in model.params.items():
        assert stored["param/" + name].dtype == numpy.float16
        assert numpy.array_equal(p, trained["param/" + name][1:2].astype(numpy.float16))
    with open(out / METRICS) as f:
        committed = json.load(f)
    protocol, records = rescore(out)
    assert protocol["n_images"] == 300 and committed["protocol"]["n_images"] == 300
    record, = committed["models"]
    assert (record["seed"], record["step"], record["index"]) == (5, 20, 0)
    assert json.loads(json.dumps(records[0], default=lambda a: a.tolist())) == record
    # The other model of the run is another model: the export took model 1, not 0.
    _, other = export_model(str(run), 0, str(tmp_path / "seed4"), test_size=300)
    assert other["seed"] == 4 and other["rec_loss_full"] != record["rec_loss_full"]


@pytest.mark.parametrize("params", COMMITTED,
                         ids=[os.path.basename(os.path.dirname(p)) for p in COMMITTED])
def test_every_committed_model_loads_and_scores_as_committed(params):
    where = os.path.dirname(params)
    assert os.path.getsize(params) < 6_000_000, "a committed model is a few MB at most"
    with open(os.path.join(where, METRICS)) as f:
        committed = json.load(f)
    protocol, (now,) = rescore(where)
    record, = committed["models"]
    assert protocol["n_images"] == committed["protocol"]["n_images"]
    for key in ("seed", "beta", "step", "groups", "routing", "active_dims"):
        assert numpy.array_equal(now[key], record[key]), key
    for key in ("rec_loss_full", "rec_loss_prefix", "kl_per_dim"):
        numpy.testing.assert_allclose(now[key], record[key], rtol=LOSS_RTOL, err_msg=key)
    for key in ("mig", "gaps", "mi", "mic_groups", "mic_first3"):
        numpy.testing.assert_allclose(now[key], record[key], rtol=0, atol=MI_ATOL, err_msg=key)


def test_list_names_each_model_with_the_kl_of_each_group(run, capsys, monkeypatch):
    lines = models_of_run(run)
    assert [line.split()[:4] for line in lines] == [["model", "0", "seed", "4"],
                                                   ["model", "1", "seed", "5"]]
    assert all("step     20  KL per group " in line for line in lines)
    code, printed, _ = export_here(capsys, monkeypatch, run, "--list")
    assert code == 0 and printed.splitlines() == lines


def test_bad_requests_are_one_line_and_exit_2(run, tmp_path, capsys, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases = [((run, "--model", 2, "--out", tmp_path / "a"), "holds models 0..1; --model 2"),
             ((run, "--model", 0, "--out", tmp_path / "full"), "exists and is not empty"),
             ((tmp_path / "nowhere", "--model", 0, "--out", tmp_path / "b"), "cannot read"),
             ((tmp_path / "nowhere", "--list"), "cannot read"),
             ((run, "--model", 0), "give --model M and --out DIR"),
             ((run, "--model", 0, "--out", tmp_path / "c", "--test-size", 50), "100..10000")]
    for args, says in cases:
        code, printed, errors = export_here(capsys, monkeypatch, *args)
        assert code == 2 and says in errors and printed == "", (args, errors)
        assert errors.strip().splitlines()[-1].startswith("export_model.py: error: ")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_an_unfinished_run_is_exported_only_when_asked(run, tmp_path):
    config = json.loads((run / "config.json").read_text())
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({**config, "steps": 40}))
    (unfinished / "checkpoint.npz").write_bytes((run / "checkpoint.npz").read_bytes())
    with pytest.raises(RunError, match="unfinished .checkpoint at step 20 of 40"):
        export_model(str(unfinished), 0, str(tmp_path / "a"))
    _, record = export_model(str(unfinished), 0, str(tmp_path / "a"), test_size=100,
                             allow_unfinished=True)
    assert record["step"] == 20


def test_a_damaged_export_says_what_to_do(run, tmp_path):
    out = tmp_path / "m"
    export_model(str(run), 0, str(out), test_size=100)
    (out / PARAMS).write_bytes(b"not a zip")
    with pytest.raises(RunError, match="corrupt or truncated.*export it again, or restore it"):
        load_run(out)
