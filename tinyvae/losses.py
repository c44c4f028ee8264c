"""The VAE's three probabilistic pieces, each a forward/backward pair of pure functions.

    reparameterize:  z = mu + exp(logvar / 2) * eps          (paper eq. 2; eps passed in)
    bernoulli_nll:   -log p(x | logits), per pixel summed     (paper eq. 4, 9)
    kl_normal:       KL(N(mu, exp(logvar)) || N(0, 1)), per latent dimension   (eq. 5)

`logvar` is log sigma^2 everywhere: the sampler takes its half for the standard deviation and
the KL uses its exponential as the variance, so both read the same number the same way.

Shapes: `...` is any leading shape (M models, B batch; or M, G, B), P pixels, Z latent.
"""
from .backend import array_module


def reparameterize_forward(mu, logvar, eps):
    """Sample z with the noise `eps` drawn by the caller, so backward sees the same draw."""
    std = array_module(logvar).exp(0.5 * logvar)    # (..., Z)
    z = mu + std * eps                               # (..., Z)
    return z, (std, eps)


def reparameterize_backward(dz, cache):
    std, eps = cache
    dmu = dz.copy()                                  # (..., Z)  dz/dmu = 1
    # z = mu + exp(logvar/2) * eps  =>  dz/dlogvar = exp(logvar/2) * eps / 2
    dlogvar = dz * std * eps * 0.5                   # (..., Z)
    return dmu, dlogvar


def bernoulli_nll_forward(logits, x):
    """Cross-entropy of the pixels `x` (in [0, 1]) under Bernoulli(sigmoid(logits)), summed
    over the last (pixel) axis. Stable for any logit: softplus(l) - x*l with
    softplus(l) = max(l, 0) + log1p(exp(-|l|)), so exp never overflows."""
    xp = array_module(logits)
    e = xp.exp(-xp.abs(logits))                      # (..., P) in (0, 1]
    log1p_e = xp.log1p(e)                            # (..., P) log(1 + e^-|l|), kept for backward
    nll = xp.maximum(logits, 0)                      # (..., P)
    nll += log1p_e
    nll -= x * logits
    return nll.sum(axis=-1), (logits, x, log1p_e)    # (...)


def bernoulli_nll_backward(dnll, cache):
    """Returns dlogits = dnll * (sigmoid(logits) - x), the fused form: no division by p or
    1 - p, so it stays exact where the sigmoid saturates. `x` is data: no gradient."""
    logits, x, log1p_e = cache
    xp = array_module(logits)
    # sigmoid(l) = exp(min(l, 0)) / (1 + exp(-|l|)) = exp(min(l, 0) - log1p_e): one exp, no
    # branch, never overflowing, and relatively exact in both tails (e^l for l << 0).
    p = xp.minimum(logits, 0)                        # (..., P)
    p -= log1p_e
    xp.exp(p, out=p)                                 # (..., P) sigmoid(logits)
    p -= x
    p *= dnll[..., None]
    dlogits = p                                      # (..., P)
    return dlogits


def kl_normal_forward(mu, logvar):
    """KL of each latent dimension: (mu^2 + exp(logvar) - 1 - logvar) / 2, not yet summed,
    so the KL per dimension (which dimensions are active) can be logged."""
    xp = array_module(mu)
    var = xp.exp(logvar)                             # (..., Z)
    kl = 0.5 * (mu * mu + var - 1 - logvar)          # (..., Z)
    return kl, (mu, var)


def kl_normal_backward(dkl, cache):
    mu, var = cache
    dmu = dkl * mu                                   # (..., Z)
    dlogvar = dkl * 0.5 * (var - 1)                  # (..., Z)
    return dmu, dlogvar
