"""The CuPy stand-in (tests/cupy_standin/) itself: it offers only CuPy's names, bound to
CuPy's signatures (the snapshot cupy_api.txt), and refuses what CuPy refuses. The negative
controls plant a host/device mistake in the model's code and assert that a training step on
the stand-in fails, as it would on a GPU."""
import inspect

import numpy
import pytest

from tinyvae import GroupedVAE, vae
from tinyvae.layers import dense_forward

from conftest import STANDIN_MODULES

pytestmark = pytest.mark.usefixtures("standin")

TINY = dict(groups=(2, 2), pixels=7, encoder_hidden=(6, 5), decoder_hidden=(5, 4, 6))


def _api():
    return STANDIN_MODULES["cupy._api"]


def public(owner):
    return [n for n in vars(owner) if not n.startswith("_") or n == "__version__"]


def test_every_name_it_offers_is_cupys_with_cupys_signature(standin):
    names, offered = _api().NAMES, 0
    for prefix, owner in [("cupy.", standin), ("cupy.ndarray.", standin.ndarray),
                          ("cupy.cuda.", standin.cuda), ("cupy.cuda.runtime.", standin.cuda.runtime),
                          ("cupy.cuda.Device.", standin.cuda.Device),
                          ("cupy.cuda.MemoryPool.", standin.cuda.MemoryPool)]:
        for name in public(owner):
            if isinstance(getattr(owner, name), type(inspect)) and prefix + name not in names:
                continue                            # the stand-in's own submodules (_array...)
            assert prefix + name in names, f"{prefix}{name}: not in CuPy's API"
            offered += 1
            obj, sig = getattr(owner, name), _api().signature(prefix + name)
            if sig is not None and inspect.isfunction(obj) and obj.__module__ != "cupy._functions":
                assert list(inspect.signature(obj).parameters) == list(sig.parameters), name
    assert offered > 300            # NumPy's share of CuPy's names, and the hand-written ones
    assert standin.__version__ == "14.2.0+standin"


def test_calls_are_bound_to_cupys_signatures(standin):
    with pytest.raises(TypeError, match="unexpected keyword argument 'like'"):
        standin.zeros(3, like=None)                 # NumPy's zeros takes it; CuPy's does not
    with pytest.raises(AttributeError, match="not in CuPy"):
        standin.zeros(3).tobytes_or_not
    assert not hasattr(standin, "linalg")           # a submodule the stand-in does not offer


def test_results_stay_on_the_device(standin):
    a = standin.asarray(numpy.arange(6.0).reshape(2, 3))
    assert isinstance(a.sum(), standin.ndarray) and a.sum().shape == ()   # as CuPy: 0-d
    assert isinstance(standin.exp(a)[0], standin.ndarray)
    view = a[1]
    view += 10                                      # a basic index is a view of the storage
    assert a.get()[1].tolist() == [13.0, 14.0, 15.0]
    assert standin.asarray(a) is a and standin.get_array_module(a) is standin
    assert standin.get_array_module(numpy.ones(2)) is numpy
    assert float(a[0, 1]) == 1.0 and f"{a[0, 2]:.1f}" == "2.0"


@pytest.mark.parametrize("mistake, error, match", [
    (lambda cp, a: numpy.asarray(a), TypeError, "Implicit conversion"),
    (lambda cp, a: numpy.concatenate([a, numpy.ones((2, 3))]), TypeError, "Unsupported type"),
    (lambda cp, a: a + numpy.ones(3), TypeError, "Unsupported type"),
    (lambda cp, a: numpy.ones(3) * a, TypeError, "Unsupported type"),
    (lambda cp, a: cp.maximum(a, numpy.zeros(3)), TypeError, "Unsupported type"),
    (lambda cp, a: cp.stack([a, numpy.ones((2, 3))]), TypeError, "Unsupported type"),
    (lambda cp, a: a.__setitem__((slice(None), 0), numpy.ones(2)), ValueError, "non-scalar numpy"),
    (lambda cp, a: cp.matmul(a, numpy.ones((3, 2))), TypeError, "Unsupported type"),
    (lambda cp, a: numpy.asarray(a.get()) + a.get().sum() + a, TypeError, "Unsupported type"),
    # Lists are host data too: CuPy's ufuncs, where and clip take arrays and scalars only.
    (lambda cp, a: cp.maximum(a, [0.0, 2.0, 0.0]), TypeError, "Unsupported type <class 'list'>"),
    (lambda cp, a: numpy.add(a, (1.0, 2.0, 3.0)), TypeError, "Unsupported type <class 'tuple'>"),
    (lambda cp, a: cp.where(a > 0, a, [5.0, 5.0, 5.0]), TypeError, "Unsupported type"),
    (lambda cp, a: a.clip([0.0, 0.0, 0.0], 2), TypeError, "Unsupported type"),
    (lambda cp, a: cp.clip(a, 0, a_max=[2.0, 2.0, 2.0]), TypeError, "Unsupported type"),
])
def test_it_refuses_what_cupy_refuses(standin, mistake, error, match):
    a = standin.ones((2, 3))
    with pytest.raises(error, match=match):
        mistake(standin, a)


