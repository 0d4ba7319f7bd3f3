"""Arithmetic operators (+ - * / ** and unary minus): values, gradients reduced back to each
operand's shape, Python scalars on either side, dtype promotion, and comparisons."""
import operator

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, requires_torch, to_numpy

# (operator, domain of each operand): divisors stay away from 0, bases of real powers positive.
BINARY_OPS = [
    pytest.param(operator.add, ("real", "real"), id="add"),
    pytest.param(operator.sub, ("real", "real"), id="sub"),
    pytest.param(operator.mul, ("real", "real"), id="mul"),
    pytest.param(operator.truediv, ("real", "nonzero"), id="div"),
    pytest.param(operator.pow, ("positive", "real"), id="pow"),
]

# Shape pairs that break broadcasting and gradient un-broadcasting.
SHAPE_PAIRS = [
    pytest.param([(3,), (3,)], id="same"),
    pytest.param([(3, 1), (1, 4)], id="3x1-1x4"),
    pytest.param([(2, 3, 4), (4,)], id="3d-trailing"),
    pytest.param([(4,), (2, 3, 4)], id="trailing-3d"),
    pytest.param([(2, 1, 4), (3, 1)], id="3d-both-expand"),
    pytest.param([(), (5,)], id="0d-vector"),
    pytest.param([(5,), ()], id="vector-0d"),
    pytest.param([(), ()], id="0d-0d"),
    pytest.param([(1,), (3,)], id="size1-vector"),
    pytest.param([(2, 3), (1, 1)], id="2d-size1"),
    pytest.param([(0, 3), (3,)], id="size0"),
    pytest.param([(3,), (0, 1)], id="size0-expand"),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("op, domains", BINARY_OPS)
def test_binary_op(op, domains, shapes, dtype):
    check_op(op, op, shapes, dtype, domains=domains, name=op.__name__)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("op, domains", BINARY_OPS)
def test_binary_op_matches_torch(op, domains, shapes, dtype):
    check_op_torch(op, op, shapes, dtype, domains=domains, name=op.__name__)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("op, domains", BINARY_OPS)
def test_binary_op_fan_out(op, domains, shape, dtype):
    """The same tensor as both operands: both contributions reach its gradient."""
    domain = "positive" if "positive" in domains else "nonzero" if "nonzero" in domains else "real"

    def same_tensor_twice(a):
        return op(a, a)

    check_op(same_tensor_twice, same_tensor_twice, [shape], dtype, domains=domain,
             name=f"{op.__name__}(a, a)")


# Reduced to a number, the result passes the ops a gradient that only broadcasts to their
# output (sum's: one value; mean's: one value over n), which an elementwise rule reads as it is.
REDUCTIONS = {"sum": lambda out: out.sum(), "mean": lambda out: out.mean()}


def reduced(op, reduction):
    return lambda *operands: REDUCTIONS[reduction](op(*operands))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("op, domains", BINARY_OPS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_op_under_a_reduction(reduction, op, domains, shapes, dtype):
    if reduction == "mean" and 0 in np.broadcast_shapes(*shapes):
        pytest.skip("the mean of an empty tensor is nan, and so is every difference quotient")
    check_op(reduced(op, reduction), reduced(op, reduction), shapes, dtype, domains=domains, name=op.__name__)


# (source text, function, domain of the tensor operand)
SCALAR_AND_UNARY_CASES = [
    ("x + 2.5", lambda x: x + 2.5, "real"),
    ("2.5 + x", lambda x: 2.5 + x, "real"),
    ("x + 2", lambda x: x + 2, "real"),
    ("x - 3", lambda x: x - 3, "real"),
    ("3 - x", lambda x: 3 - x, "real"),
    ("x - 0.5", lambda x: x - 0.5, "real"),
    ("x * -1.5", lambda x: x * -1.5, "real"),
    ("-1.5 * x", lambda x: -1.5 * x, "real"),
    ("2 * x", lambda x: 2 * x, "real"),
    ("x / 4.0", lambda x: x / 4.0, "real"),
    ("x / 3", lambda x: x / 3, "real"),
    ("4.0 / x", lambda x: 4.0 / x, "nonzero"),
    ("1 / x", lambda x: 1 / x, "nonzero"),
    ("x ** 2", lambda x: x ** 2, "real"),
    ("x ** 3", lambda x: x ** 3, "real"),
    ("x ** 1", lambda x: x ** 1, "real"),
    ("x ** 0", lambda x: x ** 0, "real"),
    ("x ** 0.5", lambda x: x ** 0.5, "positive"),
    ("x ** -1.5", lambda x: x ** -1.5, "positive"),
    ("2.0 ** x", lambda x: 2.0 ** x, "real"),
    ("-x", lambda x: -x, "real"),
    ("-(-x)", lambda x: -(-x), "real"),
    ("x - x", lambda x: x - x, "real"),
    ("x * x * x", lambda x: x * x * x, "real"),
    ("x / x", lambda x: x / x, "nonzero"),
    ("(x + 2) * (x - 1) / (x * x + 1)", lambda x: (x + 2) * (x - 1) / (x * x + 1), "real"),
    ("-x ** 2 + 3 * x - 1 / (1 + x * x)", lambda x: -x ** 2 + 3 * x - 1 / (1 + x * x), "real"),
]
SCALAR_AND_UNARY_PARAMS = [pytest.param(fn, domain, id=text) for text, fn, domain in SCALAR_AND_UNARY_CASES]
UNARY_SHAPES = [(), (1,), (5,), (0, 3), (2, 1, 4)]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("fn, domain", SCALAR_AND_UNARY_PARAMS)
def test_scalar_and_unary(fn, domain, shape, dtype, request):
    """A Python scalar on either side keeps the tensor's dtype (check_op checks it)."""
    check_op(fn, fn, [shape], dtype, domains=domain, name=request.node.callspec.id)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("fn, domain", SCALAR_AND_UNARY_PARAMS)
def test_scalar_and_unary_match_torch(fn, domain, shape, dtype, request):
    check_op_torch(fn, fn, [shape], dtype, domains=domain, name=request.node.callspec.id)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 1, 4)], ids=str)
