"""Score trained runs as paper §5 does: `python evaluate.py runs/*`.

Per run directory, all its M models in one batched pass over the fixed 10,000 test images:
the MI matrix of the encoder means, MIG (eq. 12), MIC (eq. 13) of every factor with each
latent group and with the first three dimensions (Figure 1), KL per dimension, active
dimensions, and the test reconstruction loss from the full latent and from each group prefix
(eq. 8), written to DIR/metrics.json with the protocol. With --scores, the field's other scores
beside them (tinyvae/metrics/: DCI, SAP, modularity, the FactorVAE score), each on the images
its recipe takes (SCORE_IMAGES), encoded for all M models together too. Across runs: Table 1,
Figures 1-2 and MI heat maps in --report (tinyvae/experiment/table1.py). With --curves, MIG,
MIC and the losses for every snapshot of a run, in DIR/curve.json, and learning curves in --report
(tinyvae/experiment/curves.py).

Shapes: M models, N test images, n images per batch, P pixels, Z latent, G groups, K factors.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import argparse
import os
import sys
import time

import numpy
from tqdm import tqdm

from tinyvae.backend import BackendError, get_xp
from tinyvae.data.dataset import TEST_SIZE, DataError, open_dataset
from tinyvae.experiment.curves import write_curves
from tinyvae.experiment.evaluation import (SCORE_SEED, encode_means, make_protocol, score_models,
                                           score_points, test_images)
from tinyvae.experiment.runs import (CHECKPOINT, CONFIG, RunError, build_model, load_run,
                                     load_weights, read_json, snapshot_path, snapshot_steps,
                                     training_holder, write_json)
from tinyvae.experiment.table1 import SCORE_ROWS, headline, write_report
from tinyvae.metrics.checks import TEST_POINTS, TRAIN_POINTS, MetricsInputError
from tinyvae.metrics.dci import dci
from tinyvae.metrics.factorvae import factorvae_scores
from tinyvae.metrics.mig import factor_entropy
from tinyvae.metrics.modularity import modularity
from tinyvae.metrics.sap import sap

METRICS, CURVE = "metrics.json", "curve.json"
SCORES = ("mig", "mic", "dci", "sap", "modularity", "factorvae")  # --scores, in computing order
ALWAYS = ("mig", "mic")                  # Table 1 and the figures need them
DEFAULT_SCORES = ("mig", "mic", "sap", "modularity")  # seconds per model; DCI, FactorVAE: minutes
# Which images each score sees (metrics.json's protocol, Table 1's caption).
TEST_IMAGES = "the fixed test images (n_images of the test_size held out by test_split_seed)"
DRAWN = ("drawn at random from the whole factor grid, every factor's class uniform and "
         "independent, with replacement, by numpy.random.default_rng(seed): so they may include "
         "training images, as in disentanglement_lib")
SCORE_IMAGES = {
    "mig": TEST_IMAGES, "mic": TEST_IMAGES,
    "modularity": "the MI matrix of MIG, over " + TEST_IMAGES,
    "dci": f"train_points then test_points more, {DRAWN}; the same points as SAP",
    "sap": f"train_points then test_points more, {DRAWN}; the same points as DCI",
    "factorvae": f"its own batches, {DRAWN}"}
RECIPES = {"dci": "disentanglement_lib dci.py: a GradientBoostingClassifier (100 trees of depth "
                  "3) per factor, importance from its feature importances",
           "sap": "disentanglement_lib sap_score.py: a LinearSVC(C=0.01, class_weight="
                  "'balanced') per dimension and factor, gaps of test accuracy"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Score trained runs (MIG, MIC, reconstruction loss, and the other scores "
                    "of --scores) and write the paper's Table 1, Figures 1-2 and MI heat maps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories of train.py; "
                   "one without its checkpoint but with a metrics.json (a committed run's "
                   "small files) adds those records as they are")
    p.add_argument("--report", default="report", help="folder for the table and figures")
    p.add_argument("--bins", type=int, default=20, help="equal-width bins per latent "
                   "dimension for the MI estimate (the paper's 20)")
    p.add_argument("--batch-size", type=int, default=1000, help="test images per pass (all "
                   "models of a run at once)")
    p.add_argument("--data", default=None, help="evaluate on this dSprites .npz, or "
                   "'renderer', instead of the data each run was trained on")
    p.add_argument("--gpu", action="store_true", help="evaluate on the GPU with CuPy; "
                   "without it NumPy, whichever backend trained the run")
    p.add_argument("--test-size", type=int, default=TEST_SIZE, help="score an evenly spaced "
                   "subset of the fixed test images: quick checks only, the paper uses all")
    p.add_argument("--allow-unfinished", action="store_true", help="also score runs whose "
                   "checkpoint stopped short of their --steps")
    p.add_argument("--curves", action="store_true", help="learning curves instead of Table 1: "
                   "score every snapshot of each run (train.py --snapshot-every) into "
                   "RUN_DIR/curve.json, and draw them in --report; a run directory without its snapshots "
                   "but with a curve.json (a committed run's small files) adds that as it is")
    p.add_argument("--scores", default=argparse.SUPPRESS, help="comma list of the scores to "
                   f"compute, from {','.join(SCORES)} (default {','.join(DEFAULT_SCORES)}: "
                   "seconds per model). MIG and MIC are always computed: Table 1 and the "
                   "figures need them. DCI and the FactorVAE score (about 3 minutes per model "
                   "each on a 2-core CPU) are opt-in. --curves takes MIG and MIC only")
    p.add_argument("--score-points", type=int, default=TRAIN_POINTS, help="quick checks "
                   "only: DCI and SAP fit on this many points and test on half as many, the "
                   "FactorVAE score takes this many images for its variances, this many training "
                   "and half as many evaluation votes; the default is disentanglement_lib's")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    for flag, value, low, high in (("--bins", a.bins, 2, None),
                                   ("--batch-size", a.batch_size, 1, None),
                                   ("--test-size", a.test_size, 100, TEST_SIZE),
                                   ("--score-points", a.score_points, 100, None)):
        if value < low or (high is not None and value > high):
            p.error(f"{flag} must be at least {low}" + (f" and at most {high}" if high else "")
                    + f", got {value}")
    given = getattr(a, "scores", None)                      # None: --scores not given
    names = [n.strip() for n in (given or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in SCORES]
    if unknown or (given is not None and not names):
        p.error(f"--scores: {'unknown ' + ', '.join(unknown) if unknown else 'no score named'}"
                f"; choose from {','.join(SCORES)}")
    others = [n for n in SCORES if n in names and n not in ALWAYS]
    if a.curves and others:
        p.error(f"--curves scores MIG and MIC only; ask for {','.join(others)} without --curves")
    asked = set(names or (ALWAYS if a.curves else DEFAULT_SCORES)) | set(ALWAYS)
    a.scores = tuple(n for n in SCORES if n in asked)
    return a


def evaluate_run(run_dir, xp, a, datasets):
    """Score every model of one run directory's checkpoint and write its metrics.json."""
    scored = os.path.join(run_dir, METRICS)
    # The lock is there from train.py's start, the checkpoint from its first save.
    holder = training_holder(run_dir)
    checkpointed = os.path.exists(os.path.join(run_dir, CHECKPOINT))
    if holder and not checkpointed:
        raise RunError(f"still being trained (pid {holder['pid']}, since {holder['since']}), "
                       "no checkpoint yet: wait for its first one (every --checkpoint-every "
                       "steps)")
    if not checkpointed and os.path.exists(scored):
        config = read_json(os.path.join(run_dir, CONFIG))
        protocol = make_protocol(a.bins, fixed_test_set(config, a, datasets), config, xp)
        return scored_records(run_dir, scored, protocol, "checkpoint")
    # Checkpoints are renamed into place, so a run still training is read whole: the
    # checkpoint it had reached.
    config, model, state = load_run(run_dir, xp)
    step = int(state["step"])
    if step < config["steps"] and not a.allow_unfinished:
        if holder:
            raise RunError(f"still being trained (pid {holder['pid']}, since "
                           f"{holder['since']}): checkpoint at step {step} of "
                           f"{config['steps']}; wait for it, or pass --allow-unfinished to "
                           "score the checkpoint it has reached")
        raise RunError(f"unfinished: checkpoint at step {step} of {config['steps']} (finish "
                       "it with train.py --resume, or pass --allow-unfinished)")
    test = fixed_test_set(config, a, datasets)
    start = time.perf_counter()
    models = score_models(model, config, step, test, a.batch_size, a.bins, not a.no_progress)
    _took(run_dir, "mig, mic (the test-set pass)", start)
    protocol = make_protocol(a.bins, test, config, xp)
    protocol["scores"] = other_scores(models, model, test[0], a, run_dir)
    models = [_plain(r) for r in models]
    write_json(os.path.join(run_dir, METRICS), {"protocol": protocol, "models": models})
    training = (f"; still being trained (pid {holder['pid']}), scored at its step-{step} "
                "checkpoint" if holder else "")
    print(f"{run_dir}: {model.models} model(s), {_summary(models)} "
          f"({time.perf_counter() - start:.1f} s){training}")
    return protocol, models


