"""Numerics: the vectorised exp, log, tanh and sigmoid in ulps against numpy in float64 and at
the special values; pow's fast exponents against torch; sums of 10^7 float32 elements against
float64 sums; softmax, log_softmax, logsumexp and cross_entropy on logits of magnitude 1e4
against float64 numpy; gradients added into an existing .grad in one pass."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, requires_torch, to_numpy, torch

F32_EPS = 2.0**-24  # float32's unit roundoff


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (float64 reference, the domain swept, the bound in float32 ulps; vecmath.h states them)
KERNELS = {
    "exp": (np.exp, (-104.0, 89.0), 2),
    "log": (np.log, (1e-45, 3e38), 2),
    "tanh": (np.tanh, (-12.0, 12.0), 3),
    "sigmoid": (np_sigmoid, (-105.0, 90.0), 3),
}


def float32_ulps(values, exact):
    """|values - exact| in units of float32's spacing at exact (denormal spacing below); past
    float32's range, 0 where values is exact rounded to float32 (inf) and inf elsewhere."""
    exponent = np.frexp(exact)[1]
    spacing = np.maximum(np.ldexp(1.0, exponent - 24), 2.0**-149)
    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.abs(values.astype(np.float64) - exact) / spacing
        beyond = np.abs(exact) > np.finfo(np.float32).max
        return np.where(beyond, np.where(values == exact.astype(np.float32), 0.0, np.inf), errors)


def dense_float32(low, high, count=400_000):
    """Values spread log-uniformly over each sign's part of [low, high], plus a uniform grid."""
    rng = np.random.default_rng(3)
    parts = [np.linspace(low, high, count)]
    for lo, hi, sign in ((max(low, 0), high, 1), (max(-high, 0), -low, -1)):
        if hi > 0:
            tiny = max(lo, 1e-45)
            parts.append(sign * np.exp(rng.uniform(np.log(tiny), np.log(hi), count)))
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("name", list(KERNELS))
def test_float32_kernel_within_ulp_bound(name):
    reference, (low, high), bound = KERNELS[name]
    x = dense_float32(low, high)
    with np.errstate(over="ignore", divide="ignore"):
        exact = reference(x.astype(np.float64))
    got = getattr(tg, name)(tg.from_numpy(x)).numpy()
    errors = float32_ulps(got, exact)
    worst = int(np.argmax(errors))
    # numpy's float64 functions err by under 1e-9 float32 ulps: the bound is tapegrad's own
    assert errors[worst] <= bound, f"{name}({x[worst]!r}) = {got[worst]!r}, exact {exact[worst]!r}"


