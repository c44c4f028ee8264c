"""Writes cupy_api.txt, the stand-in's snapshot of CuPy's API: one line per public name of
`cupy`, of `cupy.ndarray`, of `cupy.cuda.Device` and `MemoryPool`, and of
`cupy.cuda.runtime`'s functions, with its call signature
where CuPy gives one (inspect, or the first line of a compiled method's docstring), else `-`.

Run it where the real CuPy imports (no GPU needed): `python tests/cupy_standin/snapshot.py`.
The stand-in binds every call to these signatures and offers no name that is not here.
"""
import inspect
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def signature(obj, name):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        pass
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    m = re.match(r"^[\w.]*\b" + re.escape(name) + r"(\(.*\))(\s*->.*)?$", first[0]) if first else None
    return m.group(1) if m else "-"


def entries(prefix, owner, keep=lambda name, obj: True):
    for name in sorted(n for n in dir(owner) if not n.startswith("_") or n == "__version__"):
        obj = getattr(owner, name)
        if keep(name, obj):
            sig = signature(obj, name) if callable(obj) and not isinstance(obj, type(sys)) else "-"
            yield f"{prefix}{name} {sig}"


def main():
    if HERE in [os.path.abspath(p) for p in sys.path]:
        sys.path.remove(HERE)                      # the real CuPy, not the stand-in beside us
    import cupy
    lines = [f"# CuPy {cupy.__version__}: names and signatures (tests/cupy_standin/snapshot.py)"]
    lines += entries("cupy.", cupy)
    lines += entries("cupy.ndarray.", cupy.ndarray)
    lines += entries("cupy.cuda.", cupy.cuda, lambda n, o: n in ("Device", "MemoryPool", "runtime"))
    lines += entries("cupy.cuda.Device.", cupy.cuda.Device)
    lines += entries("cupy.cuda.MemoryPool.", cupy.cuda.MemoryPool)
    lines += entries("cupy.cuda.runtime.", cupy.cuda.runtime,
                     lambda n, o: callable(o) and not n.startswith(("cuda", "CUDA_")))
    with open(os.path.join(HERE, "cupy_api.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
