"""cupy.ElementwiseKernel of the stand-in: the kernel's C body evaluated with NumPy, one
statement at a time, with C's types.

Each parameter is `TYPE name` (TYPE: a type placeholder such as T, bound to the arrays'
dtype, or a dtype name such as float32); every argument is broadcast to one shape, and
scalars take their parameter's type, as CuPy does. A statement is `[TYPE] name = expr;` or
`name op= expr;` and its value is rounded to the variable's type at once, as in C. Literals
follow C: `1` is an int, `1.0` a double, `1.0f` a float. The body may call sqrt, exp, log,
tanh, fabs, fma, min and max. Anything else C has (if, ?:, casts, loops, indexing) raises
NotImplementedError: the emulation evaluates only what it can evaluate exactly.

NVRTC contracts `a * b + c` (and `c + a * b`, `a * b - c`, `c - a * b`, and `x op= a * b`)
into one fused multiply-add, rounded once, unless the kernel's options say `--fmad=false`;
the emulation does the same. Where both terms of a sum are products, it fuses the left one
(the compiler's choice is not specified; what matters is that one rounding is lost).
"""
import ast
import re

import numpy

from . import _api
from ._array import SCALARS, device, ndarray, unsupported

LIBNVRTC = "libnvrtc.so.12"
FUNCTIONS = {"sqrt": numpy.sqrt, "sqrtf": numpy.sqrt, "exp": numpy.exp, "expf": numpy.exp,
             "log": numpy.log, "logf": numpy.log, "tanh": numpy.tanh, "fabs": numpy.abs,
             "min": numpy.minimum, "max": numpy.maximum,
             # fma rounds once: exact in float64 for float32 operands, not for doubles
             "fma": lambda a, b, c: _fma(a, b, c)}
_STATEMENT = re.compile(r"^(?:(\w+)\s+)?(\w+)\s*([-+*/]?=)\s*(.+)$", re.S)
_FLOAT = re.compile(r"(?<![\w.])((?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(f?)(?![\w.])")
_NOT_EMULATED = re.compile(r"[?\[\]{}]|&&|\|\||\b(if|for|while|return)\b|\(\s*\w+\s*\)\s*[\w(]")


def _fma(a, b, c):
    if numpy.result_type(a, b, c) != numpy.float32:
        raise NotImplementedError("cupy stand-in: fma is emulated exactly for float only (a "
                                  "double kernel with a*b + c: give options=('--fmad=false',))")
    return (numpy.float64(a) * b + c).astype(numpy.float32)


def _fmad(a, b, c):
    """a * b + c as NVRTC compiles it by default: fused where the product and the sum have
    one type (a float product added to a double is not contracted: the conversion between
    them rounds)."""
    if numpy.result_type(a, b) != numpy.result_type(a, b, c):
        return a * b + c
    return _fma(a, b, c)


class _Contract(ast.NodeTransformer):
    """a * b + c and its kin as _fmad(a, b, c), as NVRTC compiles them with --fmad=true."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, (ast.Add, ast.Sub)):
            return node

        def product(x):
            return isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult)

        def fma(a, b, c):
            return ast.Call(ast.Name("_fmad", ast.Load()), [a, b, c], [])
        left, right, sub = node.left, node.right, isinstance(node.op, ast.Sub)
        if product(left):                         # a*b + c, a*b - c
            c = ast.UnaryOp(ast.USub(), right) if sub else right
            return fma(left.left, left.right, c)
        if product(right):                        # c + a*b, c - a*b
            a = ast.UnaryOp(ast.USub(), right.left) if sub else right.left
            return fma(a, right.right, left)
        return node


def _contract(expr):
    return ast.unparse(_Contract().visit(ast.parse(expr, mode="eval")))


def _params(text):
    params = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        words = item.split()
        if len(words) != 2:
            raise NotImplementedError(f"cupy stand-in: parameter {item!r}: only 'TYPE name'")
        params.append(tuple(words))
    return params


def _dtype(type_name, bound):
    return bound[type_name] if type_name in bound else numpy.dtype(type_name)


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):
        self.in_params, self.out_params = _params(in_params), _params(out_params)
        self.operation, self.name, self.kwargs = operation, name, kwargs
        self.fmad = "--fmad=false" not in kwargs.get("options", ())
        self.no_return, self.return_tuple = no_return, return_tuple
        body = re.sub(r"//[^\n]*", "", operation)
        if _NOT_EMULATED.search(body) or preamble:
            raise NotImplementedError(f"cupy stand-in: kernel {name}: its body uses C the "
                                      "emulation does not evaluate")
        self.statements = [s.strip() for s in body.split(";") if s.strip()]
        for s in self.statements:
            if not _STATEMENT.match(s):
                raise NotImplementedError(f"cupy stand-in: kernel {name}: {s!r}")
        self.compiled = False

    def __call__(self, *args, size=None, block_size=None, stream=None):
        n_in, n_out = len(self.in_params), len(self.out_params)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        for a in args:
            if not isinstance(a, (ndarray, *SCALARS)):
                raise unsupported(a)
        if not self.compiled:                     # CuPy compiles at the first call
            if _api.fault() == "no-nvrtc":
                raise _api.missing_library(LIBNVRTC)
            self.compiled = True
        params = self.in_params + self.out_params[:len(args) - n_in]
        bound = {}                                # placeholder -> dtype, from the arrays
        for (type_name, name), a in zip(params, args):
            if isinstance(a, ndarray) and not hasattr(numpy, type_name):
                if bound.setdefault(type_name, a.dtype) != a.dtype:
                    raise TypeError(f"Type is mismatched. {name} {type_name} {a.dtype} "
                                    f"{bound[type_name]}")
        for (type_name, name), a in zip(params, args):   # scalars alone may bind a type
            if not hasattr(numpy, type_name):
                bound.setdefault(type_name, numpy.asarray(device(a)).dtype)
        shape = numpy.broadcast_shapes(*(numpy.shape(device(a)) for a in args))
        env = {name: numpy.broadcast_to(numpy.asarray(device(a), _dtype(t, bound)), shape)
               for (t, name), a in zip(params, args)}
        outs = list(args[n_in:]) or [ndarray._of(numpy.empty(shape, _dtype(t, bound)))
                                     for t, _ in self.out_params]
        for (t, name), out in zip(self.out_params, outs):
            env[name] = out._a.copy()
        types = {name: _dtype(t, bound) for t, name in params + self.out_params}
        self._run(env, types, bound, {n for _, n in self.in_params})
        for (_, name), out in zip(self.out_params, outs):
            out._a[...] = env[name]
        if self.no_return:
            return None
        return outs[0] if len(outs) == 1 and not self.return_tuple else tuple(outs)

    def _run(self, env, types, bound, inputs):
        for s in self.statements:
            type_name, name, op, expr = _STATEMENT.match(s).groups()
            if name in inputs:
                raise TypeError(f"kernel {self.name}: assigns to its input {name} (const)")
            if type_name:                         # a declaration: T x = ...
                types[name] = _dtype(type_name, bound)
            elif name not in types:
                raise NameError(f"kernel {self.name}: {name} is not declared")
            if op != "=":                         # x op= e is x = x op (e), as in C
                expr = f"{name} {op[0]} ({expr})"
            python = _FLOAT.sub(lambda m: f"numpy.{'float32' if m[2] else 'float64'}({m[1]})",
                                expr)
            if self.fmad:
                python = _contract(python)
            value = eval(python, {"numpy": numpy, "_fmad": _fmad, **FUNCTIONS}, env)  # noqa: S307
            env[name] = numpy.asarray(value).astype(types[name])
