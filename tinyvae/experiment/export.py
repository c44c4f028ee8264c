"""One trained model taken out of a run directory, small enough to commit and to load in
seconds (scripts/export_model.py; results/models/):

    NAME/config.json    the run's config for this model alone (models = 1, its seed and beta),
                        and under "exported" where it came from
    NAME/params.npz     its parameters alone, in the checkpoint's format (param/<name>, each
                        (1, ...)), stored as float16 by default: half the bytes of float32
    NAME/metrics.json   its scores (evaluation.score_models, as evaluate.py computes them) on
                        the first `test_size` evenly spaced fixed test images, computed from
                        the stored parameters: what `rescore` must give again

`runs.load_run(NAME)` loads it into a ready GroupedVAE, as it loads a run.

Shapes: M models of the run; parameters as in vae.py.
"""
import json
import os

import numpy

from .checkpoint import load_checkpoint, load_run
from .evaluation import FixedTestSets, make_protocol, score_models
from .files import CONFIG, LOG, METRICS, PARAMS, RunError, read_json, read_log, write_json

TEST_SIZE = 2000        # images scored at export: about 1.5 s for a 256-wide model on 2 cores
BINS, BATCH = 20, 1000  # evaluate.py's defaults
DTYPES = ("float16", "float32")


def export_model(run_dir, m, out, dtype="float16", test_size=TEST_SIZE,
                 allow_unfinished=False):
    """Write model `m` of the run in `run_dir` to the new directory `out` and score it there;
    returns (protocol, record). RunError, saying why, when it cannot."""
    config = read_json(os.path.join(run_dir, CONFIG))
    seeds = config["model_seeds"]
    if not 0 <= m < len(seeds):
        raise RunError(f"{run_dir} holds models 0..{len(seeds) - 1}; --model {m} is not one")
    if dtype not in DTYPES:
        raise RunError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
    arrays, state = load_checkpoint(run_dir, params_only=True)
    step = int(state["step"])
    if step < config["steps"] and not allow_unfinished:
        raise RunError(f"{run_dir}: unfinished (checkpoint at step {step} of "
                       f"{config['steps']}); finish it, or pass --allow-unfinished")
    params = {k: a[m:m + 1].astype(dtype) for k, a in arrays.items()
              if k.startswith("param/")}                                  # (1, ...) each
    big = [k[6:] for k, a in params.items() if not numpy.isfinite(a).all()]
    if big:
        raise RunError(f"{', '.join(big)} of model {m} do not fit in {dtype}; "
                       "export with --dtype float32")
    if os.path.exists(out) and os.listdir(out):
        raise RunError(f"{out} exists and is not empty; choose a new --out, or remove it")
    os.makedirs(out, exist_ok=True)
    beta = config["model_betas"][m]
    one = {**config, "seed": seeds[m], "seeds": 1, "model_seeds": [seeds[m]],
           "betas": [beta], "model_betas": [beta], "out": out,
           "exported": {"run": run_dir, "model": m, "step": step, "params_dtype": dtype}}
    write_json(os.path.join(out, CONFIG), one)
    with open(os.path.join(out, PARAMS), "wb") as f:
        numpy.savez_compressed(f, state=numpy.array(json.dumps({"step": step})), **params)
    protocol, records = rescore(out, test_size)
    with open(os.path.join(out, METRICS), "w") as f:
        json.dump({"protocol": protocol, "models": records}, f, indent=2,
                  default=lambda a: a.tolist())                        # arrays as lists
    return protocol, records[0]


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
    ends = numpy.cumsum(config["groups"])
    lines = []
    for m, r in sorted(last.items()):
        kl = [sum(float(r[f"kl_z{d + 1}"]) for d in range(e - g, e))
              for g, e in zip(config["groups"], ends)]
        lines.append(f"model {m:2d}  seed {r['seed']:>3}  beta {r['beta']:>4}  step "
                     f"{r['step']:>6}  KL per group " + " ".join(f"{k:6.2f}" for k in kl)
                     + f"  L_rec,{len(kl)} {float(r[f'rec_{len(kl)}']):7.1f}")
    return lines
