"""Shared fixtures: `xp` runs a test on NumPy always and on CuPy when a CUDA device is present."""
import numpy
import pytest


def _cupy_reason():
    """(cupy, None) when CuPy can run here, else (None, why not)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (GPU tests run only where `pip install cupy-cuda12x` works)"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy is installed but no CUDA device is visible"
    except Exception as err:
        return None, f"CuPy is installed but CUDA is not usable: {type(err).__name__}"
    return cupy, None


CUPY, CUPY_SKIP_REASON = _cupy_reason()


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    if request.param == "numpy":
        return numpy
    if CUPY is None:
        pytest.skip(CUPY_SKIP_REASON)
    return CUPY


@pytest.fixture
def cupy():
    if CUPY is None:
        pytest.skip(CUPY_SKIP_REASON)
    return CUPY
