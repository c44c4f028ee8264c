"""Train Grouped-VAEs or β-VAEs on dSprites: `python train.py --model grouped [--gpu]`.

One process trains every (beta, seed) pair asked for at once, on the models axis. The run
directory explains itself: config.json, log.csv, checkpoint.npz and figures/.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import argparse
import errno
import importlib.metadata
import os
import platform
import shlex
import signal
import sys

import numpy

from tinyvae.backend import BackendError, device_name, get_xp, to_numpy
from tinyvae.data.dataset import DataError, open_dataset
from tinyvae.experiment.figures import draw_run_figures
from tinyvae.experiment.runs import (CHECKPOINT, CONFIG, LOG, NoLocks, RunBusy, RunError,
                                     checkpoint_step, clear_run_dir, load_checkpoint,
                                     lock_run_dir, paper_setting, read_json, read_log,
                                     release_run_dir, remove_leftovers, save_checkpoint,
                                     save_snapshot, setting, write_json, write_log)
from tinyvae.experiment.trainer import Trainer
from tinyvae.routing_report import routing_report
from tinyvae.vae import (DECODER_HIDDEN, ENCODER_HIDDEN, EXPLAIN_STREAM, ROUTINGS,
                         check_kl_scale)

# Settings that define what is trained: a resumed run must agree on all of them.
IDENTITY = ("model", "latent", "groups", "routing", "kl_scale", "encoder_hidden",
            "decoder_hidden", "model_betas", "model_seeds", "batch_size", "lr", "data")




class UsageError(Exception):
    """Flags or files that cannot be used: exit status 2."""


class TrainingError(Exception):
    """Training itself failed (a non-finite loss): exit status 1."""


# Signals that stop training as Ctrl-C does: finish the step, save, exit 128 + the signal's
# number (130, 143, 138 on Linux), the status a shell reports for it. SIGTERM is how Slurm
# (scancel, preemption, time limit), docker stop, systemd and Kubernetes stop a program;
# SIGUSR1 is the usual warning before the end (sbatch --signal). Windows has no SIGUSR1.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1")
                     if hasattr(signal, name))


def parser():
    p = argparse.ArgumentParser(
        description="Train Grouped-VAE (paper §4) or β-VAE on dSprites, several models at once.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=("grouped", "beta"), default="grouped",
                   help="grouped: the paper's Grouped-VAE; beta: β-VAE (one group)")
    p.add_argument("--beta", default="1", help="KL weight, or a comma list (e.g. 1,5,10): "
                   "every (beta, seed) pair is trained in one process")
    p.add_argument("--latent", type=int, default=6, help="latent size Z")
    p.add_argument("--groups", default=None, help="group sizes summing to --latent, "
                   "grouped only; None: 3,3, the paper's (a β-VAE has one group of --latent)")
    p.add_argument("--routing", choices=ROUTINGS, default="paper", help="paper: L_rec,i reaches "
                   "the encoder only through z_i (§4); none: the ablation, the plain gradient, "
                   "L_rec,i reaches z_1 .. z_i. For --model beta (one group) the two are the "
                   "same gradient, and only the default is accepted")
    p.add_argument("--kl-scale", default=None, help="a KL weight per group, multiplying "
                   "--beta: e.g. 2,1 weighs group 1's KL twice (docs/routing.md); None: all "
                   "ones, the paper's loss")
    p.add_argument("--encoder-hidden", default=",".join(map(str, ENCODER_HIDDEN)),
                   help="widths of the encoder's hidden layers (the paper's: 1200,1200)")
    p.add_argument("--decoder-hidden", default=",".join(map(str, DECODER_HIDDEN)),
                   help="widths of the decoder's hidden layers (the paper's: 1200,1200,1200)")
    p.add_argument("--steps", type=int, default=5000, help="training steps (total, also when "
                   "resuming)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step per model")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=int, default=1, help="train N models with seeds seed .. "
                   "seed+N-1 at once")
    p.add_argument("--data", default=None, help="path of the real dSprites .npz; "
                   "None: the built-in renderer")
    p.add_argument("--gpu", action="store_true", help="train on the GPU with CuPy")
    p.add_argument("--out", default=None, help="run directory; None: runs/ + a name "
                   "made of model, beta, groups and seeds")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="auto",
                   help="continue the run in --out; --resume auto: start it, continue it, or "
                   "if it has finished do nothing and exit 0 (safe to repeat: for job arrays "
                   "and requeued tasks)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--explain", action="store_true", help="print the routing report for the "
                   "first batch, then train")
    p.add_argument("--log-every", type=int, default=50, help="steps between log.csv rows")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between "
                   "checkpoints (and figures)")
    p.add_argument("--snapshot-every", type=int, default=0, help="steps between parameter "
                   "snapshots (and at step 0 and the last step) for learning curves "
                   "(evaluate.py --curves); 0: none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv):
    return parser().parse_args(argv)


def make_config(a):
    """Validate the flags and turn them into the run's config (raises UsageError)."""
    if a.resume not in (False, True, "auto"):
        raise UsageError(f"--resume takes no value, or auto; got {a.resume!r}")
    if a.resume and a.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    for name in ("latent", "steps", "batch_size", "seeds", "log_every", "checkpoint_every"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, "
                             f"got {getattr(a, name)}")
    if a.snapshot_every < 0:
        raise UsageError(f"--snapshot-every must be 0 (none) or a positive integer, "
                         f"got {a.snapshot_every}")
    if not a.lr > 0:
        raise UsageError(f"--lr must be positive, got {a.lr}")
    if a.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {a.seed}")
    betas = _numbers(a.beta, float, "--beta", "1 or 1,5,10")
    if not all(numpy.isfinite(betas)) or min(betas) < 0:
        raise UsageError(f"--beta values must be finite numbers >= 0, got {a.beta}; "
                         "e.g. --beta 1 or --beta 1,5,10")
    if a.model == "beta" and a.groups is not None:
        raise UsageError(f"--groups {a.groups} applies to --model grouped only; a β-VAE has "
                         "one group of --latent dimensions: drop --groups, or use --model grouped")
    if a.model == "beta" and a.routing != "paper":
        raise UsageError(f"--routing {a.routing} changes nothing for --model beta: with one "
                         "group both routings are the same gradient; drop --routing")
    groups = (_numbers(a.groups or "3,3", int, "--groups", "3,3") if a.model == "grouped"
              else [a.latent])
    if min(groups) < 1:
        raise UsageError(f"--groups sizes must be positive, got {a.groups}")
    if sum(groups) != a.latent:
        raise UsageError(f"--groups {a.groups} sums to {sum(groups)}, but --latent is "
                         f"{a.latent}; give sizes that sum to the latent size")
    kl_scale = [1.0] * len(groups)
    if a.kl_scale is not None:
        try:
            kl_scale = list(check_kl_scale(_numbers(a.kl_scale, float, "--kl-scale", "2,1"),
                                           groups))
        except ValueError:
            raise UsageError(f"--kl-scale {a.kl_scale}: give one positive, finite number per "
                             f"group ({len(groups)} for groups {','.join(map(str, groups))}), "
                             f"e.g. --kl-scale {','.join(['1'] * len(groups))}") from None
    hidden = {}
    for part in ("encoder", "decoder"):
        flag = f"--{part}-hidden"
        widths = _numbers(getattr(a, f"{part}_hidden"), int, flag, "1200,1200")
        if min(widths) < 1:
            raise UsageError(f"{flag} widths must be positive integers, got "
                             f"{getattr(a, f'{part}_hidden')}; e.g. {flag} 256,256")
        hidden[f"{part}_hidden"] = widths
    seeds = list(range(a.seed, a.seed + a.seeds))
    config = {k: getattr(a, k) for k in ("model", "latent", "routing", "steps", "batch_size", "lr",
                                          "seed", "seeds", "gpu", "log_every",
                                          "checkpoint_every", "snapshot_every")}
    config.update(groups=groups, kl_scale=kl_scale, **hidden, betas=betas,
                  model_betas=[b for b in betas for _ in seeds],
                  model_seeds=[s for _ in betas for s in seeds],
                  data=os.path.abspath(a.data) if a.data else "renderer")
    return config


