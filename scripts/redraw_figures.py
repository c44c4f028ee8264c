"""Redraw the figures/ of finished runs with today's plotting code, without training:
`python scripts/redraw_figures.py RUN_DIR [RUN_DIR ...]`.

- A run with its checkpoint.npz (runs/NAME after train.py): every figure, from the checkpoint
  and log.csv.
- A committed run (results/*/runs/NAME: config.json and log.csv, no checkpoint): losses.png
  and routing.png, from log.csv alone. Its reconstructions and traversals need the parameters,
  which only the checkpoint holds: they stay committed.
- A model exported from a run (results/models/NAME: params.npz, no log): its reconstructions,
  traversals and shapes.png.

train.py draws a run's figures at each checkpoint; a run made before a change to the plots
keeps the old drawings. The figures are a pure function of the checkpoint and the log, so
redrawing gives what training with today's code would have drawn at its last checkpoint.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import os
import sys

import numpy

from tinyvae.data.dataset import DataError, open_dataset
from tinyvae.experiment.run.checkpoint import load_weights
from tinyvae.experiment.run.storage import (CHECKPOINT, CONFIG, FIGURES, LOG, PARAMS, RunError,
                                            read_json, read_log)
from tinyvae.experiment.run.trainer import Trainer
from tinyvae.experiment.run.training_figures import (draw_run_figures, log_figures,
                                                     shape_reconstructions)


def redraw(run_dir):
    config = read_json(os.path.join(run_dir, CONFIG))
    dataset = open_dataset(None if config["data"] == "renderer" else config["data"])
    trainer = Trainer(config, numpy, dataset)
    exported = os.path.join(run_dir, PARAMS)
    if os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        load_weights(trainer.model, run_dir)
    elif os.path.exists(exported):
        load_weights(trainer.model, run_dir, exported)
        shape_reconstructions(os.path.join(run_dir, FIGURES), trainer.model, dataset,
                              trainer.test_idx, trainer.labels[0])
    elif os.path.exists(os.path.join(run_dir, LOG)):
        log_figures(os.path.join(run_dir, FIGURES), read_log(os.path.join(run_dir, LOG)),
                    trainer.labels, trainer.model.routing)
        return "from log.csv (no checkpoint.npz: reconstructions and traversals left as they are)"
    else:
        load_weights(trainer.model, run_dir)        # refused: it says what is missing
    draw_run_figures(run_dir, trainer)
    return "all of them"


def main(argv):
    if not argv:
        print("usage: python scripts/redraw_figures.py RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    status = 0
    for run_dir in argv:
        try:
            which = redraw(run_dir)
            print(f"{run_dir}: figures redrawn in {os.path.join(run_dir, FIGURES)}, {which}")
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