@pytest.mark.parametrize("fn, domain", SCALAR_AND_UNARY_PARAMS)
def test_scalar_and_unary_under_a_sum(fn, domain, shape, dtype, request):
    summed = reduced(fn, "sum")
    check_op(summed, summed, [shape], dtype, domains=domain, name=request.node.callspec.id)


# Graphs of several operands where one gradient feeds several nodes: a backward rule that
# wrote into the gradient it received would corrupt its siblings'.
MULTI_INPUT_CASES = [
    ("a * c + b", lambda a, b, c: a * c + b, ("real", "real", "real"), [(2, 3), (3,), (2, 1)]),
    ("(a + b) * (a - b)", lambda a, b, c: (a + b) * (a - b) + c, ("real", "real", "real"), [(3,), (2, 3), ()]),
    ("a * b + a / c - b ** 2", lambda a, b, c: a * b + a / c - b ** 2, ("real", "real", "nonzero"), [(4,), (4,), (1,)]),
    ("(a - b) / (c * c + 1) * a", lambda a, b, c: (a - b) / (c * c + 1) * a, ("real", "real", "real"), [(2, 1, 3), (3,), (2, 1)]),
    ("c ** a + -b * c", lambda a, b, c: c ** a + -b * c, ("real", "real", "positive"), [(3,), (3,), (3,)]),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "fn, domains, shapes",
    [pytest.param(fn, domains, shapes, id=text) for text, fn, domains, shapes in MULTI_INPUT_CASES],
)
def test_multi_input_graphs(fn, domains, shapes, dtype, request):
    check_op(fn, fn, shapes, dtype, domains=domains, name=request.node.callspec.id)
    summed = reduced(fn, "sum")
    check_op(summed, summed, shapes, dtype, domains=domains, name=request.node.callspec.id + " summed")


