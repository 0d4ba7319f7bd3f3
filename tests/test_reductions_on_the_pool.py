"""The reductions' forward and backward rules at sizes that split across the thread pool (from
65,536 elements along an outer kept dim, README "Reductions along a dim"), on 2 threads,
against external oracles: the analytic gradient written in numpy, directional central
differences of the numpy float64 value (one difference per random direction: a full
finite-difference Jacobian at 70,000 elements is too slow), and PyTorch in float64 when
installed. Then checks at a few hundred elements against full central differences, and the
edge cases the op tables miss: prod with zeros along an outer dim, logsumexp of logits around
1e10, cross_entropy in float32."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import check_op, check_op_torch, requires_torch, to_numpy

try:
    import torch
except ImportError:
    torch = None

SPLIT_FROM = 65_536  # elements: reductions along a dim split across the pool from here


@pytest.fixture
def two_threads():
    before = tg.get_num_threads()
    tg.set_num_threads(2)
    yield
    tg.set_num_threads(before)


def as_axis(x, dim):
    return tuple(d % x.ndim for d in dim) if isinstance(dim, tuple) else dim % x.ndim


def count(x, axis):
    return int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def products_of_the_others(x, axis):
    """d prod / d x_i = the product of the other elements of x_i's slice, zeros included."""
    zeros = np.sum(x == 0, axis=axis, keepdims=True)
    nonzero_product = np.prod(np.where(x == 0, 1.0, x), axis=axis, keepdims=True)
    return np.where(zeros == 0, nonzero_product / np.where(x == 0, 1.0, x),
                    np.where((zeros == 1) & (x == 0), nonzero_product, 0.0))


def one_hot_at(index, x, axis):
    hot = np.zeros_like(x)
    np.put_along_axis(hot, np.expand_dims(index, axis), 1.0, axis=axis)
    return hot


# name: (numpy value with keepdims=True, analytic d sum(value * w) / dx with w in the keepdim shape)
REDUCTIONS = {
    "sum": (lambda x, a: x.sum(axis=a, keepdims=True),
            lambda x, a, w: np.broadcast_to(w, x.shape)),
    "mean": (lambda x, a: x.mean(axis=a, keepdims=True),
             lambda x, a, w: np.broadcast_to(w, x.shape) / count(x, a)),
    "var": (lambda x, a: x.var(axis=a, ddof=1, keepdims=True),  # d var / dx = 2 (x - mean) / (n - 1)
            lambda x, a, w: 2 * (x - x.mean(axis=a, keepdims=True)) / (count(x, a) - 1) * w),
    "std": (lambda x, a: x.std(axis=a, ddof=1, keepdims=True),  # d std / dx = (x - mean) / ((n - 1) std)
            lambda x, a, w: (x - x.mean(axis=a, keepdims=True))
            / ((count(x, a) - 1) * x.std(axis=a, ddof=1, keepdims=True)) * w),
    "norm": (lambda x, a: np.sqrt((x * x).sum(axis=a, keepdims=True)),  # d |x| / dx = x / |x|
             lambda x, a, w: x / np.sqrt((x * x).sum(axis=a, keepdims=True)) * w),
    "logsumexp": (lambda x, a: np.log(np.exp(x - x.max(axis=a, keepdims=True)).sum(axis=a, keepdims=True))
                  + x.max(axis=a, keepdims=True),
                  lambda x, a, w: softmax(x, a) * w),  # d logsumexp / dx = softmax(x)
    "prod": (lambda x, a: x.prod(axis=a, keepdims=True),
             lambda x, a, w: products_of_the_others(x, a) * w),
    "max": (lambda x, a: x.max(axis=a, keepdims=True),
            lambda x, a, w: one_hot_at(x.argmax(axis=a), x, a) * w),
    "min": (lambda x, a: x.min(axis=a, keepdims=True),
            lambda x, a, w: one_hot_at(x.argmin(axis=a), x, a) * w),
}
# Along a dim, keeping the shape: d sum(y w) / dx for y = softmax(x) and log_softmax(x).
NORMALISATIONS = {
    "softmax": (softmax, lambda x, a, w: softmax(x, a) * (w - (w * softmax(x, a)).sum(axis=a, keepdims=True))),
    "log_softmax": (lambda x, a: np.log(softmax(x, a)),
                    lambda x, a, w: w - softmax(x, a) * w.sum(axis=a, keepdims=True)),
}
TAKE_TUPLES = ("sum", "mean", "var", "std", "norm", "logsumexp")

