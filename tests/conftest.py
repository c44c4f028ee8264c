"""Shared fixtures. `xp` runs a test on NumPy, on the CuPy stand-in (tests/cupy_standin/:
NumPy behind CuPy's host/device boundary, on every machine) and on CuPy where a CUDA device is
present. Tests that take the stand-in are marked `standin`, those that take the real CuPy
`gpu`: `pytest -m standin` / `pytest -m gpu` select them."""
import builtins
import errno
import importlib.util
import os
import sys

import numpy
import pytest

from tinyvae import adam_kernel
from tinyvae.experiment.run import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN_PATH = os.path.join(ROOT, "tests", "cupy_standin")


def _cupy_reason():
    """(cupy, None) when CuPy can run here, else (None, why not)."""
    try:
        import cupy
    except ImportError:
        return None, ('CuPy is not installed (GPU tests run where `pip install -e ".[gpu]"` '
                      "and a CUDA device are)")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy is installed but no CUDA device is visible"
    except Exception as err:
        return None, f"CuPy is installed but CUDA is not usable: {type(err).__name__}"
    return cupy, None


CUPY, CUPY_SKIP_REASON = _cupy_reason()


def _cupy_modules():
    return {n: m for n, m in sys.modules.items() if n == "cupy" or n.startswith("cupy.")}


def _load_standin():
    """The stand-in's modules, imported under the name `cupy` and then taken out of
    sys.modules again, so that the real CuPy (where there is one) stays what `import cupy`
    gives outside the stand-in's tests."""
    saved = _cupy_modules()
    for name in saved:
        del sys.modules[name]
    package = os.path.join(STANDIN_PATH, "cupy")
    spec = importlib.util.spec_from_file_location(
        "cupy", os.path.join(package, "__init__.py"), submodule_search_locations=[package])
    try:
        sys.modules["cupy"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["cupy"])
        modules = _cupy_modules()
    finally:
        for name in _cupy_modules():
            del sys.modules[name]
        sys.modules.update(saved)
    return modules


STANDIN_MODULES = _load_standin()
STANDIN = STANDIN_MODULES["cupy"]


def standin_env(**extra):
    """The environment of a subprocess whose `import cupy` gives the stand-in."""
    path = [STANDIN_PATH, ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), **extra)


def pytest_configure(config):
    config.addinivalue_line("markers", "standin: runs on the CuPy stand-in (tests/cupy_standin)")
    config.addinivalue_line("markers", "gpu: runs on the real CuPy (skips without a CUDA device)")


def pytest_collection_modifyitems(items):
    for item in items:
        params = getattr(item, "callspec", None)
        params = [v for v in params.params.values() if isinstance(v, str)] if params else []
        if "standin" in item.fixturenames or "standin" in params:
            item.add_marker("standin")
        if "cupy" in item.fixturenames or "cupy" in params:
            item.add_marker("gpu")


@pytest.fixture
def standin(monkeypatch):
    """The stand-in as `cupy` for this test: `import cupy` gives it, in this process."""
    for name, module in STANDIN_MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("CUPY_STANDIN_FAULT", raising=False)
    monkeypatch.setattr(adam_kernel, "_cupy_kernels", {})     # compiled afresh in each test
    return STANDIN


@pytest.fixture
def cupy():
    if CUPY is None:
        pytest.skip(CUPY_SKIP_REASON)
    return CUPY


@pytest.fixture(params=["numpy", "standin", "cupy"])
def xp(request):
    return numpy if request.param == "numpy" else request.getfixturevalue(request.param)


@pytest.fixture(params=["standin", "cupy"])
def device_xp(request):
    """A device array module: the stand-in always, the real CuPy where it can run."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def no_figures(monkeypatch):
    """Runs without their figures, where only the checkpoint, log.csv and messages count: the
    figures come after the checkpoint and change neither."""
    monkeypatch.setattr(loop, "draw_run_figures", lambda out, trainer: None)


@pytest.fixture
def read_only(monkeypatch):
    """read_only(folder): the file system under `folder` is read-only from then on (EROFS), as
    on a read-only mount: opening a file there to write, making, renaming or removing anything
    there. Stood in for, since root (CI, Slurm's nodes) writes past chmod."""
    folders = []

    def guard(real, writes):
        def call(path, *args, **kwargs):
            where = (os.path.join(os.path.abspath(path), "")
                     if isinstance(path, (str, os.PathLike)) else "")
            if writes(args, kwargs) and any(where.startswith(f) for f in folders):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *args, **kwargs)
        return call

    def opens_to_write(args, kwargs):
        mode = args[0] if args else kwargs.get("mode", "r")
        return isinstance(mode, str) and any(c in mode for c in "wax+")

    def os_opens_to_write(args, kwargs):
        return (args[0] if args else kwargs["flags"]) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    monkeypatch.setattr(builtins, "open", guard(builtins.open, opens_to_write))
    monkeypatch.setattr(os, "open", guard(os.open, os_opens_to_write))
    for name in ("mkdir", "remove", "unlink", "rmdir", "replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), lambda args, kwargs: True))
    return lambda folder: folders.append(os.path.join(os.path.abspath(folder), ""))
