"""cupy.cuda of the stand-in: its runtime, Device and the memory pool (which holds nothing:
the stand-in's arrays are NumPy's)."""
from . import runtime


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        pass

    def use(self):
        pass


class MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass
