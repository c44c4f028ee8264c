"""Train Grouped-VAEs or β-VAEs on dSprites: `python train.py --model grouped [--gpu]`.

One process trains every (beta, seed) pair asked for at once, on the models axis. The run
directory explains itself: config.json, log.csv, checkpoint.npz and figures/.

Here: flags -> configuration -> backend and data -> run directory (tinyvae/experiment/run/directory.py)
-> the training loop (tinyvae/experiment/run/loop.py). Backend and data come before the run
directory, so that a missing CuPy or a bad --data file leaves the directory untouched.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import argparse
import math
import os
import re
import shlex
import sys

import numpy

from tinyvae.backend import BackendError, get_xp
from tinyvae.data.dataset import DataError, open_dataset
from tinyvae.experiment.run.configuration import run_name, where_trained
from tinyvae.experiment.run.console import output_whose_reader_may_go
from tinyvae.experiment.run.storage import RunError
from tinyvae.experiment.run.lock import NoLocks, release_run_dir
from tinyvae.experiment.run.directory import (Progress, check_out, claim, finished_step,
                                              forget_start, prepare_out, what_is_kept, write_fix)
from tinyvae.experiment.run.loop import TrainingError, train
from tinyvae.experiment.run.memory import MemoryTooSmall, check_memory
from tinyvae.vae import DECODER_HIDDEN, ENCODER_HIDDEN, ROUTINGS, check_kl_scale


class UsageError(Exception):
    """Flags that cannot be used: exit status 2."""


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
    p = parser()
    return p.parse_args(negative_values_attached(argv, p))


def negative_values_attached(argv, p):
    """`--kl-scale -1,1` read as `--kl-scale=-1,1`: argparse takes a word that begins with '-'
    for a flag unless it is one plain number, and says 'expected one argument'. The value then
    meets the flag's own check, which says what it accepts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    takes_value = {s for action in p._actions if action.nargs is None
                   for s in action.option_strings}
    attached = []
    for word in argv:
        if attached and attached[-1] in takes_value and re.match(r"-[\d.]", word):
            attached[-1] += "=" + word
        else:
            attached.append(word)
    return attached


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
    if not (a.lr > 0 and math.isfinite(a.lr)):
        raise UsageError(f"--lr must be a positive, finite number, got {a.lr}; e.g. --lr 1e-4")
    if a.out is not None and not a.out.strip():
        raise UsageError("--out is empty: give a directory, or leave --out out for runs/ and "
                         "a name made of the run's settings")
    if a.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {a.seed}")
    betas = _numbers(a.beta, float, "--beta", "1 or 1,5,10")
    if not all(numpy.isfinite(betas)) or min(betas) < 0:
        raise UsageError(f"--beta values must be finite numbers >= 0, got {a.beta}; "
                         "e.g. --beta 1 or --beta 1,5,10")
    repeated = sorted({b for b in betas if betas.count(b) > 1})
    if repeated:
        raise UsageError(f"--beta {a.beta} gives {', '.join(f'{b:g}' for b in repeated)} more "
                         "than once, which would train the same models twice; give each β once")
    if a.model == "beta" and a.groups is not None:
        raise UsageError(f"--groups {a.groups} applies to --model grouped only; a β-VAE has "
                         "one group of --latent dimensions: drop --groups, or use --model grouped")
    if a.model == "beta" and a.routing != "paper":
        raise UsageError(f"--routing {a.routing} changes nothing for --model beta: with one "
                         "group both routings are the same gradient; drop --routing")
    default = a.groups is None
    groups = (_numbers("3,3" if default else a.groups, int, "--groups", "3,3")
              if a.model == "grouped" else [a.latent])
    if min(groups) < 1:
        raise UsageError(f"--groups sizes must be positive, got {a.groups}")
    if sum(groups) != a.latent:
        given = ",".join(map(str, groups)) + (" (the default)" if default else "")
        raise UsageError(f"--groups {given} sums to {sum(groups)}, but --latent is "
                         f"{a.latent}; give --groups sizes that sum to the latent size")
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


def main(argv=None):
    a = parse_args(argv)
    with output_whose_reader_may_go():      # `| tee log` and the tee stopped: no traceback
        return run_command(a)


def run_command(a):
    """Flags -> configuration -> backend and data -> run directory -> training; the exit
    status: 0, 1 (training or writing failed), 2 (bad input), 128 + a stop signal."""
    out = lock = None
    afresh = False                  # whether this start began the run (nothing to continue)
    try:
        config = make_config(a)
        out = a.out if a.out is not None else os.path.join("runs", run_name(config))
        check_out(out)
        # Read alone, before anything is locked or written: a finished run needs nothing
        # written (a sweep's copy in a read-only place).
        step = finished_step(out, config) if a.resume == "auto" else None
        if step is not None:
            return nothing_to_do(out, step, config)
        xp = get_xp(a.gpu)
        check_memory(config, xp)
        dataset = open_dataset(a.data)
        try:
            lock = claim(out, a.resume)
        except NoLocks as err:
            print(f"train.py: warning: {err}; this file system has no locks, so nothing keeps "
                  f"a second train.py out of {out}: start only one on it", file=sys.stderr)
        resume_from = prepare_out(out, config, a.resume, a.overwrite, lock is not None)
        state = resume_from[1]
        if state is not None and Progress(state["step"], config["steps"]).finished:
            return nothing_to_do(out, state["step"], config)    # finished since read above
        afresh = state is None
        config.update(out=out, **where_trained(xp, dataset))
        return train(config, out, xp, dataset, resume_from, a.explain,
                     not a.no_progress, resume_command(a, out))
    except (UsageError, BackendError, DataError, RunError, TrainingError, MemoryTooSmall) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, TrainingError) else 2
    except MemoryError as err:      # NumPy's or CuPy's: an allocation the machine refused
        fix = "use a smaller --batch-size, fewer models (--seeds, --beta) or narrower networks"
        if afresh and forget_start(out):
            kept = f"this start left nothing in {out}: {fix}, then run the same command again"
        else:
            kept = what_is_kept(out, fix, resume_command(a, out))
        detail = f" ({err})" if str(err) else ""
        print(f"train.py: error: out of memory{detail}; {kept}", file=sys.stderr)
        return 1
    except OSError as err:          # a full disk or a folder that cannot be written
        again = resume_command(a, out) if out else None
        print(f"train.py: error: cannot write the run ({err}); "
              f"{what_is_kept(out, write_fix(out, err), again)}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            release_run_dir(lock, out)  # free again, also for callers in this process


def nothing_to_do(out, step, config):
    """--resume auto on a run that has reached --steps: exit status 0."""
    print(f"nothing to do: {out} has finished (step {step} of {config['steps']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
