"""Score trained runs as paper §5 does: `python evaluate.py runs/*`.

Per run directory, all its M models in one batched pass over the fixed 10,000 test images:
the MI matrix of the encoder means, MIG (eq. 12), MIC (eq. 13) of every factor with each
latent group and with the first three dimensions (Figure 1), KL per dimension, active
dimensions, and the test reconstruction loss from the full latent and from each group prefix
(eq. 8), written to DIR/metrics.json with the protocol. With --scores, the field's other scores
beside them (tinyvae/metrics/: DCI, SAP, modularity, the FactorVAE score), each on the images
its recipe takes (tinyvae/metrics/scores.py), encoded for all M models together too. Across
runs: Table 1, Figures 1-2 and MI heat maps in --report (tinyvae/experiment/reports/full_report.py). With
--curves, MIG, MIC and the losses for every snapshot of a run, in DIR/curve.json
(tinyvae/experiment/scoring/metrics_files.py), and learning curves in --report (learning_curves.py).

Here: flags, and that every file can be written (before any scoring); then for each run
directory: finished? (runs.progress), its scores, metrics.json; then the report.

Shapes: M models, N test images, n images per batch, P pixels, Z latent, G groups, K factors.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import argparse
import os
import sys
import tempfile
import time

from tinyvae.backend import BackendError, get_xp
from tinyvae.data.dataset import TEST_SIZE, DataError
from tinyvae.experiment.run.checkpoint import load_run, snapshot_steps
from tinyvae.experiment.reports.learning_curves import write_curves
from tinyvae.experiment.scoring.evaluate_models import (BATCH, BINS, FixedTestSets, make_protocol,
                                                        score_models)
from tinyvae.experiment.run.storage import (CHECKPOINT, CONFIG, CURVE, METRICS, RunError,
                                            read_json, write_json)
from tinyvae.experiment.scoring.metrics_files import committed_records, plain, score_snapshots
from tinyvae.experiment.run.directory import Progress, nearest_existing, progress
from tinyvae.metrics.scores import ALWAYS, DEFAULT_SCORES, OTHER_SCORES, SCORE_IMAGES, SCORES
from tinyvae.experiment.scoring.score_inputs import RunInputs
from tinyvae.experiment.reports.full_report import write_report
from tinyvae.experiment.scoring.model_record import summary
from tinyvae.metrics.checks import TRAIN_POINTS, MetricsInputError

# What to do about a dSprites file that cannot be used (DataError.defect): here no --data
# means each run's own data, not the renderer.
DATA_FIX = ("fetch the original from github.com/deepmind/dsprites-dataset, give --data renderer "
            "to score on the built-in renderer, or leave --data out to use each run's own data")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Score trained runs (MIG, MIC, reconstruction loss, and the other scores "
                    "of --scores) and write the paper's Table 1, Figures 1-2 and MI heat maps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories of train.py; "
                   "one without its checkpoint but with a metrics.json (a committed run's "
                   "small files) adds those records as they are")
    p.add_argument("--report", default="report", help="folder for the table and figures")
    p.add_argument("--bins", type=int, default=BINS, help="equal-width bins per latent "
                   "dimension for the MI estimate (the paper's 20)")
    p.add_argument("--batch-size", type=int, default=BATCH, help="test images per pass (all "
                   "models of a run at once)")
    p.add_argument("--data", default=None, help="evaluate on this dSprites .npz, or "
                   "'renderer', instead of the data each run was trained on")
    p.add_argument("--gpu", action="store_true", help="evaluate on the GPU with CuPy; "
                   "without it NumPy, whichever backend trained the run")
    p.add_argument("--test-size", type=int, default=TEST_SIZE, help="score an evenly spaced "
                   "subset of the fixed test images: quick checks only, the paper uses all")
    p.add_argument("--allow-unfinished", action="store_true", help="also score runs whose "
                   "checkpoint stopped short of their --steps")
    p.add_argument("--curves", action="store_true", help="learning curves instead of Table 1: "
                   "score every snapshot of each run (train.py --snapshot-every) into "
                   "RUN_DIR/curve.json, and draw them in --report; a run directory without its snapshots "
                   "but with a curve.json (a committed run's small files) adds that as it is")
    p.add_argument("--scores", default=argparse.SUPPRESS, help="comma list of the scores to "
                   f"compute, from {','.join(SCORES)} (default {','.join(DEFAULT_SCORES)}: "
                   "seconds per model). MIG and MIC are always computed: Table 1 and the "
                   "figures need them. DCI and the FactorVAE score (about 3 minutes per model "
                   "each on a 2-core CPU) are opt-in. --curves takes MIG and MIC only")
    p.add_argument("--score-points", type=int, default=TRAIN_POINTS, help="quick checks "
                   "only: DCI and SAP fit on this many points and test on half as many, the "
                   "FactorVAE score takes this many images for its variances, this many training "
                   "and half as many evaluation votes; the default is disentanglement_lib's")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if not a.report:
        p.error("--report is empty: give a folder for the table and figures, or leave "
                "--report out for report/")
    first = {}                                  # realpath -> where it was first given
    for i, run_dir in enumerate(a.runs):
        j = first.setdefault(os.path.realpath(run_dir), i)
        if j != i:          # its models would count twice in the trials (seeds) of Table 1
            p.error(f"{run_dir} and {a.runs[j]} are the same run directory: give each run once")
    for flag, value, low, high in (("--bins", a.bins, 2, None),
                                   ("--batch-size", a.batch_size, 1, None),
                                   ("--test-size", a.test_size, 100, TEST_SIZE),
                                   ("--score-points", a.score_points, 100, None)):
        if value < low or (high is not None and value > high):
            p.error(f"{flag} must be at least {low}" + (f" and at most {high}" if high else "")
                    + f", got {value}")
    given = getattr(a, "scores", None)                      # None: --scores not given
    names = [n.strip() for n in (given or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in SCORES]
    if unknown or (given is not None and not names):
        p.error(f"--scores: {'unknown ' + ', '.join(unknown) if unknown else 'no score named'}"
                f"; choose from {','.join(SCORES)}")
    others = [n for n in SCORES if n in names and n not in ALWAYS]
    if a.curves and others:
        p.error(f"--curves scores MIG and MIC only; ask for {','.join(others)} without --curves")
    asked = set(names or (ALWAYS if a.curves else DEFAULT_SCORES)) | set(ALWAYS)
    a.scores = tuple(n for n in SCORES if n in asked)
    return a


def evaluate_run(run_dir, xp, a, tests):
    """Score every model of one run directory's checkpoint and write its metrics.json."""
    scored = os.path.join(run_dir, METRICS)
    # The lock is there from train.py's start, the checkpoint from its first save.
    holder = progress(run_dir).holder
    checkpointed = os.path.exists(os.path.join(run_dir, CHECKPOINT))
    if holder and not checkpointed:
        raise RunError(f"still being trained (pid {holder['pid']}, since {holder['since']}), "
                       "no checkpoint yet: wait for its first one (every --checkpoint-every "
                       "steps)")
    if not checkpointed and os.path.exists(scored):
        config = read_json(os.path.join(run_dir, CONFIG))
        protocol = make_protocol(a.bins, tests.of(config), config, xp)
        return committed_records(run_dir, scored, protocol, "checkpoint")
    # Checkpoints are renamed into place, so a run still training is read whole: the
    # checkpoint it had reached, which is the one judged and scored.
    config, model, state = load_run(run_dir, xp)
    done = Progress(int(state["step"]), config["steps"], holder)
    if not done.finished and not a.allow_unfinished:
        if holder:
            raise RunError(f"still being trained (pid {holder['pid']}, since "
                           f"{holder['since']}): checkpoint at {done}; wait for it, or pass "
                           "--allow-unfinished to score the checkpoint it has reached")
        raise RunError(f"unfinished: checkpoint at {done} (finish it with train.py --resume, "
                       "or pass --allow-unfinished)")
    step = done.step
    test = tests.of(config)
    start = time.perf_counter()
    models = score_models(model, config, step, test, a.batch_size, a.bins, not a.no_progress)
    _took(run_dir, "mig, mic (the test-set pass)", start)
    protocol = make_protocol(a.bins, test, config, xp)
    protocol["scores"] = other_scores(models, model, test[0], a, run_dir)
    models = [plain(r) for r in models]
    write_json(scored, {"protocol": protocol, "models": models})
    training = (f"; still being trained (pid {holder['pid']}), scored at its step-{step} "
                "checkpoint" if holder else "")
    print(f"{run_dir}: {model.models} model(s), {summary(models)} "
          f"({time.perf_counter() - start:.1f} s){training}")
    return protocol, models


