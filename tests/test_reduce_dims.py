"""Reductions over chosen dims (sum, mean, norm, var, std, logsumexp, prod, max, min, argmax,
argmin) and softmax / log_softmax: values against numpy, gradients against central
differences, both against torch when installed; torch's gradient rules at ties, zeros, nan and
inf; result dtypes and node names; the named tuple of max/min; and each error."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, requires_torch, to_numpy, torch

# (input shape, dim): 0-d, size-1 and size-0 dims, 3-D, negative and tuple dims.
CASES = [
    ((), None), ((), 0), ((), -1), ((1,), 0), ((7,), -1), ((2, 3), None), ((2, 3), 0), ((2, 3), 1),
    ((2, 3), (0, 1)), ((2, 3), (-1, 0)), ((2, 1, 4), 1), ((2, 1, 4), (0, 2)), ((3, 4, 5), 1),
    ((3, 4, 5), (0, 2)), ((3, 4, 5), -1), ((2, 0, 3), 1), ((2, 0, 3), 2), ((2, 0, 3), None),
]
INT_DIM_CASES = [(shape, dim) for shape, dim in CASES if not isinstance(dim, tuple)]
# keepdim=True, on fewer cases to keep the suite fast.
KEEPDIM_CASES = [((), 0), ((2, 3), None), ((2, 1, 4), 1), ((3, 4, 5), (0, 2)), ((3, 4, 5), -1), ((2, 0, 3), 1)]


def axis_of(shape, dim):
    """numpy's axis for a tapegrad dim: None for everything (and for a 0-d input)."""
    if dim is None or len(shape) == 0:
        return None
    return tuple(d % len(shape) for d in (dim if isinstance(dim, tuple) else (dim,)))


def quietly(fn):
    """numpy warns where torch gives nan or inf silently (an empty mean, a variance with no
    degrees of freedom); the suite turns warnings into errors."""
    def wrapped(*args):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args)
    return wrapped


def np_logsumexp(x, axis, keepdims):
    shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    shift = np.where(np.isinf(shift), 0.0, shift)
    total = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return total if keepdims or axis is None and x.ndim == 0 else np.squeeze(total, axis=axis)


def dims_kwargs(dim, keepdim):
    """The call `x.op(**kwargs)`: no arguments for the plain full reduction."""
    return {} if dim is None and not keepdim else {"dim": dim, "keepdim": keepdim}


# name -> (call on a tapegrad or torch tensor, numpy reference(x, axis, keepdims))
REDUCTIONS = {
    "sum": (lambda x, dim, keepdim: x.sum(**dims_kwargs(dim, keepdim)), np.sum),
    "mean": (lambda x, dim, keepdim: x.mean(**dims_kwargs(dim, keepdim)), np.mean),
    "norm": (lambda x, dim, keepdim: x.norm(**dims_kwargs(dim, keepdim)),
             lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))),
    "var": (lambda x, dim, keepdim: x.var(**dims_kwargs(dim, keepdim)),
            lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims, ddof=1)),
    "std": (lambda x, dim, keepdim: x.std(**dims_kwargs(dim, keepdim)),
            lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims, ddof=1)),
    "var(correction=0)": (lambda x, dim, keepdim: x.var(**dims_kwargs(dim, keepdim), correction=0),
                          lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims)),
    "std(unbiased=False)": (lambda x, dim, keepdim: x.std(**dims_kwargs(dim, keepdim), unbiased=False),
                            lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims)),
    "logsumexp": (lambda x, dim, keepdim: x.logsumexp(dim=dim if dim is not None else tuple(range(x.dim())),
                                                      keepdim=keepdim), np_logsumexp),
}
# One dim or all: prod, and the values of max and min (not on size-0 reductions).
SINGLE_DIM_REDUCTIONS = {
    "prod": (lambda x, dim, keepdim: x.prod(dim, keepdim) if dim is not None else x.prod(), np.prod),
    "max": (lambda x, dim, keepdim: x.max(dim, keepdim).values if dim is not None else x.max(), np.max),
    "min": (lambda x, dim, keepdim: x.min(dim=dim, keepdim=keepdim)[0] if dim is not None else x.min(), np.min),
}


def reduction_params(table, cases):
    params = []
    for name, (call, reference) in table.items():
        for shape, dim in cases:
            for keepdim in (False, True) if (shape, dim) in KEEPDIM_CASES else (False,):
                if dim is None and keepdim and table is SINGLE_DIM_REDUCTIONS:
                    continue  # torch's max(), prod() take no keepdim without a dim
                if name in ("max", "min") and 0 in shape:
                    continue  # an error; tested below
                params.append(pytest.param(call, reference, shape, dim, keepdim,
                                           id=f"{name}-{shape}-dim={dim}-keepdim={keepdim}"))
    return params


