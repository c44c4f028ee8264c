"""A strict CuPy stand-in for the tests: NumPy computes, and the host/device boundary is kept
as CuPy keeps it. See tests/cupy_standin/README.md."""
import sys

from . import _api, _functions, cuda
from ._array import ndarray
from ._functions import asarray, asnumpy, get_array_module
from ._kernel import ElementwiseKernel

__version__ = _api.VERSION + "+standin"
globals().update(_functions.SHARED)
_functions.MODULE = sys.modules[__name__]
_memory_pool = cuda.MemoryPool()


def get_default_memory_pool():
    return _memory_pool
