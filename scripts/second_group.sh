#!/usr/bin/env bash
# The second-group study (results/study-log.md): every run it trains and every report it writes,
# in the order they were made. `bash scripts/second_group.sh [train|score|all|planned]` from the
# repository root, with the README's venv. Safe to run again: every train.py start is
# `--resume auto`, so a finished run is skipped and a stopped one continues.
#
# `train` makes the runs that are committed under results/ (T1's three arms and T3's run in
# opening/, T1's routed and unrouted models continued to 20,000 steps in long/, T2's
# six-group cells in endstate/, T4's in dose/); `planned` the one run of the study not made
# yet (results/study-log.md says what is missing).
# Sizes, measured on the 2-core development machine with OPENBLAS_NUM_THREADS=1 and two runs
# at a time: 20 models of 256-wide networks with two groups take 0.8 s a step (40 ms per model
# and step), so each of T1's arms takes 2 h 15 min on one core, and 1 h 15 min for each 6,000
# steps more; T2's cells, 5 models with six groups, take 0.45 s a step (1 h each); T3's run,
# 10 models, 1 h; T4's runs, 15 models each, 46 to 58 min; the planned run about 2 h 15 min.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
PY=${PYTHON:-.venv/bin/python}
W="--encoder-hidden 256,256 --decoder-hidden 256,256,256 --lr 3e-4"
G6="--groups 1,1,1,1,1,1 $W --beta 4 --seeds 5 --steps 8000 --snapshot-every 1000"
train() { $PY train.py "$@" --no-progress --resume auto; }

train_all() {
    # T1: how often group 2 opens; groups (3, 3), beta 1, 20 seeds, three arms
    train --groups 3,3 $W --seeds 20 --steps 10000 --snapshot-every 1000 --out runs/opening/g33-b1
    train --groups 3,3 $W --seeds 20 --steps 10000 --snapshot-every 1000 --routing none --out runs/opening/g33-b1-none
    train --groups 3,3 $W --seeds 20 --steps 10000 --snapshot-every 1000 --routing none --kl-scale 2,1 --out runs/opening/g33-b1-none-kl2,1
    # T3: the plain gradient with the multiplier measured on the routed runs (1.94,1)
    train --groups 3,3 $W --seeds 10 --steps 10000 --snapshot-every 1000 --routing none \
        --kl-scale "$($PY -m tinyvae.experiment.run.multiplier runs/opening/g33-b1 --scale)" --out runs/opening/g33-b1-none-klc
    long_all
    endstate_all
    dose_all
}

