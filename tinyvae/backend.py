"""The array backend, chosen once: NumPy (default) or CuPy (`--gpu`).

Every other module receives `xp` (the array module) as an argument or recovers it from an
array with `array_module(a)`; none of them imports CuPy or tests for a GPU. Arrays reach the
host through `to_numpy`, the one conversion point.
"""
import numpy


class BackendError(RuntimeError):
    """The requested backend cannot be used here; the message says why and what to do."""


def get_xp(gpu=False):
    """numpy, or cupy when `gpu` is true; a clear BackendError when CuPy cannot run here."""
    if not gpu:
        return numpy
    try:
        import cupy
    except ImportError as err:
        raise BackendError(
            f"--gpu needs CuPy, which is not installed ({err}); install the build matching your "
            "CUDA, e.g. `pip install cupy-cuda12x`, or drop --gpu to run on the CPU") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken: CuPy raises its own runtime error
        raise BackendError(
            f"--gpu: CuPy is installed but CUDA is not usable ({type(err).__name__}: {err}); "
            "check the NVIDIA driver with `nvidia-smi`, or drop --gpu to run on the CPU") from None
    if count < 1:
        raise BackendError("--gpu: CuPy found no CUDA device; drop --gpu to run on the CPU")
    return cupy


def array_module(a):
    """The module (numpy or cupy) that owns array `a`, without importing CuPy on the CPU."""
    return numpy if isinstance(a, numpy.ndarray) or numpy.isscalar(a) else _cupy_of(a)


def _cupy_of(a):
    import cupy
    return cupy.get_array_module(a)


def to_numpy(a):
    """Host copy of `a` (numpy arrays pass through unchanged): the one device-to-host point."""
    if isinstance(a, numpy.ndarray) or numpy.isscalar(a):
        return numpy.asarray(a)
    return a.get()


def device_name(xp):
    """A short human description of where arrays of `xp` live, for config files and logs."""
    if xp is numpy:
        return "cpu"
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"]
    return "cuda:" + (name.decode() if isinstance(name, bytes) else str(name))
