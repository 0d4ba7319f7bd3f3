"""Elementwise math: exp, log, sqrt, abs, sin, cos, tanh, sigmoid, relu, clamp, maximum,
minimum and where. Values against numpy, gradients against central differences and both
against torch; torch's rules at kinks, ties, boundaries, infinities and nan; dtypes of
integer inputs; saved tensors; errors."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, requires_torch, to_numpy, torch


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (numpy function, input domain): logs and roots on positive inputs, abs and relu
# away from their kink at 0 (the kink itself is checked against torch below).
UNARY = {
    "exp": (np.exp, "real"),
    "log": (np.log, "positive"),
    "sqrt": (np.sqrt, "positive"),
    "abs": (np.abs, "nonzero"),
    "sin": (np.sin, "real"),
    "cos": (np.cos, "real"),
    "tanh": (np.tanh, "real"),
    "sigmoid": (np_sigmoid, "real"),
    "relu": (lambda x: np.maximum(x, 0), "nonzero"),
}
UNARY_NAMES = list(UNARY)
UNARY_SHAPES = [(), (1,), (5,), (0, 3), (2, 1, 4), (2, 3, 4)]
GRAD_FN_NAMES = {
    "exp": "ExpBackward0", "log": "LogBackward0", "sqrt": "SqrtBackward0", "abs": "AbsBackward0",
    "sin": "SinBackward0", "cos": "CosBackward0", "tanh": "TanhBackward0",
    "sigmoid": "SigmoidBackward0", "relu": "ReluBackward0",
}


def tg_function(name):
    return getattr(tg, name)


def tg_method(name):
    return lambda t: getattr(t, name)()


def torch_function(name):
    return getattr(torch, name)


# --- unary ops ---

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_function(name, shape, dtype):
    fn_np, domain = UNARY[name]
    check_op(tg_function(name), fn_np, [shape], dtype, domains=domain, name=f"tg.{name}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_method(name, dtype):
    fn_np, domain = UNARY[name]
    check_op(tg_method(name), fn_np, [(3, 4)], dtype, domains=domain, name=f"Tensor.{name}")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (0, 3), (2, 1, 4)], ids=str)
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_matches_torch(name, shape, dtype):
    check_op_torch(tg_function(name), torch_function(name), [shape], dtype, domains=UNARY[name][1], name=name)


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_grad_fn_name(name):
    x = tg.tensor([0.5, 1.5], requires_grad=True)
    assert tg_function(name)(x).grad_fn.name() == GRAD_FN_NAMES[name]
    assert tg_method(name)(x).grad_fn.name() == GRAD_FN_NAMES[name]


@requires_torch
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_grad_fn_name_is_torchs(name):
    x = torch.tensor([0.5, 1.5], requires_grad=True)
    assert torch_function(name)(x).grad_fn.name() == GRAD_FN_NAMES[name]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda m: lambda x: m.exp(x) * x, id="exp(x) * x"),
        pytest.param(lambda m: lambda x: m.sin(x) * m.sin(x) + m.cos(x) * m.cos(x), id="sin(x)^2 + cos(x)^2"),
        pytest.param(lambda m: lambda x: m.tanh(m.sigmoid(x)) * x, id="tanh(sigmoid(x)) * x"),
        pytest.param(lambda m: lambda x: m.log(m.sqrt(x)) + m.sqrt(x), id="log(sqrt(x)) + sqrt(x)"),
        pytest.param(lambda m: lambda x: m.relu(x) - m.abs(x), id="relu(x) - abs(x)"),
    ],
)
def test_unary_fan_out(fn, dtype, request):
    """The input used several times: every path's contribution reaches its gradient."""
    np_ops = type("np_ops", (), {
        "exp": staticmethod(np.exp), "sin": staticmethod(np.sin), "cos": staticmethod(np.cos),
        "tanh": staticmethod(np.tanh), "sigmoid": staticmethod(np_sigmoid), "log": staticmethod(np.log),
        "sqrt": staticmethod(np.sqrt), "abs": staticmethod(np.abs), "relu": staticmethod(lambda x: np.maximum(x, 0)),
    })
    text = request.node.callspec.id.split("-")[0]
    domain = "positive" if "log" in text else "nonzero"
    check_op(fn(tg), fn(np_ops), [(2, 3)], dtype, domains=domain, name=text)


# Where torch's rules are conventions, or the arithmetic is on the edge: kinks, 0, +-0,
# infinities, nan, and magnitudes that overflow a naive exp.
SPECIAL_VALUES = [float("nan"), float("-inf"), float("inf"), 0.0, -0.0, 1.0, -1.0, 1000.0, -1000.0, 100.0, -100.0,
                  30.0, -30.0]


