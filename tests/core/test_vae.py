"""The whole GroupedVAE: forward against a direct transcription of eq. 8-11, gradients
against finite differences of the total loss (G = 1, and the decoder for any G) and of the
routed surrogate (every parameter, G = 2 and 3), and the routing's exact zeros."""
import numpy
import pytest

from tinyvae import GroupedVAE
from tinyvae.backend import to_numpy
from tinyvae.gradcheck import check_gradients
from tinyvae.vae import route

TINY = dict(pixels=7, encoder_hidden=(6, 5), decoder_hidden=(5, 4, 6), dtype=numpy.float64)


def tiny_model(groups, models=1, seed=0, beta=1.0, xp=numpy, routing="paper", kl_scale=None):
    return GroupedVAE(groups=groups, models=models, seed=seed, beta=beta, xp=xp,
                      routing=routing, kl_scale=kl_scale, **TINY)


def batch(model, B=4, seed=1):
    rng = numpy.random.default_rng(seed)
    x = (rng.random((model.models, B, model.pixels)) < 0.4).astype(numpy.float64)   # (M, B, P)
    eps = rng.standard_normal((model.models, B, model.latent))                      # (M, B, Z)
    return x, eps


def reference_losses(params, x, eps, groups, beta, frozen_z=None, kl_scale=None):
    """Eq. 8-11 written directly for one model (index 0 of every parameter); with kl_scale
    (G,), the KL returned is sum_g s_g KL_g, each group's KL weighted.

    With `frozen_z`, decoding i sees [frozen z_1 .. z_(i-1) | live z_i | 0]: the routed
    surrogate whose ordinary gradient is the paper's routed gradient."""
    def mlp(part, h, act):
        n = len([k for k in params if k.startswith(part) and k.endswith(".W")])
        for k in range(n):
            h = h @ params[f"{part}.{k}.W"][0] + params[f"{part}.{k}.b"][0]
            h = act(h) if k < n - 1 else h
        return h
    Z = sum(groups)
    h = mlp("encoder", x[0], lambda a: numpy.maximum(a, 0))
    mu, logvar = h[:, :Z], h[:, Z:]
    z = mu + numpy.exp(logvar / 2) * eps[0]
    rec, start = [], 0
    for size in groups:
        end = start + size
        zin = numpy.zeros_like(z)
        zin[:, :end] = z[:, :end]
        if frozen_z is not None:
            zin[:, :start] = frozen_z[:, :start]
        p = 1 / (1 + numpy.exp(-mlp("decoder", zin, numpy.tanh)))
        rec.append(-(x[0] * numpy.log(p) + (1 - x[0]) * numpy.log(1 - p)).sum(1).mean())
        start = end
    kl_dims = 0.5 * (mu ** 2 + numpy.exp(logvar) - 1 - logvar)           # (B, Z)
    if kl_scale is not None:
        kl_dims = kl_dims * numpy.repeat(kl_scale, groups)                # group g's s_g
    return numpy.array(rec), kl_dims.sum(1).mean(), z, h


def assert_away_from_relu_kinks(model, x):
    """Finite differences with h = 1e-6 must not cross a ReLU kink."""
    h = x
    for k in range(len(model.encoder_sizes) - 2):
        h = h @ model.params[f"encoder.{k}.W"] + model.params[f"encoder.{k}.b"][:, None]
        assert numpy.abs(h).min() > 1e-4
        h = numpy.maximum(h, 0)


@pytest.mark.parametrize("groups", [(4,), (2, 2), (1, 2, 1)])
def test_forward_matches_the_paper_equations(groups):
    model = tiny_model(groups, beta=2.5)
    x, eps = batch(model)
    losses, _ = model.forward(x, eps)
    rec, kl, _, _ = reference_losses(model.params, x, eps, groups, 2.5)
    numpy.testing.assert_allclose(losses["rec"][0], rec, rtol=1e-12)
    numpy.testing.assert_allclose(losses["kl"][0], kl, rtol=1e-12)
    numpy.testing.assert_allclose(losses["total"][0], rec.sum() + 2.5 * kl, rtol=1e-12)
    mu, logvar = model.encode(x)
    _, _, _, h = reference_losses(model.params, x, eps, groups, 2.5)
    numpy.testing.assert_allclose(numpy.concatenate([mu[0], logvar[0]], 1), h, rtol=1e-12)


