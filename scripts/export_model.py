"""Take one trained model out of a run directory, small enough to commit (results/models/):

    python scripts/export_model.py RUN_DIR --list
    python scripts/export_model.py RUN_DIR --model M --out results/models/NAME

--list prints each model's seed and the KL of each group at its last log row, to choose one.
The export writes NAME/config.json (that model alone), NAME/params.npz (its parameters,
float16 unless --dtype float32) and NAME/metrics.json (its scores, computed from the stored
parameters on --test-size fixed test images, of the data the run was trained on); one that
fails leaves nothing. `load_run("results/models/NAME")` loads it and tests/test_export.py
scores it again. The format: tinyvae/experiment/tools/export.py.
"""
import tinyvae  # noqa: F401  (first: it sets how OpenBLAS threads wait, before NumPy loads)
import argparse
import sys

from tinyvae.experiment.tools.export import DTYPES, TEST_SIZE, export_model, models_of_run
from tinyvae.experiment.run.storage import RunError


def parse_args(argv):
    p = argparse.ArgumentParser(description="Write one model of a run directory to a small "
                                "directory (config, float16 parameters, scores) to commit.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of train.py")
    p.add_argument("--list", action="store_true", help="list the run's models (seed, KL per "
                   "group at the last log row) and export nothing")
    p.add_argument("--model", type=int, help="which model of the run (0 .. M-1)")
    p.add_argument("--out", help="the new directory, e.g. results/models/NAME")
    p.add_argument("--dtype", choices=DTYPES, default="float16", help="how the parameters "
                   "are stored (the scores are those of the stored parameters)")
    p.add_argument("--test-size", type=int, default=TEST_SIZE, help="fixed test images scored")
    p.add_argument("--allow-unfinished", action="store_true", help="export from a checkpoint "
                   "that stopped short of the run's --steps")
    a = p.parse_args(argv)
    if not a.list and (a.model is None or not a.out):
        p.error("give --model M and --out DIR (or --list)")
    if not 100 <= a.test_size <= 10000:
        p.error(f"--test-size must lie in 100..10000, got {a.test_size}")
    return a


def main(argv=None):
    a = parse_args(argv)
    try:
        if a.list:
            print("\n".join(models_of_run(a.run)))
            return 0
        protocol, record = export_model(a.run, a.model, a.out, a.dtype, a.test_size,
                                        a.allow_unfinished)
    except (RunError, OSError) as err:      # a missing data file is a RunError (export.py)
        print(f"export_model.py: error: {err}", file=sys.stderr)
        return 2
    except KeyError as err:
        print(f"export_model.py: error: {a.run}: config.json lacks {err}; not a run directory "
              "of this train.py", file=sys.stderr)
        return 2
    kl = " ".join(f"{k:.2f}" for k in record["kl_per_dim"])
    print(f"{a.out}: model {a.model} of {a.run} (seed {record['seed']}, step "
          f"{record['step']}), {a.dtype}; on {protocol['n_images']} test images: MIG "
          f"{record['mig']:.3f}, L_rec {record['rec_loss_full']:.1f}, KL per latent {kl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
