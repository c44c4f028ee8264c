"""The sweep's grid for Slurm: configurations x seeds, one array task per run directory.

    python scripts/slurm/grid.py count        the number of array tasks
    python scripts/slurm/grid.py flags TASK   train.py's flags for array task TASK, one a line
    python scripts/slurm/grid.py runs         every run directory, one a line
    python scripts/slurm/grid.py check        exit 1 naming every run that has not finished

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
"""
import os
import shlex
import sys

from tinyvae.experiment.configuration import seeds_name
from tinyvae.experiment.runs import progress

HERE = os.path.dirname(os.path.abspath(__file__))
SET_HERE = ("--seed", "--seeds", "--out", "--resume", "--overwrite")   # the task's own


class GridError(Exception):
    """A grid or a setting that cannot be used: one line, exit status 2."""


def setting(name, default, cast=str):
    value = os.environ.get(name, default)
    if value is None:
        raise GridError(f"{name} is not set: submit with scripts/slurm/submit.sh, or set it")
    try:
        value = cast(value)
    except ValueError:
        raise GridError(f"{name} must be a whole number, got {value!r}") from None
    if cast is int and value < 1:
        raise GridError(f"{name} must be at least 1, got {value}")
    return value


def configurations(path):
    """[(name, [flags])] of the grid file at path."""
    try:
        with open(path) as f:
            lines = [line.split("#")[0].split() for line in f]
    except OSError as err:
        raise GridError(f"GRID {path}: cannot read it ({err.strerror})") from None
    grid = [(words[0], words[1:]) for words in lines if words]
    for name, flags in grid:
        taken = [f for f in flags if f.split("=")[0] in SET_HERE]
        if taken:
            raise GridError(f"GRID {path}: configuration {name} sets {' '.join(taken)}, "
                            "which each task sets itself; remove it")
    if not grid or len({name for name, _ in grid}) < len(grid):
        raise GridError(f"GRID {path}: give one configuration a line, each with its own name")
    return grid


def tasks():
    """[(run directory, [train.py flags])] in array-task order."""
    sweep = setting("SWEEP", None)
    grid = configurations(setting("GRID", os.path.join(HERE, "paper.grid")))
    seeds, per_task = setting("SEEDS", "10", int), setting("SEEDS_PER_TASK", "1", int)
    common = shlex.split(setting("TRAIN_FLAGS", "--steps 10000"))
    found = []
    for name, flags in grid:
        for first in range(0, seeds, per_task):
            count = min(per_task, seeds - first)
            out = os.path.join(sweep, "runs", f"{name}-{seeds_name(first, count)}")
            found.append((out, flags + common + ["--seed", str(first), "--seeds", str(count),
                                                 "--out", out]))
    return found


def main(argv):
    todo = tasks()
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
    else:
        raise GridError("usage: grid.py count | flags TASK | runs | check")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GridError as err:
        print(f"grid.py: error: {err}", file=sys.stderr)
        sys.exit(2)