def _total(model, x, eps):
    return lambda: float(model.forward(x, eps)[0]["total"].sum())


@pytest.mark.parametrize("groups, beta, routing", [((4,), 3.0, "paper"), ((2, 2), 1.5, "none"),
                                                   ((1, 2, 1), 1.5, "none")])
def test_every_gradient_equals_finite_differences_of_the_total_loss(groups, beta, routing):
    """Where nothing is routed every gradient is the plain gradient of eq. 10-11: β-VAE (one
    group, where the routing is the ordinary gradient) and the ablation, routing="none"."""
    model = tiny_model(groups, beta=beta, routing=routing)
    x, eps = batch(model)
    assert_away_from_relu_kinks(model, x)
    _, grads = model.loss_and_grads(x, eps)
    check_gradients(_total(model, x, eps), model.params, grads, rtol=1e-6)


@pytest.mark.parametrize("groups", [(2, 2), (1, 2, 1)])
def test_grouped_vae_gradients(groups):
    model = tiny_model(groups, beta=1.5)
    x, eps = batch(model)
    assert_away_from_relu_kinks(model, x)
    _, grads = model.loss_and_grads(x, eps)
    # (a) The decoder receives the true gradient of the total loss.
    decoder = {k: g for k, g in grads.items() if k.startswith("decoder")}
    check_gradients(_total(model, x, eps), model.params, decoder, rtol=1e-6)
    # (b) Every parameter receives the gradient of the routed surrogate, in which
    #     z_1 .. z_(i-1) are constants inside L_rec,i.
    _, _, z0, _ = reference_losses(model.params, x, eps, groups, 1.5)

    def surrogate():
        rec, kl, _, _ = reference_losses(model.params, x, eps, groups, 1.5, frozen_z=z0)
        return float(rec.sum() + 1.5 * kl)
    check_gradients(surrogate, model.params, grads, rtol=1e-6)
    # ... and the encoder's routed gradient is not the gradient of the total loss.
    encoder = {k: g for k, g in grads.items() if k == "encoder.0.W"}
    with pytest.raises(AssertionError):
        check_gradients(_total(model, x, eps), model.params, encoder, rtol=1e-6)


@pytest.mark.parametrize("groups", [(2, 2), (1, 2, 1)])
def test_rec_i_sends_exactly_zero_to_every_other_group(groups):
    model = tiny_model(groups)
    x, eps = batch(model)
    _, cache = model.forward(x, eps)
    G = len(groups)
    for i in range(G):
        only_i = numpy.eye(G)[i]
        _, dmu, dlogvar, dzin = model.backward(cache, rec_weights=only_i, include_kl=False)
        for j, g in enumerate(model.group_slices):
            if j == i:
                assert numpy.abs(dmu[..., g]).max() > 0
                continue
            assert numpy.all(dmu[..., g] == 0) and numpy.all(dlogvar[..., g] == 0)
            if j < i:   # without the routing, L_rec,i would reach the earlier group
                assert numpy.abs(dzin[:, i, :, g]).max() > 0


def test_kl_alone_reaches_the_encoder_and_not_the_decoder():
    model = tiny_model((2, 2), beta=2.0)
    x, eps = batch(model)
    _, cache = model.forward(x, eps)
    grads, dmu, _, _ = model.backward(cache, rec_weights=numpy.zeros(2), include_kl=True)
    assert all(numpy.all(g == 0) for k, g in grads.items() if k.startswith("decoder"))
    assert numpy.abs(grads["encoder.0.W"]).max() > 0
    mu, _ = model.encode(x)
    numpy.testing.assert_allclose(dmu, 2.0 * mu / x.shape[1], rtol=1e-12)


