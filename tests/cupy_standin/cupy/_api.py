"""CuPy's API as the snapshot (../cupy_api.txt) records it, and the faults a test can ask for.

Every function and method of the stand-in binds its arguments to CuPy's signature first, so a
call that CuPy would refuse (a keyword it lacks, a missing argument) fails here too.
"""
import functools
import inspect
import os
import re

SNAPSHOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "cupy_api.txt")


def _load():
    names = {}
    with open(SNAPSHOT) as f:
        version = f.readline().split()[2].rstrip(":")          # "# CuPy 14.2.0: ..."
        for line in f:
            name, _, sig = line.rstrip("\n").partition(" ")
            names[name] = None if sig == "-" else sig
    return version, names


VERSION, NAMES = _load()


class _Default:
    """A default value as the snapshot writes it (binding needs only that there is one)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def _items(text):
    """The parameters of a signature text, split at its top-level commas."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


@functools.lru_cache(maxsize=None)
def signature(name):
    """inspect.Signature of CuPy's `name`; None where CuPy gives none. KeyError: no such name."""
    text = NAMES[name]
    if text is None:
        return None
    text = text.replace("\\*", "*")
    text = text[1:text.rindex(")")]                          # drop "(" and ") -> ..."
    params, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for item in _items(text):
        if item == "/":
            params = [p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in params]
            continue
        if item == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        head, eq, default = item.partition("=")
        head = head.split(":")[0].split()[-1]                   # no annotation, no C type
        if not head.lstrip("*").isidentifier():
            return None                        # a docstring's "[, out1, out2]": not bound
        if head.startswith("**"):
            params.append(inspect.Parameter(head[2:], inspect.Parameter.VAR_KEYWORD))
        elif head.startswith("*"):
            params.append(inspect.Parameter(head[1:], inspect.Parameter.VAR_POSITIONAL))
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            params.append(inspect.Parameter(
                head, kind, default=_Default(default.strip()) if eq else inspect.Parameter.empty))
    return inspect.Signature(params)


def bind(name, args, kwargs):
    """Refuse, as CuPy would, a call to `name` that its signature does not accept."""
    sig = signature(name)
    if sig is not None:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{name}{sig}: {err}") from None


# CUPY_STANDIN_FAULT makes the stand-in fail as CuPy fails on a machine that lacks a part:
FAULTS = {
    "no-driver": "getDeviceCount raises cudaErrorInsufficientDriver",
    "no-device": "getDeviceCount raises cudaErrorNoDevice",
    "no-cublas": "a matrix product cannot load libcublas",
    "no-nvrtc": "compiling a kernel cannot load libnvrtc",
}


def fault():
    """The fault asked for in the environment now ('' for none)."""
    name = os.environ.get("CUPY_STANDIN_FAULT", "")
    if name and name not in FAULTS:
        raise ValueError(f"CUPY_STANDIN_FAULT={name!r}: expected one of {', '.join(FAULTS)}")
    return name


def missing_library(soname):
    """The error CuPy gives when a CUDA library it loads on first use is not installed."""
    return ImportError(f"{soname}: cannot open shared object file: No such file or directory")