def assert_same_floats(actual, expected, what, rtol, atol=0):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: nan at {actual} vs {expected}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    finite_zero = (expected == 0)
    assert np.array_equal(np.signbit(actual[finite_zero]), np.signbit(expected[finite_zero])), (
        f"{what}: signs of zeros differ: {actual} vs {expected}")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_special_values_match_torch(name, dtype):
    """Values and gradients at nan, +-inf, +-0 and large magnitudes are torch's (log(0) = -inf,
    sqrt's gradient inf at 0, abs and relu gradient 0 at 0, no overflow in sigmoid and tanh)."""
    rtol = 1e-6 if dtype == "float32" else 1e-14
    values = np.array(SPECIAL_VALUES, dtype=dtype)
    weights = np.linspace(0.5, 1.5, len(SPECIAL_VALUES)).astype(dtype)
    x = tg.tensor(values, requires_grad=True)
    y = tg_function(name)(x)
    y.backward(tg.tensor(weights))
    x_torch = torch.tensor(values, requires_grad=True)
    y_torch = torch_function(name)(x_torch)
    y_torch.backward(torch.tensor(weights))
    # atol: sigmoid(-100) in float32 is a denormal here, where torch's 1 / (1 + e^100) flushes to 0
    tiny = np.finfo(dtype).tiny
    assert_same_floats(to_numpy(y), y_torch.detach().numpy(), f"{name} value", rtol, tiny)
    assert_same_floats(to_numpy(x.grad), x_torch.grad.numpy(), f"{name} gradient", rtol, tiny)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sigmoid_and_tanh_saturate_without_nan(dtype):
    x = tg.tensor(np.array([-1e4, -1000.0, -100.0, 100.0, 1000.0, 1e4], dtype=dtype), requires_grad=True)
    s = tg.sigmoid(x)
    t = tg.tanh(x)
    (s + t).backward(tg.ones(6, dtype=getattr(tg, dtype)))
    assert not np.isnan(to_numpy(s)).any() and not np.isnan(to_numpy(t)).any()
    np.testing.assert_array_equal(to_numpy(t), [-1, -1, -1, 1, 1, 1])
    np.testing.assert_array_equal(to_numpy(s)[[0, 1, 3, 4, 5]], [0, 0, 1, 1, 1])
    # sigmoid(-100) = e^-100 / (1 + e^-100), to the dtype's precision (float32 flushes it to 0 or a denormal)
    np.testing.assert_allclose(to_numpy(s)[2], np.exp(-100.0), rtol=1e-6 if dtype == "float64" else 1)
    np.testing.assert_array_equal(to_numpy(x.grad)[[0, 1, 4, 5]], [0, 0, 0, 0])
    assert not np.isnan(to_numpy(x.grad)).any()


def test_documented_conventions_at_zero():
    """log(0) = -inf; sqrt's gradient at 0 is inf; abs and relu pass no gradient at 0."""
    x = tg.tensor([0.0], requires_grad=True)
    assert tg.log(x).item() == float("-inf")
    for fn, expected in [(tg.sqrt, float("inf")), (tg.abs, 0.0), (tg.relu, 0.0), (tg.log, float("inf"))]:
        x.grad = None
        fn(x).backward(tg.ones(1))
        assert x.grad.item() == expected, fn.__name__


FLOAT_RESULT_OPS = ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid"]


@pytest.mark.parametrize("name", FLOAT_RESULT_OPS)
def test_int64_input_gives_float32(name):
    ints = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
    out = tg_function(name)(tg.tensor(ints))
    assert out.dtype == tg.float32
    assert not out.requires_grad
    with np.errstate(divide="ignore"):
        expected = UNARY[name][0](ints.astype(np.float32))
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["abs", "relu"])
def test_abs_and_relu_keep_int64(name):
    ints = np.array([[-3, 0, 2], [5, -1, 7]], dtype=np.int64)
    out = tg_function(name)(tg.tensor(ints))
    assert out.dtype == tg.int64
    np.testing.assert_array_equal(out.numpy(), UNARY[name][0](ints))
    assert tg_method(name)(tg.tensor(ints)).dtype == tg.int64


@pytest.mark.parametrize("name", FLOAT_RESULT_OPS)
def test_bool_input_gives_float32(name):
    out = tg_function(name)(tg.tensor([True, False]))
    assert out.dtype == tg.float32
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(to_numpy(out), UNARY[name][0](np.array([1.0, 0.0], dtype=np.float32)), rtol=1e-6)


@pytest.mark.parametrize("name", ["abs", "relu"])
def test_abs_and_relu_refuse_bool(name):
    with pytest.raises(RuntimeError, match=f"{name}: bool"):
        tg_function(name)(tg.tensor([True, False]))


