"""tinyvae: β-VAE and the paper's Grouped-VAE from scratch, on NumPy or CuPy, every gradient
written by hand and the paper's gradient routing one small function (vae.route).

Read in this order: layers.py and losses.py (forward/backward pairs of pure functions),
vae.py (the model: forward, backward, the routing), optim.py (Adam as it reads). The rest of
the core: backend.py (NumPy or CuPy), gradcheck.py, optim_fast.py (Adam, fast),
routing_report.py. What runs experiments lives one folder down.
"""
import os

# Set before NumPy loads OpenBLAS (it counts only where tinyvae is imported first): OpenBLAS's
# idle threads spin for up to 2^28 cycles (about 0.1 s) after every product, on the cores that
# Adam's threads need next. Adam measured 57-64 ms a step with the spin, 41-45 ms without
# (2 cores, `python -m tinyvae.experiment.tools.bench`); 2^4 cycles makes them sleep at once.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .backend import BackendError, get_xp, to_numpy
from .optim import Adam
from .vae import GroupedVAE

__all__ = ["GroupedVAE", "Adam", "get_xp", "to_numpy", "BackendError"]
