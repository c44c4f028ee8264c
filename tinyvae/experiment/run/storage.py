"""A run directory's files, named once here, and how they are written so that none is lost.

    runs/NAME/config.json      every setting of the run, the backend, versions, data source
    runs/NAME/checkpoint.npz   parameters, Adam state, step, random states, config
    runs/NAME/log.csv          one row per model per logging step
    runs/NAME/figures/         reconstructions, traversals, loss curves, the routing at work
    runs/NAME/snapshots/       step_NNNNNNN.npz: parameters only, every --snapshot-every steps,
                               for learning curves (evaluate.py --curves)
    runs/NAME/metrics.json     evaluate.py's scores of the checkpoint, with their protocol
    runs/NAME/curve.json       evaluate.py --curves: the scores of every snapshot
    runs/NAME/.lock            held (flock) by the one train.py writing the run; names its pid
    results/models/NAME/       one model taken out of a run (experiment/tools/export.py):
                               config.json, params.npz (its parameters in the checkpoint's format) and
                               metrics.json (its scores, as evaluate.py writes them)

Whole files (JSON, checkpoints, snapshots) are written to a temporary file and renamed over the
old one, so a kill at any moment leaves either the old or the new file whole. log.csv grows a
row at a time; a last line cut short is no row.

Shapes: none (files only).
"""
import csv
import json
import os

import numpy

CONFIG, CHECKPOINT, LOG, FIGURES = "config.json", "checkpoint.npz", "log.csv", "figures"
SNAPSHOTS, METRICS, CURVE, LOCK = "snapshots", "metrics.json", "curve.json", ".lock"
PARAMS = "params.npz"       # an exported model's parameters, where a run has its checkpoint


class RunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message says why."""


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, then rename it to `path`."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise RunError(f"{path}: cannot read ({err})") from None


def read_log(path, upto=None):
    """The rows of log.csv (dicts of strings) up to step `upto`; a last line cut short is no row."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()                 # a write cut short (a kill, a full disk): not a row
    rows = list(csv.DictReader(lines))
    return [r for r in rows if upto is None or int(r["step"]) <= upto]


def write_log(path, rows, append=True):
    """Append rows (or rewrite the file through a temporary one, when append is false)."""
    if not rows:
        if not append and os.path.exists(path):
            os.remove(path)         # resumed from before the first row: none of them stays
        return
    if append and os.path.exists(path) and _header(path) != list(rows[0]):
        # A run begun by an older train.py, resumed by this one: its rows lack the newer
        # columns (left empty there), so the file is rewritten under the new header.
        rows, append = read_log(path) + rows, False
    new = not (append and os.path.exists(path))
    target = path + ".tmp" if not append else path
    with open(target, "w" if new else "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[-1]), restval="")
        if new:
            w.writeheader()
        w.writerows([{k: (f"{v:.6g}" if isinstance(v, (float, numpy.floating)) else v)
                      for k, v in r.items()} for r in rows])
    if target != path:
        os.replace(target, path)


def _header(path):
    with open(path, newline="") as f:
        return next(csv.reader(f), [])
