"""tinyvae: β-VAE and Grouped-VAE from scratch, with a hand-written, routed backward pass."""
import os

# OpenBLAS's worker threads spin for up to 2^28 cycles (about 0.1 s) after every product, on the
# cores that Adam's threads need next: Adam measured 57-64 ms a step with the spin, 41-45 ms
# without (2 cores, `python -m tinyvae.experiment.tools.bench`). 2^4 cycles makes them sleep at once.
# OpenBLAS reads this when it loads: it counts only where tinyvae is imported first.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .backend import BackendError, get_xp, to_numpy
from .optim import Adam
from .vae import GroupedVAE

__all__ = ["GroupedVAE", "Adam", "get_xp", "to_numpy", "BackendError"]