@pytest.mark.parametrize("groups", [(2, 2), (1, 2, 1)])
def test_route_keeps_group_i_under_the_paper_and_z_1_to_z_i_without(groups):
    """route, on gradients made up for it: under "paper" group j's columns of dz are decoding
    j's alone; under "none" the sum over every decoding i >= j; the padding never counts."""
    model = tiny_model(groups)
    G, Z = len(groups), model.latent
    dzin = numpy.random.default_rng(0).standard_normal((2, G, 3, Z))     # (M, G, B, Z)
    paper = route(dzin, model.group_slices, "paper")                     # (M, B, Z)
    plain = route(dzin, model.group_slices, "none")                      # (M, B, Z)
    for j, g in enumerate(model.group_slices):
        numpy.testing.assert_array_equal(paper[..., g], dzin[:, j, :, g])
        numpy.testing.assert_allclose(plain[..., g], dzin[:, j:, :, g].sum(axis=1), rtol=1e-14)
    with pytest.raises(ValueError, match="routing must be one of"):
        route(dzin, model.group_slices, "Paper")


@pytest.mark.parametrize("routing", ["paper", "none"])
def test_backward_returns_arrays_the_caller_owns_unless_asked_to_reuse(routing):
    """By default a second backward leaves the first one's results as they were; with
    reuse_buffers=True it writes the same gradient arrays again (what the trainer asks)."""
    model = tiny_model((2, 2), routing=routing)
    x, eps = batch(model)
    x2, eps2 = batch(model, seed=2)
    _, cache = model.forward(x, eps)
    _, cache2 = model.forward(x2, eps2)
    first = model.backward(cache)
    kept = [{k: g.copy() for k, g in first[0].items()}] + [a.copy() for a in first[1:]]
    second = model.backward(cache2)
    assert all(second[0][k] is not first[0][k] for k in first[0])
    for k in kept[0]:
        numpy.testing.assert_array_equal(first[0][k], kept[0][k], err_msg=k)
        assert not numpy.array_equal(second[0][k], kept[0][k]), k
    for a, b in zip(first[1:], kept[1:]):
        numpy.testing.assert_array_equal(a, b)
    reused = model.backward(cache, reuse_buffers=True)[0]
    again = model.backward(cache2, reuse_buffers=True)[0]
    for k in kept[0]:
        assert again[k] is reused[k], k
        numpy.testing.assert_array_equal(reused[k], second[0][k], err_msg=k)   # overwritten
    _, grads = model.loss_and_grads(x, eps, reuse_buffers=True)
    assert all(grads[k] is reused[k] for k in grads)
    assert all(model.loss_and_grads(x, eps)[1][k] is not reused[k] for k in grads)


def test_models_axis_equals_separate_models():
    """M = 3 in lockstep equals three M = 1 models given the same seeds, batches and noise."""
    joint = tiny_model((2, 2), models=3, seed=[5, 6, 7], beta=[1.0, 2.0, 4.0])
    x, eps = batch(joint)
    losses, grads = joint.loss_and_grads(x, eps)
    for m, (seed, beta) in enumerate(zip([5, 6, 7], [1.0, 2.0, 4.0])):
        single = tiny_model((2, 2), seed=seed, beta=beta)
        for name in single.params:
            numpy.testing.assert_array_equal(single.params[name][0], joint.params[name][m])
        l1, g1 = single.loss_and_grads(x[m:m + 1], eps[m:m + 1])
        numpy.testing.assert_allclose(l1["total"][0], losses["total"][m], rtol=1e-13)
        for name in g1:
            numpy.testing.assert_allclose(g1[name][0], grads[name][m], rtol=1e-11, atol=1e-15)
    assert not numpy.allclose(joint.params["encoder.0.W"][0], joint.params["encoder.0.W"][1])


