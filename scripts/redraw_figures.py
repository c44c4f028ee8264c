"""Redraw the figures/ of finished runs from their checkpoint and log.csv with today's plotting
code, without training: `python scripts/redraw_figures.py RUN_DIR [RUN_DIR ...]`. A model
exported from a run (results/models/NAME: params.npz, no log) gets its reconstructions and
traversals.

train.py draws a run's figures at each checkpoint; a run made before a change to the plots
keeps the old drawings. The figures are a pure function of the checkpoint and the log, so
redrawing gives what training with today's code would have drawn at its last checkpoint.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import os
import sys

import numpy

from tinyvae.data.dataset import DataError, open_dataset
from tinyvae.experiment.checkpoint import load_weights
from tinyvae.experiment.files import CHECKPOINT, CONFIG, FIGURES, PARAMS, RunError, read_json
from tinyvae.experiment.trainer import Trainer
from tinyvae.experiment.training_figures import draw_run_figures, shape_reconstructions


def redraw(run_dir):
    config = read_json(os.path.join(run_dir, CONFIG))
    dataset = open_dataset(None if config["data"] == "renderer" else config["data"])
    trainer = Trainer(config, numpy, dataset)
    exported = os.path.join(run_dir, PARAMS)
    if os.path.exists(exported) and not os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        load_weights(trainer.model, run_dir, exported)
        shape_reconstructions(os.path.join(run_dir, FIGURES), trainer.model, dataset,
                              trainer.test_idx, trainer.labels[0])
    else:
        load_weights(trainer.model, run_dir)
    draw_run_figures(run_dir, trainer)


def main(argv):
    if not argv:
        print("usage: python scripts/redraw_figures.py RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    status = 0
    for run_dir in argv:
        try:
            redraw(run_dir)
            print(f"{run_dir}: figures redrawn in {os.path.join(run_dir, FIGURES)}")
        except DataError as err:     # this script has no --data: the run's own data is used
            print(f"redraw_figures.py: skipping {run_dir}: {err.defect}; the figures are drawn "
                  "from the data the run was trained on (its config.json, \"data\"): put "
                  "that file back", file=sys.stderr)
            status = 1
        except (RunError, KeyError) as err:
            print(f"redraw_figures.py: skipping {run_dir}: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
