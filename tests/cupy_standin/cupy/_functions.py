"""The stand-in's functions: each name CuPy and NumPy share, as NumPy computes it, bound to
CuPy's signature, on device operands only (NumPy arrays raise TypeError, as in CuPy), with
its result on the device. `array`, `asarray` and `asanyarray` copy host data over, as CuPy's
do; `asnumpy` copies device data back."""
import numpy

from . import _api
from ._array import call, device, ndarray, wrap

# Where CuPy takes host data: the copies to the device, and the *_like functions, which only
# read the array's shape and dtype.
HOST_OK = {"array", "asarray", "asanyarray", "empty_like", "zeros_like", "ones_like",
           "full_like"}


def _shared(name, func):
    key = "cupy." + name

    def f(*args, **kwargs):
        _api.bind(key, args, kwargs)
        return call(func, args, kwargs, host_ok=name in HOST_OK)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"numpy.{name} on the stand-in's device arrays (CuPy: cupy.{name})."
    return f


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if isinstance(a, ndarray) and (dtype is None or numpy.dtype(dtype) == a.dtype) \
            and copy is not True:
        return a                                   # CuPy's asarray: the same array
    return wrap(numpy.array(device(a, host_ok=True), dtype=dtype, order=order or "K",
                            copy=True))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    return MODULE if any(isinstance(a, ndarray) for a in args) else numpy


MODULE = None      # the stand-in's `cupy` module (set when it is imported)


SHARED = {}        # name -> what the stand-in offers under it: a function, type or constant
for _key in _api.NAMES:
    _name = _key[len("cupy."):]
    if _key.startswith("cupy.") and "." not in _name and not _name.startswith("_") \
            and hasattr(numpy, _name) and _name not in ("ndarray", "asarray", "asnumpy"):
        _obj = getattr(numpy, _name)
        if isinstance(_obj, type(numpy)):
            continue                               # numpy.linalg etc.: not offered
        # dtypes, numpy.dtype, pi, inf, newaxis as they are; functions on the device
        SHARED[_name] = _obj if isinstance(_obj, type) or not callable(_obj) \
            else _shared(_name, _obj)
FUNCTIONS = {**{n: f for n, f in SHARED.items() if callable(f) and not isinstance(f, type)},
             "asarray": asarray, "asnumpy": asnumpy, "get_array_module": get_array_module}
