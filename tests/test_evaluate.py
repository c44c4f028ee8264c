"""The whole pipeline end to end through the real command lines: train (Grouped-VAE and
β-VAE, two configurations of two seeds each, and the routing ablation, one seed), evaluate, the report and the learning curves;
two broken directories beside them; then one model's numbers recomputed here by hand.

Shapes: M models, N test images, P pixels, Z latent, K factors.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from tinyvae.data import TEST_SIZE, open_dataset, test_split
from tinyvae.metrics import mutual_info_matrix
from tinyvae.runs import load_run, snapshot_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import evaluate  # noqa: E402  (the top-level script, imported for its helpers)

N = 400               # test images scored: the protocol's 10,000 take seconds per model
TRAIN = {"grouped": ["--model", "grouped", "--seeds", "2", "--snapshot-every", "1"],
         "beta": ["--model", "beta", "--beta", "5,1", "--seeds", "2"],
         "unrouted": ["--model", "grouped", "--routing", "none"]}
FIGURES = ("figure1_mic.png", "figure2_mig.png", "mi_heatmaps.png")


def command(script, *args):
    return [sys.executable, os.path.join(ROOT, script), *map(str, args)]


def evaluate_cli(*args):
    return subprocess.run(command("evaluate.py", *args, "--test-size", N, "--no-progress"),
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
    indices = evaluate.test_images(dataset.n_images, N)                     # (N,)
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


def test_the_cupy_pass_matches_the_numpy_reference(runs, cupy):
    """encode_test_set on CuPy against NumPy: means, KL per dimension, prefix losses."""
    dataset = open_dataset()
    indices = evaluate.test_images(dataset.n_images, N)                     # (N,)
    cpu, gpu = (evaluate.encode_test_set(load_run(runs / "grouped", xp)[1], dataset, indices,
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


def test_records_scored_before_the_routing_setting_count_as_the_papers():
    """metrics.json and curve.json written before routing was recorded: their grouped
    models join today's routed ones as one configuration, never the ablation's."""
    from tinyvae.report import configurations
    old = {"model": "grouped", "beta": 1.0, "groups": [3, 3], "step": 5, "seed": 0}
    new = {**old, "seed": 1, "routing": "paper"}
    ablation = {**old, "seed": 2, "routing": "none"}
    configs = configurations([old, new, ablation])
    assert [(label, [t["seed"] for t in trials]) for label, trials in configs] == [
        ("grouped", [0, 1]), ("grouped, no routing", [2])]