@requires_torch
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_integer_result_dtypes_match_torch(name):
    ints = [[-3, 0, 2], [5, -1, 7]]
    out = tg_function(name)(tg.tensor(ints))
    expected = torch_function(name)(torch.tensor(ints))
    assert out.dtype.name == str(expected.dtype).removeprefix("torch."), name
    np.testing.assert_allclose(to_numpy(out), expected.double().numpy(), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_rejects_a_number(name):
    with pytest.raises(TypeError):
        tg_function(name)(1.5)


@requires_torch
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_in_place_edit_of_what_backward_reads_raises_as_in_torch(name):
    """A backward reading the result fails after the result is edited in place, one reading
    the input after the input is: the same tensors torch saves."""
    for edited in ("input", "output"):
        outcomes = []
        for lib in (tg, torch):
            leaf = lib.tensor([0.5, 1.5], requires_grad=True)
            x = leaf * 1.0  # a non-leaf, so editing it in place is allowed
            y = getattr(lib, name)(x)
            with lib.no_grad():
                (x if edited == "input" else y).mul_(1.0)
            try:
                y.backward(lib.ones(2))
                outcomes.append("ok")
            except RuntimeError as error:
                assert lib is torch or "modified by an inplace operation" in str(error)
                outcomes.append("raised")
        assert outcomes[0] == outcomes[1], f"{name}, {edited} edited: tapegrad {outcomes[0]}, torch {outcomes[1]}"


def test_second_backward_through_a_freed_unary_raises():
    x = tg.tensor([0.5, 1.5], requires_grad=True)
    y = tg.exp(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


# --- clamp ---

# (call as text, tapegrad/torch call, numpy equivalent)
CLAMP_NUMBER_CASES = [
    ("clamp(x, -0.5, 0.5)", lambda m, x: m.clamp(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    ("clamp(x, min=0.2)", lambda m, x: m.clamp(x, min=0.2), lambda x: np.maximum(x, 0.2)),
    ("clamp(x, max=-0.3)", lambda m, x: m.clamp(x, max=-0.3), lambda x: np.minimum(x, -0.3)),
    ("clamp(x, -1, 1)", lambda m, x: m.clamp(x, -1, 1), lambda x: np.clip(x, -1, 1)),
    ("clamp(x, 0.5, -0.5)", lambda m, x: m.clamp(x, 0.5, -0.5), lambda x: np.full_like(x, -0.5)),
    ("x.clamp(-0.5, 0.5)", lambda m, x: x.clamp(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    ("x.clamp(min=0.0)", lambda m, x: x.clamp(min=0.0), lambda x: np.maximum(x, 0.0)),
    ("x.clamp(max=0.0)", lambda m, x: x.clamp(max=0.0), lambda x: np.minimum(x, 0.0)),
    ("clamp(input=x, min=-0.1, max=0.1)", lambda m, x: m.clamp(input=x, min=-0.1, max=0.1), lambda x: np.clip(x, -0.1, 0.1)),
]
CLAMP_NUMBER_PARAMS = [pytest.param(fn, fn_np, id=text) for text, fn, fn_np in CLAMP_NUMBER_CASES]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(), (7,), (0, 2), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("fn, fn_np", CLAMP_NUMBER_PARAMS)
def test_clamp_number_bounds(fn, fn_np, shape, dtype, request):
    check_op(lambda x: fn(tg, x), fn_np, [shape], dtype, name=request.node.callspec.id)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn, fn_np", CLAMP_NUMBER_PARAMS)
def test_clamp_number_bounds_match_torch(fn, fn_np, dtype, request):
    check_op_torch(lambda x: fn(tg, x), lambda x: fn(torch, x), [(3, 4)], dtype, name=request.node.callspec.id)


CLAMP_EDGE_VALUES = [float("nan"), float("-inf"), float("inf"), -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "bounds",
    [dict(min=-1.0, max=1.0), dict(min=0.0), dict(max=0.5), dict(min=1.0, max=-1.0), dict(min=0.5, max=0.5),
     dict(min=float("nan")), dict(max=float("nan")), dict(min=float("-inf"), max=float("inf"))],
    ids=str,
)
def test_clamp_at_bounds_and_nan_matches_torch(bounds, dtype):
    """Inputs exactly at a bound get the gradient (torch's rule); nan stays nan with no gradient;
    min > max gives max everywhere with no gradient."""
    values = np.array(CLAMP_EDGE_VALUES, dtype=dtype)
    weights = np.linspace(0.5, 1.5, len(values)).astype(dtype)
    x = tg.tensor(values, requires_grad=True)
    y = tg.clamp(x, **bounds)
    y.backward(tg.tensor(weights))
    x_torch = torch.tensor(values, requires_grad=True)
    y_torch = torch.clamp(x_torch, **bounds)
    y_torch.backward(torch.tensor(weights))
    assert y.grad_fn.name() == y_torch.grad_fn.name() == "ClampBackward1"
    assert_same_floats(to_numpy(y), y_torch.detach().numpy(), f"clamp{bounds} value", 0)
    assert_same_floats(to_numpy(x.grad), x_torch.grad.numpy(), f"clamp{bounds} gradient", 0)


@pytest.mark.parametrize("lib", [tg, pytest.param(torch, marks=requires_torch)], ids=["tapegrad", "torch"])
def test_clamp_takes_a_0d_tensor_without_grad_as_a_number(lib):
    """torch reads a 0-d tensor that requires no grad as a number when the other bound is one."""
    x = lib.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = lib.clamp(x, min=lib.tensor(0.0), max=1.0)
    assert y.grad_fn.name() == "ClampBackward1"
    y.backward(lib.ones(3))
    np.testing.assert_array_equal(to_numpy(y) if lib is tg else y.detach().numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(np.asarray(x.grad.numpy()), [0, 1, 0])
    assert lib.clamp(lib.tensor([-3, 5]), min=lib.tensor(0), max=2).dtype == lib.int64
    assert lib.clamp(lib.tensor([-3, 5]), min=lib.tensor(0.5), max=2).dtype == lib.float32


def test_clamp_boundaries_pass_the_gradient():
    x = tg.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    tg.clamp(x, -1, 1).backward(tg.ones(5))
    np.testing.assert_array_equal(to_numpy(x.grad), [0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "make, expected_dtype, expected",
    [
        (lambda: tg.clamp(tg.tensor([-3, 0, 5]), 0, 2), "int64", [0, 0, 2]),
        (lambda: tg.clamp(tg.tensor([-3, 0, 5]), min=-1), "int64", [-1, 0, 5]),
        (lambda: tg.tensor([-3, 0, 5]).clamp(max=1), "int64", [-3, 0, 1]),
        (lambda: tg.clamp(tg.tensor([-3, 0, 5]), min=0.5), "float32", [0.5, 0.5, 5.0]),
        (lambda: tg.clamp(tg.tensor([-3, 0, 5]), 0, 1.5), "float32", [0.0, 0.0, 1.5]),
        (lambda: tg.clamp(tg.tensor([-3, 0, 5]), min=1.0), "float32", [1.0, 1.0, 5.0]),
        (lambda: tg.clamp(tg.tensor([True, False]), min=0), "int64", [1, 0]),
        (lambda: tg.clamp(tg.tensor([1.0, 3.0], dtype=tg.float64), max=2), "float64", [1.0, 2.0]),
        (lambda: tg.clamp(tg.tensor([1.0, 3.0]), np.float64(2.5)), "float32", [2.5, 3.0]),
        (lambda: tg.clamp(tg.tensor([-3, 5]), np.int64(0), np.int64(1)), "int64", [0, 1]),
    ],
)
def test_clamp_result_dtype(make, expected_dtype, expected):
    out = make()
    assert out.dtype == getattr(tg, expected_dtype)
    np.testing.assert_array_equal(to_numpy(out), expected)


@requires_torch
@pytest.mark.parametrize(
    "data, bounds",
    [([-3, 0, 5], dict(min=0, max=2)), ([-3, 0, 5], dict(min=0.5)), ([-3, 0, 5], dict(min=1.0)),
     ([True, False], dict(min=0)), ([-3, 0, 5], dict(min=0, max=2.5))],
    ids=str,
)
def test_clamp_result_dtype_matches_torch(data, bounds):
    out = tg.clamp(tg.tensor(data), **bounds)
    expected = torch.clamp(torch.tensor(data), **bounds)
    assert out.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(to_numpy(out), expected.double().numpy())


# Tensor bounds broadcast with the input and get gradients where they are the result.
CLAMP_TENSOR_SHAPES = [
    pytest.param([(3,), (3,), (3,)], id="same"),
    pytest.param([(2, 3), (3,), (2, 1)], id="broadcast"),
    pytest.param([(3,), (2, 3), ()], id="bound-widens-the-result"),
    pytest.param([(), (), ()], id="0d"),
    pytest.param([(2, 1, 3), (4, 1), (1,)], id="3d"),
    pytest.param([(0, 3), (3,), (1, 3)], id="size0"),
]


def np_clamp(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", CLAMP_TENSOR_SHAPES)
def test_clamp_tensor_bounds(shapes, dtype):
    check_op(lambda x, lo, hi: tg.clamp(x, lo, hi), np_clamp, shapes, dtype, name="clamp(x, min_t, max_t)")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_clamp_one_tensor_bound(dtype):
    check_op(lambda x, lo: tg.clamp(x, min=lo), np.maximum, [(2, 3), (3,)], dtype, name="clamp(x, min=t)")
    check_op(lambda x, hi: x.clamp(max=hi), np.minimum, [(2, 3), (2, 1)], dtype, name="x.clamp(max=t)")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", [
    # torch's backward fails when a bound widens the result past the input's shape (its
    # in-place where() cannot broadcast), so those shapes are checked against numpy only
    shapes for shapes in CLAMP_TENSOR_SHAPES if shapes.id not in ("bound-widens-the-result", "3d")
])
def test_clamp_tensor_bounds_match_torch(shapes, dtype):
    check_op_torch(lambda x, lo, hi: tg.clamp(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi), shapes, dtype,
                   name="clamp(x, min_t, max_t)")


@requires_torch
@pytest.mark.parametrize("which", ["both", "min", "max"])
def test_clamp_tensor_bounds_at_ties_and_nan_match_torch(which):
    """Every combination of x, min, max from a few values with ties, infinities and nan:
    values and all three gradients as torch (ClampBackward0)."""
    levels = [float("nan"), float("-inf"), -1.0, 0.0, 1.0, float("inf")]
    grid = np.array(np.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1)
    weights = np.linspace(0.5, 1.5, grid.shape[1])
    results = []
    for lib in (tg, torch):
        x, lo, hi = (lib.tensor(row, requires_grad=True) for row in grid)
        bounds = {"both": dict(min=lo, max=hi), "min": dict(min=lo), "max": dict(max=hi)}[which]
        y = lib.clamp(x, **bounds)
        y.backward(lib.tensor(weights))
        grads = [t.grad for t in (x, lo, hi)]
        results.append((y.grad_fn.name(), to_numpy(y) if lib is tg else y.detach().numpy(),
                        [None if g is None else np.asarray(g.numpy(), dtype=np.float64) for g in grads]))
    (name, value, grads), (torch_name, torch_value, torch_grads) = results
    assert name == torch_name == "ClampBackward0"
    assert_same_floats(value, torch_value, "clamp value", 0)
    for index, (grad, torch_grad) in enumerate(zip(grads, torch_grads)):
        if torch_grad is None:
            assert grad is None or not grad.any(), f"input {index}: torch gives no gradient"
        else:
            assert_same_floats(grad, torch_grad, f"clamp gradient of input {index}", 0)


def test_clamp_errors():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="clamp: at least one of 'min' or 'max'"):
        tg.clamp(x)
    with pytest.raises(RuntimeError, match="clamp: at least one of 'min' or 'max'"):
        x.clamp()
    with pytest.raises(TypeError, match="clamp\\(\\): min and max must both be tensors or both be numbers"):
        tg.clamp(x, min=tg.zeros(2), max=1.0)
    with pytest.raises(TypeError, match="clamp\\(\\): min and max must both be tensors or both be numbers"):
        tg.clamp(x, min=tg.tensor(0.0, requires_grad=True), max=1.0)
    with pytest.raises(TypeError, match="clamp\\(\\): argument 'min' must be a number, a Tensor or None, not str"):
        tg.clamp(x, min="0")
    with pytest.raises(TypeError, match="argument 'max'"):
        x.clamp(max=[1.0])
    with pytest.raises(RuntimeError, match=r"clamp.*\(2,\).*\(3,\)"):
        tg.clamp(x, min=tg.zeros(3))
    with pytest.raises(RuntimeError, match="clamp: bool"):
        tg.clamp(tg.tensor([True]), min=tg.tensor([False]))


@requires_torch
def test_clamp_error_types_match_torch():
    for lib in (tg, torch):
        x = lib.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError):
            lib.clamp(x)
        with pytest.raises(TypeError):
            lib.clamp(x, min=lib.zeros(2), max=1.0)
        with pytest.raises(TypeError):
            lib.clamp(x, min=lib.tensor(0.0, requires_grad=True), max=1.0)
        with pytest.raises(TypeError):
            lib.clamp(x, min="0")
        with pytest.raises(RuntimeError):
            lib.clamp(x, min=lib.zeros(3))


# --- maximum, minimum ---

EXTREMA = [
    pytest.param("maximum", np.maximum, id="maximum"),
    pytest.param("minimum", np.minimum, id="minimum"),
]
SHAPE_PAIRS = [
    pytest.param([(3,), (3,)], id="same"),
    pytest.param([(3, 1), (1, 4)], id="3x1-1x4"),
    pytest.param([(2, 3, 4), (4,)], id="3d-trailing"),
    pytest.param([(2, 1, 4), (3, 1)], id="3d-both-expand"),
    pytest.param([(), (5,)], id="0d-vector"),
    pytest.param([(), ()], id="0d-0d"),
    pytest.param([(1,), (3,)], id="size1"),
    pytest.param([(0, 3), (3,)], id="size0"),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("name, fn_np", EXTREMA)
def test_extremum(name, fn_np, shapes, dtype):
    check_op(getattr(tg, name), fn_np, shapes, dtype, name=f"tg.{name}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name, fn_np", EXTREMA)
def test_extremum_method_and_keywords(name, fn_np, dtype):
    check_op(lambda a, b: getattr(a, name)(b), fn_np, [(2, 3), (3,)], dtype, name=f"Tensor.{name}")
    check_op(lambda a, b: getattr(tg, name)(input=a, other=b), fn_np, [(3,), (2, 1)], dtype, name=f"tg.{name}(input=, other=)")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("name, fn_np", EXTREMA)
def test_extremum_matches_torch(name, fn_np, shapes, dtype):
    check_op_torch(getattr(tg, name), getattr(torch, name), shapes, dtype, name=name)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name, fn_np", EXTREMA)
def test_extremum_fan_out(name, fn_np, dtype):
    """maximum(x, x) ties everywhere: the halves add back up to the whole gradient."""
    check_op(lambda x: getattr(tg, name)(x, x), lambda x: fn_np(x, x), [(2, 3)], dtype, name=f"{name}(x, x)")
    check_op(lambda x: getattr(tg, name)(x, -x) * x, lambda x: fn_np(x, -x) * x, [(2, 3)], dtype, domains="nonzero",
             name=f"{name}(x, -x) * x")


def test_extremum_ties_split_the_gradient():
    a = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tg.tensor([1.0, 1.0, 4.0], requires_grad=True)
    tg.maximum(a, b).backward(tg.tensor([2.0, 2.0, 2.0]))
    np.testing.assert_array_equal(to_numpy(a.grad), [1, 2, 0])
    np.testing.assert_array_equal(to_numpy(b.grad), [1, 0, 2])
    a.grad = b.grad = None
    tg.minimum(a, b).backward(tg.tensor([2.0, 2.0, 2.0]))
    np.testing.assert_array_equal(to_numpy(a.grad), [1, 0, 2])
    np.testing.assert_array_equal(to_numpy(b.grad), [1, 2, 0])


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_extremum_ties_infinities_and_nan_match_torch(name, dtype):
    levels = [float("nan"), float("-inf"), -1.0, 0.0, -0.0, 1.0, float("inf")]
    grid = np.array(np.meshgrid(levels, levels, indexing="ij"), dtype=dtype).reshape(2, -1)
    weights = np.linspace(0.5, 1.5, grid.shape[1]).astype(dtype)
    results = []
    for lib in (tg, torch):
        a, b = (lib.tensor(row, requires_grad=True) for row in grid)
        y = getattr(lib, name)(a, b)
        y.backward(lib.tensor(weights))
        results.append((y.grad_fn.name(), np.asarray(y.detach().numpy(), dtype=np.float64),
                        np.asarray(a.grad.numpy(), dtype=np.float64), np.asarray(b.grad.numpy(), dtype=np.float64)))
    ours, theirs = results
    assert ours[0] == theirs[0] == {"maximum": "MaximumBackward0", "minimum": "MinimumBackward0"}[name]
    np.testing.assert_array_equal(ours[1], theirs[1])  # nan == nan here; 0 == -0
    np.testing.assert_array_equal(ours[2], theirs[2], err_msg="gradient of input")
    np.testing.assert_array_equal(ours[3], theirs[3], err_msg="gradient of other")


@pytest.mark.parametrize(
    "make, expected_dtype, expected",
    [
        (lambda: tg.maximum(tg.tensor([1, 5]), tg.tensor([3, 2])), "int64", [3, 5]),
        (lambda: tg.minimum(tg.tensor([1, 5]), tg.tensor([3.5, 2.5])), "float32", [1.0, 2.5]),
        (lambda: tg.maximum(tg.tensor([1.0, 5.0]), tg.tensor([3.0, 2.0], dtype=tg.float64)), "float64", [3.0, 5.0]),
        (lambda: tg.maximum(tg.tensor([True, False]), tg.tensor([False, False])), "bool", [True, False]),
        (lambda: tg.maximum(tg.tensor([1.0, 5.0]), tg.tensor(3.0, dtype=tg.float64)), "float32", [3.0, 5.0]),
        (lambda: tg.minimum(tg.tensor([1, 5]), tg.tensor(2.5)), "float32", [1.0, 2.5]),
    ],
)
def test_extremum_result_dtype(make, expected_dtype, expected):
    out = make()
    assert out.dtype == getattr(tg, expected_dtype)
    np.testing.assert_array_equal(to_numpy(out) if expected_dtype != "bool" else out.numpy(), expected)


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")], ids="-".join)
@pytest.mark.parametrize("name, fn_np", EXTREMA)
def test_extremum_mixed_float_dtypes(name, fn_np, dtypes):
    """float64 result; each operand's gradient in its own dtype."""
    check_op(getattr(tg, name), fn_np, [(3, 1), (4,)], dtypes, name=f"{name} {dtypes}")


def test_extremum_with_int64_operand_gets_no_gradient():
    ints = tg.tensor([[0], [2]])
    check_op(lambda x: tg.maximum(ints, x), lambda x: np.maximum(np.array([[0], [2]]), x), [(3,)], "float64",
             name="maximum(int64, float)")
    assert ints.grad is None


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_extremum_errors(name):
    fn = getattr(tg, name)
    with pytest.raises(RuntimeError, match=rf"{name}.*\(2, 3\).*\(2,\)"):
        fn(tg.zeros(2, 3), tg.zeros(2))
    with pytest.raises(TypeError):
        fn(tg.zeros(2), 0.0)  # as torch: the other operand must be a tensor
    with pytest.raises(TypeError):
        getattr(tg.zeros(2), name)("a")


@requires_torch
def test_extremum_error_types_match_torch():
    for lib in (tg, torch):
        with pytest.raises(TypeError):
            lib.maximum(lib.zeros(2), 0.0)
        with pytest.raises(RuntimeError):
            lib.minimum(lib.zeros(2, 3), lib.zeros(2))


# --- where ---

WHERE_SHAPES = [
    pytest.param((4,), [(4,), (4,)], id="same"),
    pytest.param((3, 1), [(4,), ()], id="condition-broadcasts"),
    pytest.param((4,), [(3, 1), (1, 4)], id="operands-broadcast"),
    pytest.param((2, 1, 4), [(3, 1), (4,)], id="3d"),
    pytest.param((), [(), ()], id="0d"),
    pytest.param((0, 3), [(3,), (1, 3)], id="size0"),
    pytest.param((1,), [(2, 3), (3,)], id="size1-condition"),
]


def random_condition(shape, seed=1):
    return np.random.default_rng(seed).random(shape) < 0.5


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("condition_shape, shapes", WHERE_SHAPES)
def test_where(condition_shape, shapes, dtype):
    mask = random_condition(condition_shape)
    condition = tg.tensor(mask)
    assert condition.dtype == tg.bool
    check_op(lambda a, b: tg.where(condition, a, b), lambda a, b: np.where(mask, a, b), shapes, dtype, name="where")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("condition_shape, shapes", WHERE_SHAPES)
def test_where_matches_torch(condition_shape, shapes, dtype):
    mask = random_condition(condition_shape)
    condition, torch_condition = tg.tensor(mask), torch.tensor(mask)
    check_op_torch(lambda a, b: tg.where(condition, a, b), lambda a, b: torch.where(torch_condition, a, b), shapes,
                   dtype, name="where")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_where_forms_and_fan_out(dtype):
    mask = random_condition((2, 3))
    condition = tg.tensor(mask)
    check_op(lambda x: tg.where(condition, x, 0.5), lambda x: np.where(mask, x, 0.5), [(2, 3)], dtype, name="where(c, x, 0.5)")
    check_op(lambda x: tg.where(condition, -1, x), lambda x: np.where(mask, -1, x), [(3,)], dtype, name="where(c, -1, x)")
    check_op(lambda x: x.where(condition, -x), lambda x: np.where(mask, x, -x), [(2, 3)], dtype, name="x.where(c, -x)")
    check_op(lambda x: tg.where(x > 0, x, x * x), lambda x: np.where(x > 0, x, x * x), [(2, 3)], dtype,
             name="where(x > 0, x, x * x)")
    check_op(lambda x, y: tg.where(condition=condition, input=x, other=y), lambda x, y: np.where(mask, x, y),
             [(2, 3), (1,)], dtype, name="where(condition=, input=, other=)")


def test_where_gradient_goes_to_the_chosen_operand():
    a = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tg.tensor(10.0, requires_grad=True)
    tg.where(tg.tensor([True, False, True]), a, b).backward(tg.tensor([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(to_numpy(a.grad), [1, 0, 4])
    assert b.grad.shape == () and b.grad.item() == 2.0


def test_where_names_its_node():
    a = tg.tensor([1.0], requires_grad=True)
    assert tg.where(tg.tensor([True]), a, 0.0).grad_fn.name() == "WhereBackward0"


@pytest.mark.parametrize(
    "make, expected_dtype",
    [
        (lambda c: tg.where(c, 1.0, 0.0), "float32"),
        (lambda c: tg.where(c, 1, 0), "int64"),
        (lambda c: tg.where(c, 1.0, 0), "float32"),
        (lambda c: tg.where(c, True, False), "bool"),
        (lambda c: tg.where(c, tg.tensor([1, 2]), 0.5), "float32"),
        (lambda c: tg.where(c, tg.tensor([1, 2]), 7), "int64"),
        (lambda c: tg.where(c, tg.ones(2, dtype=tg.float64), 0.5), "float64"),
        (lambda c: tg.where(c, tg.ones(2), tg.tensor(0.0, dtype=tg.float64)), "float32"),
        (lambda c: tg.where(c, tg.ones(2), tg.zeros(2, dtype=tg.float64)), "float64"),
        (lambda c: tg.where(c, c, c), "bool"),
    ],
)
def test_where_result_dtype(make, expected_dtype):
    condition = tg.tensor([True, False])
    assert make(condition).dtype == getattr(tg, expected_dtype)


@requires_torch
def test_where_result_dtypes_and_values_match_torch():
    cases = [
        lambda lib, c: lib.where(c, 1.0, 0.0),
        lambda lib, c: lib.where(c, 1, 0),
        lambda lib, c: lib.where(c, 1.0, 0),
        lambda lib, c: lib.where(c, True, False),
        lambda lib, c: lib.where(c, lib.tensor([1, 2]), 0.5),
        lambda lib, c: lib.where(c, lib.tensor([1, 2]), 7),
        lambda lib, c: lib.where(c, lib.ones(2, dtype=lib.float64), 0.5),
        lambda lib, c: lib.where(c, lib.ones(2), lib.tensor(0.0, dtype=lib.float64)),
        lambda lib, c: lib.where(c, c, c),
    ]
    for index, case in enumerate(cases):
        ours = case(tg, tg.tensor([True, False]))
        theirs = case(torch, torch.tensor([True, False]))
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"case {index}"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"case {index}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_where_passes_infinities_and_nan_through_untouched(dtype):
    """The unselected operand's nan or inf leaks into neither the value nor the gradient."""
    a = tg.tensor(np.array([float("nan"), 1.0, float("inf")], dtype=dtype), requires_grad=True)
    b = tg.tensor(np.array([2.0, float("-inf"), 3.0], dtype=dtype), requires_grad=True)
    y = tg.where(tg.tensor([False, True, False]), a, b)
    y.backward(tg.ones(3, dtype=getattr(tg, dtype)))
    np.testing.assert_array_equal(to_numpy(y), [2.0, 1.0, 3.0])
    np.testing.assert_array_equal(to_numpy(a.grad), [0, 1, 0])
    np.testing.assert_array_equal(to_numpy(b.grad), [1, 0, 1])


def test_where_errors():
    x = tg.zeros(3)
    with pytest.raises(RuntimeError, match="where: expected condition to be a boolean tensor, but got a tensor with dtype float32"):
        tg.where(x, x, x)
    with pytest.raises(RuntimeError, match="int64"):
        tg.where(tg.tensor([1, 0, 1]), x, 0.0)
    with pytest.raises(RuntimeError, match=r"where.*\(3,\).*\(2,\)"):
        tg.where(x > 0, x, tg.zeros(2))
    with pytest.raises(TypeError, match="where\\(\\): argument 'other' must be a Tensor or a number, not str"):
        tg.where(x > 0, x, "0")
    with pytest.raises(TypeError, match="argument 'input'"):
        tg.where(x > 0, [1.0], x)
    with pytest.raises(TypeError):
        tg.where(True, x, x)  # as torch: the condition must be a tensor


@requires_torch
def test_where_error_types_match_torch():
    for lib in (tg, torch):
        x = lib.zeros(3)
        with pytest.raises(RuntimeError):
            lib.where(x, x, x)
        with pytest.raises(RuntimeError):
            lib.where(x > 0, x, lib.zeros(2))
        with pytest.raises(TypeError):
            lib.where(x > 0, x, "0")
        with pytest.raises(TypeError):
            lib.where(True, x, x)


# --- a composite: the ops together in one graph ---

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_composite_graph(dtype):
    def fn(lib):
        def composite(x, w):
            hidden = lib.relu(x * w) + lib.sigmoid(x) * lib.tanh(w)
            limited = lib.clamp(hidden, -1.5, 1.5)
            return lib.where(x > 0, lib.maximum(limited, w), lib.exp(lib.minimum(x, w)) + lib.abs(w))
        return composite

    np_lib = type("np_lib", (), {
        "relu": staticmethod(lambda v: np.maximum(v, 0)), "sigmoid": staticmethod(np_sigmoid),
        "tanh": staticmethod(np.tanh), "clamp": staticmethod(np.clip), "where": staticmethod(np.where),
        "maximum": staticmethod(np.maximum), "minimum": staticmethod(np.minimum), "exp": staticmethod(np.exp),
        "abs": staticmethod(np.abs),
    })
    check_op(fn(tg), fn(np_lib), [(3, 4), (4,)], dtype, domains=("real", "nonzero"), name="composite")
    if torch is not None:
        check_op_torch(fn(tg), fn(torch), [(3, 4), (4,)], dtype, domains=("real", "nonzero"), name="composite")