def other_scores(records, model, dataset, a, run_dir):
    """The scores of a.scores beside MIG and MIC, into each model's record (all but modularity
    on images encoded for the M models together); returns {score: its protocol} of a.scores."""
    protocol = {name: {"images": SCORE_IMAGES[name]} for name in a.scores}
    progress = not a.no_progress
    if "modularity" in a.scores:
        start = time.perf_counter()
        for r in records:
            r["modularity"] = modularity(r["mi"])
        _took(run_dir, "modularity", start)
    split = [name for name in ("dci", "sap") if name in a.scores]
    if split:
        start = time.perf_counter()
        n_train, n_test = a.score_points, a.score_points * TEST_POINTS // TRAIN_POINTS
        indices = score_points(dataset, n_train + n_test)                   # (N,)
        factors = dataset.factors(indices)                                  # (N, K)
        codes = encode_means(model, dataset, indices, a.batch_size, progress,
                             "encoding DCI/SAP points")                     # (M, N, Z)
        _took(run_dir, f"{n_train} + {n_test} points for {', '.join(split)} encoded", start)
        for name in split:
            score, start = {"dci": dci, "sap": sap}[name], time.perf_counter()
            protocol[name].update(seed=SCORE_SEED, train_points=n_train, test_points=n_test,
                                  recipe=RECIPES[name])
            for m in tqdm(range(model.models), disable=not progress, leave=False,
                          unit="model", desc=name):
                records[m][name] = score(codes[m, :n_train], factors[:n_train],
                                         codes[m, n_train:], factors[n_train:])
            _took(run_dir, name, start)
    if "factorvae" in a.scores:
        start = time.perf_counter()
        n = a.score_points
        results = factorvae_scores(lambda i: encode_means(model, dataset, i, a.batch_size),
                                   dataset, SCORE_SEED, variance_points=n, train_votes=n,
                                   eval_votes=n * TEST_POINTS // TRAIN_POINTS, progress=progress)
        for r, result in zip(records, results):
            protocol["factorvae"].update(result.pop("protocol"))
            r["factorvae"] = result
        _took(run_dir, "factorvae", start)
    return protocol


def _took(run_dir, what, start):
    print(f"{run_dir}: {what}: {time.perf_counter() - start:.1f} s", flush=True)


def curve_run(run_dir, xp, a, datasets):
    """Score every snapshot of one run directory (train.py --snapshot-every) into its
    curve.json. A snapshot scored before under the same protocol, and not rewritten since,
    keeps its scores, so this can follow a run that is still training."""
    config = read_json(os.path.join(run_dir, CONFIG))
    steps = snapshot_steps(run_dir)
    path = os.path.join(run_dir, CURVE)
    if not steps and not os.path.exists(path):
        raise RunError("no snapshots; train it with --snapshot-every N to get learning curves")
    test = fixed_test_set(config, a, datasets)
    protocol = make_protocol(a.bins, test, config, xp)
    if not steps:
        return scored_records(run_dir, path, protocol, "snapshots")
    model = build_model(config, xp)
    try:
        old = read_json(path) if os.path.exists(path) else {}
        same = _comparable(old.get("protocol", {})) == _comparable(protocol)
        kept = [r for r in old.get("models", []) if same and r["step"] in steps
                and r["snapshot"] == _file_id(run_dir, r["step"])]
    except (RunError, KeyError, TypeError, OSError):
        kept = []                                   # unreadable or older: score everything
    done = {r["step"] for r in kept}
    records = list(kept)
    for step in steps:
        if step in done:
            continue
        where = snapshot_path(run_dir, step)
        try:
            identity = _file_id(run_dir, step)
            load_weights(model, run_dir, path=where)
        except (RunError, OSError) as err:
            print(f"evaluate.py: skipping snapshot {err}; the other steps are still scored",
                  file=sys.stderr)
            continue
        models = [{**_plain(r), "snapshot": identity}
                  for r in score_models(model, config, step, test, a.batch_size, a.bins,
                                        not a.no_progress)]
        records = sorted(records + models, key=lambda r: (r["step"], r["index"]))
        write_json(path, {"protocol": protocol, "models": records})
        print(f"{run_dir} step {step}: {_summary(models)}")
    return protocol, records


def scored_records(run_dir, path, protocol, missing):
    """The records of `path` (metrics.json or curve.json) of a run directory without its
    `missing` (checkpoint or snapshots: a committed run's small files), as they are, when they
    were scored under `protocol`; returns (its protocol, its records). No model is built."""
    old, name = read_json(path), os.path.basename(path)
    records = old.get("models") if isinstance(old, dict) else None
    where = "its checkpoint is" if missing == "checkpoint" else f"its {missing} are"
    if not records or _comparable(old.get("protocol", {})) != _comparable(protocol):
        raise RunError(f"no {missing}, and its {name} was scored under another protocol or "
                       f"holds no records: score it where {where}, or pass the --bins and "
                       "--test-size it was scored with")
    try:
        steps = sorted({r["step"] for r in records})
    except (KeyError, TypeError):
        raise RunError(f"its {name} has records without a step: score it again where "
                       f"{where}") from None
    span = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}"
    print(f"{run_dir}: no {missing} here; the {len(records)} records of its {name} ({span}) "
          "are used as they are")
    return old["protocol"], records


