"""The whole pipeline end to end through the real command lines: train (Grouped-VAE and
β-VAE, two configurations of two seeds each, and the routing ablation, one seed), evaluate, the report and the learning curves;
two broken directories beside them; then one model's numbers recomputed here by hand.

Shapes: M models, N test images, P pixels, Z latent, K factors.
"""
import csv
import errno
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from tinyvae.data.dataset import TEST_SIZE, open_dataset, test_split
from tinyvae.experiment.scoring.evaluate_models import encode_test_set, score_points, test_images
from tinyvae.metrics import scores
from tinyvae.experiment.run.checkpoint import load_run, snapshot_path
from tinyvae.experiment.reports.full_report import configurations, table1, table1_markdown
from tinyvae.metrics.checks import MetricsInputError
from tinyvae.metrics.mig import mutual_info_matrix
from tinyvae.metrics.modularity import modularity
from tinyvae.metrics.sap import sap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402  (the command itself: pytest.ini puts the repository root on sys.path)
from test_train import NARROW, run  # noqa: E402

N = 400               # test images scored: the protocol's 10,000 take seconds per model
POINTS = 100          # --score-points: DCI on the recipe's 10,000 takes minutes per model
TRAIN = {"grouped": ["--model", "grouped", "--seeds", "2", "--snapshot-every", "1"],
         "beta": ["--model", "beta", "--beta", "5,1", "--seeds", "2"],
         "unrouted": ["--model", "grouped", "--routing", "none"]}
FIGURES = ("figure1_mic.png", "figure2_mig.png", "mi_heatmaps.png")


def command(script, *args):
    return [sys.executable, os.path.join(ROOT, script), *map(str, args)]


