"""tg.dot and the full reductions sum, mean and norm, as functions and as methods, alone and
composed with broadcasting arithmetic."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, requires_torch, to_numpy, torch

# (source text, tapegrad, numpy, torch)
REDUCTIONS = [
    ("tg.sum(x)", lambda x: tg.sum(x), np.sum, lambda x: torch.sum(x)),
    ("x.sum()", lambda x: x.sum(), np.sum, lambda x: x.sum()),
    ("tg.mean(x)", lambda x: tg.mean(x), np.mean, lambda x: torch.mean(x)),
    ("x.mean()", lambda x: x.mean(), np.mean, lambda x: x.mean()),
    ("tg.norm(x)", lambda x: tg.norm(x), lambda x: np.sqrt(np.sum(x * x)), lambda x: torch.norm(x)),
    ("x.norm()", lambda x: x.norm(), lambda x: np.sqrt(np.sum(x * x)), lambda x: x.norm()),
]
REDUCTION_PARAMS = [pytest.param(fn_tg, fn_np, fn_torch, id=text) for text, fn_tg, fn_np, fn_torch in REDUCTIONS]
REDUCTION_SHAPES = [(), (1,), (7,), (2, 3), (2, 1, 4)]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", REDUCTION_SHAPES, ids=str)
@pytest.mark.parametrize("fn_tg, fn_np, fn_torch", REDUCTION_PARAMS)
def test_reduction(fn_tg, fn_np, fn_torch, shape, dtype, request):
    check_op(fn_tg, fn_np, [shape], dtype, name=request.node.callspec.id)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", REDUCTION_SHAPES, ids=str)
@pytest.mark.parametrize("fn_tg, fn_np, fn_torch", REDUCTION_PARAMS)
def test_reduction_matches_torch(fn_tg, fn_np, fn_torch, shape, dtype, request):
    check_op_torch(fn_tg, fn_torch, [shape], dtype, name=request.node.callspec.id)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sum_of_empty_is_zero_with_an_empty_gradient(dtype):
    check_op(lambda x: x.sum(), np.sum, [(0, 3)], dtype)


def test_norm_gradient_at_zero_is_zero():
    """As torch: the subgradient 0, not 0/0."""
    x = tg.zeros(3, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.zeros(3))


@pytest.mark.parametrize("upstream", [float("nan"), float("inf")])
def test_norm_at_zero_passes_a_non_finite_gradient_on_as_nan(upstream):
    """As torch: the 0 at |x| == 0 multiplies the incoming gradient, so NaN and inf give NaN, not 0."""
    x = tg.zeros(2, 3, dtype=tg.float64, requires_grad=True)
    (x.norm(dim=1) * upstream).sum().backward()
    assert np.isnan(to_numpy(x.grad)).all()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [1, 5, 64])
def test_dot(n, dtype):
    check_op(tg.dot, np.dot, [(n,), (n,)], dtype, name="tg.dot")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dot_of_empty_vectors_is_zero(dtype):
    check_op(tg.dot, np.dot, [(0,), (0,)], dtype, name="tg.dot")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dot_fan_out(dtype):
    check_op(lambda x: tg.dot(x, x), lambda x: np.dot(x, x), [(6,)], dtype, name="tg.dot(x, x)")


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dot_matches_torch(dtype):
    check_op_torch(tg.dot, torch.dot, [(9,), (9,)], dtype, name="tg.dot")


# Reductions composed with broadcasting arithmetic: the gradient passes through both.
COMPOSED = [
    ("(x * y).sum()", lambda x, y: (x * y).sum(), lambda x, y: np.sum(x * y), [(3, 1), (1, 4)]),
    ("(x - y).mean()", lambda x, y: (x - y).mean(), lambda x, y: np.mean(x - y), [(2, 3, 4), (4,)]),
    ("(x / y).norm()", lambda x, y: (x / y).norm(), lambda x, y: np.sqrt(np.sum((x / y) ** 2)), [(5,), ()]),
    ("x / x.norm()", lambda x: x / x.norm(), lambda x: x / np.sqrt(np.sum(x * x)), [(4,)]),
    ("x - x.mean()", lambda x, y: (x - x.mean()) * y, lambda x, y: (x - np.mean(x)) * y, [(2, 3), (3,)]),
    ("tg.dot(x, y) * x", lambda x, y: tg.dot(x, y) * x, lambda x, y: np.dot(x, y) * x, [(4,), (4,)]),
    ("(tg.dot(x, y) - 0.5) ** 2", lambda x, y: (tg.dot(x, y) - 0.5) ** 2, lambda x, y: (np.dot(x, y) - 0.5) ** 2, [(7,), (7,)]),
    ("tg.sum(x ** 2) / tg.mean(y * y)", lambda x, y: tg.sum(x ** 2) / tg.mean(y * y),
     lambda x, y: np.sum(x ** 2) / np.mean(y * y), [(3,), (2, 2)]),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "fn_tg, fn_np, shapes", [pytest.param(fn_tg, fn_np, shapes, id=text) for text, fn_tg, fn_np, shapes in COMPOSED]
)
def test_composed_with_arithmetic(fn_tg, fn_np, shapes, dtype, request):
    check_op(fn_tg, fn_np, shapes, dtype, name=request.node.callspec.id)
