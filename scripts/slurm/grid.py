"""The sweep's grid for Slurm: configurations x seeds, one array task per run directory.

    python scripts/slurm/grid.py count        the number of array tasks
    python scripts/slurm/grid.py flags TASK   train.py's flags for array task TASK, one a line
    python scripts/slurm/grid.py runs         every run directory, one a line
    python scripts/slurm/grid.py check        exit 1 naming every run that has not finished
    python scripts/slurm/grid.py array [LIST] sbatch's --array: every task (or LIST), with
                                              MAX_RUNNING (submit.sh), once train.py's and
                                              evaluate.py's own parsing accept the flags
    python scripts/slurm/grid.py evaluate-args  evaluate.py's arguments, one a line: every
                                              run, --report SWEEP/report, EVALUATE_FLAGS
    python scripts/slurm/grid.py record       keep the settings in SWEEP/grid.json (submit.sh)
                                              and say which a resubmission replaced

Task t trains configuration t // n of the grid with the t % n-th block of SEEDS_PER_TASK
seeds (n blocks per configuration), into SWEEP/runs/NAME-sFIRST[-LAST]. Settings come from
the environment, which submit.sh passes on to every task:

    SWEEP            where the runs go (SWEEP/runs) ; required
    GRID             the configurations: a file, one a line, `NAME train.py-flags`; '#'
                     starts a comment (default scripts/slurm/paper.grid, the paper's §5)
    SEEDS            seeds per configuration, 0 .. SEEDS-1 (default 10)
    SEEDS_PER_TASK   seeds one task trains at once on the models axis (default 1; a GPU
                     task takes many)
    TRAIN_FLAGS      flags every task adds (default --steps 10000)
    EVALUATE_FLAGS   flags added to evaluate.py (default none)
    MAX_RUNNING      at most this many tasks of an array at once (default no limit)
    GPU              yes: submitted with submit.sh --gpu (default no)

Once a sweep is submitted, SWEEP/grid.json holds its settings, and they are the sweep's from
then on: a later `check`, `submit.sh --tasks` and every task use them without being told
again, and refuse a setting given again that differs; but EVALUATE_FLAGS and MAX_RUNNING,
which change no run, a resubmission may replace.
"""
import contextlib
import importlib.util
import io
import json
import os
import shlex
import sys

from tinyvae.experiment.run.configuration import seeds_name
from tinyvae.experiment.run.directory import progress

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
SET_HERE = ("--seed", "--seeds", "--out", "--resume", "--overwrite")   # the task's own
DEFAULTS = {"GRID": os.path.join(HERE, "paper.grid"), "SEEDS": "10", "SEEDS_PER_TASK": "1",
            "TRAIN_FLAGS": "--steps 10000", "EVALUATE_FLAGS": "", "MAX_RUNNING": "",
            "GPU": "no"}
RECORD = "grid.json"                    # in SWEEP: the settings it was submitted with
REPLACEABLE = ("EVALUATE_FLAGS", "MAX_RUNNING")     # they change no run: a resubmission's win


class GridError(Exception):
    """A grid or a setting that cannot be used: one line, exit status 2."""


def settings():
    """SWEEP and the sweep's settings: those it was submitted with (SWEEP/grid.json) where it
    has been, else the environment's, else the defaults."""
    sweep = os.environ.get("SWEEP")
    if not sweep:
        raise GridError("SWEEP is not set: submit with scripts/slurm/submit.sh, or set it")
    path, recorded = recorded_settings(sweep)
    found = {"SWEEP": sweep}
    for name, default in DEFAULTS.items():
        given = os.environ.get(name)
        value = _value(name, given if given is not None else default)
        if name in REPLACEABLE and given is not None:
            found[name] = value
        elif name in recorded and given is not None and value != recorded[name]:
            hint = ("give submit.sh --gpu as the first time, or leave it out as then"
                    if name == "GPU" else f"leave {name} unset to use it")
            raise GridError(f"{name}={given} differs from {name}={recorded[name]}, what the "
                            f"sweep in {sweep} was submitted with ({path}): {hint}, or choose "
                            "another SWEEP")
        else:
            found[name] = recorded.get(name, value)
    return found


def recorded_settings(sweep):
    """(the path of SWEEP/grid.json, the settings it holds: {} before the first submission)."""
    path = os.path.join(sweep, RECORD)
    try:
        with open(path) as f:
            return path, json.load(f)
    except FileNotFoundError:
        return path, {}
    except (OSError, ValueError) as err:
        raise GridError(f"{path}: cannot read it ({err}); it holds the settings the sweep was "
                        "submitted with: restore it, or choose another SWEEP") from None


def split_flags(found, name):
    """The flags of setting `name` (TRAIN_FLAGS, EVALUATE_FLAGS), split as a shell would."""
    try:
        return shlex.split(found[name])
    except ValueError as err:               # an unclosed quote
        raise GridError(f"{name}={found[name]}: cannot split it into flags ({err}); close the "
                        "quote") from None