def _numbers(text, cast, flag, example):
    try:
        values = [cast(v) for v in str(text).split(",")]
    except ValueError:
        raise UsageError(f"{flag} must be a comma-separated list of numbers like {example}, "
                         f"got {text!r}") from None
    return values


def default_out(config):
    betas = ",".join(f"{b:g}" for b in config["betas"])
    s0, n = config["seed"], config["seeds"]
    seeds = f"s{s0}" if n == 1 else f"s{s0}-{s0 + n - 1}"
    groups = "-g" + ",".join(map(str, config["groups"])) if config["model"] == "grouped" else ""
    routing = "" if config["routing"] == "paper" else f"-routing-{config['routing']}"
    scale = ("" if set(config["kl_scale"]) == {1.0}
             else "-kl" + ",".join(f"{s:g}" for s in config["kl_scale"]))
    widths = ""
    for part in ("encoder", "decoder"):
        if config[f"{part}_hidden"] != paper_setting(config, f"{part}_hidden"):
            widths += f"-{part[0]}h" + ",".join(map(str, config[f"{part}_hidden"]))
    return os.path.join("runs", f"{config['model']}-b{betas}{groups}{routing}{scale}{widths}"
                        f"-{seeds}")


def check_out(out):
    """--out must be a directory, or a path that can become one."""
    path = os.path.abspath(out)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        where = "" if path == os.path.abspath(out) else f" ({path} is in its way)"
        raise UsageError(f"--out {out}: {path} is a file, not a directory{where}; choose "
                         "another --out")