def other_scores(records, model, dataset, a, run_dir):
    """The scores of a.scores beside MIG and MIC, into each model's record, one after the
    other (scores.OTHER_SCORES); returns {score: its protocol} of a.scores."""
    protocol = {name: {"images": SCORE_IMAGES[name]} for name in a.scores}
    inputs = RunInputs(records, model, dataset, a.batch_size, a.score_points, not a.no_progress)
    for name, score in OTHER_SCORES.items():
        if name in a.scores:
            start = time.perf_counter()
            values, used = score(inputs)
            for r, value in zip(records, values):
                r[name] = value
            protocol[name].update(used)
            _took(run_dir, name, start)
    return protocol


def _took(run_dir, what, start):
    print(f"{run_dir}: {what}: {time.perf_counter() - start:.1f} s", flush=True)


def cannot_write(folder):
    """Why no file can be made in `folder` (or in the nearest folder above it that exists,
    where it would be made), or None when one can: a file made there and removed at once."""
    path = nearest_existing(folder)
    if not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    try:
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        return f"cannot write in {path} ({err.strerror})"
    return None


def unwritable(a):
    """The one line that refuses the flags when a file that scoring would end in cannot be
    written (a run's metrics.json or curve.json, the report), or None: all before any scoring."""
    why = cannot_write(a.report)
    if why:
        return f"--report {a.report}: {why}; choose another --report"
    scored = CURVE if a.curves else METRICS
    for run_dir in a.runs:
        # Only a run with something to score writes; the others' records are read as they are.
        to_score = (snapshot_steps(run_dir) if a.curves
                    else os.path.exists(os.path.join(run_dir, CHECKPOINT)))
        if to_score:
            why = cannot_write(run_dir)
            if why:
                return (f"{run_dir}: its scores go to its {scored}, but {why}: make it "
                        "writable, or copy the run directory somewhere that is")
    return None


