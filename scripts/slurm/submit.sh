#!/usr/bin/env bash
# Submit the sweep to Slurm: a job array, one task per run directory of the grid (grid.py),
# then evaluate.py once every task has finished (--dependency=afterok), writing SWEEP/report.
# What to change for a cluster, and how to follow a sweep: docs/cluster.md.
#
#   SWEEP=/scratch/$USER/paper scripts/slurm/submit.sh [--gpu] [SBATCH OPTION ...]
#   SWEEP=/scratch/$USER/paper scripts/slurm/submit.sh --tasks 3,17 [--gpu] [SBATCH OPTION ...]
#
# SBATCH OPTIONs (--partition=..., --account=..., --qos=...) go to both jobs.
# --gpu: one GPU per task (--gres=$GPU_GRES, default gpu:1; train.py --gpu), training
#   SEEDS_PER_TASK seeds at once on the models axis (default: all SEEDS of a configuration in
#   one task). The evaluation job asks for no GPU.
# --tasks LIST (sbatch --array syntax): these tasks again, after a scancel or a failure (an
#   afterok evaluation never runs once a task of its array was cancelled), and a new
#   evaluation after them and after what is still queued of the earlier arrays; it cancels
#   the evaluations still waiting, and leaves one that runs. Their logs go to new files,
#   named after the new array.
# Settings from the environment: SWEEP (default ./sweep), GRID, SEEDS, SEEDS_PER_TASK,
# TRAIN_FLAGS, EVALUATE_FLAGS (added to evaluate.py), MAX_RUNNING (at most that many tasks of
# an array at once; default no limit): see grid.py; train.py's and evaluate.py's flags are
# checked before anything is submitted. The first submission keeps them in SWEEP/grid.json,
# and later ones use those; a later one may replace EVALUATE_FLAGS and MAX_RUNNING (they
# change no run), and says so. PYTHON (default the checkout's
# .venv/bin/python), GPU_GRES (default gpu:1). Job ids are appended to SWEEP/jobs, logs go
# to SWEEP/logs.
set -euo pipefail
TINYVAE=$(cd "$(dirname "$0")/../.." > /dev/null && pwd)
# Tasks start in the checkout, not here: every path they are given is made absolute.
SWEEP=$(mkdir -p "${SWEEP:-sweep}/logs" && cd "${SWEEP:-sweep}" > /dev/null && pwd)
PYTHON=${PYTHON:-$TINYVAE/.venv/bin/python}
case $PYTHON in /*) ;; */*) PYTHON=$(pwd)/$PYTHON;; esac     # a bare name stays a PATH lookup
if [ -n "${GRID:-}" ]; then
    case $GRID in /*) ;; *) GRID=$(pwd)/$GRID;; esac
fi
if [ ! -x "$PYTHON" ]; then
    echo "submit.sh: error: no Python at $PYTHON: make the checkout's venv (README), or set" \
         "PYTHON to one with requirements.txt installed" >&2
    exit 2
fi
gpu= tasks=
while [ $# -gt 0 ]; do
    case $1 in
        --gpu) gpu=yes; shift;;
        --tasks) tasks=${2:?--tasks needs a list, e.g. --tasks 3,17}; shift 2;;
        *) break;;
    esac
done
train_args=() GPU=no
if [ -n "$gpu" ]; then
    GPU=yes
    if [ ! -f "$SWEEP/grid.json" ]; then    # submitted before: grid.py keeps its settings
        SEEDS_PER_TASK=${SEEDS_PER_TASK:-${SEEDS:-10}}
        TRAIN_FLAGS="${TRAIN_FLAGS:---steps 10000} --gpu"
    fi
    train_args=(--gres="${GPU_GRES:-gpu:1}" --cpus-per-task=4 --mem=16G)
fi
export TINYVAE SWEEP PYTHON GRID SEEDS SEEDS_PER_TASK TRAIN_FLAGS EVALUATE_FLAGS MAX_RUNNING GPU
n=$("$PYTHON" "$TINYVAE/scripts/slurm/grid.py" count)
# e.g. 0-49%5: every task (or those of --tasks), at most MAX_RUNNING at once
spec=$("$PYTHON" "$TINYVAE/scripts/slurm/grid.py" array ${tasks:+"$tasks"})

array=$(sbatch --parsable --export=ALL ${train_args[@]+"${train_args[@]}"} "$@" \
        --array="$spec" \
        --output="$SWEEP/logs/train_%A_%a.out" "$TINYVAE/scripts/slurm/train.sbatch")
array=${array%%;*}                          # --parsable prints ID or ID;CLUSTER
"$PYTHON" "$TINYVAE/scripts/slurm/grid.py" record
after=afterok:$array
if [ -n "$tasks" ] && [ -f "$SWEEP/jobs" ]; then
    while read -r kind id; do
        if [ "$kind" = evaluate ]; then
            # One still waiting may wait for a task that was cancelled, and never run: the
            # new one takes its place. One that runs (every run had finished) goes on.
            if [ "$(squeue -h -j "$id" -o %T 2>/dev/null)" = PENDING ]; then
                scancel "$id" 2>/dev/null || true
            fi
        elif [ -n "$(squeue -h -j "$id" -o %i 2>/dev/null)" ]; then
            after+=",afterany:$id"              # earlier tasks still queued or running
        fi
    done < "$SWEEP/jobs"
fi
evaluation=$(sbatch --parsable --export=ALL "$@" --dependency="$after" \
             --output="$SWEEP/logs/evaluate_%j.out" "$TINYVAE/scripts/slurm/evaluate.sbatch")
evaluation=${evaluation%%;*}
printf 'array %s\nevaluate %s\n' "$array" "$evaluation" >> "$SWEEP/jobs"
echo "submitted array $array (tasks ${tasks:-0-$((n - 1))} of $n) and evaluation $evaluation" \
     "($after); logs in $SWEEP/logs/train_${array}_<task>.out, progress in" \
     "$SWEEP/runs/<run>/log.csv, report in $SWEEP/report"
