"""What runs experiments on the core. Training (train.py): a run's configuration
(configuration.py), its directory (files.py, lock.py, checkpoint.py, runs.py), the loop
(trainer.py, training.py) and its figures (training_figures.py). Scoring (evaluate.py):
evaluation.py, scores.py, records.py. Reports: trials.py, table1.py, report_figures.py,
curves.py, compare.py, multiplier.py, opening.py (opening_survival.py), with the statistics in
stats.py, survival.py and survival_fits.py. Trained models to share: export.py. The per-group
gradient drawing: flow.py. The step benchmark: bench.py. Drawing: plotting.py."""

from .checkpoint import load_run  # noqa: E402,F401  (the one call that loads a trained run)
