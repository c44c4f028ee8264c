"""The fused CuPy Adam kernel (optim_fast) against adam_rule in float32, over 200 steps: on
the CuPy stand-in, whose ElementwiseKernel evaluates the kernel's C body in C's types, on
every machine; on the GPU where there is one. The kernel takes 1 - b1 and 1 - b2 from the
host, computed as the NumPy path computes them, and brackets as adam_rule does."""
import numpy

from tinyvae import optim_fast
from tinyvae.backend import to_numpy
from tinyvae.optim import Adam

STEPS, ULPS = 200, 2
B1, B2, LR, EPS = 0.9, 0.999, 1e-3, 1e-8


def ulps(a, b):
    """Largest distance between a and b in units in the last place of b (float32)."""
    return int(numpy.max(numpy.abs(a.astype(numpy.float64) - b) / numpy.spacing(numpy.abs(b))))


def adam_runs(xp, device_adam):
    """(device, host) {p, m, v} after STEPS steps from the same start: `device_adam` (an Adam
    class) on device arrays, the plain Adam (adam_rule) on host ones; both take this step's
    bias-corrected scalars from Adam.step."""
    rng = numpy.random.default_rng(5)
    start = rng.standard_normal(3000).astype(numpy.float32)
    # gradients of many sizes, so that eps_t and the (1 - b2) g^2 term both matter
    scale = (10.0 ** rng.integers(-6, 1, 3000)).astype(numpy.float32)
    host = Adam({"w": start.copy()}, lr=LR, beta1=B1, beta2=B2, eps=EPS)
    dev = device_adam({"w": xp.asarray(start)}, lr=LR, beta1=B1, beta2=B2, eps=EPS)
    for _ in range(STEPS):
        g = rng.standard_normal(3000).astype(numpy.float32) * scale
        host.step({"w": g})
        dev.step({"w": xp.asarray(g)})
    assert numpy.abs(host.params["w"] - start).min() > 0      # every parameter moved
    def arrays(adam):
        return {k: to_numpy(a["w"]) for k, a in (("p", adam.params), ("m", adam.m),
                                                  ("v", adam.v))}
    return arrays(dev), arrays(host)


def test_the_float32_kernel_stays_within_two_ulps_of_the_rule(device_xp):
    dev, host = adam_runs(device_xp, optim_fast.FastAdam)
    for k in host:
        assert ulps(dev[k], host[k]) <= ULPS, k


def test_negative_control_the_old_kernel_drifts_hundreds_of_ulps(standin):
    """The kernel as it was: 1 - b1 and 1 - b2 in float32, lr_t * m / (...) bracketed apart
    from adam_rule. The same test measures it far outside the bound."""
    old = standin.ElementwiseKernel(
        "T g, T b1, T b2, T lr_t, T eps_t", "T p, T m, T v",
        """m = b1 * m + (1 - b1) * g;
           v = b2 * v + (1 - b2) * g * g;
           p -= lr_t * m / (sqrt(v) + eps_t);""", "old_adam")

    class OldKernelAdam(Adam):
        def update(self, grads, lr_t, eps_t):
            f = numpy.float32
            old(grads["w"], f(self.beta1), f(self.beta2), f(lr_t), f(eps_t),
                self.params["w"], self.m["w"], self.v["w"])
    dev, host = adam_runs(standin, OldKernelAdam)
    assert ulps(dev["p"], host["p"]) > 100 * ULPS
