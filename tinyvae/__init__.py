"""tinyvae: β-VAE and Grouped-VAE from scratch, with a hand-written, routed backward pass."""
from .backend import BackendError, get_xp, to_numpy
from .optim import Adam
from .vae import GroupedVAE

__all__ = ["GroupedVAE", "Adam", "get_xp", "to_numpy", "BackendError"]
