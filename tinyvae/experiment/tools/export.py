"""One trained model taken out of a run directory, small enough to commit and to load in
seconds (scripts/export_model.py; results/models/):

    NAME/config.json    the run's config for this model alone (models = 1, its seed and beta),
                        and under "exported" where it came from
    NAME/params.npz     its parameters alone, in the checkpoint's format (param/<name>, each
                        (1, ...)), stored as float16 by default: half the bytes of float32
    NAME/metrics.json   its scores (evaluate_models.score_models, as evaluate.py computes them) on
                        the first `test_size` evenly spaced fixed test images, computed from
                        the stored parameters: what `rescore` must give again

An export is built in a hidden directory beside NAME and renamed to NAME at its end, so one
that fails (the run's data gone, a full disk, Ctrl-C) leaves nothing, and can be run again.
`checkpoint.load_run(NAME)` (also `tinyvae.experiment.load_run`) loads it into a ready
GroupedVAE, as it loads a run.

Shapes: M models of the run; parameters as in vae.py.
"""
import json
import os
import shutil

import numpy

from ...data.dataset import DataError
from ..run.checkpoint import load_checkpoint, load_run
from ..scoring.evaluate_models import BATCH, BINS, FixedTestSets, make_protocol, score_models
from ..run.storage import (CONFIG, LOG, METRICS, PARAMS, RunError, atomic_write, read_json,
                           read_log, write_json)
from ..scoring.metrics_files import plain
from ..run.directory import check_out, progress
from ..scoring.model_record import group_sums

TEST_SIZE = 2000        # images scored at export: about 1.5 s for a 256-wide model on 2 cores
DTYPES = ("float16", "float32")


def export_model(run_dir, m, out, dtype="float16", test_size=TEST_SIZE,
                 allow_unfinished=False):
    """Write model `m` of the run in `run_dir` to the new directory `out` and score it there;
    returns (protocol, record). RunError, saying why, when it cannot; then nothing is made."""
    config = read_json(os.path.join(run_dir, CONFIG))
    seeds = config["model_seeds"]
    if not 0 <= m < len(seeds):
        raise RunError(f"{run_dir} holds models 0..{len(seeds) - 1}; --model {m} is not one")
    if dtype not in DTYPES:
        raise RunError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
    check_out(out)
    if os.path.exists(out) and os.listdir(out):
        raise RunError(f"{out} exists and is not empty; choose a new --out, or remove it")
    done = progress(run_dir)
    # No checkpoint at all: load_checkpoint below says so, and what to do.
    if done.step is not None and not done.finished and not allow_unfinished:
        training = f", still being trained by pid {done.holder['pid']}" if done.holder else ""
        raise RunError(f"{run_dir}: unfinished (checkpoint at {done}{training}); finish it, or "
                       "pass --allow-unfinished")
    arrays, state = load_checkpoint(run_dir, params_only=True)
    step = int(state["step"])
    params = {k: a[m:m + 1].astype(dtype) for k, a in arrays.items()
              if k.startswith("param/")}                                  # (1, ...) each
    big = [k[6:] for k, a in params.items() if not numpy.isfinite(a).all()]
    if big:
        raise RunError(f"{', '.join(big)} of model {m} do not fit in {dtype}; "
                       "export with --dtype float32")
    beta = config["model_betas"][m]
    one = {**config, "seed": seeds[m], "seeds": 1, "model_seeds": [seeds[m]],
           "betas": [beta], "model_betas": [beta], "out": out,
           "exported": {"run": run_dir, "model": m, "step": step, "params_dtype": dtype}}
    parent, name = os.path.split(os.path.abspath(out))
    made = outermost_missing(parent)
    work = os.path.join(parent, f".{name}.tmp{os.getpid()}")    # hidden: no glob of */ sees it
    try:
        os.makedirs(work)
        write_json(os.path.join(work, CONFIG), one)
        atomic_write(os.path.join(work, PARAMS), lambda f: numpy.savez_compressed(
            f, state=numpy.array(json.dumps({"step": step})), **params))
        try:
            protocol, records = rescore(work, test_size)
        except DataError as err:
            # Its own fix names --data, which this command does not have.
            raise RunError(f"{err.defect}; an export is scored on the data its run was "
                           f"trained on ({run_dir}/{CONFIG}, \"data\"): put that file back "
                           "there, and export again") from None
        records = [plain(r) for r in records]          # as evaluate.py writes metrics.json
        write_json(os.path.join(work, METRICS), {"protocol": protocol, "models": records})
        os.replace(work, out)                          # an empty `out` is replaced whole
    except BaseException:
        shutil.rmtree(made or work, ignore_errors=True)
        raise
    return protocol, records[0]


def outermost_missing(path):
    """The outermost directory on the way to `path` that does not exist yet, or None when
    `path` exists: what os.makedirs(path) would make."""
    missing = None
    while not os.path.exists(path):
        missing, path = path, os.path.dirname(path)
    return missing


def rescore(out, test_size=None):
    """(protocol, records) of the exported model in `out`, scored now as at its export; the
    test size is the committed metrics.json's unless given."""
    config, model, state = load_run(out)
    if test_size is None:
        test_size = read_json(os.path.join(out, METRICS))["protocol"]["n_images"]
    test = FixedTestSets(size=test_size).of(config)
    records = score_models(model, config, int(state["step"]), test, BATCH, BINS)
    return make_protocol(BINS, test, config, numpy), records


def models_of_run(run_dir):
    """One line per model of a run from the last row of its log.csv: seed, beta, step, the
    KL of each group and the last L_rec (training batches' means): to choose one to export."""
    config = read_json(os.path.join(run_dir, CONFIG))
    rows = read_log(os.path.join(run_dir, LOG))
    if not rows:
        raise RunError(f"{run_dir}: no {LOG} rows yet")
    last = {int(r["model"]): r for r in rows}                  # the last row of each model
    latent = sum(config["groups"])                             # Z
    lines = []
    for m, r in sorted(last.items()):
        kl = group_sums([float(r[f"kl_z{d + 1}"]) for d in range(latent)],
                        config["groups"])                          # (G,)
        lines.append(f"model {m:2d}  seed {r['seed']:>3}  beta {r['beta']:>4}  step "
                     f"{r['step']:>6}  KL per group " + " ".join(f"{k:6.2f}" for k in kl)
                     + f"  L_rec,{len(kl)} {float(r[f'rec_{len(kl)}']):7.1f}")
    return lines
