"""The records evaluate.py keeps in a run directory: metrics.json (the checkpoint's scores) and
curve.json (every snapshot's), each {"protocol": what decides the scores, "models": a record
per model}. Records scored under the same protocol are used again: a committed run's small
files join a report without their checkpoint, and --curves scores only the snapshots it has
not scored yet, so it can follow a run that is still training.

Shapes: none (records are JSON).
"""
import os
import sys

import numpy

from ..run.checkpoint import load_weights, snapshot_path, snapshot_steps
from ..run.configuration import build_model
from .evaluate_models import make_protocol, score_models
from ..run.storage import CONFIG, CURVE, RunError, read_json, write_json
from .model_record import summary


def plain(obj):
    """obj with NumPy arrays and scalars as lists and plain numbers, for JSON."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj.tolist() if isinstance(obj, (numpy.ndarray, numpy.generic)) else obj


def comparable(protocol):
    """What decides the scores: the protocol, less where they were computed."""
    return {k: v for k, v in protocol.items() if k not in ("backend", "device", "scores")}


def committed_records(run_dir, path, protocol, missing):
    """The records of `path` (metrics.json or curve.json) of a run directory without its
    `missing` (checkpoint or snapshots: a committed run's small files), as they are, when they
    were scored under `protocol`; returns (its protocol, its records). No model is built."""
    old, name = read_json(path), os.path.basename(path)
    records = old.get("models") if isinstance(old, dict) else None
    where = "its checkpoint is" if missing == "checkpoint" else f"its {missing} are"
    if not records or comparable(old.get("protocol", {})) != comparable(protocol):
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


def score_snapshots(run_dir, xp, tests, bins, batch_size, progress=False):
    """Score every snapshot of one run directory (train.py --snapshot-every) into its
    curve.json, on the test set tests.of(config) (evaluation.FixedTestSets), MIs over `bins`
    bins; returns (protocol, records). A snapshot scored before under the same protocol, and
    not rewritten since, keeps its scores. One that cannot be read is skipped, in one line."""
    config = read_json(os.path.join(run_dir, CONFIG))
    steps = snapshot_steps(run_dir)
    path = os.path.join(run_dir, CURVE)
    if not steps and not os.path.exists(path):
        raise RunError("no snapshots; train it with --snapshot-every N to get learning curves")
    test = tests.of(config)
    protocol = make_protocol(bins, test, config, xp)
    if not steps:
        return committed_records(run_dir, path, protocol, "snapshots")
    model = build_model(config, xp)
    try:
        old = read_json(path) if os.path.exists(path) else {}
        same = comparable(old.get("protocol", {})) == comparable(protocol)
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
        models = [{**plain(r), "snapshot": identity}
                  for r in score_models(model, config, step, test, batch_size, bins, progress)]
        records = sorted(records + models, key=lambda r: (r["step"], r["index"]))
        write_json(path, {"protocol": protocol, "models": records})
        print(f"{run_dir} step {step}: {summary(models)}")
    return protocol, records


def _file_id(run_dir, step):
    """A snapshot's size and modification time: a rewritten snapshot is scored again."""
    st = os.stat(snapshot_path(run_dir, step))
    return [st.st_size, st.st_mtime_ns]
