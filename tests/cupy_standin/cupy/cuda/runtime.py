"""cupy.cuda.runtime of the stand-in: one device, named so, unless CUPY_STANDIN_FAULT says
the driver or the device is missing (then it raises as CuPy's runtime does)."""
from .. import _api

_STATUS = {35: "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA "
               "runtime version",
           100: "cudaErrorNoDevice: no CUDA-capable device is detected"}
_NAME = b"CuPy stand-in (NumPy, no GPU)"


class CUDARuntimeError(RuntimeError):
    def __init__(self, status):
        self.status = status
        super().__init__(_STATUS.get(status, f"cudaError {status}"))


def getDeviceCount():
    if _api.fault() == "no-driver":
        raise CUDARuntimeError(35)
    if _api.fault() == "no-device":
        raise CUDARuntimeError(100)
    return 1


def getDeviceProperties(device):
    if not 0 <= device < getDeviceCount():
        raise CUDARuntimeError(101)
    return {"name": _NAME, "totalGlobalMem": 0, "major": 0, "minor": 0}
