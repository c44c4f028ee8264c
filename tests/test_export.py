"""Exported models (scripts/export_model.py, tinyvae/experiment/tools/export.py): one model of
a run, its parameters stored small, loaded by `load_run` into the model the run trained (to float16
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
from tinyvae.data.dataset import open_dataset, test_split
from tinyvae.experiment.scoring.evaluate_models import FixedTestSets, score_models
from tinyvae.experiment.tools.export import METRICS, export_model, models_of_run, rescore
from tinyvae.experiment.run.checkpoint import load_checkpoint, load_run
from tinyvae.experiment.run.storage import PARAMS, RunError
from tinyvae.experiment.scoring.metrics_files import plain

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


def scored_by_hand(model, m, n_images):
    """The test KL per latent (Z,) and L_rec (BCE summed over pixels, decoded from the means)
    of model `m` on `n_images` of the fixed test images evenly spaced, computed here from the
    model's encoder and decoder alone: not through evaluate_models.py."""
    test, _ = test_split()                                                  # (10000,)
    pick = test[numpy.linspace(0, len(test) - 1, n_images).round().astype(int)]   # (N,)
    x = open_dataset().images(numpy.broadcast_to(pick, (model.models, n_images)),
                              numpy, numpy.float32).astype(numpy.float64)        # (M, N, P)
    mu, logvar = (a.astype(numpy.float64) for a in model.encode(x))         # (M, N, Z) x2
    logits = model.decode(mu).astype(numpy.float64)                         # (M, N, P)
    bce = numpy.logaddexp(0, logits) - x * logits                           # (M, N, P)
    kl = 0.5 * (mu ** 2 + numpy.exp(logvar) - 1 - logvar)                   # (M, N, Z)
    return kl[m].mean(axis=0), bce[m].sum(axis=1).mean()


def test_an_exported_model_is_the_run_s_model_and_scores_as_at_its_export(run, tmp_path):
    out = tmp_path / "seed5"
    code, printed, errors = export(run, "--model", 1, "--out", out, "--test-size", 300)
    assert code == 0, errors
    assert printed.startswith(f"{out}: model 1 of {run} (seed 5, step 20), float16; on "
                                  "300 test images: MIG ")
    assert sorted(os.listdir(tmp_path)) == ["seed5"]          # nothing of the build is left
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
    record, = committed["models"]
    assert committed["protocol"]["n_images"] == 300 and committed["protocol"]["bins"] == 20
    assert (record["seed"], record["step"], record["index"]) == (5, 20, 0)
    # Scored apart from the export: the run's own two models, their parameters rounded to
    # float16 as the export stores them, once through evaluate_models.py as evaluate.py scores a
    # run, once by hand from the encoder and decoder. Model 1 must score as the export says.
    config_run, both, _ = load_run(run)
    for p in both.params.values():
        p[...] = p.astype(numpy.float16)
    test = FixedTestSets(size=300).of(config_run)
    apart = plain(score_models(both, config_run, 20, test, 1000, 20)[1])
    assert (apart["seed"], apart["step"]) == (5, 20)
    for key in ("groups", "routing", "active_dims"):
        assert apart[key] == record[key], key
    for key in ("rec_loss_full", "rec_loss_prefix", "kl_per_dim"):
        numpy.testing.assert_allclose(record[key], apart[key], rtol=LOSS_RTOL, err_msg=key)
    for key in ("mig", "gaps", "mi", "mic_groups", "mic_first3"):
        numpy.testing.assert_allclose(record[key], apart[key], rtol=0, atol=MI_ATOL,
                                      err_msg=key)
    # The same encoder and decoder outputs, the losses summed here in float64: they agree to
    # about 1e-9 of L_rec, so a scoring that decodes from anything but the means shows (this
    # model is barely trained: decoding from 0.9 mu moves L_rec by 1e-5 of itself).
    kl, rec = scored_by_hand(both, 1, 300)
    numpy.testing.assert_allclose(record["kl_per_dim"], kl, rtol=LOSS_RTOL)
    numpy.testing.assert_allclose(record["rec_loss_full"], rec, rtol=1e-7)
    # Scored again, the export gives what it wrote.
    protocol, records = rescore(out)
    assert protocol["n_images"] == 300 and plain(records[0]) == record
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
             ((run, "--model", 0, "--out", tmp_path / "full" / "x"),
              f"--out {tmp_path / 'full' / 'x'}: {tmp_path / 'full' / 'x'} is a file, not a "
              "directory; choose another --out"),
             ((run, "--model", 0, "--out", tmp_path / "full" / "x" / "m"),
              f"is a file, not a directory ({tmp_path / 'full' / 'x'} is in its way)"),
             ((tmp_path / "nowhere", "--model", 0, "--out", tmp_path / "b"), "cannot read"),
             ((tmp_path / "nowhere", "--list"), "cannot read"),
             ((run, "--model", 0), "give --model M and --out DIR"),
             ((run, "--model", 0, "--out", tmp_path / "c", "--test-size", 50), "100..10000")]
    for args, says in cases:
        code, printed, errors = export_here(capsys, monkeypatch, *args)
        assert code == 2 and says in errors and printed == "", (args, errors)
        # argparse's refusals come after its usage lines; the export's own are one line
        assert errors.strip().splitlines()[-1].startswith("export_model.py: error: ")
    assert sorted(os.listdir(tmp_path)) == ["full"] and os.listdir(tmp_path / "full") == ["x"]


def test_an_export_that_fails_while_scoring_leaves_nothing_and_says_what_to_do(
        run, tmp_path, capsys, monkeypatch):
    """The run's data file gone: the parameters are out, the scoring fails. Nothing of the
    export stays (a directory it made on the way either), so the same command runs again once
    the file is back; and the fix is this command's, which has no --data."""
    gone = tmp_path / "dsprites.npz"
    moved = tmp_path / "moved"
    moved.mkdir()
    config = json.loads((run / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "data": str(gone)}))
    (moved / "checkpoint.npz").write_bytes((run / "checkpoint.npz").read_bytes())
    for out in (tmp_path / "m", tmp_path / "new" / "deeper" / "m"):
        code, printed, errors = export_here(capsys, monkeypatch, moved, "--model", 0,
                                            "--out", out)
        assert code == 2 and printed == "" and errors.count("\n") == 1, errors
        assert errors.startswith(f"export_model.py: error: {gone}: no such file; an export is "
                                 f"scored on the data its run was trained on ({moved}/"
                                 'config.json, "data"): put that file back there'), errors
        assert "--data" not in errors
        assert sorted(os.listdir(tmp_path)) == ["moved"]


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
