"""Adam's update (optim.adam_rule) on CuPy as one fused elementwise kernel, and its compile.

optim_fast runs it over every parameter; backend.get_xp runs it once on one element, so that
a machine without NVRTC says so before training. It takes b1, 1 - b1, b2, 1 - b2, lr_t and
eps_t as scalars of the parameters' type (optim_fast.adam_scalars).

Shapes: g, p, m and v of one parameter, any shape, all alike; the rest are scalars.
"""

# The fused kernel does adam_rule's operations in adam_rule's order, each rounded to the
# parameter's type: 1 - b1 and 1 - b2 come from the host, computed as the NumPy path computes
# them (in double, then rounded), never in the kernel's type (in float32, 1 - b2 would be
# 1.3e-5 off); and --fmad=false keeps NVRTC from contracting a*b + c into one rounding.
_ADAM_KERNEL = ("T g, T b1, T w1, T b2, T w2, T lr_t, T eps_t", "T p, T m, T v",
                """m = b1 * m + w1 * g;
                   v = b2 * v + w2 * (g * g);
                   p -= lr_t * (m / (sqrt(v) + eps_t));""")
_cupy_kernels = {}          # one per CuPy module: the real one, or the tests' stand-in


def cupy_adam_kernel(cupy):
    """The fused Adam kernel of `cupy` (CuPy compiles it at its first call, with NVRTC)."""
    if cupy not in _cupy_kernels:
        _cupy_kernels[cupy] = cupy.ElementwiseKernel(*_ADAM_KERNEL, "tinyvae_adam",
                                                     options=("--fmad=false",))
    return _cupy_kernels[cupy]
