"""backend.get_xp's branches, on the CuPy stand-in: CuPy missing, installed without a driver,
without a device, without cuBLAS or NVRTC (CUPY_STANDIN_FAULT makes the stand-in fail as CuPy
does there), and working. Each failure is one line that names what is missing and how to
install it; train.py turns it into exit status 2."""
import contextlib
import io
import sys

import pytest

import train
from tinyvae import adam_kernel
from tinyvae.backend import BackendError, get_xp

pytestmark = pytest.mark.usefixtures("standin")
INSTALL = 'pip install -e ".[gpu]"'


def refusal(monkeypatch, fault):
    monkeypatch.setenv("CUPY_STANDIN_FAULT", fault)
    with pytest.raises(BackendError) as err:
        get_xp(gpu=True)
    message = str(err.value)
    assert "\n" not in message and "drop --gpu" in message
    return message


def test_a_working_device_is_proven_before_it_is_returned(standin):
    assert get_xp(gpu=True) is standin
    assert adam_kernel._cupy_kernels[standin].compiled        # the Adam kernel, compiled


def test_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)            # `import cupy` fails
    with pytest.raises(BackendError, match="needs CuPy, which is not installed") as err:
        get_xp(gpu=True)
    assert INSTALL in str(err.value)


def test_cupy_without_a_driver(monkeypatch):
    message = refusal(monkeypatch, "no-driver")
    assert "CUDA is not usable" in message and "cudaErrorInsufficientDriver" in message
    assert "nvidia-smi" in message


def test_cupy_without_a_device(monkeypatch):
    assert "found no CUDA device" in refusal(monkeypatch, "no-device")


@pytest.mark.parametrize("fault, what, library", [
    ("no-cublas", "a matrix product (cuBLAS)", "libcublas.so.12"),
    ("no-nvrtc", "compiling the Adam kernel (NVRTC)", "libnvrtc.so.12")])
def test_cupy_without_a_cuda_library(monkeypatch, fault, what, library):
    message = refusal(monkeypatch, fault)
    assert f"sees 1 CUDA device(s), but {what} failed" in message
    assert library in message and INSTALL in message and "cupy-cuda12x[ctk]" in message


def test_train_py_says_it_in_one_line_and_exits_2(monkeypatch, tmp_path):
    monkeypatch.setenv("CUPY_STANDIN_FAULT", "no-cublas")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = train.main(["--gpu", "--steps", "1", "--out", str(tmp_path / "run")])
    assert code == 2 and len(err.getvalue().strip().splitlines()) == 1
    assert "cuBLAS" in err.getvalue() and "Traceback" not in err.getvalue()
    assert not (tmp_path / "run").exists()                    # nothing was written