MIXED_SHAPES = [
    pytest.param([(3,), (3,)], id="same"),
    pytest.param([(3, 1), (4,)], id="broadcast"),
    pytest.param([(), ()], id="0d-0d"),
]


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")], ids="-".join)
@pytest.mark.parametrize("shapes", MIXED_SHAPES)
@pytest.mark.parametrize("op, domains", BINARY_OPS)
def test_mixed_float_dtypes_promote_to_float64(op, domains, shapes, dtypes):
    """float32 with float64 gives float64; each operand's gradient keeps its own dtype."""
    check_op(op, op, shapes, dtypes, domains=domains, name=f"{op.__name__} {dtypes}")


@requires_torch
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")], ids="-".join)
@pytest.mark.parametrize("op, domains", BINARY_OPS)
def test_mixed_float_dtypes_match_torch(op, domains, dtypes):
    check_op_torch(op, op, [(3, 1), (4,)], dtypes, domains=domains, name=f"{op.__name__} {dtypes}")


INT_FLOAT_OPS = [
    pytest.param(lambda i, x: i + x, "real", id="int+float"),
    pytest.param(lambda i, x: x - i, "real", id="float-int"),
    pytest.param(lambda i, x: i * x, "real", id="int*float"),
    pytest.param(lambda i, x: i / x, "nonzero", id="int/float"),
    pytest.param(lambda i, x: x / i, "real", id="float/int"),
    pytest.param(lambda i, x: x ** i, "real", id="float**int"),
    pytest.param(lambda i, x: i ** x, "real", id="int**float"),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn, domain", INT_FLOAT_OPS)
def test_int64_with_float_promotes_to_the_float_dtype(fn, domain, dtype):
    """An int64 tensor (no gradient) combined with a float tensor: result in the float dtype,
    gradient to the float operand only."""
    ints = np.array([[1], [2], [3]], dtype=np.int64)
    int_tensor = tg.tensor([[1], [2], [3]])
    assert int_tensor.dtype == tg.int64

    check_op(lambda x: fn(int_tensor, x), lambda x: fn(ints, x), [(4,)], dtype,
             domains=domain, name="int64 with float")
    assert int_tensor.grad is None
    assert not int_tensor.requires_grad


@pytest.mark.parametrize(
    "make, expected",
    [
        pytest.param(lambda: tg.tensor([1, 2]) * 2.5, "float32", id="int64*python-float"),
        pytest.param(lambda: 2.5 * tg.tensor([1, 2]), "float32", id="python-float*int64"),
        pytest.param(lambda: tg.tensor([1, 2]) + tg.ones(2), "float32", id="int64+float32"),
        pytest.param(lambda: tg.tensor([1, 2]) + tg.ones(2, dtype=tg.float64), "float64", id="int64+float64"),
        pytest.param(lambda: tg.ones(2) + tg.ones(2, dtype=tg.float64), "float64", id="float32+float64"),
        pytest.param(lambda: tg.ones(2) * 2.5, "float32", id="float32*python-float"),
        pytest.param(lambda: tg.ones(2) + 1, "float32", id="float32+python-int"),
        pytest.param(lambda: tg.ones(2, dtype=tg.float64) * 2, "float64", id="float64*python-int"),
        pytest.param(lambda: tg.ones(2, dtype=tg.float64) / 3.0, "float64", id="float64/python-float"),
        pytest.param(lambda: tg.tensor(2.0, dtype=tg.float64) * tg.tensor(1.0), "float64", id="0d-float64*0d-float32"),
    ],
)
def test_result_dtype(make, expected):
    assert make().dtype == getattr(tg, expected)


@pytest.mark.parametrize(
    "make, expected",
    [
        pytest.param(lambda: tg.tensor(2.0, dtype=tg.float64) * tg.ones(2), "float32", id="0d-float64*float32"),
        pytest.param(lambda: tg.ones(2) + tg.tensor(2.0, dtype=tg.float64), "float32", id="float32+0d-float64"),
        pytest.param(lambda: tg.tensor(2.0) * tg.ones(2, dtype=tg.float64), "float64", id="0d-float32*float64"),
    ],
)
def test_zero_dim_tensor_does_not_promote_a_dimensioned_one(make, expected):
    """torch's rule: a 0-d operand counts like a scalar, so a float64 0-d tensor with a
    float32 vector gives float32."""
    assert make().dtype == getattr(tg, expected)


def test_python_scalar_computes_in_the_tensor_dtype():
    """1/3 as a float32 tensor op rounds to float32, not float64."""
    third = tg.ones(1) / 3.0
    assert to_numpy(third)[0] == np.float32(1.0) / np.float32(3.0)
    assert to_numpy(tg.ones(1, dtype=tg.float64) / 3.0)[0] == 1.0 / 3.0


COMPARISONS = [
    pytest.param(operator.eq, id="=="),
    pytest.param(operator.ne, id="!="),
    pytest.param(operator.lt, id="<"),
    pytest.param(operator.le, id="<="),
    pytest.param(operator.gt, id=">"),
    pytest.param(operator.ge, id=">="),
]


def _small_integers(shape, seed):
    """Values in {-1, 0, 1} so that equal elements are common."""
    return np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float64)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("op", COMPARISONS)