# (shape, dim): 70,400 elements each, all but the last split across the pool.
SINGLE_DIM_CASES = [
    ((64, 1100), 1),  # the outer kept dim is dim 0
    ((8, 1100, 8), 1),  # an outer and an inner kept dim
    ((8, 8, 1100), -1),
    ((2200, 32), 1),  # short rows, many of them
    ((1100, 64), 0),  # no outer kept dim: stays on one thread
]
TUPLE_CASES = [((8, 1100, 8), (1, 2)), ((8, 1100, 8), (0, 2)), ((16, 8, 550), (-1, -2))]


def draw_input(name, shape, seed):
    rng = np.random.default_rng(seed)
    if name == "prod":  # near +-1, so a product of 1100 stays in range
        return rng.uniform(0.9, 1.1, shape) * rng.choice([-1.0, 1.0], shape)
    return rng.standard_normal(shape)


def run_tapegrad(name, x, dim, keepdim, weights):
    leaf = tg.tensor(x, requires_grad=True)
    if name in NORMALISATIONS:
        out = getattr(tg, name)(leaf, dim)
    elif name in ("max", "min"):
        out, indices = getattr(leaf, name)(dim=dim, keepdim=keepdim)
        axis = as_axis(x, dim)
        expected = getattr(x, "arg" + name)(axis=axis)
        np.testing.assert_array_equal(indices.numpy(), np.expand_dims(expected, axis) if keepdim else expected)
    else:
        out = getattr(leaf, name)(dim=dim, keepdim=keepdim)
    out.backward(tg.tensor(weights))
    return to_numpy(out), to_numpy(leaf.grad)


def run_torch(name, x, dim, keepdim, weights):
    leaf = torch.tensor(x, requires_grad=True)
    if name in NORMALISATIONS:
        out = getattr(torch, name)(leaf, dim)
    elif name in ("max", "min"):
        out = getattr(leaf, name)(dim=dim, keepdim=keepdim).values
    else:
        out = getattr(leaf, name)(dim=dim, keepdim=keepdim)
    out.backward(torch.tensor(weights))
    return out.detach().numpy(), leaf.grad.numpy()


def check_reduction(name, x, dim, keepdim, seed=1):
    """Value against numpy, gradient against the analytic one, directional differences and
    torch; all at 2 threads."""
    value_of, grad_of = {**REDUCTIONS, **NORMALISATIONS}[name]
    axis = as_axis(x, dim)
    expected = value_of(x, axis)
    rng = np.random.default_rng(seed)
    weights_kept = rng.standard_normal(expected.shape)
    keeps_shape = name in NORMALISATIONS or keepdim
    weights = weights_kept if keeps_shape else np.squeeze(weights_kept, axis=axis)
    value, grad = run_tapegrad(name, x, dim, keepdim, weights)
    np.testing.assert_allclose(value, expected if keeps_shape else np.squeeze(expected, axis=axis),
                               rtol=1e-10, atol=1e-12, err_msg=f"{name} value differs from numpy")
    analytic = grad_of(x, axis, weights_kept)
    np.testing.assert_allclose(grad, analytic, rtol=1e-9, atol=1e-12 * np.abs(analytic).max(),
                               err_msg=f"{name} gradient differs from the analytic one")

    def loss(point):
        return float(np.sum(value_of(point, axis) * weights_kept))

    step = 1e-6
    for _ in range(2):
        direction = rng.standard_normal(x.shape)
        numeric = (loss(x + step * direction) - loss(x - step * direction)) / (2 * step)
        np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-5, atol=1e-6 * np.sqrt(x.size),
                                   err_msg=f"{name} gradient differs from directional central differences")
    if torch is not None:
        torch_value, torch_grad = run_torch(name, x, dim, keepdim, weights)
        np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12, err_msg=f"{name} value vs torch")
        np.testing.assert_allclose(grad, torch_grad, rtol=1e-10, atol=1e-13 * np.abs(torch_grad).max(),
                                   err_msg=f"{name} gradient vs torch")


