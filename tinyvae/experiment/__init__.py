"""What runs experiments on the core, in five rooms. Each room imports only the rooms above it
in this list (tests/test_layout.py holds the table):

    run/       the life of a run (train.py): configuration.py, its directory (storage.py,
               lock.py, checkpoint.py, directory.py), the loop (trainer.py, loop.py), what
               it logs of the routing (multiplier.py), its figures (training_figures.py,
               plotting.py) and its output (console.py)
    scoring/   what evaluate.py computes per model: evaluate_models.py, score_inputs.py,
               model_record.py, and the records it keeps, metrics_files.py (the score list
               itself is tinyvae/metrics/scores.py)
    reports/   across runs (evaluate.py --report): full_report.py, report_figures.py,
               learning_curves.py
    studies/   the routing studies of the study log: compare.py, opening.py (with
               opening_survival.py), and their statistics, stats.py, survival.py,
               survival_fits.py
    tools/     beside them: bench.py (the step benchmark), export.py (one model to commit)

The per-group gradient picture is the core's routing report (tinyvae/routing_report.py)."""

from .run.checkpoint import load_run  # noqa: F401  (the one call that loads a trained run)
