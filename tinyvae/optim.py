"""Adam (Kingma & Ba), bias-corrected, updating parameters in place. The rule, per parameter p
with gradient g:

    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    p <- p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

`Adam.step` folds the bias corrections into two scalars,
    p <- p - lr_t * m / (sqrt(v) + eps_t),   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
                                             eps_t = eps sqrt(1 - b2^t),
the same number with fewer passes over memory, and runs `adam_rule`, that update as it
reads, on each parameter in turn.

14 million parameters make Adam a large share of a CPU step, so train.py uses
optim_fast.FastAdam: the same constructor and methods, the same rule in cache-sized chunks
over threads on NumPy (the same bits, tests/core/test_optim.py) and one fused kernel on CuPy.
"""
import math

from .backend import array_module


def adam_rule(p, g, m, v, b1, b2, lr_t, eps_t):
    """One Adam update of the parameter p (any shape) from its gradient g, in place; m and v
    are p's moment estimates, lr_t and eps_t the bias-corrected scalars of this step."""
    xp = array_module(p)
    m[...] = b1 * m + (1 - b1) * g                   # m <- b1 m + (1 - b1) g
    v[...] = b2 * v + (1 - b2) * (g * g)             # v <- b2 v + (1 - b2) g^2
    p -= lr_t * (m / (xp.sqrt(v) + eps_t))           # p <- p - lr_t m / (sqrt(v) + eps_t)


class Adam:
    def __init__(self, params, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8):
        """params: {name: array}, updated in place by every step."""
        if not lr > 0:
            raise ValueError(f"Adam: lr must be positive, got {lr}")
        self.params = params
        self.lr, self.beta1, self.beta2 = float(lr), float(beta1), float(beta2)
        self.eps = float(eps)
        self.t = 0
        self.m = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        self.v = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        _check(params, self.m)

    def step(self, grads):
        """One update of every parameter from its gradient, grads {name: array like params}."""
        _check(self.params, self.m, grads)
        self.t += 1
        root2 = math.sqrt(1.0 - self.beta2 ** self.t)
        lr_t = self.lr * root2 / (1.0 - self.beta1 ** self.t)
        eps_t = self.eps * root2
        self.update(grads, lr_t, eps_t)

    def update(self, grads, lr_t, eps_t):
        """adam_rule on each parameter with this step's scalars (FastAdam: all at once, fast)."""
        for name, p in self.params.items():
            adam_rule(p, grads[name], self.m[name], self.v[name], self.beta1, self.beta2,
                      lr_t, eps_t)

    def state(self):
        """Everything needed to continue exactly: step count and both moment estimates."""
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state(self, state):
        self.t = int(state["t"])
        for name, p in self.params.items():
            xp = array_module(p)
            self.m[name][...] = xp.asarray(state["m"][name])
            self.v[name][...] = xp.asarray(state["v"][name])


def _check(params, m, grads=None):
    """One clear line when a parameter is not C-contiguous (it is updated through a flat
    view) or no longer has the shape of its moments (made with Adam), or when a gradient is
    missing or misshapen."""
    for name, p in params.items():
        if not p.flags.c_contiguous:
            raise ValueError(f"Adam: parameter {name} must be C-contiguous: it is updated "
                             "through a flat view; pass numpy.ascontiguousarray of it")
        if p.shape != m[name].shape:
            raise ValueError(f"Adam: parameter {name} now has shape {p.shape}, but Adam was "
                             f"made for {m[name].shape}; make a new Adam after replacing a "
                             "parameter by one of another shape")
        if grads is None:
            continue
        if name not in grads:
            raise ValueError(f"Adam: no gradient for parameter {name}; pass one per parameter, "
                             "as the model's grads dict has")
        if grads[name].shape != p.shape:
            raise ValueError(f"Adam: the gradient of {name} has shape {grads[name].shape}, "
                             f"the parameter {p.shape}; give gradients shaped like the "
                             "parameters")
