"""The measured multiplier c_g of a run:
`python -m tinyvae.experiment.run.multiplier RUN [--scale]`.

Under the paper's routing, group g's encoder outputs receive one reconstruction gradient,
own_g = dL_rec,g/dz_g; the plain gradient sends them all_g = sum_(i >= g) dL_rec,i/dz_g.
Counting terms says all_g = (G - g + 1) own_g; where the later decodings want something else
of z_g, the true number of copies is smaller. The trainer logs it per interval
(`multiplier_sums` below, called by experiment/run/trainer.py every step):

    c_g = <all_g, own_g> / |own_g|^2          (sums over the batch and the interval)

so that, to first order, the routing acts like the plain gradient with group g's KL weighted
c_g times (docs/routing.md). c_G = 1 always. This module reads the log's c_1 .. c_G columns
and averages them over log rows and models; `--scale` prints them as a --kl-scale value.

Shapes: R log rows, M models, G groups.
"""
import argparse
import os
import re
import sys

import numpy

from .storage import LOG, read_log


def multiplier_sums(dzin, group_slices, xp):
    """The two sums behind c_g for one step, per model: <all_g, own_g> and |own_g|^2 over the
    batch. dzin (M, G, B, Z) is what each decoding's loss sent to its input, [z_1 .. z_i | 0]
    (GroupedVAE.backward); own_g is decoding g's gradient in group g's columns, all_g the sum
    of decodings g .. G's there. Returns {"c_dot": (M, G), "c_norm": (M, G)}."""
    dots, norms = [], []
    for g, cols in enumerate(group_slices):
        own = dzin[:, g, :, cols]                                          # (M, B, |g|)
        every = dzin[:, g:, :, cols].sum(axis=1)                           # (M, B, |g|)
        dots.append((every * own).sum(axis=(1, 2)))                        # (M,)
        norms.append((own * own).sum(axis=(1, 2)))                         # (M,)
    return {"c_dot": xp.stack(dots, axis=1), "c_norm": xp.stack(norms, axis=1)}


def measured_c(run_dir, first_step=0):
    """(G, M) array: each model's c_g averaged over its logged rows from `first_step` on (nan
    for a model with none). ValueError, saying why, when the log has no such rows."""
    path = os.path.join(run_dir, LOG)
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir}: no {LOG} there; give a run directory that train.py wrote")
    everything = read_log(path)
    rows = [r for r in everything if int(r["step"]) >= first_step]
    if not rows:
        last = everything[-1]["step"] if everything else None
        raise ValueError(f"{path}: no rows from step {first_step} on (the last is step {last})"
                         f"; give a smaller --from-step" if last else f"{path}: no rows yet; "
                         "wait for train.py's first log row")
    names = sorted((k for k in rows[0] if re.fullmatch(r"c_\d+", k)), key=lambda k: int(k[2:]))
    if not names:
        raise ValueError(f"{path} has no c_1 .. c_G columns (a run with one group, or from "
                         "before they were logged); train a grouped model with today's train.py")
    models = sorted({int(r["model"]) for r in rows})
    c = numpy.full((len(names), len(models)), numpy.nan)                  # (G, M)
    for j, m in enumerate(models):
        values = numpy.array([[float(r[k] or "nan") for k in names]
                              for r in rows if int(r["model"]) == m])     # (R, G)
        for g in range(len(names)):
            finite = values[numpy.isfinite(values[:, g]), g]              # rows logged
            c[g, j] = finite.mean() if len(finite) else numpy.nan
    return c


def as_scale(c):
    """The mean over models of each group's c_g, rounded to 2 decimals: a --kl-scale value.
    ValueError where a group has no model with a value, or a mean that is no KL weight."""
    means = [float(numpy.mean(row[numpy.isfinite(row)])) if numpy.isfinite(row).any()
             else numpy.nan for row in c]                                 # G floats
    bad = [f"c_{g + 1} = {v:.3g}" for g, v in enumerate(means) if not v > 0]
    if bad:
        raise ValueError(f"{', '.join(bad)}: not a positive KL weight (the later decodings "
                         "pull against the own term, or no rows logged it); no --kl-scale to "
                         "give")
    return ",".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in means)


def main(argv=None):
    p = argparse.ArgumentParser(description="The measured multiplier c_g of a run's log "
                                "(docs/routing.md): per group, mean and spread over models")
    p.add_argument("run", help="a run directory whose log.csv has c_1 .. c_G columns")
    p.add_argument("--from-step", type=int, default=0, help="average the log rows from this "
                   "step on (default: all)")
    p.add_argument("--scale", action="store_true", help="print only the means as a "
                   "--kl-scale value (e.g. 1.63,1)")
    a = p.parse_args(argv)
    try:
        c = measured_c(a.run, a.from_step)
        scale = as_scale(c) if a.scale else None
    except (OSError, ValueError) as err:
        print(f"multiplier: error: {err}", file=sys.stderr)
        return 2
    except KeyError as err:
        print(f"multiplier: error: {os.path.join(a.run, LOG)} has no {err} column; give a "
              "run directory that train.py wrote", file=sys.stderr)
        return 2
    if a.scale:
        print(scale)
        return 0
    G = len(c)
    print(f"{a.run}: c_g over {c.shape[1]} models (mean, sd, min, max); counted: G - g + 1")
    for g in range(G):
        v = c[g][numpy.isfinite(c[g])]                                    # models with rows
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        print(f"  c_{g + 1}  {v.mean():6.3f}  {sd:6.3f}  {v.min():6.3f}  {v.max():6.3f}"
              f"   counted {G - g}" if len(v) else f"  c_{g + 1}  no rows   counted {G - g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
