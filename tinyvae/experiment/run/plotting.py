"""Matplotlib for figures written to files: pyplot on the Agg backend (no display is needed or
assumed), set up here once for every module of experiment/ that draws (data/ draws its own).
A program that has chosen its backend keeps it: a Jupyter kernel names its inline backend in
MPLBACKEND, and one that imported pyplot has one; switching it would hide their pictures.

Shapes: none.
"""
import os
import sys

import matplotlib

if not os.environ.get("MPLBACKEND") and "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def save_figure(fig, path, dpi=90, bbox_inches="tight"):
    """Write `fig` to `path`, cut to what is drawn ("tight"; None: the figure's own size), and
    free it: pyplot keeps every figure it made until it is closed."""
    fig.savefig(path, dpi=dpi, bbox_inches=bbox_inches)
    plt.close(fig)
