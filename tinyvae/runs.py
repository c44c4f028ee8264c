"""The run directory: config, checkpoint and log files, written so that nothing is ever lost.

    runs/NAME/config.json      every setting of the run, the backend, versions, data source
    runs/NAME/checkpoint.npz   parameters, Adam state, step, random states, config
    runs/NAME/log.csv          one row per model per logging step
    runs/NAME/figures/         reconstructions, traversals, loss curves
    runs/NAME/snapshots/       step_NNNNNNN.npz: parameters only, every --snapshot-every steps,
                               for learning curves (evaluate.py --curves)

Checkpoints are written to a temporary file and renamed over the old one, so a kill at any
moment leaves either the old or the new checkpoint whole. The npz holds plain arrays and one
JSON string: it loads with allow_pickle=False.

Shapes: M models; parameters as in vae.py.
"""
import json
import os
import zipfile

import numpy

from .backend import to_numpy
from .vae import GroupedVAE

CONFIG, CHECKPOINT, LOG, SNAPSHOTS = "config.json", "checkpoint.npz", "log.csv", "snapshots"


class RunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message says why."""


def write_json(path, obj):
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise RunError(f"{path}: cannot read ({err})") from None


def save_checkpoint(run_dir, model, opt, state):
    """Write params, Adam moments and the JSON-able `state` (step, random states, config)."""
    arrays = _param_arrays(model)
    for name in model.params:
        arrays["adam_m/" + name] = to_numpy(opt.m[name])             # (M, ...)
        arrays["adam_v/" + name] = to_numpy(opt.v[name])             # (M, ...)
    state = {**state, "adam_t": opt.t}
    arrays["state"] = numpy.array(json.dumps(state))
    _atomic_write(os.path.join(run_dir, CHECKPOINT), lambda f: numpy.savez(f, **arrays))


def save_snapshot(run_dir, model, step):
    """Parameters alone at `step`, in the checkpoint's format, under snapshots/."""
    os.makedirs(os.path.join(run_dir, SNAPSHOTS), exist_ok=True)
    arrays = _param_arrays(model)
    arrays["state"] = numpy.array(json.dumps({"step": step}))
    _atomic_write(snapshot_path(run_dir, step), lambda f: numpy.savez(f, **arrays))


def _param_arrays(model):
    """The parameters on the host, named as checkpoints and snapshots store them."""
    return {"param/" + name: to_numpy(p) for name, p in model.params.items()}  # (M, ...)


def snapshot_path(run_dir, step):
    return os.path.join(run_dir, SNAPSHOTS, f"step_{step:07d}.npz")


def snapshot_steps(run_dir):
    """The steps that have a snapshot in run_dir, ascending."""
    folder = os.path.join(run_dir, SNAPSHOTS)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(int(n[5:-4]) for n in names
                  if n.startswith("step_") and n.endswith(".npz") and n[5:-4].isdigit())


def load_checkpoint(run_dir, params_only=False, path=None):
    """The checkpoint's arrays (dict) and state (dict); RunError when missing or corrupt.
    With `params_only`, Adam's state (two thirds of the file) is not read. `path`
    reads another file of the same format (a snapshot) instead of the checkpoint."""
    # a lost snapshot costs one point of a curve; a lost checkpoint, the run
    fix = ("delete it" if path else
           "restore it from a backup or start again with --overwrite")
    path = path or os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        raise RunError(f"{path}: no checkpoint here; train first, or check the directory")
    try:
        with open(path, "rb") as fh, numpy.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files
                      if not (params_only and k.startswith("adam_"))}
        state = json.loads(str(arrays.pop("state")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise RunError(f"{path}: corrupt or truncated checkpoint ({type(err).__name__}: {err}); "
                       f"{fix}") from None
    return arrays, state


def build_model(config, xp=numpy, dtype=numpy.float32):
    """A GroupedVAE shaped as `config` says (its weights still at their initial values)."""
    return GroupedVAE(groups=config["groups"], beta=config["model_betas"],
                      models=len(config["model_seeds"]), seed=config["model_seeds"],
                      xp=xp, dtype=dtype, routing=config.get("routing", "paper"))


def load_params(model, arrays, where):
    """Copy the checkpoint's parameters into `model`, checking every name and shape."""
    for name, p in model.params.items():
        a = arrays.get("param/" + name)
        if a is None or a.shape != p.shape:
            found = None if a is None else a.shape
            raise RunError(f"{where}: parameter {name} should have shape {p.shape}, found "
                           f"{found}; the checkpoint does not match its config")
        p[...] = model.xp.asarray(a)


def load_run(run_dir, xp=numpy):
    """(config, model with trained weights, state) of a finished or interrupted run."""
    config = read_json(os.path.join(run_dir, CONFIG))
    model = build_model(config, xp)
    return config, model, load_weights(model, run_dir)


def load_weights(model, run_dir, path=None):
    """Copy the weights of the run's checkpoint, or of the snapshot at `path`, into `model`;
    returns the file's state (step and the like)."""
    arrays, state = load_checkpoint(run_dir, params_only=True, path=path)
    load_params(model, arrays, path or os.path.join(run_dir, CHECKPOINT))
    return state


def _atomic_write(path, write):
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
