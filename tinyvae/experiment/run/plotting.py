"""Matplotlib for figures written to files: pyplot on the Agg backend (no display is needed or
assumed), set up here once for every module of experiment/ that draws (data/ draws its own).

Shapes: none.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def save_figure(fig, path, dpi=90, bbox_inches="tight"):
    """Write `fig` to `path`, cut to what is drawn ("tight"; None: the figure's own size), and
    free it: pyplot keeps every figure it made until it is closed."""
    fig.savefig(path, dpi=dpi, bbox_inches=bbox_inches)
    plt.close(fig)