@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("shape, dim", SINGLE_DIM_CASES, ids=[f"{s}-dim{d}" for s, d in SINGLE_DIM_CASES])
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_along_a_dim_on_two_threads(two_threads, name, shape, dim, keepdim):
    assert np.prod(shape) >= SPLIT_FROM
    check_reduction(name, draw_input(name, shape, seed=len(name)), dim, keepdim)


@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
@pytest.mark.parametrize("shape, dim", TUPLE_CASES, ids=[f"{s}-dims{d}" for s, d in TUPLE_CASES])
@pytest.mark.parametrize("name", TAKE_TUPLES)
def test_reduction_over_several_dims_on_two_threads(two_threads, name, shape, dim, keepdim):
    check_reduction(name, draw_input(name, shape, seed=len(name)), dim, keepdim)


@pytest.mark.parametrize("shape, dim", SINGLE_DIM_CASES, ids=[f"{s}-dim{d}" for s, d in SINGLE_DIM_CASES])
@pytest.mark.parametrize("name", list(NORMALISATIONS))
def test_softmax_along_a_dim_on_two_threads(two_threads, name, shape, dim):
    check_reduction(name, draw_input(name, shape, seed=3) * 3, dim, keepdim=False)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "norm", "logsumexp", "prod", "max", "min",
                                  "softmax", "log_softmax"])
def test_reduction_of_hundreds_of_elements_against_central_differences(name):
    """A full Jacobian check (check_op: every input element) at 360 elements, along dim 1 of 3."""
    value_of = {**REDUCTIONS, **NORMALISATIONS}[name][0]
    if name in NORMALISATIONS:
        fn_tg = lambda x: getattr(tg, name)(x, 1)  # noqa: E731
        fn_np = lambda x: value_of(x, 1)  # noqa: E731
    elif name in ("max", "min"):
        fn_tg = lambda x: getattr(x, name)(dim=1).values  # noqa: E731
        fn_np = lambda x: value_of(x, 1)[:, 0]  # noqa: E731
    else:
        fn_tg = lambda x: getattr(x, name)(dim=1)  # noqa: E731
        fn_np = lambda x: value_of(x, 1)[:, 0]  # noqa: E731
    check_op(fn_tg, fn_np, [(4, 30, 3)], domains="nonzero" if name == "prod" else "real", name=name)


# ---------------------------------------------------------------- prod with zeros


def zeros_along_dim_0(shape, positions, seed=0):
    """Values near +-1 with zeros at `positions` (a list of (row, column) pairs)."""
    x = draw_input("prod", shape, seed)
    for row, column in positions:
        x[row, column] = 0.0
    return x


# Column 0 holds no zero, column 1 one, column 2 two, column 3 three, column 4 its only zero last.
ZERO_POSITIONS = [(2, 1), (0, 2), (3, 2), (1, 3), (2, 3), (4, 3), (4, 4)]