def evaluate_cli(*args):
    return subprocess.run(command("evaluate.py", *args, "--test-size", N, "--score-points",
                                  POINTS, "--no-progress"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs (2 steps: writing the checkpoint is most of it, so they train in
    parallel), one unfinished run and one with a corrupt checkpoint."""
    base = tmp_path_factory.mktemp("runs")
    procs = [subprocess.Popen(command("train.py", *flags, "--steps", 2, "--batch-size", 4,
                                      "--no-progress", "--out", base / name),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT) for name, flags in TRAIN.items()]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    config = json.loads((base / "beta" / "config.json").read_text())
    (base / "unfinished").mkdir()
    (base / "unfinished" / "config.json").write_text(json.dumps({**config, "steps": 9}))
    os.symlink(base / "beta" / "checkpoint.npz", base / "unfinished" / "checkpoint.npz")
    (base / "corrupt").mkdir()
    shutil.copy(base / "beta" / "config.json", base / "corrupt")
    (base / "corrupt" / "checkpoint.npz").write_bytes(b"PK\x03\x04 cut short")
    return base


@pytest.fixture(scope="module")
def evaluated(runs):
    dirs = [runs / d for d in ("grouped", "unfinished", "beta", "unrouted", "corrupt")]
    proc = evaluate_cli(*dirs, "--report", runs / "report", "--batch-size", 150)
    assert proc.returncode == 0, proc.stderr
    return proc


def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_broken_runs_are_reported_in_one_line_and_skipped(runs, evaluated):
    lines = evaluated.stderr.strip().splitlines()
    assert len(lines) == 2, evaluated.stderr
    assert lines[0].startswith(f"evaluate.py: skipping {runs / 'unfinished'}: unfinished")
    assert lines[1].startswith(f"evaluate.py: skipping {runs / 'corrupt'}: ")
    assert "corrupt" in lines[1] and "Traceback" not in evaluated.stderr
    assert not (runs / "corrupt" / "metrics.json").exists()


def test_every_model_of_a_run_is_scored_with_its_protocol(runs, evaluated):
    for name, seeds, betas, groups in (("grouped", [0, 1], [1, 1], [3, 3]),
                                       ("beta", [0, 1, 0, 1], [5, 5, 1, 1], [6]),
                                       ("unrouted", [0], [1], [3, 3])):
        out = metrics(runs / name)
        protocol = out["protocol"]
        assert protocol["bins"] == 20 and protocol["n_images"] == N
        assert protocol["test_size"] == TEST_SIZE and protocol["data_source"] == "renderer"
        assert protocol["factors"] == ["shape", "scale", "orientation", "posX", "posY"]
        assert protocol["active_threshold_nats"] == 0.1 and protocol["first_dims"] == [0, 1, 2]
        models = out["models"]
        assert [m["seed"] for m in models] == seeds and [m["beta"] for m in models] == betas
        for m in models:
            assert m["groups"] == groups and m["step"] == 2
            assert m["routing"] == ("none" if name == "unrouted" else "paper")
            assert numpy.array(m["mi"]).shape == (6, 5) and len(m["entropy"]) == 5
            assert numpy.array(m["mic_groups"]).shape == (len(groups), 5)
            assert 0 <= m["mig"] <= 1 and m["mig"] == pytest.approx(numpy.mean(m["gaps"]))
            assert len(m["kl_per_dim"]) == 6 and len(m["rec_loss_prefix"]) == len(groups)
            assert m["active_dims"] == [j for j in range(6) if m["kl_per_dim"][j] > 0.1]
            # the last prefix is the whole latent
            assert m["rec_loss_full"] == m["rec_loss_prefix"][-1]
        # Figure 1's first three dimensions are the grouped model's first group
        if name == "grouped":
            assert models[0]["mic_first3"] == models[0]["mic_groups"][0]
    # trained models differ: the seeds did make different models
    first, second = metrics(runs / "grouped")["models"]
    assert first["mi"] != second["mi"]


def test_scores_match_a_recomputation_by_hand(runs, evaluated):
    """The JSON's numbers for the grouped run, from the model, its test images and an
    independent BCE in float64: every model sees the images it should, in batches or not."""
    _, model, _ = load_run(runs / "grouped")
    dataset = open_dataset()
    indices = test_images(dataset.n_images, N)                              # (N,)
    assert set(indices) <= set(test_split(dataset.n_images)[0])
    assert set(dataset.factors(indices)[:, 0]) == {0, 1, 2}                 # every shape
    x = dataset.images(numpy.stack([indices] * model.models), numpy, numpy.float32)  # (M, N, P)
    mu, logvar = model.encode(x)                                            # (M, N, Z)
    zin = numpy.concatenate([mu[..., :3], numpy.zeros_like(mu[..., 3:])], axis=2)   # (M, N, Z)
    for m, scored in enumerate(metrics(runs / "grouped")["models"]):
        for z, rec in ((zin, scored["rec_loss_prefix"][0]), (mu, scored["rec_loss_full"])):
            logits = model.decode(z)[m].astype(numpy.float64)               # (N, P)
            bce = numpy.logaddexp(0, logits) - x[m] * logits                # (N, P)
            assert rec == pytest.approx(bce.sum(axis=1).mean(), rel=1e-4)
        kl = 0.5 * (mu[m] ** 2 + numpy.exp(logvar[m]) - 1 - logvar[m])     # (N, Z)
        numpy.testing.assert_allclose(scored["kl_per_dim"], kl.mean(axis=0), rtol=1e-4)
        mi = mutual_info_matrix(mu[m], dataset.factors(indices))            # (Z, K)
        # batches of 150 vs one pass may move a code across a bin edge: one image of 400
        numpy.testing.assert_allclose(scored["mi"], mi, atol=0.02)


def test_table_1_and_figures_are_written(runs, evaluated):
    report = runs / "report"
    table = (report / "table1.md").read_text()
    assert table in evaluated.stdout                                        # printed too
    header = table.splitlines()[0]
    # the paper's column order: grouped first, its ablation beside it, then β-VAE by β
    assert (header.index("grouped") < header.index("grouped, no routing")
            < header.index("β-VAE β=1") < header.index("β-VAE β=5"))
    assert "| Average MIG | " in table and "| Average reconstruction loss | " in table
    with open(report / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["configuration"] for r in rows] == ["grouped", "grouped, no routing",
                                                  "β-VAE β=1", "β-VAE β=5"]
    assert [int(r["trials"]) for r in rows] == [2, 1, 2, 2]
    beta1 = [m for m in metrics(runs / "beta")["models"] if m["beta"] == 1]
    assert float(rows[2]["mig_std"]) == pytest.approx(
        numpy.std([m["mig"] for m in beta1], ddof=1))                 # over the two seeds
    # the paper has no ablation: no paper value beside it
    assert [r["paper_mig"] for r in rows] == ["0.023", "", "0.014", "0.027"]
    unrouted = metrics(runs / "unrouted")["models"][0]
    assert float(rows[1]["mig_mean"]) == pytest.approx(unrouted["mig"])
    # every trial, Figure 1's dots as numbers
    with open(report / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert [(t["configuration"], t["seed"]) for t in trials] == [
        ("grouped", "0"), ("grouped", "1"), ("grouped, no routing", "0"), ("β-VAE β=1", "0"),
        ("β-VAE β=1", "1"), ("β-VAE β=5", "0"), ("β-VAE β=5", "1")]
    assert float(trials[2]["mic_first3_posX"]) == pytest.approx(unrouted["mic_first3"][3])
    assert "| grouped, no routing | 0 | " in (report / "trials.md").read_text()
    grouped = metrics(runs / "grouped")["models"]
    assert float(rows[0]["rec_loss_mean"]) == pytest.approx(
        numpy.mean([m["rec_loss_full"] for m in grouped]))
    for name in FIGURES:
        with Image.open(report / name) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_a_run_without_its_checkpoint_joins_the_report_with_its_metrics_json(runs, evaluated,
                                                                           tmp_path):
    """Committed runs keep config.json and metrics.json, not checkpoints: their records join
    a report as they are (a new run scored beside them), under the same protocol only."""
    for name in ("grouped", "beta"):
        (tmp_path / name).mkdir()
        for f in ("config.json", "metrics.json"):
            shutil.copy(runs / name / f, tmp_path / name / f)
    before = (tmp_path / "beta" / "metrics.json").read_bytes()
    proc = evaluate_cli(tmp_path / "grouped", tmp_path / "beta", "--report", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    assert (f"{tmp_path / 'beta'}: no checkpoint here; the 4 records of its metrics.json "
            "(step 2) are used as they are") in proc.stdout
    assert (tmp_path / "beta" / "metrics.json").read_bytes() == before
    with open(tmp_path / "r" / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(runs / "report" / "table1.csv", newline="") as f:
        scored_here = [r for r in csv.DictReader(f) if r["configuration"] != "grouped, no routing"]
    assert rows == scored_here
    # a run scored before --scores existed: no SAP or modularity, and no "scores" protocol
    old = json.loads(before)
    old["protocol"].pop("scores")
    for m in old["models"]:
        del m["sap"], m["modularity"]
    (tmp_path / "beta" / "metrics.json").write_text(json.dumps(old))
    mixed = evaluate_cli(tmp_path / "grouped", tmp_path / "beta", "--report", tmp_path / "r3")
    assert mixed.returncode == 0, mixed.stderr
    table = (tmp_path / "r3" / "table1.md").read_text()
    sap_row = next(line for line in table.splitlines() if line.startswith("| Average SAP |"))
    assert sap_row.endswith("| — | — |") and "—" not in sap_row.split("|")[2]
    assert f"fit on {POINTS} and test on {POINTS // 2} points" in table
    other = evaluate_cli(tmp_path / "beta", "--report", tmp_path / "r2", "--bins", 10)
    assert other.returncode == 1 and not (tmp_path / "r2").exists()
    assert other.stderr.splitlines()[0] == (
        f"evaluate.py: skipping {tmp_path / 'beta'}: no checkpoint, and its metrics.json was "
        "scored under another protocol or holds no records: score it where its checkpoint is, "
        "or pass the --bins and --test-size it was scored with")


def test_nothing_to_evaluate_fails_and_bad_flags_are_usage_errors(runs, tmp_path, capsys):
    status = evaluate.main([str(runs / "unfinished"), str(tmp_path / "missing"),
                            str(runs / "corrupt"), "--report", str(tmp_path / "r"),
                            "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1 and not (tmp_path / "r").exists()
    assert err.count("evaluate.py: skipping") == 3 and "Traceback" not in err
    for bad in ([], [str(runs / "beta"), "--bins", "1"], [str(runs / "beta"), "--test-size", "5"]):
        with pytest.raises(SystemExit) as exit:
            evaluate.main(bad)
        assert exit.value.code == 2


def test_a_run_given_twice_and_an_empty_report_are_refused_before_any_scoring(tmp_path, capsys):
    """`evaluate.py ok1 ok1` counted one run's models as two trials (seeds) of Table 1, and
    `--report=` scored everything before failing to write the report in ''."""
    (tmp_path / "ok1").mkdir()
    os.symlink(tmp_path / "ok1", tmp_path / "link")
    for argv, line in (
            (["ok1", "ok1"], "ok1 and ok1 are the same run directory: give each run once"),
            ([tmp_path / "ok1", tmp_path / "link"], f"{tmp_path / 'link'} and "
             f"{tmp_path / 'ok1'} are the same run directory: give each run once"),
            (["ok1", "--report="], "--report is empty: give a folder for the table and "
             "figures, or leave --report out for report/")):
        with pytest.raises(SystemExit) as exit:
            evaluate.main([*map(str, argv), "--no-progress"])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and err.endswith(f": error: {line}\n"), err


def test_a_data_folder_says_how_evaluate_takes_the_renderer(tmp_path, capsys, no_figures):
    """For evaluate.py no --data means each run's own data; the renderer is --data renderer
    (the message said "give no path (no --data) to use the built-in renderer")."""
    small = tmp_path / "small"
    run("--out", small, "--steps", "1", "--batch-size", "4", *NARROW, "--no-progress", check=0)
    status = evaluate.main([str(small), "--data", str(tmp_path), "--report",
                            str(tmp_path / "r"), "--no-progress"])
    assert status == 1 and capsys.readouterr().err == (
        f"evaluate.py: skipping {small}: {tmp_path} is a folder: give the dSprites .npz file "
        "(dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz) itself; fetch the original from "
        "github.com/deepmind/dsprites-dataset, give --data renderer to score on the built-in "
        "renderer, or leave --data out to use each run's own data\n"
        "evaluate.py: no run could be evaluated\n")
    assert not (small / "metrics.json").exists() and not (tmp_path / "r").exists()


def test_what_cannot_be_written_is_refused_before_any_scoring(tmp_path, capsys, monkeypatch,
                                                             no_figures, read_only):
    """A run directory on a read-only file system, or a --report that names a file or a
    read-only place, ended in a traceback after all the scoring. Now: one line, exit 2, before
    any; and a report that still cannot be written at the end (a disk that filled), one line."""
    small = tmp_path / "small"
    run("--out", small, "--steps", "1", "--batch-size", "4", *NARROW, "--no-progress", check=0)
    scored = []
    real = evaluate.score_models
    monkeypatch.setattr(evaluate, "score_models",
                        lambda *args, **kwargs: scored.append(args) or real(*args, **kwargs))
    (tmp_path / "taken").write_text("mine")
    (tmp_path / "readonly").mkdir()
    read_only(tmp_path / "readonly")
    for report, line in (
            (tmp_path / "taken", f"--report {tmp_path / 'taken'}: {tmp_path / 'taken'} is a "
             "file, not a folder; choose another --report"),
            (tmp_path / "readonly" / "report", f"--report {tmp_path}/readonly/report: cannot "
             f"write in {tmp_path / 'readonly'} (Read-only file system); choose another "
             "--report")):
        status = evaluate.main([str(small), "--report", str(report), "--no-progress"])
        assert (status, capsys.readouterr().err) == (2, f"evaluate.py: error: {line}\n")
    read_only(small)
    status = evaluate.main([str(small), "--report", str(tmp_path / "r"), "--no-progress"])
    assert (status, capsys.readouterr().err) == (2, (
        f"evaluate.py: error: {small}: its scores go to its metrics.json, but cannot write in "
        f"{small} (Read-only file system): make it writable, or copy the run directory "
        "somewhere that is\n"))
    assert not scored and (tmp_path / "taken").read_text() == "mine"
    monkeypatch.undo()

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(evaluate, "write_report", full)
    status = evaluate.main([str(small), "--report", str(tmp_path / "r"), "--test-size", "100",
                            "--scores", "mig,mic", "--no-progress"])
    assert status == 1 and capsys.readouterr().err == (
        f"evaluate.py: error: cannot write the report in {tmp_path / 'r'} ([Errno 28] No space "
        "left on device); the runs' scores are in their directories: make room or choose "
        "another --report, then run it again\n")


def test_the_cupy_pass_matches_the_numpy_reference(runs, cupy):
    """encode_test_set on CuPy against NumPy: means, KL per dimension, prefix losses."""
    dataset = open_dataset()
    indices = test_images(dataset.n_images, N)                              # (N,)
    cpu, gpu = (encode_test_set(load_run(runs / "grouped", xp)[1], dataset, indices,
                                150, False) for xp in (numpy, cupy))
    for name, c, g in zip(("mu", "kl_per_dim", "rec_loss_prefix"), cpu, gpu):
        assert isinstance(g, numpy.ndarray) and g.shape == c.shape, name
        numpy.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.fixture(scope="module")
def curves(runs, evaluated):
    """--curves over the grouped run (snapshots at steps 0, 1, 2) and the beta run (none)."""
    return evaluate_cli("--curves", runs / "grouped", runs / "beta", "--report",
                        runs / "curves", "--batch-size", 150)


def test_learning_curves_score_every_snapshot_like_the_final_checkpoint(runs, curves):
    assert curves.returncode == 0, curves.stderr
    assert curves.stderr.strip() == (f"evaluate.py: skipping {runs / 'beta'}: no snapshots; "
                                     "train it with --snapshot-every N to get learning curves")
    curve = json.loads((runs / "grouped" / "curve.json").read_text())
    assert [(r["step"], r["seed"]) for r in curve["models"]] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    # the step-2 snapshot is the final checkpoint: the same scores as metrics.json
    for r, final in zip(curve["models"][4:], metrics(runs / "grouped")["models"]):
        for key in ("mig", "rec_loss_full", "mic_first3", "kl_per_dim"):
            assert r[key] == pytest.approx(final[key], rel=1e-6), key
    assert curve["models"][2]["mi"] != curve["models"][4]["mi"]       # one step did move it
    with open(runs / "curves" / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["configuration"], r["seed"], r["step"]) for r in rows] == [
        ("grouped", s, t) for s in "01" for t in "012"]
    assert float(rows[2]["mig"]) == pytest.approx(curve["models"][4]["mig"])
    assert (runs / "curves" / "curves.md").read_text() in curves.stdout
    with Image.open(runs / "curves" / "learning_curves.png") as image:
        assert image.format == "PNG" and min(image.size) > 200


def test_learning_curves_keep_what_was_scored_under_the_same_protocol(runs, curves):
    path = runs / "grouped" / "curve.json"
    before = path.read_text()
    again = evaluate_cli("--curves", runs / "grouped", "--report", runs / "curves2")
    assert again.returncode == 0, again.stderr
    assert "step 1:" not in again.stdout and path.read_text() == before   # nothing redone
    # a rewritten snapshot (a resumed CuPy run, say) is scored again, and only it
    snap = snapshot_path(runs / "grouped", 1)
    os.utime(snap, ns=(os.stat(snap).st_atime_ns, os.stat(snap).st_mtime_ns + 10**9))
    rewritten = evaluate_cli("--curves", runs / "grouped", "--report", runs / "curves2")
    assert rewritten.returncode == 0, rewritten.stderr
    assert "step 1:" in rewritten.stdout and "step 2:" not in rewritten.stdout
    # a corrupt snapshot is skipped in one line; the others still count
    (runs / "grouped" / "snapshots" / "step_0000003.npz").write_bytes(b"PK\x03\x04 cut short")
    corrupt = evaluate_cli("--curves", runs / "grouped", "--report", runs / "curves2")
    assert corrupt.returncode == 0 and "Traceback" not in corrupt.stderr
    assert corrupt.stderr.startswith("evaluate.py: skipping snapshot ") and "step 1:" not in \
        corrupt.stdout and len(json.loads(path.read_text())["models"]) == 6
    assert "step_0000003.npz: corrupt" in corrupt.stderr and "--overwrite" not in corrupt.stderr
    other = evaluate_cli("--curves", runs / "grouped", "--report", runs / "curves3",
                         "--bins", 10)
    assert other.returncode == 0, other.stderr
    assert "step 1:" in other.stdout and "step 2:" in other.stdout       # new protocol: redone
    assert json.loads(path.read_text())["protocol"]["bins"] == 10


def test_learning_curves_of_a_run_without_its_snapshots_are_its_curve_json(runs, curves,
                                                                           tmp_path):
    """A committed run keeps config.json and curve.json, not its snapshots: --curves takes
    its records as they are, under the protocol they were scored with, and no other."""
    small = tmp_path / "committed"
    small.mkdir()
    for name in ("config.json", "curve.json"):
        shutil.copy(runs / "grouped" / name, small / name)
    curve = json.loads((small / "curve.json").read_text())
    bins = curve["protocol"]["bins"]
    kept = evaluate_cli("--curves", small, "--report", tmp_path / "report", "--bins", bins)
    assert kept.returncode == 0, kept.stderr
    assert (f"{small}: no snapshots here; the {len(curve['models'])} records of its curve.json "
            f"(steps 0-2) are used as they are") in kept.stdout
    with open(tmp_path / "report" / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["step"]) for r in rows] == [(s, t) for s in "01" for t in "012"]
    assert float(rows[2]["mig"]) == pytest.approx(curve["models"][4]["mig"])
    assert (small / "curve.json").read_bytes() == (runs / "grouped" / "curve.json").read_bytes()
    other = evaluate_cli("--curves", small, "--report", tmp_path / "other", "--bins", bins + 1)
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert other.stderr.splitlines()[0] == (
        f"evaluate.py: skipping {small}: no snapshots, and its curve.json was scored under "
        "another protocol or holds no records: score it where its snapshots are, or pass the "
        "--bins and --test-size it was scored with")


def test_records_scored_before_the_routing_setting_count_as_the_papers():
    """metrics.json and curve.json written before routing was recorded: their grouped
    models join today's routed ones as one configuration, never the ablation's."""
    from tinyvae.experiment.reports.full_report import configurations
    old = {"model": "grouped", "beta": 1.0, "groups": [3, 3], "step": 5, "seed": 0}
    new = {**old, "seed": 1, "routing": "paper"}
    ablation = {**old, "seed": 2, "routing": "none"}
    configs = configurations([old, new, ablation])
    assert [(label, [t["seed"] for t in trials]) for label, trials in configs] == [
        ("grouped", [0, 1]), ("grouped, no routing", [2])]


TABLE_ROWS = ["Average MIG", "Average reconstruction loss", "Average SAP", "Average modularity",
              "KL per group (nats)", "active latents per group", "L_rec,i per prefix (nats)",
              "trials (seeds)", "steps", "paper: Average MIG",
              "paper: Average reconstruction loss"]


def row_names(table):
    return [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]
            if line.startswith("| ")]


def test_the_default_scores_are_the_cheap_ones_on_their_images(runs, evaluated):
    """Without --scores: MIG, MIC, SAP and modularity, each with the images it used; SAP
    recomputed here on the points the protocol names, modularity from the MI matrix."""
    for name in ("grouped", "beta", "unrouted"):
        out = metrics(runs / name)
        scores = out["protocol"]["scores"]
        assert list(scores) == ["mig", "mic", "sap", "modularity"]
        assert scores["mig"]["images"].startswith("the fixed test images")
        assert "MI matrix of MIG" in scores["modularity"]["images"]
        assert "whole factor grid" in scores["sap"]["images"]
        assert (scores["sap"]["seed"], scores["sap"]["train_points"],
                scores["sap"]["test_points"]) == (0, POINTS, POINTS // 2)
        for m in out["models"]:
            assert "dci" not in m and "factorvae" not in m
            assert m["modularity"] == modularity(m["mi"])
            assert numpy.array(m["sap"]["scores"]).shape == (6, 5)
    _, model, _ = load_run(runs / "grouped")
    dataset = open_dataset()
    indices = score_points(dataset, POINTS + POINTS // 2)                   # (N,)
    assert len(set(indices) - set(test_split(dataset.n_images)[0])) > 100   # the whole grid
    mu, _ = model.encode(dataset.images(numpy.stack([indices] * model.models), numpy,
                                        numpy.float32))                     # (M, N, Z)
    factors = dataset.factors(indices)                                      # (N, K)
    for m, scored in enumerate(metrics(runs / "grouped")["models"]):
        by_hand = sap(mu[m, :POINTS], factors[:POINTS], mu[m, POINTS:], factors[POINTS:])
        # test accuracies of 50 points: rounding in a batch of another shape may move one
        numpy.testing.assert_allclose(scored["sap"]["scores"], by_hand["scores"], atol=0.021)
    table = (runs / "report" / "table1.md").read_text()
    assert row_names(table) == TABLE_ROWS
    assert "Average DCI" not in table and "FactorVAE" not in table
    assert "SAP (linear SVMs" in table and f"test on {POINTS // 2} points" in table
    with open(runs / "report" / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    beta1 = [m for m in metrics(runs / "beta")["models"] if m["beta"] == 1]
    assert float(rows[2]["sap_mean"]) == pytest.approx(numpy.mean([m["sap"]["sap"] for m in beta1]))
    assert float(rows[2]["modularity_std"]) == pytest.approx(
        numpy.std([m["modularity"] for m in beta1], ddof=1))
    assert "dci_mean" not in rows[0] and "factorvae_mean" not in rows[0]


def test_the_expensive_scores_when_asked(runs, evaluated, tmp_path):
    """--scores dci,factorvae on the one-model run (a copy: its metrics.json stays): those
    two and MIG, MIC; not SAP or modularity, which were not asked."""
    run = tmp_path / "unrouted"
    run.mkdir()
    shutil.copy(runs / "unrouted" / "config.json", run)
    os.symlink(runs / "unrouted" / "checkpoint.npz", run / "checkpoint.npz")
    proc = evaluate_cli(run, "--scores", "dci,factorvae", "--report", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    for what in ("mig, mic (the test-set pass)", "dci", "factorvae"):
        assert f"{run}: {what}: " in proc.stdout                           # a time each
    out = metrics(run)
    scores = out["protocol"]["scores"]
    assert list(scores) == ["mig", "mic", "dci", "factorvae"]
    assert (scores["dci"]["train_points"], scores["dci"]["test_points"]) == (POINTS, POINTS // 2)
    assert {k: scores["factorvae"][k] for k in ("seed", "batch_size", "variance_points",
                                                 "train_votes", "eval_votes")} == {
        "seed": 0, "batch_size": 64, "variance_points": POINTS, "train_votes": POINTS,
        "eval_votes": POINTS // 2}
    (m,) = out["models"]
    assert "sap" not in m and "modularity" not in m
    assert numpy.array(m["dci"]["importance"]).shape == (6, 5)
    assert 0 <= m["dci"]["disentanglement"] <= 1
    assert m["factorvae"]["num_active_dims"] > 0
    assert numpy.sum(m["factorvae"]["votes"]) == POINTS                  # the training votes
    table = (tmp_path / "report" / "table1.md").read_text()
    names = row_names(table)
    assert names[2:4] == ["Average DCI disentanglement",
                          "Average FactorVAE score (eval accuracy)"]
    assert "Average SAP" not in names and names[4] == "KL per group (nats)"   # scores end
    assert "No published values of DCI, the FactorVAE score: " in table
    assert f"{POINTS} images for the variances" in table


def test_a_score_missing_from_a_trial_shows_a_dash():
    base = {"model": "beta", "beta": 1.0, "groups": [6], "step": 5, "mig": 0.1,
            "rec_loss_full": 50.0, "routing": "paper", "kl_per_dim": [1.0] * 6,
            "active_dims": [0, 1], "rec_loss_prefix": [50.0]}
    records = [{**base, "seed": 0, "sap": {"sap": 0.2}, "modularity": 0.5},
               {**base, "seed": 1, "sap": {"sap": 0.4}},
               {**base, "beta": 5.0, "seed": 0, "modularity": 0.7}]
    rows = table1(configurations(records))
    assert rows[0]["sap_mean"] == pytest.approx(0.3) and rows[0]["modularity_mean"] is None
    assert rows[1]["sap_mean"] is None and rows[1]["modularity_mean"] == 0.7
    protocol = {"bins": 20, "n_images": 400, "active_threshold_nats": 0.1, "scores": {
        "sap": {"train_points": 100, "test_points": 50, "seed": 0}}}
    lines = table1_markdown(rows, protocol).splitlines()
    assert lines[4] == "| Average SAP | 0.300 ± 0.141 | — |"
    assert lines[5] == "| Average modularity | — | 0.700 |"


def test_bad_scores_are_usage_errors_and_score_errors_skip_the_run(runs, tmp_path, capsys,
                                                                   monkeypatch):
    choose = "; choose from mig,mic,dci,sap,modularity,factorvae"
    for bad, message in ((["--scores", "mig,bogus"], "--scores: unknown bogus" + choose),
                         (["--scores", ","], "--scores: no score named" + choose),
                         (["--curves", "--scores", "dci"],
                          "--curves scores MIG and MIC only; ask for dci without --curves")):
        with pytest.raises(SystemExit) as exit:
            evaluate.main([str(runs / "beta"), *bad])
        assert exit.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f": error: {message}")

    def refuse(*args):
        raise MetricsInputError("SAP cannot score this")

    monkeypatch.setitem(scores.OTHER_SCORES, "sap", refuse)
    status = evaluate.main([str(runs / "grouped"), "--scores", "sap", "--test-size", "100",
                            "--score-points", "100", "--report", str(tmp_path / "r"),
                            "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1 and err.splitlines() == [
        f"evaluate.py: skipping {runs / 'grouped'}: SAP cannot score this",
        "evaluate.py: no run could be evaluated"]