def _comparable(protocol):
    """What decides the scores: the protocol, less where they were computed."""
    return {k: v for k, v in protocol.items() if k not in ("backend", "device", "scores")}


def _file_id(run_dir, step):
    """A snapshot's size and modification time: a rewritten snapshot is scored again."""
    st = os.stat(snapshot_path(run_dir, step))
    return [st.st_size, st.st_mtime_ns]


def _summary(models):
    return ("MIG " + " ".join(f"{r['mig']:.3f}" for r in models) + ", rec loss "
            + " ".join(f"{r['rec_loss_full']:.1f}" for r in models)
            + "".join(f", {name} " + " ".join(f"{headline(r, name):.3f}" for r in models)
                      for name, *_ in SCORE_ROWS if name in models[0]))


def fixed_test_set(config, a, datasets):
    """(dataset, indices (N,), factors (N, K), entropy (K,)) of the fixed test images."""
    data = a.data or config["data"]
    if data not in datasets:
        datasets[data] = open_dataset(None if data == "renderer" else data)
    dataset = datasets[data]
    indices = test_images(dataset.n_images, a.test_size)                    # (N,)
    factors = dataset.factors(indices)                                      # (N, K)
    return dataset, indices, factors, factor_entropy(factors)


def _plain(obj):
    """obj with NumPy arrays and scalars as lists and plain numbers, for JSON."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj.tolist() if isinstance(obj, (numpy.ndarray, numpy.generic)) else obj


def main(argv=None):
    a = parse_args(argv)
    try:
        xp = get_xp(a.gpu)
    except BackendError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2
    datasets, protocol, records, scores = {}, None, [], {}
    for run_dir in a.runs:
        try:
            protocol, models = (curve_run if a.curves else evaluate_run)(run_dir, xp, a,
                                                                          datasets)
        except (RunError, DataError, MetricsInputError) as err:
            print(f"evaluate.py: skipping {run_dir}: {err}", file=sys.stderr)
            continue
        except KeyError as err:
            print(f"evaluate.py: skipping {run_dir}: config.json lacks {err}; not a run "
                  "directory of this train.py", file=sys.stderr)
            continue
        records += models
        scores.update(protocol.get("scores", {}))   # a run scored before --scores has none
    if not records:
        print("evaluate.py: no run could be evaluated", file=sys.stderr)
        return 1
    protocol = {**protocol, "scores": scores}        # what each score of any run used
    print((write_curves if a.curves else write_report)(records, protocol, a.report))
    print(f"report written to {a.report}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