@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
def test_prod_along_an_outer_dim_with_zeros(keepdim):
    """prod(dim=0) of a (5, 5): the gradient of a zero is the product of its slice's others when it
    is the slice's only zero, and every gradient of a slice with two zeros or more is 0."""
    x = zeros_along_dim_0((5, 5), ZERO_POSITIONS)
    check_reduction("prod", x, 0, keepdim)
    _, grad = run_tapegrad("prod", x, 0, False, np.ones(5))
    assert grad[2, 1] == pytest.approx(np.prod(np.delete(x[:, 1], 2)), rel=1e-12)
    assert np.all(grad[[0, 1, 3, 4], 1] == 0) and np.all(grad[:, 2:4] == 0)


@pytest.mark.parametrize("dim", [0, 1])
def test_prod_with_zeros_at_a_size_that_splits(two_threads, dim):
    """(40, 2048) along dim 0 and (2048, 40) along dim 1, with slices holding one zero, two zeros,
    and none."""
    shape = (40, 2048) if dim == 0 else (2048, 40)
    x = draw_input("prod", shape, seed=5)
    slices = np.moveaxis(x, dim, 0)  # a view: writing it writes x
    slices[7, 0] = 0.0
    slices[3, 1] = slices[30, 1] = 0.0
    slices[0, 2] = slices[39, 2] = slices[20, 2] = 0.0
    slices[39, 2047] = 0.0
    check_reduction("prod", x, dim, keepdim=False)


# ---------------------------------------------------------------- logsumexp of huge logits


@pytest.mark.parametrize("dim", [0, 1])
def test_logsumexp_of_float64_logits_around_1e10(dim):
    """logsumexp(1e10 + d) = 1e10 + logsumexp(d) and its gradient softmax(d): exp(1e10) overflows,
    so only a shifted computation gets either. The offsets are multiples of 2^-8, exact at 1e10."""
    rng = np.random.default_rng(2)
    offsets = np.round(rng.standard_normal((6, 5)) * 256) / 256
    x = 1e10 + offsets
    assert np.array_equal(x - 1e10, offsets)
    weights = rng.standard_normal(5 if dim == 0 else 6)
    value, grad = run_tapegrad("logsumexp", x, dim, False, weights)
    exact = np.log(np.exp(offsets).sum(axis=dim))  # the offsets are small: no shift needed
    np.testing.assert_allclose(value - 1e10, exact, atol=4e-6)  # 1e10's ulp is 1.9e-6
    np.testing.assert_allclose(grad, softmax(offsets, dim) * np.expand_dims(weights, dim), rtol=1e-12, atol=1e-15)
    if torch is not None:
        torch_value, torch_grad = run_torch("logsumexp", x, dim, False, weights)
        np.testing.assert_array_equal(value, torch_value)
        # torch's gradient is exp(x - result): the result's rounding (1e10's ulp, 1.9e-6) puts it
        # up to 1e-6 off softmax(d), which tapegrad's meets to 4e-16
        np.testing.assert_allclose(grad, torch_grad, rtol=2e-6)


# ---------------------------------------------------------------- cross_entropy in float32


def cross_entropy_np(target, reduction):
    def value(logits):
        log_p = np.log(softmax(logits, 1))
        picked = -log_p[np.arange(len(target)), target]
        return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](picked)
    return value


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_against_central_differences(reduction, dtype):
    """(16, 10) logits of ordinary magnitude; float32 gradients against float64 differences of the
    float64 computation."""
    target = np.random.default_rng(4).integers(0, 10, 16)
    check_op(lambda logits: tg.nn.functional.cross_entropy(logits, tg.tensor(target), reduction=reduction),
             cross_entropy_np(target, reduction), [(16, 10)], dtype, name=f"cross_entropy {reduction}")


@requires_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_against_torch(reduction, dtype):
    target = np.random.default_rng(4).integers(0, 10, 16)
    check_op_torch(lambda logits: tg.nn.functional.cross_entropy(logits, tg.tensor(target), reduction=reduction),
                   lambda logits: torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction=reduction),
                   [(16, 10)], dtype, name=f"cross_entropy {reduction}")