def main(argv=None):
    a = parse_args(argv)
    try:
        xp = get_xp(a.gpu)
    except BackendError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2
    refused = unwritable(a)
    if refused:
        print(f"evaluate.py: error: {refused}", file=sys.stderr)
        return 2
    tests, protocol, records, scores = FixedTestSets(a.data, a.test_size), None, [], {}
    for run_dir in a.runs:
        try:
            if a.curves:
                protocol, models = score_snapshots(run_dir, xp, tests, a.bins, a.batch_size,
                                                   not a.no_progress)
            else:
                protocol, models = evaluate_run(run_dir, xp, a, tests)
        except DataError as err:
            print(f"evaluate.py: skipping {run_dir}: {err.defect}; {DATA_FIX}", file=sys.stderr)
            continue
        except (RunError, MetricsInputError) as err:
            print(f"evaluate.py: skipping {run_dir}: {err}", file=sys.stderr)
            continue
        except KeyError as err:
            print(f"evaluate.py: skipping {run_dir}: config.json lacks {err}; not a run "
                  "directory of this train.py", file=sys.stderr)
            continue
        except OSError as err:          # checked above, but a disk can fill while scoring
            print(f"evaluate.py: skipping {run_dir}: cannot write its scores ({err}); make "
                  "room, then evaluate it again", file=sys.stderr)
            continue
        records += models
        scores.update(protocol.get("scores", {}))   # a run scored before --scores has none
    if not records:
        print("evaluate.py: no run could be evaluated", file=sys.stderr)
        return 1
    protocol = {**protocol, "scores": scores}        # what each score of any run used
    try:
        print((write_curves if a.curves else write_report)(records, protocol, a.report))
    except OSError as err:
        print(f"evaluate.py: error: cannot write the report in {a.report} ({err}); the runs' "
              "scores are in their directories: make room or choose another --report, then "
              "run it again", file=sys.stderr)
        return 1
    print(f"report written to {a.report}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