def claim(out, resume):
    """The run directory's lock, held until main returns; None where locks cannot be taken.
    It comes before anything there is read or removed, so a refused train.py changes nothing."""
    if resume is True and not os.path.isdir(out):
        return None                 # nothing to guard: prepare_out says there is no run
    try:
        return lock_run_dir(out)
    except RunBusy as err:
        raise UsageError(f"{err}; nothing there was changed: wait for it to finish, or choose "
                         "another --out") from None
    except NoLocks as err:
        print(f"train.py: warning: {err}; this file system has no locks, so nothing keeps a "
              f"second train.py out of {out}: start only one on it", file=sys.stderr)
        return None


def prepare_out(out, config, resume, overwrite, locked):
    """Make or check the run directory; when resuming, the checkpoint to continue from (with
    --resume auto, also one that has reached --steps: nothing is left to do)."""
    has_config, has_checkpoint = (os.path.exists(os.path.join(out, name))
                                  for name in (CONFIG, CHECKPOINT))
    exists = has_config or has_checkpoint
    if resume == "auto" and not has_checkpoint:
        if has_config:              # a start killed before its first checkpoint: start again
            same_run(out, config, "--resume auto")
        resume, overwrite = False, has_config
    if resume:
        if locked:                  # no other writer: any temporary file is a killed one's
            remove_leftovers(out)
        arrays, state = load_checkpoint(out)
        same_run(out, config, "--resume" if resume is True else "--resume auto")
        if state["step"] >= config["steps"] and resume is True:
            raise UsageError(f"--resume: the run in {out} is already at step {state['step']}; "
                             f"ask for more --steps to continue it")
        return arrays, state
    if exists and not overwrite:
        raise UsageError(f"{out} already holds a run; add --resume to continue it, "
                         f"--overwrite to replace it, or choose another --out")
    if exists:
        clear_run_dir(out)          # not the directory itself: the lock inside stays held
    os.makedirs(out, exist_ok=True)
    return None, None


