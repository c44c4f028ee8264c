"""The memory a training step needs, weighed against what this process may use: train.py
refuses a run that obviously cannot fit before anything is written.

Shapes: M models trained in lockstep, B batch, P pixels, Z latent, G groups.
"""
import os
import resource

import numpy

from ...vae import PIXELS, layer_sizes


class MemoryTooSmall(Exception):
    """A run that cannot fit in the memory this process may use: exit status 2."""


def memory_needed(config):
    """(bytes for parameters, bytes per image and model): a lower bound on what training
    holds in float32. Per model: the parameters, their gradients and Adam's two moments; per
    image: the encoder's input, its layers' outputs before and after the activation, its mean
    and logvar, and the decoder's, once for each of the G group prefixes (eq. 8), logits and
    probabilities included. The backward pass needs as much again at times: not counted."""
    P, Z, G = PIXELS, config["latent"], len(config["groups"])
    sizes = layer_sizes(Z, config["encoder_hidden"], config["decoder_hidden"], P)
    params = sum(a * b + b for layers in sizes for a, b in zip(layers, layers[1:]))
    per_image = (P + 2 * sum(config["encoder_hidden"]) + 2 * Z
                 + G * (Z + 2 * sum(config["decoder_hidden"]) + 2 * P))
    return 4 * 4 * params, 4 * per_image


def memory_limit():
    """(bytes this process may use, what sets it): the least of the machine's memory, the
    address-space limit (ulimit -v) and the control group's limit (Slurm's --mem, a
    container's), where each is known."""
    limits = [(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "the machine's memory")]
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        limits.append((soft, "ulimit -v"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limits.append((int(f.read()), f"the control group's limit ({path})"))
        except (OSError, ValueError):       # absent, or "max": no limit there
            pass
    return min(limits)


def check_memory(config, xp):
    """Refuse a run that obviously cannot fit, before anything is written: its lower bound
    (memory_needed) above what this process may use. NumPy's arrays only: CuPy's live on the
    device, where an allocation that fails ends as MemoryError (train.py's one line)."""
    if xp is not numpy:
        return
    fixed, per_image = memory_needed(config)
    M, B = len(config["model_seeds"]), config["batch_size"]
    need = M * (fixed + B * per_image)
    limit, what = memory_limit()
    if need > limit:
        fits = (limit // M - fixed) // per_image
        room = (f"--batch-size {fits} at most" if fits >= 1
                else "fewer models (--seeds, --beta) or narrower networks")
        raise MemoryTooSmall(
            f"--batch-size {B} with {M} model(s) needs at least {need / 2**30:.1f} GiB to "
            f"train, more than the {limit / 2**30:.1f} GiB this process may use ({what}); "
            f"try {room}")