# name -> [(input, expected)] at the special values, as <cmath> and torch give them
SPECIAL = {
    "exp": [(-math.inf, 0.0), (math.inf, math.inf), (0.0, 1.0), (-0.0, 1.0), (math.nan, math.nan), (1000.0, math.inf),
            (-1000.0, 0.0)],
    "log": [(0.0, -math.inf), (-0.0, -math.inf), (-1.0, math.nan), (math.inf, math.inf), (-math.inf, math.nan),
            (1.0, 0.0), (math.nan, math.nan)],
    "tanh": [(math.inf, 1.0), (-math.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (math.nan, math.nan), (30.0, 1.0),
             (-30.0, -1.0)],
    "sigmoid": [(math.inf, 1.0), (-math.inf, 0.0), (0.0, 0.5), (math.nan, math.nan), (-800.0, 0.0), (800.0, 1.0)],
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_values(name, dtype):
    inputs, expected = zip(*SPECIAL[name])
    got = getattr(tg, name)(tg.tensor(list(inputs), dtype=getattr(tg, dtype))).numpy()
    expected = np.array(expected, dtype=dtype)
    np.testing.assert_array_equal(got, expected)  # nan matches nan
    zeros = expected == 0
    assert list(np.signbit(got[zeros])) == list(np.signbit(expected[zeros])), "signs of zeros"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_denormal_inputs_and_results(dtype):
    info = np.finfo(dtype)
    x = np.array([info.smallest_subnormal, info.smallest_subnormal * 3, info.tiny / 2, info.tiny], dtype=dtype)
    np.testing.assert_allclose(tg.log(tg.from_numpy(x)).numpy(), np.log(x.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(tg.tanh(tg.from_numpy(x)).numpy(), x)  # tanh x = x to within rounding here
    # exp of the logs of denormals gives them back (to within the bound at the spacing of denormals)
    logs = np.log(x.astype(np.float64)).astype(dtype)
    np.testing.assert_allclose(tg.exp(tg.from_numpy(logs)).numpy(), np.exp(logs.astype(np.float64)), rtol=1e-5)


def run_with_isa(isa, code):
    env = dict(os.environ, TAPEGRAD_ISA=isa)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_isa_override_forces_the_baseline_and_rejects_unknown_names():
    code = ("import numpy as np, tapegrad as tg; x = np.linspace(-20, 20, 1001, dtype=np.float32); "
            "d = np.abs(tg.tanh(tg.from_numpy(x)).numpy() - np.tanh(x.astype(np.float64))); print(d.max())")
    baseline = run_with_isa("avx2", code)
    assert baseline.returncode == 0, baseline.stderr
    assert float(baseline.stdout) < 3 * F32_EPS
    unknown = run_with_isa("sse9", code)
    assert unknown.returncode != 0 and "TAPEGRAD_ISA=sse9: expected 'avx2' or 'avx512'" in unknown.stderr


# --- pow's fast exponents ---

POW_INPUTS = [-0.0, 0.0, -math.inf, math.inf, math.nan, -2.0, -0.5, 0.3, 1.0, 3.0, 1e-3, 50.0]


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -0.5, -1, -2, 0, 1, 4, -3, 7, 2.5, 64, 65])
def test_pow_scalar_exponents_match_torch(exponent, dtype):
    x = tg.tensor(POW_INPUTS, dtype=getattr(tg, dtype), requires_grad=True)
    y = x**exponent
    y.backward(tg.ones_like(y))
    tx = torch.tensor(POW_INPUTS, dtype=getattr(torch, dtype), requires_grad=True)
    ty = tx**exponent
    ty.backward(torch.ones_like(ty))
    for got, want in ((y.detach().numpy(), ty.detach().numpy()), (x.grad.numpy(), tx.grad.numpy())):
        np.testing.assert_allclose(got, want, rtol=2e-7 if dtype == "float32" else 1e-15)
        assert list(np.signbit(got[got == 0])) == list(np.signbit(want[want == 0])), "signs of zeros"
    assert y.grad_fn.name() == "PowBackward0"


@pytest.mark.parametrize("exponent", [2, 3, 4, -2, 0.5])
def test_pow_float32_integer_exponents_close_to_float64(exponent):
    x = np.random.default_rng(5).uniform(0.1, 10, 100_000).astype(np.float32)
    got = tg.pow(tg.from_numpy(x), exponent).numpy()
    exact = x.astype(np.float64) ** exponent
    assert float32_ulps(got, exact).max() <= 2


# --- sums ---


def float32_sum_bound(x, exact):
    """What a float32 sum accumulated in double may err by: its final rounding to float32 plus
    the blocked double accumulation's bound from vecmath.h."""
    return F32_EPS * abs(exact) + (2048 / 16 + math.log2(x.size / 2048 + 1) + 1) * 2.0**-53 * np.abs(x).sum(dtype=np.float64)


def test_sum_of_ten_million_float32_within_bound_of_float64():
    # 0.1 in float32, 10^7 times: a float32 accumulator is off by about 9% here
    x = np.full(10_000_000, 0.1, dtype=np.float32)
    x[::3] = np.random.default_rng(0).standard_normal(x[::3].size).astype(np.float32)
    exact = math.fsum(x.astype(np.float64))
    t = tg.from_numpy(x)
    assert abs(float(t.sum().item()) - exact) <= float32_sum_bound(x, exact)
    assert abs(float(t.mean().item()) - exact / x.size) <= float32_sum_bound(x, exact) / x.size


@pytest.mark.parametrize("dim", [0, 1])
def test_dim_sums_of_float32_within_bound(dim):
    x = np.full((2_000, 5_000), 0.1, dtype=np.float32) + np.random.default_rng(1).uniform(0, 1e-3, (2_000, 5_000)).astype(np.float32)
    exact = x.astype(np.float64).sum(axis=dim)
    got = tg.from_numpy(x).sum(dim).numpy().astype(np.float64)
    assert np.all(np.abs(got - exact) <= F32_EPS * np.abs(exact) * 1.0001)
    means = tg.from_numpy(x).mean(dim).numpy().astype(np.float64)
    assert np.all(np.abs(means - exact / x.shape[dim]) <= F32_EPS * np.abs(exact / x.shape[dim]) * 1.0001)


def test_float64_sum_pairwise_accuracy():
    # 1 followed by many tiny values: a single running sum loses each tiny value's low bits
    x = np.concatenate([[1.0], np.full(4_000_000, 1e-16 / 3)])
    exact = math.fsum(x)
    bound = (2048 / 16 + math.log2(x.size / 2048 + 1) + 1) * 2.0**-53 * np.abs(x).sum()
    assert abs(float(tg.from_numpy(x).sum().item()) - exact) <= bound


# --- softmax and friends on large logits ---


def np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def large_logits(kind, shape=(64, 100)):
    """float32 logits of magnitude 1e4: widely spread, or one offset with a small spread (where
    rounding at 1e4 would cost the most)."""
    rng = np.random.default_rng(9)
    if kind == "spread":
        return (1e4 * rng.standard_normal(shape)).astype(np.float32)
    return (1e4 + rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("kind", ["spread", "offset", "negative offset"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_family_stable_at_1e4(kind, dim):
    x = large_logits(kind)
    if kind == "negative offset":
        x = -x
    x64 = x.astype(np.float64)
    log_p = np_log_softmax(x64, dim)
    weights = np.random.default_rng(4).standard_normal(x.shape)
    t = tg.tensor(x, requires_grad=True)

    y = tg.log_softmax(t, dim)
    np.testing.assert_allclose(y.detach().numpy(), log_p, rtol=1e-6, atol=1e-5)
    y.backward(tg.tensor(weights.astype(np.float32)))
    expected = weights - np.exp(log_p) * weights.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-5, atol=1e-5)

    t.grad = None
    y = tg.softmax(t, dim)
    p = np.exp(log_p)
    np.testing.assert_allclose(y.detach().numpy(), p, rtol=1e-5, atol=1e-7)
    y.backward(tg.tensor(weights.astype(np.float32)))
    expected = p * (weights - (weights * p).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-5, atol=1e-6)

    t.grad = None
    lse = t.logsumexp(dim)
    shift = x64.max(axis=dim)
    np.testing.assert_allclose(lse.detach().numpy(), shift + np.log(np.exp(x64 - np.expand_dims(shift, dim)).sum(axis=dim)),
                               rtol=1e-7)
    lse.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), p, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["spread", "offset"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_stable_at_1e4(kind, reduction):
    x = large_logits(kind)
    target = np.random.default_rng(6).integers(0, x.shape[1], x.shape[0])
    x64 = x.astype(np.float64)
    log_p = np_log_softmax(x64, 1)
    losses = -log_p[np.arange(x.shape[0]), target]
    t = tg.tensor(x, requires_grad=True)
    loss = tg.nn.functional.cross_entropy(t, tg.tensor(target), reduction=reduction)
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    # float32 losses of a few units are good to about 1e-6; rounding at 1e4 would cost 1e-3
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6, atol=2e-6)
    loss.backward(tg.ones_like(loss))
    grad = np.exp(log_p)
    grad[np.arange(x.shape[0]), target] -= 1
    if reduction == "mean":
        grad /= x.shape[0]
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-5, atol=1e-7)


# --- gradients added into an existing buffer ---


def unbroadcast(grad, shape):
    """A gradient of the broadcast shape summed down to `shape`."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    return grad.sum(axis=tuple(d for d, size in enumerate(shape) if size == 1), keepdims=True)


# name -> (the op, its derivatives times g in numpy: (d/da, d/db), or d/da for an op of a alone)
FUSED_RULES = {
    "mul": (lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, lambda a, b, g: (g / b, -g * a / b**2)),
    "sub": (lambda a, b: a - b, lambda a, b, g: (g, -g)),
    "add": (lambda a, b: a + b, lambda a, b, g: (g, g)),
    "tanh": (lambda a: a.tanh(), lambda a, g: g * (1 - np.tanh(a) ** 2)),
    "square": (lambda a: a**2, lambda a, g: 2 * g * a),
    "reciprocal": (lambda a: a**-1, lambda a, g: -g / a**2),
}


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((1, 4), (3, 1))])
@pytest.mark.parametrize("name", list(FUSED_RULES))
def test_backward_adds_into_existing_grad(name, shapes):
    forward, derivatives = FUSED_RULES[name]
    rng = np.random.default_rng(8)
    values = [rng.uniform(0.5, 2, shape) for shape in shapes[: forward.__code__.co_argcount]]
    leaves = [tg.tensor(value, requires_grad=True) for value in values]
    for leaf in leaves:
        leaf.grad = tg.ones_like(leaf)
    buffers = [leaf.grad.data_ptr() for leaf in leaves]
    out = forward(*leaves)
    g = rng.standard_normal(tuple(out.shape))
    for retain in (True, False):  # both passes add into the same buffers
        out.backward(tg.tensor(g), retain_graph=retain)
    full = [np.broadcast_to(value, g.shape) for value in values]
    contributions = derivatives(*full, g) if len(values) == 2 else (derivatives(*full, g),)
    for leaf, value, contribution in zip(leaves, values, contributions):
        expected = 1 + 2 * unbroadcast(np.broadcast_to(contribution, g.shape), value.shape)
        np.testing.assert_allclose(to_numpy(leaf.grad), expected, rtol=1e-12)
    assert [leaf.grad.data_ptr() for leaf in leaves] == buffers