PARAMS = reduction_params(REDUCTIONS, CASES) + reduction_params(SINGLE_DIM_REDUCTIONS, INT_DIM_CASES)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("call, reference, shape, dim, keepdim", PARAMS)
def test_reduction_value_and_gradient(call, reference, shape, dim, keepdim, dtype, request):
    axis = axis_of(shape, dim)
    check_op(lambda x: call(x, dim, keepdim), quietly(lambda x: reference(x, axis=axis, keepdims=keepdim)),
             [shape], dtype, name=request.node.callspec.id)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("call, reference, shape, dim, keepdim", PARAMS)
def test_reduction_matches_torch(call, reference, shape, dim, keepdim, dtype, request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about variances with no degrees of freedom
        check_op_torch(lambda x: call(x, dim, keepdim), lambda x: call(x, dim, keepdim), [shape], dtype,
                       name=request.node.callspec.id)


# --- softmax and log_softmax ---

def np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True, initial=-np.inf))
    return e / np.sum(e, axis=axis, keepdims=True)


SOFTMAX_CASES = [((), 0), ((5,), 0), ((2, 3), 1), ((2, 3), 0), ((2, 1, 4), 1), ((2, 3, 4), -2), ((3, 4, 5), 2),
                 ((2, 0, 3), 1), ((2, 0, 3), 2)]
SOFTMAXES = [
    ("tg.softmax(x, dim)", lambda m, x, dim: m.softmax(x, dim), np_softmax),
    ("x.softmax(dim=)", lambda m, x, dim: x.softmax(dim=dim), np_softmax),
    ("tg.log_softmax(x, dim)", lambda m, x, dim: m.log_softmax(x, dim), lambda x, axis: np.log(np_softmax(x, axis))),
    ("x.log_softmax(dim)", lambda m, x, dim: x.log_softmax(dim), lambda x, axis: np.log(np_softmax(x, axis))),
]
SOFTMAX_PARAMS = [pytest.param(call, reference, shape, dim, id=f"{text}-{shape}-dim={dim}")
                  for text, call, reference in SOFTMAXES for shape, dim in SOFTMAX_CASES]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("call, reference, shape, dim", SOFTMAX_PARAMS)
def test_softmax_value_and_gradient(call, reference, shape, dim, dtype, request):
    axis = dim % len(shape) if shape else None
    check_op(lambda x: call(tg, x, dim), quietly(lambda x: reference(x, axis)), [shape], dtype,
             name=request.node.callspec.id)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("call, reference, shape, dim", SOFTMAX_PARAMS)
def test_softmax_matches_torch(call, reference, shape, dim, dtype, request):
    check_op_torch(lambda x: call(tg, x, dim), lambda x: call(torch, x, dim), [shape], dtype,
                   name=request.node.callspec.id)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_softmax_of_large_logits_is_finite_and_exact(dtype):
    x = tg.tensor(np.array([[1e4, -1e4, 1e4], [-1e4, -1e4, 0.0]], dtype=dtype), requires_grad=True)
    y = tg.softmax(x, dim=1)
    np.testing.assert_allclose(to_numpy(y), [[0.5, 0.0, 0.5], [0.0, 0.0, 1.0]], atol=1e-7)
    log_y = x.log_softmax(1)
    np.testing.assert_allclose(to_numpy(log_y), [[-np.log(2), -2e4 - np.log(2), -np.log(2)], [-1e4, -1e4, 0.0]],
                               rtol=1e-6)
    (y * tg.tensor([1.0, 2.0, 3.0], dtype=getattr(tg, dtype))).sum().backward()
    assert np.all(np.isfinite(to_numpy(x.grad)))


@requires_torch
def test_softmax_of_infinite_logits_matches_torch():
    # A row of -inf is nan (as torch); one -inf among finite logits gets probability 0.
    rows = [[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 1.0]]
    for fn in ("softmax", "log_softmax"):
        x, xt = tg.tensor(rows, requires_grad=True), torch.tensor(rows, requires_grad=True)
        y, yt = getattr(x, fn)(1), getattr(xt, fn)(1)
        np.testing.assert_array_equal(to_numpy(y), yt.detach().double().numpy())
        y.backward(tg.ones(3, 2))
        yt.backward(torch.ones(3, 2))
        np.testing.assert_array_equal(to_numpy(x.grad), xt.grad.double().numpy())