def test_it_takes_what_cupy_takes(standin):
    a = standin.zeros((2, 3))
    a[0] = 1.5                                      # a scalar, a 0-d host array, a device row
    a[1, 0] = numpy.float64(2.0)
    a[1, 1:] = numpy.array(3.0)
    a[numpy.array([0])] = numpy.ones((1, 3))        # advanced index: CuPy copies host data
    a *= numpy.float32(2)
    assert standin.asnumpy(a).tolist() == [[2, 2, 2], [4, 6, 6]]


def _step(standin):
    model = GroupedVAE(**TINY, xp=standin)
    rng = numpy.random.default_rng(0)
    x = standin.asarray((rng.random((1, 4, 7)) > 0.5).astype(numpy.float32))
    eps = standin.asarray(rng.standard_normal((1, 4, 4)).astype(numpy.float32))
    return model.loss_and_grads(x, eps)


def test_a_training_step_runs_on_it(standin):
    losses, grads = _step(standin)
    assert isinstance(losses["total"], standin.ndarray)
    assert all(isinstance(g, standin.ndarray) for g in grads.values())


def test_negative_control_a_planted_asarray_fails_the_step(standin, monkeypatch):
    def planted(x, W, b):
        numpy.asarray(x)                            # the mistake: an implicit device-to-host copy
        return dense_forward(x, W, b)
    monkeypatch.setattr(vae, "dense_forward", planted)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        _step(standin)


def test_negative_control_a_host_array_written_into_a_device_slice_fails_the_step(
        standin, monkeypatch):
    def planted(x, W, b):
        out, cache = dense_forward(x, W, b)
        out[:, :, :1] = numpy.zeros(out.shape[:2] + (1,), out.dtype)   # the mistake
        return out, cache
    monkeypatch.setattr(vae, "dense_forward", planted)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        _step(standin)


def test_the_kernel_emulation_follows_c(standin):
    f32 = numpy.float32
    k = standin.ElementwiseKernel("T x, T a", "T y", "T t = a * x; y = t + 0.1;", "k")
    x = standin.full(2, 3, dtype=f32)
    y = k(x, f32(1 / 3))
    t = f32(f32(1 / 3) * f32(3))
    assert y.dtype == f32 and y.get()[0] == f32(numpy.float64(t) + 0.1)   # 0.1: a double
    k = standin.ElementwiseKernel("T x", "T y", "y = x + 0.1f;", "k")
    assert k(x).get()[0] == f32(3) + f32(0.1)
    with pytest.raises(TypeError, match="Unsupported type"):
        k(numpy.ones(2, f32))
    with pytest.raises(TypeError, match="Type is mismatched"):
        standin.ElementwiseKernel("T x, T z", "T y", "y = x + z;", "k")(x, standin.ones(2))
    with pytest.raises(NotImplementedError):
        standin.ElementwiseKernel("T x", "T y", "y = x > 0 ? x : 0;", "k")


def test_the_kernel_emulation_fuses_multiply_add_unless_fmad_false(standin):
    """NVRTC contracts a*b + c into one rounding by default; `--fmad=false` keeps two."""
    f32 = numpy.float32
    a, c = f32(1 + 2.0 ** -12), f32(-1)             # a*a = 1 + 2^-11 + 2^-24: a tie in float32
    x = standin.full(1, a, dtype=f32)
    fused, apart = f32(2.0 ** -11 + 2.0 ** -24), f32(2.0 ** -11)
    for body in ("y = x * a + c;", "y = c + x * a;", "y = c; y += x * a;"):
        k = standin.ElementwiseKernel("T x, T a, T c", "T y", body, "k")
        assert k(x, a, c).get()[0] == fused, body
        k = standin.ElementwiseKernel("T x, T a, T c", "T y", body, "k", options=("--fmad=false",))
        assert k(x, a, c).get()[0] == apart, body
    k = standin.ElementwiseKernel("T x, T a, T c", "T y", "y = -c - x * a;", "k")
    assert k(x, a, c).get()[0] == -fused
    # a float product added to a double is not contracted: the conversion rounds first
    k = standin.ElementwiseKernel("T x, T a", "T y", "y = x * a - 1.0;", "k")
    assert k(x, a).get()[0] == apart
