"""The run directory: config, checkpoint and log files, written so that nothing is ever lost.

    runs/NAME/config.json      every setting of the run, the backend, versions, data source
    runs/NAME/checkpoint.npz   parameters, Adam state, step, random states, config
    runs/NAME/log.csv          one row per model per logging step
    runs/NAME/figures/         reconstructions, traversals, loss curves
    runs/NAME/snapshots/       step_NNNNNNN.npz: parameters only, every --snapshot-every steps,
                               for learning curves (evaluate.py --curves)

    results/models/NAME/       one model taken out of a run (experiment/export.py): config.json
                               and params.npz, its parameters in the checkpoint's format

    runs/NAME/.lock            held (flock) by the one train.py writing the run; names its pid

Checkpoints are written to a temporary file and renamed over the old one, so a kill at any
moment leaves either the old or the new checkpoint whole. The npz holds plain arrays and one
JSON string: it loads with allow_pickle=False.

One process writes a run directory at a time: train.py holds an exclusive flock on .lock from
before it reads the directory until it ends. The OS drops a flock when its process dies, so a
kill -9 leaves no lock behind; the pid and time in the file only name the holder.

Shapes: M models; parameters as in vae.py.
"""
import csv
import json
import os
import re
import shutil
import time
import zipfile

try:
    import fcntl
except ImportError:         # not a POSIX system: no locks, as on a file system without them
    fcntl = None

import numpy

from ..backend import to_numpy
from ..vae import DECODER_HIDDEN, ENCODER_HIDDEN, GroupedVAE

CONFIG, CHECKPOINT, LOG, SNAPSHOTS = "config.json", "checkpoint.npz", "log.csv", "snapshots"
PARAMS = "params.npz"       # an exported model's parameters, where a run has its checkpoint
LOCK = ".lock"
LOCK_TRIES = 5              # 20 ms apart: a training_holder() probe holds its lock for microseconds


class RunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message says why."""


class RunBusy(RunError):
    """Another process holds the run directory; `holder` is its dict(pid=..., since=...)."""

    def __init__(self, run_dir, holder):
        pid, since = holder["pid"] or "unknown", holder["since"] or "unknown"
        super().__init__(f"{run_dir} is held by another training process (pid {pid}, "
                         f"since {since})")
        self.holder = holder


class NoLocks(Exception):
    """The file system (or system) cannot lock files: nothing keeps a second writer out."""


def lock_run_dir(run_dir):
    """Take run_dir for this process alone: an exclusive flock on run_dir/.lock (both made if
    needed), then this process's pid and the time written in the file for whoever is refused.
    Returns the open lock file: the lock lasts until it is closed or the process ends. A flock
    belongs to the open file, so a second lock_run_dir in the same process is refused too.
    Raises RunBusy when another holds it, NoLocks where locks cannot be taken."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK)
    while True:
        f = open(path, "a+")
        try:
            _lock_exclusive(f, run_dir)
        except BaseException:
            f.close()
            raise
        if _same_file(f, path):
            break
        f.close()           # locked a file release_run_dir had just removed: take the new one
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    f.flush()
    return f


def release_run_dir(lock, run_dir):
    """Let go of lock_run_dir's lock. A lock file alone in its directory (a refused start, a
    failed --resume of an empty directory) goes first, so that nothing is left behind."""
    try:
        if os.listdir(run_dir) == [LOCK] and _same_file(lock, os.path.join(run_dir, LOCK)):
            os.remove(os.path.join(run_dir, LOCK))
    except OSError:
        pass                # it stays: a lock file only names a holder, it never blocks
    lock.close()


def _same_file(f, path):
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _lock_exclusive(f, run_dir):
    if fcntl is None:
        raise NoLocks(f"cannot lock {run_dir} (no fcntl on this system)")
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.02)
        except OSError as err:          # ENOLCK, EOPNOTSUPP and the like: no locks here
            raise NoLocks(f"cannot lock {run_dir} ({err})") from None
    raise RunBusy(run_dir, _holder(f))


def training_holder(run_dir):
    """dict(pid=..., since=...) of the training process that holds run_dir now, else None.
    It never blocks and changes nothing, so evaluate.py asks it to skip, as "still being
    trained", a run whose checkpoint is still moving. None also where locks cannot be taken
    (nobody can tell there) and for runs never trained by a locking train.py."""
    try:
        f = open(os.path.join(run_dir, LOCK))
    except OSError:
        return None
    with f:                             # closing drops the shared lock, if it was taken
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(f)
        except OSError:                 # no locks on this file system
            pass
    return None


def _holder(f):
    """The pid and time the holder wrote in the lock file (None for each if not yet written)."""
    f.seek(0)
    try:
        found = json.loads(f.read())
    except ValueError:
        found = {}
    return {"pid": found.get("pid"), "since": found.get("since")}


def clear_run_dir(run_dir):
    """Remove everything in run_dir but its lock file (--overwrite): the lock stays held."""
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name == LOCK:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def remove_leftovers(run_dir):
    """Delete the temporary files a killed writer left (NAME.tmp or NAME.tmpPID, up to a
    checkpoint's size each). Only for the lock's holder: no other writer can be using them."""
    for folder in (run_dir, os.path.join(run_dir, SNAPSHOTS)):
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in names:
            if re.fullmatch(r".+\.tmp\d*", name):
                os.remove(os.path.join(folder, name))


def checkpoint_step(run_dir):
    """The step of the run's checkpoint, or None when there is none that opens. Reads its
    state alone, not its arrays."""
    try:
        return load_checkpoint(run_dir, state_only=True)[1]["step"]
    except (RunError, KeyError):
        return None


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


def paper_setting(config, key):
    """The value of setting `key` that a run made before it was a setting was trained with
    (the paper's), or None for a setting every run records."""
    return {"routing": "paper", "kl_scale": [1.0] * len(config.get("groups", [])),
            "encoder_hidden": list(ENCODER_HIDDEN),
            "decoder_hidden": list(DECODER_HIDDEN)}.get(key)


def setting(config, key):
    """A run's setting `key`, from its config.json or a record of its metrics.json; from a run
    made before the setting existed, the value it was trained with then."""
    return config[key] if key in config else paper_setting(config, key)


def build_model(config, xp=numpy, dtype=numpy.float32):
    """A GroupedVAE shaped as `config` says (its weights still at their initial values)."""
    return GroupedVAE(groups=config["groups"], beta=config["model_betas"],
                      models=len(config["model_seeds"]), seed=config["model_seeds"],
                      xp=xp, dtype=dtype, routing=setting(config, "routing"),
                      kl_scale=setting(config, "kl_scale"),
                      encoder_hidden=setting(config, "encoder_hidden"),
                      decoder_hidden=setting(config, "decoder_hidden"))


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