def test_softmax_dtype_converts_and_the_gradient_flows_back():
    x = tg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = tg.softmax(x, 1, dtype=tg.float64)
    assert y.dtype == tg.float64 and y.grad_fn.name() == "SoftmaxBackward0"
    (y * tg.tensor([[1.0, 0.0, 0.0]], dtype=tg.float64)).sum().backward()
    p = np_softmax(np.array([[1.0, 2.0, 3.0]]), 1)
    assert x.grad.dtype == tg.float32
    np.testing.assert_allclose(to_numpy(x.grad), p[0, 0] * (np.array([[1.0, 0, 0]]) - p), rtol=1e-6)


# --- fan-out and composition ---

COMPOSED = [
    ("x.softmax(1) * x.sum(1, keepdim=True)", lambda x: x.softmax(1) * x.sum(1, keepdim=True),
     lambda x: np_softmax(x, 1) * np.sum(x, axis=1, keepdims=True), [(3, 4)]),
    ("x.max(1).values + x.mean(1) * x.std(1)", lambda x: x.max(1).values + x.mean(1) * x.std(1),
     lambda x: np.max(x, 1) + np.mean(x, 1) * np.std(x, 1, ddof=1), [(3, 5)]),
    ("(x - x.logsumexp(1, keepdim=True)) * y", lambda x, y: (x - x.logsumexp(1, keepdim=True)) * y,
     lambda x, y: (x - np_logsumexp(x, (1,), True)) * y, [(2, 3), (3,)]),
    ("x.var(0) / x.norm(dim=0) + x.prod(0)", lambda x: x.var(0) / x.norm(dim=0) + x.prod(0),
     lambda x: np.var(x, 0, ddof=1) / np.sqrt(np.sum(x * x, 0)) + np.prod(x, 0), [(4, 2)]),
    ("tg.sum(x * y, (0, 2))", lambda x, y: tg.sum(x * y, (0, 2)), lambda x, y: np.sum(x * y, axis=(0, 2)),
     [(2, 3, 1), (1, 4)]),
    ("x.min(0)[0] * x.min()", lambda x: x.min(0)[0] * x.min(), lambda x: np.min(x, 0) * np.min(x), [(3, 2)]),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn_tg, fn_np, shapes",
                         [pytest.param(fn_tg, fn_np, shapes, id=text) for text, fn_tg, fn_np, shapes in COMPOSED])
def test_fan_out_and_composition(fn_tg, fn_np, shapes, dtype, request):
    check_op(fn_tg, fn_np, shapes, dtype, name=request.node.callspec.id)


# --- torch's gradients at ties, zeros, nan and inf ---

NAN, INF = float("nan"), float("inf")