def same_run(out, config, flag):
    """Refuse flags that would make the run in `out` another run than the one begun there."""
    old = read_json(os.path.join(out, CONFIG))
    diffs = [f"{k}: run has {setting(old, k)!r}, flags give {config[k]!r}"
             for k in IDENTITY if setting(old, k) != config[k]]
    if diffs:
        raise UsageError(f"{flag}: the flags disagree with the run in {out} ("
                         + "; ".join(diffs) + "); repeat the run's flags, or use another --out")


def resume_command(a, out):
    """The command that continues this run, to paste: the interpreter and script as this
    process ran them, every flag not at its default, --out and --resume."""
    words = [_short(sys.executable), _short(os.path.abspath(__file__))]
    for action in parser()._actions:             # argparse keeps no public list of them
        value = getattr(a, action.dest, None)
        if (not action.option_strings or value == action.default
                or action.dest in ("help", "out", "resume", "overwrite")):
            continue
        words += [action.option_strings[0]] + ([] if action.nargs == 0 else [str(value)])
    return shlex.join(words + ["--out", out, "--resume"])


def _short(path):
    """path relative to the working directory when it lies below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def versions(xp):
    v = {"python": platform.python_version(), "numpy": numpy.__version__}
    for package in ("scikit-learn", "matplotlib", "tqdm"):
        try:
            v[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            v[package] = None
    if xp is not numpy:
        v["cupy"] = xp.__version__
    return v


def train(config, out, xp, dataset, resume_from, explain, progress, again):
    """Train to config["steps"]; the exit status: 0, or 128 + the number of a stop signal
    (the run saved and resumable with the command `again`)."""
    trainer = Trainer(config, xp, dataset)
    log_path = os.path.join(out, LOG)
    if resume_from[0] is not None:
        trainer.restore(*resume_from, os.path.join(out, CHECKPOINT))
        # Rows a kill left past the checkpoint are dropped: the resumed run writes them anew.
        write_log(log_path, read_log(log_path, upto=trainer.step), append=False)
        print(f"resuming {out} at step {trainer.step}")
    write_json(os.path.join(out, CONFIG), config)
    if explain:
        # Test images and a noise stream of their own: --explain leaves training unchanged.
        B, M = config["batch_size"], trainer.model.models
        x = dataset.images(numpy.broadcast_to(trainer.test_idx[:B], (M, B)), xp,
                           trainer.model.dtype)                               # (M, B, P)
        eps = numpy.random.default_rng((config["seed"], EXPLAIN_STREAM)).standard_normal(
            (M, B, config["latent"]))                                         # (M, B, Z)
        print(routing_report(trainer.model, x, xp.asarray(eps, dtype=trainer.model.dtype))[3])

    stop = {"asked": None}

    def on_signal(signum, frame):
        stop["asked"] = stop["asked"] or signum     # finish the step in hand, save, leave
    old_handlers = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    bar = _progress(config["steps"], trainer.step, progress)
    last_good = trainer.step if resume_from[0] is not None else None
    every = config["snapshot_every"]
    if every and trainer.step == 0:
        save_snapshot(out, trainer.model, 0)                  # the untrained start of each curve
    # Overflow is caught below as a non-finite loss, with the step and the term named.
    try:
        with numpy.errstate(over="ignore", invalid="ignore"):
            saved = None            # the step of a checkpoint nothing has changed since
            while trainer.step < config["steps"] and not stop["asked"]:
                bad = trainer.train_step()
                if bad:
                    lv = to_numpy(trainer.model.encode(bad[1])[1])       # the failing step's logvar
                    kept = (f"the last good checkpoint (step {last_good}) is kept" if last_good
                            is not None else "no checkpoint had been written yet")
                    raise TrainingError(
                        f"non-finite {bad[0]} at step {trainer.step + 1} (logvar range "
                        f"[{lv.min():.3g}, {lv.max():.3g}]); training stopped, {kept} in {out}; "
                        "try a smaller --lr")
                bar.update(1)
                saved = None
                # The snapshot goes before the checkpoint: a kill between the two then only
                # repeats steps on --resume, which rewrites the same snapshot.
                if every and (trainer.step % every == 0 or trainer.step == config["steps"]):
                    save_snapshot(out, trainer.model, trainer.step)
                if trainer.step % config["log_every"] == 0:
                    rows = trainer.log_rows()
                    write_log(log_path, rows)
                    bar.set_postfix_str(_postfix(rows[0]), refresh=False)
                if trainer.step % config["checkpoint_every"] == 0:
                    _save(out, trainer)
                    last_good = saved = trainer.step
            if trainer.count and trainer.step == config["steps"]:
                write_log(log_path, trainer.log_rows())     # the last, shorter interval
                saved = None
            # Not twice: the last checkpoint may be of this very state (a stop asked while it
            # was written, or --steps a multiple of --checkpoint-every).
            if saved != trainer.step:
                _save(out, trainer)
    finally:
        bar.close()
        for s, handler in old_handlers.items():
            signal.signal(s, handler)
    if stop["asked"] and trainer.step < config["steps"]:
        name = signal.Signals(stop["asked"]).name
        print(f"interrupted by {name}: checkpoint saved at step {trainer.step} in {out}; "
              f"continue with: {again}", flush=True)
        return 128 + stop["asked"]
    print(f"done: {trainer.step} steps; run directory {out}")
    return 0


def _save(out, trainer):
    save_checkpoint(out, trainer.model, trainer.opt, trainer.state())
    draw_run_figures(out, trainer)


def _postfix(row):
    recs = " ".join(f"{float(v):.1f}" for k, v in row.items() if k.startswith("rec_"))
    return f"total {float(row['total']):.1f} rec [{recs}] kl {float(row['kl']):.2f}"


def _progress(total, start, enabled):
    from tqdm import tqdm
    return tqdm(total=total, initial=start, disable=not enabled, unit="step",
                dynamic_ncols=True, mininterval=0.5)


def main(argv=None):
    a = parse_args(argv)
    out = lock = None
    try:
        config = make_config(a)
        out = a.out or default_out(config)
        check_out(out)
        xp = get_xp(a.gpu)
        dataset = open_dataset(a.data)
        lock = claim(out, a.resume)
        resume_from = prepare_out(out, config, a.resume, a.overwrite, lock is not None)
        state = resume_from[1]
        if state is not None and state["step"] >= config["steps"]:        # --resume auto
            print(f"nothing to do: {out} has finished (step {state['step']} of "
                  f"{config['steps']})")
            return 0
        config.update(out=out, backend=xp.__name__, device=device_name(xp),
                      versions=versions(xp), data_source=dataset.source)
        return train(config, out, xp, dataset, resume_from, a.explain,
                     not a.no_progress, resume_command(a, out))
    except (UsageError, BackendError, DataError, RunError, TrainingError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, TrainingError) else 2
    except OSError as err:          # a full disk or a folder that cannot be written
        print(f"train.py: error: cannot write the run ({err}); {_what_is_kept(a, out, err)}",
              file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            release_run_dir(lock, out)  # free again, also for callers in this process


def _what_is_kept(a, out, err):
    # Checkpoints are written to a temporary file and renamed, so a failed write leaves the
    # one before it: read back the step of what is on disk rather than assume.
    fix = ("make room" if err.errno in (errno.ENOSPC, errno.EDQUOT)
           else f"make {out} writable")
    step = checkpoint_step(out) if out else None
    if step is None:
        return (f"there is no checkpoint to continue from: {fix} or choose another --out, "
                "then start again")
    return (f"the checkpoint of step {step} in {out} is whole and kept (a checkpoint is written "
            f"to a temporary file first): {fix}, then continue with: {resume_command(a, out)}")


if __name__ == "__main__":
    sys.exit(main())
