"""The array backend, chosen once: NumPy (default) or CuPy (`--gpu`).

Every other module receives `xp` (the array module) as an argument or recovers it from an
array with `array_module(a)`; none of them imports CuPy or tests for a GPU. Arrays reach the
host through `to_numpy`, the one conversion point.
"""
import numpy

from .adam_kernel import cupy_adam_kernel


class BackendError(RuntimeError):
    """The requested backend cannot be used here; the message says why and what to do."""


INSTALL = ('install CuPy with the CUDA libraries it loads: `pip install -e ".[gpu]"` '
           '(or `pip install "cupy-cuda12x[ctk]"`)')


def get_xp(gpu=False):
    """numpy, or cupy when `gpu` is true and proven to work here: a device, a matrix product
    (cuBLAS) and the fused Adam kernel compiled (NVRTC). Else a one-line BackendError saying
    what is missing and how to install it."""
    if not gpu:
        return numpy
    try:
        import cupy
    except ImportError as err:
        raise BackendError(f"--gpu needs CuPy, which is not installed ({err}); {INSTALL}, "
                           "or drop --gpu to run on the CPU") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken: CuPy raises its own runtime error
        if "cudaErrorNoDevice" not in str(err):
            raise BackendError(
                f"--gpu: CuPy is installed but CUDA is not usable ({_one_line(err)}); check "
                "the NVIDIA driver with `nvidia-smi`, or drop --gpu to run on the CPU") from None
        count = 0
    if count < 1:
        raise BackendError("--gpu: CuPy found no CUDA device; drop --gpu to run on the CPU")
    for what, probe in (("a matrix product (cuBLAS)", _matmul),
                        ("compiling the Adam kernel (NVRTC)", _adam_kernel)):
        try:
            probe(cupy)
        except Exception as err:
            raise BackendError(f"--gpu: CuPy {cupy.__version__} sees {count} CUDA device(s), "
                               f"but {what} failed ({_one_line(err)}); {INSTALL}, or drop "
                               "--gpu to run on the CPU") from None
    return cupy


def _matmul(cupy):
    a = cupy.ones((2, 2), dtype=numpy.float32)                                 # (2, 2)
    if float((a @ a).sum()) != 8.0:
        raise RuntimeError("a 2x2 matrix product of ones did not give twos")


def _adam_kernel(cupy):
    p, m, v = (cupy.zeros(1, dtype=numpy.float32) for _ in range(3))           # (1,)
    c = [numpy.float32(0.5)] * 6
    cupy_adam_kernel(cupy)(cupy.ones(1, dtype=numpy.float32), *c, p, m, v)
    p.get()                                      # waits for the kernel: its errors show here


def _one_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


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