# (call, input, expected value, expected gradient of the values' sum), as torch 2.x gives them.
EDGE_GRADIENTS = [
    ("x.max()", lambda x: x.max(), [1.0, 3.0, 3.0, 2.0, 3.0], 3.0, [0, 1 / 3, 1 / 3, 0, 1 / 3]),
    ("x.min()", lambda x: x.min(), [1.0, 3.0, 1.0, 2.0, 1.0], 1.0, [1 / 3, 0, 1 / 3, 0, 1 / 3]),
    ("x.max(0).values", lambda x: x.max(0).values, [1.0, 3.0, 3.0, 2.0, 3.0], 3.0, [0, 1, 0, 0, 0]),
    ("x.max(0).values (2-D)", lambda x: x.max(0).values, [[1.0, 3.0, 3.0], [2.0, 3.0, 1.0]], [2.0, 3.0, 3.0],
     [[0, 1, 1], [1, 0, 0]]),
    ("x.min(1).values", lambda x: x.min(1).values, [[2.0, 1.0, 1.0], [0.0, 0.0, 5.0]], [1.0, 0.0],
     [[0, 1, 0], [1, 0, 0]]),
    ("x.max() with nan", lambda x: x.max(), [1.0, NAN, 3.0, NAN], NAN, [0, 0.5, 0, 0.5]),
    ("x.max(0) with nan", lambda x: x.max(0).values, [1.0, NAN, 3.0, NAN], NAN, [0, 1, 0, 0]),
    ("x.max() of infinities", lambda x: x.max(), [-INF, -INF], -INF, [0.5, 0.5]),
    ("x.prod()", lambda x: x.prod(), [2.0, 3.0, 4.0], 24.0, [12, 8, 6]),
    ("x.prod() one zero", lambda x: x.prod(), [2.0, 0.0, 4.0], 0.0, [0, 8, 0]),
    ("x.prod() two zeros", lambda x: x.prod(), [2.0, 0.0, 0.0], 0.0, [0, 0, 0]),
    ("x.prod() zeros and inf", lambda x: x.prod(), [0.0, 0.0, INF], NAN, [0, 0, 0]),
    ("x.prod() one zero and inf", lambda x: x.prod(), [2.0, INF, 0.0], NAN, [NAN, 0, INF]),
    ("x.prod() inf", lambda x: x.prod(), [2.0, INF, 4.0], INF, [INF, NAN, INF]),
    ("x.prod(1) zeros", lambda x: x.prod(1), [[2.0, 0.0, 4.0], [1.0, 2.0, 3.0], [0.0, 0.0, 5.0]], [0.0, 6.0, 0.0],
     [[0, 8, 0], [6, 3, 2], [0, 0, 0]]),
    ("x.prod(1) zero elsewhere", lambda x: x.prod(1), [[2.0, INF], [0.0, 3.0]], [INF, 0.0], [[INF, 2], [3, 0]]),
    ("x.prod(1) inf", lambda x: x.prod(1), [[2.0, INF], [1.0, 3.0]], [INF, 3.0], [[INF, NAN], [3, 1]]),
    ("x.prod(0) 0-d", lambda x: x.prod(0), 0.0, 0.0, 1.0),
    ("x.prod() of a zero", lambda x: x.prod(), [0.0], 0.0, [1.0]),
    ("x.var() one element", lambda x: x.var(), [3.0], NAN, [NAN]),
    ("x.var(correction=2)", lambda x: x.var(correction=2), [3.0, 4.0], INF, [INF, INF]),
    ("x.var(1, correction=3)", lambda x: x.var(1, correction=3), [[3.0, 4.0]], [INF], [[1, -1]]),
    ("x.var(1, correction=2)", lambda x: x.var(1, correction=2), [[3.0, 4.0]], [INF], [[-INF, INF]]),
    ("x.var(correction=0.5)", lambda x: x.var(correction=0.5), [3.0, 4.0], 1 / 3, [-2 / 3, 2 / 3]),
    ("x.std() constant", lambda x: x.std(), [3.0, 3.0], 0.0, [0, 0]),
    ("x.std(1, correction=3)", lambda x: x.std(1, correction=3), [[3.0, 4.0]], [INF], [[0, 0]]),
    ("x.logsumexp(0) of -inf", lambda x: x.logsumexp(0), [-INF, -INF], -INF, [NAN, NAN]),
    ("x.logsumexp(0) with inf", lambda x: x.logsumexp(0), [INF, 1.0], INF, [NAN, 0]),
    ("x.logsumexp(0) large", lambda x: x.logsumexp(0), [1e4, 1e4], 1e4 + np.log(2), [0.5, 0.5]),
    ("x.norm(dim=0) zero column", lambda x: x.norm(dim=0), [[0.0, 3.0], [0.0, 4.0]], [0.0, 5.0], [[0, 0.6], [0, 0.8]]),
    ("x.norm() with inf", lambda x: x.norm(), [INF, 1.0], INF, [NAN, 0]),
    ("x.mean() of nothing", lambda x: x.mean(), [], NAN, []),
]


@pytest.mark.parametrize("call, data, value, grad",
                         [pytest.param(call, data, value, grad, id=text) for text, call, data, value, grad in EDGE_GRADIENTS])
def test_gradients_at_ties_zeros_nan_and_inf(call, data, value, grad):
    x = tg.tensor(data, dtype=tg.float64, requires_grad=True)
    out = call(x)
    out.backward(tg.ones(out.shape, dtype=tg.float64))
    np.testing.assert_allclose(to_numpy(out), value, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(x.grad), grad, rtol=1e-12)


@requires_torch
@pytest.mark.parametrize("call, data",
                         [pytest.param(call, data, id=text) for text, call, data, _, _ in EDGE_GRADIENTS])
def test_gradients_at_ties_zeros_nan_and_inf_match_torch(call, data):
    x = tg.tensor(data, dtype=tg.float64, requires_grad=True)
    xt = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, out_t = call(x), call(xt)
    out.backward(tg.ones(out.shape, dtype=tg.float64))
    out_t.backward(torch.ones_like(out_t))
    np.testing.assert_allclose(to_numpy(out), out_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(x.grad), xt.grad.numpy(), rtol=1e-12)


