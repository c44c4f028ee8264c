"""Dense, ReLU and Tanh as pairs of pure functions.

    *_forward(inputs...) -> (out, cache)
    *_backward(dout, cache) -> gradients, one per forward input, in the forward's order

Shapes: M models trained in lockstep, N rows (a batch, or G stacked batches), I fan-in,
O fan-out. Every parameter carries the models axis, so one batched matmul serves M = 1 and
M = 40 alike.
"""


def dense_forward(x, W, b):
    """out = x @ W + b for every model at once."""
    out = x @ W                                  # (M, N, O)
    out += b[:, None, :]                         # (M, N, O), bias broadcast over rows
    return out, (x, W)


def dense_backward(dout, cache, need_dx=True, out=None):
    """Returns (dx, dW, db); dx is None when `need_dx` is false (the encoder's input layer:
    the data needs no gradient, and skipping it saves the step's largest matmul).

    `out`, optional: buffers (dW, db) that receive the weight gradients. The model passes
    its gradient buffers (in training the same ones every step), so no 20 MB array is made
    here."""
    x, W = cache
    xp = _xp(dout)
    dW, db = (None, None) if out is None else out
    dx = dout @ W.transpose(0, 2, 1) if need_dx else None   # (M, N, I)
    dW = xp.matmul(x.transpose(0, 2, 1), dout, out=dW)      # (M, I, O)
    db = dout.sum(axis=1, out=db)                           # (M, O)
    return dx, dW, db


def relu_forward(h):
    out = h * (h > 0)                            # (M, N, O); `*` keeps the dtype of h
    return out, out


def relu_backward(dout, cache):
    out = cache
    # out > 0 exactly where h > 0: the output doubles as the mask, nothing else is kept.
    dh = dout * (out > 0)                        # (M, N, O)
    return dh


def tanh_forward(h):
    xp = _xp(h)
    out = xp.tanh(h)                             # (M, N, O)
    return out, out


def tanh_backward(dout, cache):
    out = cache
    # d tanh(h)/dh = 1 - tanh(h)^2, written with the kept output.
    dh = out * out                               # (M, N, O)
    dh -= 1
    dh *= -dout
    return dh


def _xp(a):
    from .backend import array_module
    return array_module(a)
