"""Checkpoints and snapshots: a run's parameters written and read back, and a trained run loaded.

    checkpoint.npz   param/NAME (M, ...), adam_m/NAME, adam_v/NAME, and `state`: one JSON
                     string with the step, every random generator's state and the config
    snapshots/step_NNNNNNN.npz   param/NAME and a state with the step alone

The npz files hold plain arrays and one JSON string: they load with allow_pickle=False. Both are
written to a temporary file and renamed (storage.atomic_write), so a kill leaves the previous
one whole.

Shapes: M models; parameters as in vae.py.
"""
import json
import os
import zipfile

import numpy

from ...backend import to_numpy
from .configuration import build_model
from .storage import CHECKPOINT, CONFIG, PARAMS, SNAPSHOTS, RunError, atomic_write, read_json


def save_checkpoint(run_dir, model, opt, state):
    """Write params, Adam moments and the JSON-able `state` (step, random states, config)."""
    arrays = _param_arrays(model)
    for name in model.params:
        arrays["adam_m/" + name] = to_numpy(opt.m[name])             # (M, ...)
        arrays["adam_v/" + name] = to_numpy(opt.v[name])             # (M, ...)
    state = {**state, "adam_t": opt.t}
    arrays["state"] = numpy.array(json.dumps(state))
    atomic_write(os.path.join(run_dir, CHECKPOINT), lambda f: numpy.savez(f, **arrays))


def save_snapshot(run_dir, model, step):
    """Parameters alone at `step`, in the checkpoint's format, under snapshots/."""
    os.makedirs(os.path.join(run_dir, SNAPSHOTS), exist_ok=True)
    arrays = _param_arrays(model)
    arrays["state"] = numpy.array(json.dumps({"step": step}))
    atomic_write(snapshot_path(run_dir, step), lambda f: numpy.savez(f, **arrays))


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


def load_checkpoint(run_dir, params_only=False, path=None, state_only=False):
    """The checkpoint's arrays (dict) and state (dict); RunError when missing or corrupt.
    With `params_only`, Adam's state (two thirds of the file) is not read; with
    `state_only`, no array is. `path` reads another file of the same format (a snapshot)
    instead of the checkpoint."""
    # a lost snapshot costs one point of a curve; a lost checkpoint, the run
    fix = ("export it again, or restore it with git" if path and path.endswith(PARAMS) else
           "delete it" if path else
           "restore it from a backup or start again with --overwrite")
    path = path or os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        raise RunError(f"{path}: no checkpoint here; train first, or check the directory")
    try:
        with open(path, "rb") as fh, numpy.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k == "state" or not (
                state_only or params_only and k.startswith("adam_"))}
        state = json.loads(str(arrays.pop("state")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise RunError(f"{path}: corrupt or truncated checkpoint ({type(err).__name__}: {err}); "
                       f"{fix}") from None
    return arrays, state


def checkpoint_step(run_dir):
    """The step of the run's checkpoint, or None when there is none that opens. Reads its
    state alone, not its arrays."""
    try:
        return load_checkpoint(run_dir, state_only=True)[1]["step"]
    except (RunError, KeyError):
        return None


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
    """(config, model with trained weights, state) of a finished or interrupted run, or of
    a model exported from one (its params.npz, read where there is no checkpoint)."""
    config = read_json(os.path.join(run_dir, CONFIG))
    model = build_model(config, xp)
    exported = os.path.join(run_dir, PARAMS)
    if os.path.exists(exported) and not os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        return config, model, load_weights(model, run_dir, exported)
    return config, model, load_weights(model, run_dir)


def load_weights(model, run_dir, path=None):
    """Copy the weights of the run's checkpoint, or of the snapshot at `path`, into `model`;
    returns the file's state (step and the like)."""
    arrays, state = load_checkpoint(run_dir, params_only=True, path=path)
    load_params(model, arrays, path or os.path.join(run_dir, CHECKPOINT))
    return state