def test_comparison_of_tensors(op, shapes, dtype):
    a, b = (_small_integers(shape, seed) for seed, shape in enumerate(shapes))
    x = tg.tensor(a.astype(dtype), requires_grad=True)
    y = tg.tensor(b.astype(dtype))
    result = op(x, y)
    expected = op(a, b)
    assert result.dtype == tg.bool
    assert result.shape == expected.shape
    assert not result.requires_grad
    assert result.grad_fn is None
    np.testing.assert_array_equal(np.asarray(result), expected)


@pytest.mark.parametrize("scalar", [0, 0.5, -1.0], ids=str)
@pytest.mark.parametrize("op", COMPARISONS)
def test_comparison_with_python_scalar_on_either_side(op, scalar):
    a = _small_integers((2, 3), seed=0)
    x = tg.tensor(a.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(op(x, scalar)), op(a, scalar))
    np.testing.assert_array_equal(np.asarray(op(scalar, x)), op(scalar, a))
    assert op(scalar, x).dtype == tg.bool


def test_comparison_of_float32_with_float64():
    x = tg.tensor([0.5, 1.0, 2.0])
    y = tg.tensor([0.5, 2.0, 1.0], dtype=tg.float64)
    np.testing.assert_array_equal(np.asarray(x < y), [False, True, False])
    np.testing.assert_array_equal(np.asarray(x == y), [True, False, False])


def test_comparison_of_int64_with_float():
    i = tg.arange(4)
    np.testing.assert_array_equal(np.asarray(i == tg.tensor([0.0, 1.5, 2.0, 2.5])), [True, False, True, False])
    np.testing.assert_array_equal(np.asarray(i >= 1.5), [False, False, True, True])


def test_all_item_and_bool_of_comparisons():
    x = tg.arange(4.0)
    all_equal = (x == tg.tensor([0.0, 1.0, 2.0, 3.0])).all()
    assert all_equal.dtype == tg.bool
    assert all_equal.shape == ()
    assert all_equal.item() is True
    assert bool(all_equal) is True

    one_differs = (x == tg.tensor([0.0, 1.0, 2.5, 3.0])).all()
    assert one_differs.item() is False
    assert bool(one_differs) is False
    assert bool(x.sum() > 5) is True
    assert bool(x.sum() < 5) is False
    assert (x.sum() == 6).item() is True


def test_all_of_empty_comparison_is_true():
    empty = tg.zeros(0)
    assert (empty == empty).all().item() is True


def test_item_returns_python_numbers():
    assert tg.tensor(2.5).item() == 2.5
    assert type(tg.tensor(2.5).item()) is float
    assert type(tg.tensor(2.5, dtype=tg.float64).item()) is float
    assert type(tg.tensor(3).item()) is int
    assert tg.tensor(3).item() == 3
    assert tg.ones(1, 1).item() == 1.0