# --- argmax, argmin and the indices of max/min ---

@pytest.mark.parametrize("shape, dim", [((), None), ((), 0), ((7,), None), ((7,), 0), ((3, 4), None), ((3, 4), 1),
                                        ((3, 4), -2), ((2, 3, 4), 1), ((2, 1, 4), 1), ((0, 3), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("fn", ["argmax", "argmin"])
def test_argmax_argmin(fn, shape, dim, keepdim):
    data = np.random.default_rng(1).integers(0, 4, shape).astype(np.float32)  # with ties: the first wins
    out = getattr(tg, fn)(tg.tensor(data), dim=dim, keepdim=keepdim)
    axis = None if dim is None or not shape else dim
    expected = getattr(np, fn)(data, axis=axis, keepdims=keepdim)
    assert out.dtype == tg.int64 and not out.requires_grad
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.numpy(), expected)
    if torch is not None:
        assert out.tolist() == getattr(torch, fn)(torch.tensor(data), dim=dim, keepdim=keepdim).tolist()


@pytest.mark.parametrize("shape, dim", [((), 0), ((6,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 1, 4), -1),
                                        ((0, 3), 1)])
@pytest.mark.parametrize("fn", ["max", "min"])
def test_max_min_indices_are_the_first_extreme(fn, shape, dim):
    data = np.random.default_rng(2).integers(0, 3, shape).astype(np.float64)
    values, indices = getattr(tg.tensor(data), fn)(dim)
    axis = dim if shape else None
    np.testing.assert_array_equal(values.numpy(), getattr(np, fn)(data, axis=axis))
    np.testing.assert_array_equal(indices.numpy(), getattr(np, "arg" + fn)(data, axis=axis))
    assert indices.dtype == tg.int64


def test_nan_wins_max_min_argmax_argmin():
    x = tg.tensor([1.0, NAN, 3.0, NAN])
    assert np.isnan(x.max().item()) and np.isnan(x.min().item())
    assert x.argmax().item() == 1 and x.argmin().item() == 1
    assert x.max(0).indices.item() == 1 and x.min(0).indices.item() == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_wins_from_every_position_of_a_vectorised_row(dtype):
    """Rows of 37 (four vectors of eight lanes and a tail) with a nan in each place in turn,
    and one row without: max, min and their indices along both dims and over all, as numpy;
    softmax of a row with a nan is nan throughout, as in torch."""
    n = 37
    ramp = np.linspace(-3.0, 3.0, n)
    data = np.array([np.where(np.arange(n) == p, np.nan, ramp) for p in range(n)] + [ramp], dtype=dtype)
    x = tg.tensor(data)
    for fn in ("max", "min"):
        for dim in (0, 1):
            values, indices = getattr(x, fn)(dim)
            np.testing.assert_array_equal(values.numpy(), getattr(np, fn)(data, axis=dim))
            np.testing.assert_array_equal(indices.numpy(), getattr(np, "arg" + fn)(data, axis=dim))
        assert np.isnan(getattr(x, fn)().item())
        assert getattr(x, "arg" + fn)().item() == getattr(np, "arg" + fn)(data)
    expected = np.full_like(data, np.nan)
    expected[n] = np.exp(ramp - 3.0) / np.exp(ramp - 3.0).sum()
    np.testing.assert_allclose(tg.softmax(x, 1).numpy(), expected, rtol=1e-6)


def test_max_along_a_dim_returns_a_named_tuple():
    x = tg.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
    result = tg.max(x, 1)
    assert isinstance(result, tuple) and len(result) == 2
    assert type(result) is tg.return_types.max and type(x.min(dim=1)) is tg.return_types.min
    values, indices = result
    assert values is result.values and indices is result.indices and result[0] is values
    assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
    assert values.grad_fn.name() == "MaxBackward0" and not indices.requires_grad
    kept = x.max(dim=1, keepdim=True)
    assert kept.values.shape == (2, 1) and kept.indices.shape == (2, 1)
    assert "values=" in repr(result) and "indices=" in repr(result)


def test_max_and_min_of_two_tensors_are_maximum_and_minimum():
    a = tg.tensor([[1.0, 5.0], [4.0, 2.0]], requires_grad=True)
    b = tg.tensor([3.0, 3.0])
    assert tg.max(a, b).tolist() == [[3.0, 5.0], [4.0, 3.0]]
    assert a.min(b).tolist() == [[1.0, 3.0], [3.0, 2.0]]
    assert tg.max(a, b).grad_fn.name() == "MaximumBackward0"
    assert tg.min(a, other=b).grad_fn.name() == "MinimumBackward0"


# --- dtypes, node names and the forms of the arguments ---

def test_integer_and_bool_reductions_keep_torch_dtypes():
    ints = tg.tensor([[1, 2, 3], [4, 5, 6]])
    bools = ints > 2
    assert ints.sum().dtype == tg.int64 and ints.sum().item() == 21
    assert ints.sum(0).tolist() == [5, 7, 9] and ints.sum(0).dtype == tg.int64
    assert bools.sum(1).tolist() == [1, 3] and bools.sum().dtype == tg.int64
    assert ints.prod(1).tolist() == [6, 120] and bools.prod().dtype == tg.int64 and bools.prod().item() == 0
    assert ints.max().item() == 6 and ints.max().dtype == tg.int64 and ints.min(1).values.tolist() == [1, 4]
    assert bools.max().dtype == tg.bool and bools.max().item() is True
    assert ints.argmax().item() == 5 and ints.argmin(1).tolist() == [0, 0]
    assert ints.logsumexp(1).dtype == tg.float32
    np.testing.assert_allclose(ints.logsumexp(1).numpy(), np.log(np.exp([[1, 2, 3], [4, 5, 6]]).sum(1)), rtol=1e-6)
    big = tg.tensor([2**62, 1, 2**62 - 3])  # exact in int64, not in double
    assert big.sum().item() == 2**63 - 2


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_empty_reductions(dtype):
    x = tg.zeros(2, 0, dtype=getattr(tg, dtype))
    assert x.sum().item() == 0 and x.sum(1).tolist() == [0.0, 0.0]
    assert np.isnan(x.mean().item()) and all(np.isnan(x.mean(1).tolist()))
    assert x.prod().item() == 1 and x.prod(1).tolist() == [1.0, 1.0]
    assert x.norm().item() == 0 and x.logsumexp(1).tolist() == [-INF, -INF]
    assert x.sum(0).shape == (0,) and x.max(0).values.shape == (0,) and x.argmax(0).shape == (0,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert all(np.isnan(x.var(1).tolist())) and np.isnan(x.std().item())


def test_float32_sums_accumulate_accurately_along_any_dim():
    # Accumulated naively in float32, 2^21 copies of 0.1f drift by about 1%.
    n = 2**21
    expected = n * float(np.float32(0.1))
    assert abs(tg.tensor(np.full(n, 0.1, np.float32)).sum().item() - expected) < expected * 1e-6
    columns = tg.tensor(np.full((n, 2), 0.1, np.float32))
    # a kept dim innermost: rows accumulate elementwise, in double too
    np.testing.assert_allclose(columns.sum(0).numpy(), [expected, expected], rtol=1e-6)
    np.testing.assert_allclose(columns.mean(0).numpy(), [np.float32(0.1)] * 2, rtol=1e-6)
    np.testing.assert_allclose(columns.var(0).numpy(), [0.0, 0.0], atol=1e-9)


# (call, torch's grad_fn name)
NODE_NAMES = [
    (lambda x: x.sum(), "SumBackward0"), (lambda x: x.sum(1), "SumBackward1"), (lambda x: x.sum(dim=None), "SumBackward1"),
    (lambda x: x.sum((0, 1)), "SumBackward1"), (lambda x: x.mean(), "MeanBackward0"), (lambda x: x.mean(0), "MeanBackward1"),
    (lambda x: x.mean(dim=None), "MeanBackward1"), (lambda x: x.norm(), "LinalgVectorNormBackward0"),
    (lambda x: x.norm(dim=1), "LinalgVectorNormBackward0"), (lambda x: x.var(), "VarBackward0"),
    (lambda x: x.var(1), "VarBackward0"), (lambda x: x.std(0), "StdBackward0"),
    (lambda x: x.logsumexp(1), "LogsumexpBackward0"), (lambda x: x.prod(), "ProdBackward0"),
    (lambda x: x.prod(1), "ProdBackward1"), (lambda x: x.max(), "MaxBackward1"), (lambda x: x.max(1)[0], "MaxBackward0"),
    (lambda x: x.min(), "MinBackward1"), (lambda x: x.min(0)[0], "MinBackward0"),
    (lambda x: x.softmax(1), "SoftmaxBackward0"), (lambda x: x.log_softmax(0), "LogSoftmaxBackward0"),
]


@pytest.mark.parametrize("call, name", NODE_NAMES, ids=[name for _, name in NODE_NAMES])
def test_node_names_are_torch_grad_fn_names(call, name):
    x = tg.ones(2, 3, requires_grad=True)
    assert call(x).grad_fn.name() == name
    if torch is not None:
        assert call(torch.ones(2, 3, requires_grad=True)).grad_fn.name() == name


def test_argument_forms():
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4) ** 1.5
    x = tg.tensor(data)
    np.testing.assert_allclose(tg.sum(x, 1).numpy(), data.sum(1))
    np.testing.assert_allclose(x.sum(1, True).numpy(), data.sum(1, keepdims=True))
    np.testing.assert_allclose(tg.sum(x, axis=(0, 2)).numpy(), data.sum((0, 2)))
    np.testing.assert_allclose(x.sum([0, -1]).numpy(), data.sum((0, 2)))
    np.testing.assert_allclose(x.sum(np.int64(2)).numpy(), data.sum(2))
    np.testing.assert_allclose(tg.mean(x, axis=0).numpy(), data.mean(0))
    np.testing.assert_allclose(tg.norm(x, 2, 1).numpy(), np.sqrt((data**2).sum(1)))
    np.testing.assert_allclose(x.norm(p="fro", dim=(0, 1), keepdim=True).numpy(),
                               np.sqrt((data**2).sum((0, 1), keepdims=True)))
    np.testing.assert_allclose(x.var(False).item(), data.var())
    np.testing.assert_allclose(x.var(1, False).numpy(), data.var(1))
    np.testing.assert_allclose(tg.var(x, 1, True, True).numpy(), data.var(1, ddof=1, keepdims=True))
    np.testing.assert_allclose(x.std(axis=2, correction=0).numpy(), data.std(2))
    np.testing.assert_allclose(tg.std(x, unbiased=False).item(), data.std())
    np.testing.assert_allclose(tg.logsumexp(x, axis=-1).numpy(), np_logsumexp(data, (2,), False))
    np.testing.assert_allclose(tg.prod(x, 2, keepdim=True).numpy(), data.prod(2, keepdims=True))
    np.testing.assert_allclose(x.prod(axis=0).numpy(), data.prod(0))
    np.testing.assert_allclose(tg.max(x, axis=1).values.numpy(), data.max(1))
    np.testing.assert_allclose(tg.min(x, 2, True)[0].numpy(), data.min(2, keepdims=True))
    assert tg.argmax(x, axis=1).tolist() == data.argmax(1).tolist()
    assert x.argmin(keepdim=True).shape == (1, 1, 1)
    np.testing.assert_allclose(x.softmax(axis=0).numpy(), np_softmax(data, 0))
    np.testing.assert_allclose(tg.log_softmax(x, dim=-1, dtype=tg.float32).numpy(), np.log(np_softmax(data, 2)),
                               rtol=1e-5)


def test_backward_after_the_saved_input_changed_raises():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 1
    y = a.prod()
    a += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("lib_name", ["tapegrad", pytest.param("torch", marks=requires_torch)])
@pytest.mark.parametrize("values", [2.0, [1.0, 2.0, 3.0], [0.0, 2.0, 3.0], [0.0, 0.0, 3.0]], ids=str)
@pytest.mark.parametrize("dim", [None, 0])
def test_backward_after_the_product_changed_raises(lib_name, values, dim):
    """prod saves its result, which every backward rule of torch unpacks (and checks) even where
    it does not read it: 0-d, and inputs with zeros (the fuzzer found tapegrad passing here)."""
    lib = tg if lib_name == "tapegrad" else torch
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    y = x.prod() if dim is None else x.prod(dim)
    y.clamp_(0, 1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


# --- errors ---

# (op, call(module, x)): the module is tapegrad or torch.
OUT_OF_RANGE = [
    ("sum", lambda m, x: x.sum(2)), ("mean", lambda m, x: x.mean((0, -3))), ("norm", lambda m, x: x.norm(dim=2)),
    ("var", lambda m, x: x.var(2)), ("std", lambda m, x: x.std(-3)), ("logsumexp", lambda m, x: x.logsumexp(2)),
    ("prod", lambda m, x: x.prod(2)), ("max", lambda m, x: x.max(2)), ("min", lambda m, x: m.min(x, -3)),
    ("argmax", lambda m, x: x.argmax(2)), ("argmin", lambda m, x: x.argmin(-3)), ("softmax", lambda m, x: x.softmax(2)),
    ("log_softmax", lambda m, x: m.log_softmax(x, -3)),
]


@pytest.mark.parametrize("op, call", OUT_OF_RANGE, ids=[op for op, _ in OUT_OF_RANGE])
def test_dim_out_of_range_is_an_index_error_naming_the_op(op, call):
    with pytest.raises(IndexError, match=rf"^{op}\b.*(?i:dimension out of range) \(expected to be in range of \[-2, 1\]"):
        call(tg, tg.ones(2, 3))
    if torch is not None:
        with pytest.raises(IndexError, match="Dimension out of range"):
            call(torch, torch.ones(2, 3))


def test_0d_accepts_dims_0_and_minus_1_only():
    x = tg.tensor(3.0)
    assert x.sum(0).item() == 3.0 and x.max(-1).indices.item() == 0 and x.softmax(0).item() == 1.0
    with pytest.raises(IndexError, match=r"\[-1, 0\], but got 1"):
        x.sum(1)


@pytest.mark.parametrize("call", [lambda x: x.sum((0, 0)), lambda x: x.var((1, -1)), lambda x: tg.tensor(1.0).mean((0, -1))],
                         ids=["sum", "var", "mean of 0-d"])
def test_repeated_dim_is_a_runtime_error(call):
    with pytest.raises(RuntimeError, match="appears multiple times in the list of dims"):
        call(tg.ones(2, 3))


ERRORS = [
    ("max() of nothing", lambda: tg.zeros(0).max(), RuntimeError, r"^max\(\): Expected reduction dim to be specified"),
    ("min() of nothing", lambda: tg.zeros(2, 0).min(), RuntimeError, r"^min\(\): Expected reduction dim to be specified"),
    ("max over an empty dim", lambda: tg.zeros(0, 3).max(0), IndexError, r"max\(\): Expected reduction dim 0 to have non-zero"),
    ("argmin over an empty dim", lambda: tg.zeros(3, 0).argmin(-1), IndexError, r"reduction dim 1 to have non-zero"),
    ("argmax() of nothing", lambda: tg.zeros(0).argmax(), IndexError, r"argmax\(\): Expected reduction dim to be specified"),
    ("argmax of bools", lambda: (tg.ones(2) > 0).argmax(), TypeError, "does not support bool"),
    ("mean of int64", lambda: tg.arange(3).mean(1 - 1), TypeError, "mean.*int64"),
    ("var of int64", lambda: tg.arange(3).var(), TypeError, "var.*floating point.*int64"),
    ("std of bools", lambda: (tg.ones(2) > 0).std(0), TypeError, "std.*bool"),
    ("norm of int64", lambda: tg.norm(tg.arange(3), dim=0), TypeError, "norm.*int64"),
    ("softmax of int64", lambda: tg.softmax(tg.arange(3), 0), TypeError, "softmax.*int64"),
    ("softmax to int64", lambda: tg.ones(3).softmax(0, dtype=tg.int64), TypeError, "softmax.*int64"),
    ("softmax without dim", lambda: tg.softmax(tg.ones(3)), TypeError, "softmax.*dim"),
    ("log_softmax dim=None", lambda: tg.ones(3).log_softmax(None), TypeError, "log_softmax.*dim.*NoneType"),
    ("logsumexp without dim", lambda: tg.ones(3).logsumexp(), TypeError, "logsumexp.*dim"),
    ("dim of a float", lambda: tg.ones(3).sum(1.5), TypeError, r"sum\(\): dim must be an int.*float"),
    ("dim of a bool", lambda: tg.ones(3).sum(True), TypeError, "dim must be an int"),
    ("dim of a str in a tuple", lambda: tg.ones(3).mean((0, "a")), TypeError, "dim must be an int"),
    ("prod over a tuple", lambda: tg.ones(2, 3).prod((0, 1)), TypeError, "prod.*int"),
    ("max over a tuple", lambda: tg.ones(2, 3).max((0, 1)), TypeError, "max.*int"),
    ("max keepdim without dim", lambda: tg.ones(2, 3).max(keepdim=True), TypeError, "keepdim"),
    ("both dim and axis", lambda: tg.ones(2, 3).sum(dim=0, axis=1), TypeError, "both dim= and .*axis="),
    ("norm p=1", lambda: tg.ones(3).norm(1), ValueError, "only p=2"),
    ("unbiased and correction", lambda: tg.ones(3).var(unbiased=True, correction=0), TypeError, "unbiased.*correction"),
    ("max of a tensor and a number", lambda: tg.max(tg.ones(3), 2.0), TypeError, "max"),
]


@pytest.mark.parametrize("call, error, match", [pytest.param(c, e, m, id=t) for t, c, e, m in ERRORS])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