def _command(name):
    """train.py or evaluate.py of this checkout, imported (its main is not run)."""
    spec = importlib.util.spec_from_file_location(f"_{name}", os.path.join(CHECKOUT, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refusal(parse, argv, errors=()):
    """The message with which `parse` refuses argv (argparse's, or one of `errors`), or None."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            parse(argv)
    except SystemExit as stop:
        lines = said.getvalue().strip().splitlines()
        return lines[-1].split(": error: ", 1)[-1] if stop.code else "it asks for --help"
    except errors as err:
        return str(err)
    return None


def check_flags(found, todo):
    """Refuse, before anything is submitted, flags that train.py or evaluate.py would refuse
    only when a task or the evaluation runs (after the whole sweep has trained). Those kept in
    SWEEP/grid.json were checked when they were submitted."""
    recorded = recorded_settings(found["SWEEP"])[1]
    evaluate_flags = split_flags(found, "EVALUATE_FLAGS")
    if not recorded:
        _check_train_flags(todo)
    if found["EVALUATE_FLAGS"] != recorded.get("EVALUATE_FLAGS"):
        evaluate = _command("evaluate.py")
        why = _refusal(evaluate.parse_args, [todo[0][0], *evaluate_flags])
        if why:
            raise GridError(f"EVALUATE_FLAGS={found['EVALUATE_FLAGS']}: evaluate.py refuses "
                            f"it: {why}")


def _check_train_flags(todo):
    train = _command("train.py")
    for task, (run_dir, flags) in enumerate(todo):
        why = _refusal(lambda argv: train.make_config(train.parse_args(argv)),
                       flags + ["--resume", "auto"], train.UsageError)
        if why:
            raise GridError(f"task {task} ({os.path.basename(run_dir)}): train.py refuses its "
                            f"flags, from GRID and TRAIN_FLAGS: {why}")


def record(found):
    """Keep the settings in SWEEP/grid.json at the first submission; at a later one, those of
    REPLACEABLE that it changes, saying so in one line."""
    path, recorded = recorded_settings(found["SWEEP"])
    changed = [name for name in REPLACEABLE
               if recorded and found[name] != recorded.get(name, DEFAULTS[name])]
    if recorded and not changed:
        return
    kept = {k: v for k, v in found.items() if k != "SWEEP"}
    with open(path + ".tmp", "w") as f:
        json.dump(kept, f, indent=2)
    os.replace(path + ".tmp", path)
    if changed:
        was = {name: recorded.get(name, DEFAULTS[name]) for name in changed}
        print("; ".join(f"{name}={found[name]!r} from now on (was {was[name]!r})"
                        for name in changed)
              + f", kept in {path}"
              + ("; arrays already submitted keep their throttle" if "MAX_RUNNING" in changed
                 else ""))


def _value(name, text):
    if name == "MAX_RUNNING" and text and not (text.isdigit() and int(text) >= 1):
        raise GridError(f"MAX_RUNNING must be a whole number of tasks, at least 1, got {text!r}")
    if name in ("SEEDS", "SEEDS_PER_TASK"):
        try:
            value = int(text)
        except ValueError:
            raise GridError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise GridError(f"{name} must be at least 1, got {value}")
        return value
    return os.path.abspath(text) if name == "GRID" else text


def configurations(path):
    """[(name, [flags])] of the grid file at path."""
    try:
        with open(path) as f:
            lines = [line.split("#")[0].split() for line in f]
    except OSError as err:
        raise GridError(f"GRID {path}: cannot read it ({err.strerror})") from None
    grid = [(words[0], words[1:]) for words in lines if words]
    for name, flags in grid:
        _not_set_here(flags, f"GRID {path}: configuration {name}")
    if not grid or len({name for name, _ in grid}) < len(grid):
        raise GridError(f"GRID {path}: give one configuration a line, each with its own name")
    return grid


def _not_set_here(flags, whose):
    taken = [f for f in flags if f.split("=")[0] in SET_HERE]
    if taken:
        raise GridError(f"{whose} sets {' '.join(taken)}, which each task sets itself; remove it")


def tasks(found):
    """[(run directory, [train.py flags])] in array-task order, for the settings `found`."""
    grid = configurations(found["GRID"])
    seeds, per_task = found["SEEDS"], found["SEEDS_PER_TASK"]
    common = split_flags(found, "TRAIN_FLAGS")
    _not_set_here(common, "TRAIN_FLAGS")
    out = []
    for name, flags in grid:
        for first in range(0, seeds, per_task):
            count = min(per_task, seeds - first)
            run_dir = os.path.join(found["SWEEP"], "runs", f"{name}-{seeds_name(first, count)}")
            out.append((run_dir, flags + common + ["--seed", str(first), "--seeds", str(count),
                                                   "--out", run_dir]))
    return out


def main(argv):
    found = settings()
    todo = tasks(found)
    if argv == ["count"]:
        print(len(todo))
    elif len(argv) == 2 and argv[0] == "flags":
        if not argv[1].isdigit() or int(argv[1]) >= len(todo):
            raise GridError(f"no task {argv[1]}: the grid has tasks 0 to {len(todo) - 1}")
        print("\n".join(todo[int(argv[1])][1]))
    elif argv == ["runs"]:
        print("\n".join(out for out, _ in todo))
    elif argv == ["check"]:
        now = {out: progress(out) for out, _ in todo}
        left = [f"{out}: {p}" for out, p in now.items() if not p.finished]
        if left:
            print(f"grid.py: {len(left)} of {len(todo)} runs have not finished: "
                  + "; ".join(left), file=sys.stderr)
            return 1
        print(f"all {len(todo)} runs have finished")
    elif argv[:1] == ["array"] and len(argv) <= 2:
        # sbatch --array=0-49%5: at most 5 at once
        check_flags(found, todo)
        throttle = f"%{int(found['MAX_RUNNING'])}" if found["MAX_RUNNING"] else ""
        print((argv[1] if len(argv) == 2 else f"0-{len(todo) - 1}") + throttle)
    elif argv == ["evaluate-args"]:
        report = ["--report", os.path.join(found["SWEEP"], "report")]
        print("\n".join([out for out, _ in todo] + report + split_flags(found, "EVALUATE_FLAGS")))
    elif argv == ["record"]:
        record(found)
    else:
        raise GridError("usage: grid.py count | flags TASK | runs | check | array [LIST] | "
                        "evaluate-args | record")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GridError as err:
        print(f"grid.py: error: {err}", file=sys.stderr)
        sys.exit(2)
