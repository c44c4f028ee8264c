"""The stand-in's device array: NumPy storage that reaches the host only by an explicit call
(`get`, `asnumpy`, `item`, `tolist`, `float`, printing), as CuPy's does.

`numpy.asarray(a)` raises TypeError (CuPy's `__array__` does); a NumPy array met by a ufunc,
an operator or a kernel raises TypeError ('Unsupported type', as CuPy's kernels do), and so
does a list or tuple given to a ufunc, where or clip; a NumPy array written into a basic
slice raises ValueError (CuPy fills a slice from scalars only).
"""
import numpy

from . import _api

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")
LIBCUBLAS = "libcublas.so.12"
ELEMENTWISE = ("where", "clip")   # with the ufuncs, CuPy's kernels: arrays and scalars only
SCALARS = (numpy.generic, int, float, complex)   # host scalars CuPy takes (bool is an int)


def unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def device(x, host_ok=False):
    """x with every stand-in array replaced by its storage; a NumPy array (in lists and tuples
    too) raises TypeError unless `host_ok` (CuPy copies host data only where asked to)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, numpy.ndarray):
        if host_ok:
            return x
        raise unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(device(v, host_ok) for v in x)
    return x


def wrap(x):
    """A NumPy result as CuPy gives it: arrays and scalars of NumPy as device arrays (a CuPy
    reduction returns a 0-d device array, not a number)."""
    if isinstance(x, numpy.ndarray):
        return ndarray._of(x)
    if isinstance(x, numpy.generic):
        return ndarray._of(numpy.asarray(x))
    if isinstance(x, (list, tuple)):
        return type(x)(wrap(v) for v in x)
    return x


def call(func, args, kwargs, host_ok=False):
    """func (a NumPy function) on device operands, its result on the device."""
    if func in (numpy.matmul, numpy.dot, numpy.tensordot, numpy.einsum, numpy.inner) \
            and _api.fault() == "no-cublas":
        raise _api.missing_library(LIBCUBLAS)
    if isinstance(func, numpy.ufunc) or getattr(func, "__name__", None) in ELEMENTWISE:
        for x in (*args, *(v for k, v in kwargs.items() if k != "out")):
            if isinstance(x, (list, tuple)):      # host data: CuPy's kernels do not copy it
                raise unsupported(x)
    args = device(args, host_ok)
    kwargs = {k: device(v, host_ok) for k, v in kwargs.items()}
    return wrap(func(*args, **kwargs))


def _binary(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if not isinstance(other, (ndarray, numpy.ndarray, *SCALARS)):
            return NotImplemented
        if inplace:
            call(ufunc, (self, other), {"out": self})
            return self
        return call(ufunc, (other, self) if reflected else (self, other), {})
    return op


def _basic(index):
    """True when `index` uses no integer or boolean array (CuPy's basic indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(i, (ndarray, numpy.ndarray, list)) or isinstance(i, bool)
                   for i in items)


class ndarray:
    """cupy.ndarray of the stand-in; `_a` is its NumPy storage (views share it, as on a GPU)."""
    __slots__ = ("_a",)
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, *args, _obj=None, _no_init=False, **kwargs):
        _api.bind("cupy.ndarray", args, kwargs)
        self._a = numpy.empty(*args, **kwargs)

    @classmethod
    def _of(cls, a):
        obj = cls.__new__(cls)
        obj._a = a
        return obj

    # The host boundary.
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            raise TypeError(f"cupy stand-in: numpy.{ufunc.__name__}.{method} is not emulated")
        return call(ufunc, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import _functions
        mine = _functions.FUNCTIONS.get(func.__name__)
        if mine is None:
            return NotImplemented                 # numpy raises TypeError, as with CuPy
        return mine(*args, **kwargs)

    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is None:
            return numpy.array(self._a, order=order)
        out[...] = self._a
        return out

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(f"set: shape and dtype must match: {arr.shape} {arr.dtype} "
                             f"into {self.shape} {self.dtype}")
        self._a[...] = arr

    def fill(self, value):
        if isinstance(value, (ndarray, numpy.ndarray)):
            if value.shape != ():
                kind = "cupy" if isinstance(value, ndarray) else "numpy"
                raise ValueError(f"non-scalar {kind}.ndarray cannot be used for fill")
            value = device(value, host_ok=True)
        elif not isinstance(value, SCALARS):
            raise unsupported(value)
        self._a.fill(value)

    # Indexing: basic indexes give views of the same storage.
    def __getitem__(self, index):
        index = device(index, host_ok=True)       # CuPy copies host index arrays over
        out = self._a[index]
        if isinstance(out, numpy.generic):        # a 0-d view, as CuPy returns
            out = self._a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return ndarray._of(out)

    def __setitem__(self, index, value):
        if _basic(index) and not isinstance(value, ndarray):
            self[index].fill(value)               # CuPy: a host array here is a ValueError
            return
        self._a[device(index, host_ok=True)] = device(value, host_ok=True)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __neg__(self):
        return call(numpy.negative, (self,), {})

    def __pos__(self):
        return call(numpy.positive, (self,), {})

    def __abs__(self):
        return call(numpy.absolute, (self,), {})

    def __invert__(self):
        return call(numpy.invert, (self,), {})

    # Every other name of CuPy's ndarray (shape, dtype, sum, reshape, astype, ...) is NumPy's,
    # bound to CuPy's signature, taking device operands only, giving device results.
    def __getattr__(self, name):
        key = "cupy.ndarray." + name
        if name.startswith("_") or key not in _api.NAMES:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} "
                                 f"(not in CuPy {_api.VERSION}'s API)")
        attr = getattr(self._a, name)
        if not callable(attr):
            return wrap(attr)

        def method(*args, **kwargs):
            _api.bind(key, (self, *args), kwargs)
            return call(attr, args, kwargs)
        method.__name__ = name
        return method


for _name, _ufunc in [("add", numpy.add), ("sub", numpy.subtract), ("mul", numpy.multiply),
                      ("truediv", numpy.true_divide), ("floordiv", numpy.floor_divide),
                      ("mod", numpy.remainder), ("pow", numpy.power),
                      ("matmul", numpy.matmul), ("and", numpy.bitwise_and),
                      ("or", numpy.bitwise_or), ("xor", numpy.bitwise_xor),
                      ("lshift", numpy.left_shift), ("rshift", numpy.right_shift)]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_ufunc, inplace=True))
for _name, _ufunc in [("eq", numpy.equal), ("ne", numpy.not_equal), ("lt", numpy.less),
                      ("le", numpy.less_equal), ("gt", numpy.greater),
                      ("ge", numpy.greater_equal)]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