def test_default_model_matches_the_paper_sizes():
    model = GroupedVAE()
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes["encoder.0.W"] == (1, 4096, 1200) and shapes["encoder.2.W"] == (1, 1200, 12)
    assert shapes["decoder.0.W"] == (1, 6, 1200) and shapes["decoder.3.W"] == (1, 1200, 4096)
    assert len(shapes) == 14 and model.params["decoder.1.b"].dtype == numpy.float32


@pytest.mark.parametrize("bad, match", [(dict(groups=(3, 0)), "positive"),
                                        (dict(groups=()), "positive"),
                                        (dict(models=2, seed=[1, 2, 3]), "one per model")])
def test_bad_arguments_are_clear(bad, match):
    with pytest.raises(ValueError, match=match):
        GroupedVAE(**{**TINY, **bad})


def test_model_agrees_across_backends(xp):
    ref = tiny_model((2, 2), models=2)
    model = tiny_model((2, 2), models=2, xp=xp)
    x, eps = batch(ref)
    l_ref, g_ref = ref.loss_and_grads(x, eps)
    l, g = model.loss_and_grads(xp.asarray(x), xp.asarray(eps))
    numpy.testing.assert_allclose(to_numpy(l["total"]), l_ref["total"], rtol=1e-12)
    for name in g_ref:
        numpy.testing.assert_allclose(to_numpy(g[name]), g_ref[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("groups", [(2, 2), (1, 2, 1)])
def test_routing_changes_the_encoder_only_by_what_it_blocks(groups):
    """Same weights, batch and noise under both routings: the decoder's gradients are equal
    bit for bit, the encoder's differ, and the difference in what reaches the latent means
    and log-variances is exactly what the paper's routing holds back (dzin on the earlier
    groups' columns)."""
    paper = tiny_model(groups, beta=1.5)
    plain = tiny_model(groups, beta=1.5, routing="none")
    x, eps = batch(paper)
    out = {}
    for name, model in (("paper", paper), ("none", plain)):
        _, cache = model.forward(x, eps)
        grads, dmu, dlogvar, dzin = model.backward(cache)
        out[name] = ({k: g.copy() for k, g in grads.items()}, dmu, dlogvar, dzin)
    for k in paper.params:
        if k.startswith("decoder"):
            numpy.testing.assert_array_equal(out["paper"][0][k], out["none"][0][k])
        else:
            assert not numpy.allclose(out["paper"][0][k], out["none"][0][k]), k
    numpy.testing.assert_array_equal(out["paper"][3], out["none"][3])      # the same dzin
    dzin = out["paper"][3]                                                 # (M, G, B, Z)
    blocked = numpy.zeros_like(dzin[:, 0])                                 # (M, B, Z)
    for i, g in enumerate(paper.group_slices):
        blocked[..., :g.start] += dzin[:, i, :, :g.start]                  # z_1 .. z_(i-1)
    assert numpy.abs(blocked).max() > 0
    # z = mu + exp(logvar / 2) * eps: dz reaches mu as it is, logvar times eps * std / 2.
    std = numpy.exp(0.5 * paper.encode(x)[1])                              # (M, B, Z)
    numpy.testing.assert_allclose(out["none"][1] - out["paper"][1], blocked, rtol=1e-12,
                                  atol=1e-15)
    numpy.testing.assert_allclose(out["none"][2] - out["paper"][2], blocked * eps * std / 2,
                                  rtol=1e-10, atol=1e-15)


def test_unknown_routing_is_refused():
    with pytest.raises(ValueError, match="routing must be one of"):
        GroupedVAE(routing="off", **TINY)


# ---- the KL weight per group (kl_scale): beta * sum_g s_g KL_g -----------------------------

@pytest.mark.parametrize("groups, scale", [((2, 2), (2.0, 1.0)), ((1, 2, 1), (3.0, 0.5, 2.0))])
def test_kl_scale_forward_weighs_each_groups_kl(groups, scale):
    model = tiny_model(groups, beta=1.5, kl_scale=scale)
    x, eps = batch(model)
    losses, _ = model.forward(x, eps)
    rec, kl, _, _ = reference_losses(model.params, x, eps, groups, 1.5)
    _, kl_scaled, _, _ = reference_losses(model.params, x, eps, groups, 1.5, kl_scale=scale)
    assert not numpy.isclose(kl, kl_scaled)
    numpy.testing.assert_allclose(losses["kl"][0], kl, rtol=1e-12)      # the KL itself
    numpy.testing.assert_allclose(losses["total"][0], rec.sum() + 1.5 * kl_scaled, rtol=1e-12)


@pytest.mark.parametrize("groups, scale", [((2, 2), (2.0, 1.0)), ((1, 2, 1), (3.0, 0.5, 2.0))])
def test_kl_scale_gradients_under_both_routings(groups, scale):
    """routing "none": every gradient is the plain gradient of the scaled total loss; the
    paper's routing: the gradient of its routed surrogate with the scaled KL."""
    plain = tiny_model(groups, beta=1.5, routing="none", kl_scale=scale)
    x, eps = batch(plain)
    assert_away_from_relu_kinks(plain, x)
    _, grads = plain.loss_and_grads(x, eps)
    check_gradients(_total(plain, x, eps), plain.params, grads, rtol=1e-6)

    routed = tiny_model(groups, beta=1.5, kl_scale=scale)
    _, grads = routed.loss_and_grads(x, eps)
    _, _, z0, _ = reference_losses(routed.params, x, eps, groups, 1.5)

    def surrogate():
        rec, kl, _, _ = reference_losses(routed.params, x, eps, groups, 1.5, frozen_z=z0,
                                         kl_scale=scale)
        return float(rec.sum() + 1.5 * kl)
    check_gradients(surrogate, routed.params, grads, rtol=1e-6)


@pytest.mark.parametrize("routing", ["paper", "none"])
def test_kl_scale_of_ones_is_the_papers_loss_bit_for_bit(routing):
    """All ones multiplies by 1.0, which is exact: the same losses and gradients as without
    a scale, and the KL's gradient is beta / B times mu exactly as before the setting."""
    for dtype in (numpy.float32, numpy.float64):
        kw = {**TINY, "dtype": dtype}
        a = GroupedVAE(groups=(1, 2, 1), beta=2.5, routing=routing, **kw)
        b = GroupedVAE(groups=(1, 2, 1), beta=2.5, routing=routing, kl_scale=(1, 1, 1), **kw)
        x, eps = batch(a)
        la, ga = a.loss_and_grads(x, eps)
        ga = {k: g.copy() for k, g in ga.items()}
        lb, gb = b.loss_and_grads(x, eps)
        for k in ga:
            numpy.testing.assert_array_equal(ga[k], gb[k])
        numpy.testing.assert_array_equal(la["total"], lb["total"])
        numpy.testing.assert_array_equal(
            lb["total"], lb["rec"].sum(axis=1) + b.beta * lb["kl"])   # eq. 10-11 as before
        _, cache = b.forward(x, eps)
        _, dmu, _, _ = b.backward(cache, rec_weights=numpy.zeros(3), include_kl=True)
        mu, _ = b.encode(x)
        numpy.testing.assert_array_equal(dmu, b.beta[:, None, None] / x.shape[1] * mu)


@pytest.mark.parametrize("scale", [(1.0,), (1, 2, 3), (0, 1), (-1, 1), (numpy.inf, 1),
                                   (numpy.nan, 1)])
def test_bad_kl_scale_is_refused(scale):
    with pytest.raises(ValueError, match="one positive, finite number per group"):
        GroupedVAE(groups=(2, 2), kl_scale=scale, **TINY)