# A long run begun from T1's finished run: hard links to its checkpoint and snapshots (read,
# never written: train.py writes new files and renames them), copies of its config.json and
# log.csv (appended to). Continuing with more --steps gives the run a straight one would
# (tests/test_train.py, test_resume_equals_an_uninterrupted_run); without T1's run here,
# train.py starts the long run from step 0 and reaches the same models.
continue_from() {
    local from=$1 to=$2
    if [ -e "$to" ] || [ ! -f "$from/checkpoint.npz" ]; then return 0; fi
    mkdir -p "$to/snapshots"
    ln "$from/checkpoint.npz" "$to/"
    ln "$from"/snapshots/* "$to/snapshots/"
    cp "$from/config.json" "$from/log.csv" "$to/"
}

long_all() {
    # The end state: T1's two arms, all 20 seeds, continued to 20,000 steps (made in two
    # parts, to 16,000 and then on: a resumed run is the straight one)
    continue_from runs/opening/g33-b1 runs/long/g33-b1
    continue_from runs/opening/g33-b1-none runs/long/g33-b1-none
    train --groups 3,3 $W --seeds 20 --steps 20000 --snapshot-every 1000 --out runs/long/g33-b1
    train --groups 3,3 $W --seeds 20 --steps 20000 --snapshot-every 1000 --routing none --out runs/long/g33-b1-none
}

endstate_all() {
    # T2: six groups of one at beta 4 to 8,000 steps: routed, unrouted, the counted scale and
    # (T3) the scale measured on the routed cell
    train $G6 --out runs/endstate/g6-b4
    train $G6 --routing none --out runs/endstate/g6-b4-none
    train $G6 --routing none --kl-scale 6,5,4,3,2,1 --out runs/endstate/g6-b4-none-kl6,5,4,3,2,1
    train $G6 --routing none --kl-scale "$($PY -m tinyvae.experiment.run.multiplier runs/endstate/g6-b4 --scale)" \
        --out runs/endstate/g6-b4-none-klc
}

dose_all() {
    # T4: dose-response, beta 0.5, 2, 4, 5 seeds, 5,000 steps, T1's three arms
    train --groups 3,3 $W --beta 0.5,2,4 --seeds 5 --steps 5000 --out runs/dose/g33
    train --groups 3,3 $W --beta 0.5,2,4 --seeds 5 --steps 5000 --routing none --out runs/dose/g33-none
    train --groups 3,3 $W --beta 0.5,2,4 --seeds 5 --steps 5000 --routing none --kl-scale 2,1 --out runs/dose/g33-none-kl2,1
}

planned() {
    # T1's third arm continued as its two sisters were (long_all)
    continue_from runs/opening/g33-b1-none-kl2,1 runs/long/g33-b1-none-kl2,1
    train --groups 3,3 $W --seeds 20 --steps 20000 --snapshot-every 1000 --routing none --kl-scale 2,1 --out runs/long/g33-b1-none-kl2,1
}

# The scored runs of each study; a study with none is skipped. When the planned runs are
# made, its name joins the list: g33-b1-none-kl2,1 (long).
OPENING="g33-b1 g33-b1-none g33-b1-none-kl2,1 g33-b1-none-klc"
LONG="g33-b1 g33-b1-none"
ENDSTATE="g6-b4 g6-b4-none g6-b4-none-kl6,5,4,3,2,1 g6-b4-none-klc"
DOSE="g33 g33-none g33-none-kl2,1"

in_() { local where=$1; shift; for name in "$@"; do echo "$where/$name"; done; }

# A study's settings for score_all: its scored runs, whether it has learning curves, the
# opening report's group (group 2 of (3, 3); z3 of six groups, the latent the routing kept
# closed to 2,000 steps; none for T4, which asks about group 1's KL: Table 1's report gives
# it per beta) and the runs that join that report's survival section only: T1's report
# follows its routed and unrouted models on to 20,000 steps there, their longest runs.
settings() {
    case $1 in
        opening) names=$OPENING; curves=; group=2; also=$(in_ results/long/runs $LONG) ;;
        long) names=$LONG; curves=; group=2; also= ;;
        endstate) names=$ENDSTATE; curves=yes; group=3; also= ;;
        dose) names=$DOSE; curves=; group=; also= ;;
    esac
}

score_all() {
    # Each run's metrics.json (and curve.json where it has snapshots to score), its small
    # files copied under results/, and the reports written from those copies; the opening
    # reports last, as T1's reads the copies of its continuation.
    local study names curves group also
    for study in opening long endstate dose; do
        settings $study
        [ -z "$names" ] && continue
        # shellcheck disable=SC2046,SC2086
        $PY evaluate.py $(in_ runs/$study $names) --scores mig,mic --no-progress --report runs/$study/report
        [ -n "$curves" ] && $PY evaluate.py $(in_ runs/$study $names) --curves --scores mig,mic \
            --no-progress --report runs/$study/report
        for name in $names; do
            mkdir -p results/$study/runs/$name
            cp runs/$study/$name/{config.json,log.csv,metrics.json} results/$study/runs/$name/
            [ -n "$curves" ] && cp runs/$study/$name/curve.json results/$study/runs/$name/
            cp -r runs/$study/$name/figures results/$study/runs/$name/
        done
        $PY evaluate.py $(in_ results/$study/runs $names) --scores mig,mic --no-progress \
            --report results/$study/report
        [ -n "$curves" ] && $PY evaluate.py $(in_ results/$study/runs $names) --curves \
            --scores mig,mic --no-progress --report results/$study/report
    done
    for study in opening long endstate dose; do
        settings $study
        [ -z "$names" ] || [ -z "$group" ] && continue
        # shellcheck disable=SC2046,SC2086
        $PY -m tinyvae.experiment.studies.opening $(in_ results/$study/runs $names) --group "$group" \
            --report results/$study/report ${also:+--survival-also $also}
    done
}

case "${1:-all}" in
    train) train_all ;;
    score) score_all ;;
    all) train_all; score_all ;;
    planned) planned ;;
    *) echo "usage: bash scripts/second_group.sh [train|score|all|planned]" >&2; exit 2 ;;
esac
