"""The training loop of train.py: a Trainer (trainer.py) stepped to --steps, with log rows,
snapshots, checkpoints and figures written as it goes, and what ends it with the step in hand
saved: a stop signal, or a reader of its output that went away.

Shapes: M models trained in lockstep, B batch, P pixels, Z latent, G groups.
"""
import os
import signal
import sys

import numpy

from ...backend import to_numpy
from ...routing_report import routing_report
from .checkpoint import save_checkpoint, save_snapshot
from .storage import CHECKPOINT, CONFIG, LOG, read_log, write_json, write_log
from .trainer import Trainer
from .training_figures import draw_run_figures

# Signals that stop training as Ctrl-C does: finish the step, save, exit 128 + the signal's
# number (130, 143, 138 on Linux), the status a shell reports for it. SIGTERM is how Slurm
# (scancel, preemption, time limit), docker stop, systemd and Kubernetes stop a program;
# SIGUSR1 is the usual warning before the end (sbatch --signal). SIGPIPE comes with a write to
# a pipe whose reader has gone (the tee of `train.py ... | tee log`, stopped first by the same
# Ctrl-C): 141. Windows has neither.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGPIPE")
                     if hasattr(signal, name))


class TrainingError(Exception):
    """Training itself failed (a non-finite loss): exit status 1."""


def train(config, out, xp, dataset, resume_from, explain, progress, again):
    """Train to config["steps"] in the run directory `out`, from the checkpoint `resume_from`
    (arrays, state) or from the start (None, None); the exit status: 0, or 128 + the number of
    a stop signal (the run saved and resumable with the command `again`)."""
    trainer = Trainer(config, xp, dataset)
    log_path = os.path.join(out, LOG)
    if resume_from[0] is not None:
        trainer.restore(*resume_from, os.path.join(out, CHECKPOINT))
        # Rows a kill left past the checkpoint are dropped: the resumed run writes them anew.
        kept = read_log(log_path, upto=trainer.step)
        lost = history_lost(kept, trainer.step,
                            resume_from[1].get("config", config)["log_every"])
        if lost:
            print(f"train.py: warning: {log_path} {lost}: the resumed log.csv has no rows "
                  f"before step {trainer.step}; to keep them, stop now and restore log.csv "
                  "from a copy, then resume again", file=sys.stderr)
        write_log(log_path, kept, append=False)
        print(f"resuming {out} at step {trainer.step}")
    write_json(os.path.join(out, CONFIG), config)
    if explain:
        print(routing_report(trainer.model, *trainer.explain_batch())[3])

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
                    kept = (f"the last good checkpoint (step {last_good}) is kept in {out}"
                            if last_good is not None else "no checkpoint had been written yet in "
                            f"{out} (--overwrite starts it afresh)")
                    raise TrainingError(
                        f"non-finite {bad[0]} at step {trainer.step + 1} (logvar range "
                        f"[{lv.min():.3g}, {lv.max():.3g}]); training stopped, {kept}; "
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
        # To stderr: where a `| tee` has gone first (stdout's reader), the terminal has it.
        print(f"interrupted by {name}: checkpoint saved at step {trainer.step} in {out}; "
              f"continue with: {again}", flush=True, file=sys.stderr)
        return 128 + stop["asked"]
    print(f"done: {trainer.step} step{'' if trainer.step == 1 else 's'}; run directory {out}")
    return 0


def history_lost(rows, step, every):
    """What is missing from log.csv's `rows` (up to a checkpoint at `step`, logged every
    `every` steps, as it was trained) for a whole history, or None: a log.csv deleted, cut at
    its head, or an older copy put back."""
    if step < every:
        return None
    if not rows:
        return "is missing or has no rows"
    first, last = int(rows[0]["step"]), int(rows[-1]["step"])
    if first > every or last < step // every * every:
        return f"holds steps {first} to {last} only"
    return None


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
