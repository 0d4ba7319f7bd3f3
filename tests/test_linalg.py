"""dot, matmul (@), mm, outer and the fused nn.functional ops: values against numpy,
gradients against finite differences in float64, and both against torch when installed."""
import re

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F
from gradcheck import FLOAT_DTYPES, TOLERANCES, check_op, check_op_torch, requires_torch, torch

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),        # mm
    ((4,), (4, 5)),          # vector @ matrix
    ((3, 4), (4,)),          # mv
    ((4,), (4,)),            # dot
    ((2, 3, 4), (4, 5)),     # batch @ matrix
    ((2, 1, 3, 4), (5, 4, 2)),  # broadcast batch dims
    ((4,), (2, 4, 3)),       # vector @ batch
    ((0, 3), (3, 2)),        # empty rows
    ((3, 0), (0, 2)),        # empty inner dim: zeros
    ((1, 1), (1, 1)),
    ((1, 5), (5, 3)),        # one row: GEMV, forward and both gradients
    ((4, 5), (5, 1)),        # one column: GEMV
    ((4, 1), (1, 3)),        # inner dim 1: an outer product
    ((2, 1, 5), (5, 3)),     # batched single rows
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, dtype):
    check_op(lambda a, b: a @ b, np.matmul, list(shapes), dtype, name="matmul")


@requires_torch
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_against_torch(shapes):
    check_op_torch(tg.matmul, torch.matmul, list(shapes), "float64", name="matmul")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_mm_outer_dot(dtype):
    check_op(tg.mm, np.matmul, [(2, 3), (3, 4)], dtype, name="mm")
    check_op(tg.outer, np.outer, [(3,), (4,)], dtype, name="outer")
    check_op(tg.dot, np.dot, [(5,), (5,)], dtype, name="dot")


@pytest.mark.parametrize("shapes", [((1, 5), (5, 3)), ((4, 5), (5, 1)), ((4, 1), (1, 3)), ((4, 5), (5, 3))], ids=str)
def test_matmul_gradients_add_into_existing_grads(shapes):
    # From the second backward on, the product's gradients are added into .grad in place.
    rng = np.random.default_rng(0)
    a_np, b_np, g_np = (rng.standard_normal(s) for s in (*shapes, (shapes[0][0], shapes[1][1])))
    a, b = (tg.tensor(v, requires_grad=True) for v in (a_np, b_np))
    for passes in (1, 2, 3):
        (a @ b).backward(tg.tensor(g_np))
        np.testing.assert_allclose(a.grad.numpy(), passes * g_np @ b_np.T, rtol=1e-12)
        np.testing.assert_allclose(b.grad.numpy(), passes * a_np.T @ g_np, rtol=1e-12)


def test_single_row_product_ignores_what_a_reused_buffer_held():
    for _ in range(3):
        garbage = tg.full((1, 3), float("nan"))  # freed to the pool; the product may get its buffer
        del garbage
        out = tg.ones(1, 5) @ tg.ones(5, 3)
        np.testing.assert_array_equal(out.numpy(), np.full((1, 3), 5.0, np.float32))


def test_matmul_fan_out():
    check_op(lambda a: a @ a, lambda a: a @ a, [(3, 3)], "float64", name="a @ a")


@pytest.mark.parametrize(
    "shapes, error",
    [(((3, 4), (5, 2)), RuntimeError), (((), (3,)), RuntimeError), (((3,), (4,)), RuntimeError)],
    ids=["inner mismatch", "0-d", "dot size"],
)
def test_matmul_errors_name_the_shapes(shapes, error):
    a, b = (tg.zeros(*s) for s in shapes)
    with pytest.raises(error) as caught:
        a @ b
    if shapes[0] == (3, 4):
        assert "(3, 4)" in str(caught.value) and "(5, 2)" in str(caught.value)


def test_mixed_dtypes_are_an_error_as_in_torch():
    with pytest.raises(RuntimeError):
        tg.zeros(2, 2) @ tg.zeros(2, 2, dtype=tg.float64)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape", [(5, 4), (4,), (2, 3, 4), (0, 4)], ids=str)
def test_linear(x_shape, dtype):
    check_op(F.linear, lambda x, w, b: x @ w.T + b, [x_shape, (3, 4), (3,)], dtype, name="linear")
    check_op(lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [x_shape, (3, 4)], dtype, name="linear, no bias")


# torch adds a bias one of two ways, so which biases linear takes depends on the input's and
# the bias's shapes. (input shape, bias shape) for a (3, 4) weight: the output is the
# input's rows times 3 outputs.
# Through addmm: a 2-D input, or a bias with exactly one dim of size other than 1. The bias
# must have the input's dtype and broadcast to the output's rows (rows, 3).
LINEAR_ADDMM_BIASES = [((5, 4), ()), ((4,), (1, 3)), ((2, 3, 4), (1, 3)), ((2, 3, 4), (6, 1))]
# Added to the output in place: any other bias. It must broadcast to the output without
# growing it, and is cast to the output's dtype.
LINEAR_ADDED_BIASES = [((4,), ()), ((2, 3, 4), ()), ((2, 3, 4), (1, 1)), ((2, 3, 4), (3, 3)), ((2, 1, 3, 4), (2, 1, 1, 3))]


@requires_torch
@pytest.mark.parametrize("x_shape, bias_shape", LINEAR_ADDMM_BIASES + LINEAR_ADDED_BIASES, ids=str)
def test_linear_bias_shapes_against_torch(x_shape, bias_shape):
    check_op_torch(F.linear, torch.nn.functional.linear, [x_shape, (3, 4), bias_shape], name="linear")


@requires_torch
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")], ids=str)
@pytest.mark.parametrize("x_shape, bias_shape", LINEAR_ADDED_BIASES, ids=str)
def test_linear_casts_a_bias_of_another_dtype_as_torch(x_shape, bias_shape, dtypes):
    """The output has the input's dtype and the bias's gradient the bias's."""
    x_dtype, bias_dtype = dtypes
    check_op_torch(F.linear, torch.nn.functional.linear, [x_shape, (3, 4), bias_shape], [x_dtype, x_dtype, bias_dtype],
                   value_tol=TOLERANCES["float32"]["value"], grad_tol=TOLERANCES["float32"]["grad"], name="linear")


@requires_torch
@pytest.mark.parametrize("x_shape, bias_shape", LINEAR_ADDMM_BIASES + [((4,), (3,)), ((2, 3, 4), (3,))], ids=str)
def test_linear_refuses_a_bias_of_another_dtype_where_torch_does(x_shape, bias_shape):
    x, w = tg.zeros(*x_shape), tg.zeros(3, 4)
    bias = tg.zeros(*bias_shape, dtype=tg.float64)
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.zeros(x_shape), torch.zeros(3, 4), torch.zeros(bias_shape, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"linear: expected a bias of the input's dtype float32, got float64"):
        F.linear(x, w, bias)


@requires_torch
@pytest.mark.parametrize("x_shape, bias_shape", [((2, 3, 4), (1, 1, 3)), ((2, 3, 4), (2, 1)), ((4,), (1, 1)),
                                                 ((2, 3, 4), (2, 3, 3, 1)), ((2, 1, 3, 4), (2, 1, 3))], ids=str)
def test_linear_refuses_a_bias_that_torch_refuses(x_shape, bias_shape):
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.zeros(x_shape), torch.zeros(3, 4), torch.zeros(bias_shape))
    with pytest.raises(RuntimeError, match=rf"linear: .*{re.escape(str(bias_shape))}"):
        F.linear(tg.zeros(*x_shape), tg.zeros(3, 4), tg.zeros(*bias_shape))


# A 1-D weight is one output's row: the output drops that dim (x @ weight). torch adds a bias
# to it only outside addmm, which needs a 2-D weight: (input shape, bias shape or None).
LINEAR_1D_WEIGHT_CASES = [((4,), None), ((5, 4), None), ((2, 3, 4), None), ((0, 4), None), ((2, 0, 4), None),
                          ((4,), ()), ((2, 3, 4), ()), ((2, 3, 4), (1, 1)), ((2, 3, 4), (2, 3)), ((2, 0, 4), ())]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, bias_shape", LINEAR_1D_WEIGHT_CASES, ids=str)
def test_linear_with_a_1d_weight(x_shape, bias_shape, dtype):
    if bias_shape is None:
        check_op(F.linear, lambda x, w: x @ w, [x_shape, (4,)], dtype, name="linear, 1-D weight")
    else:
        check_op(F.linear, lambda x, w, b: x @ w + b, [x_shape, (4,), bias_shape], dtype, name="linear, 1-D weight")


@requires_torch
@pytest.mark.parametrize("x_shape, bias_shape", LINEAR_1D_WEIGHT_CASES, ids=str)
def test_linear_with_a_1d_weight_against_torch(x_shape, bias_shape):
    shapes = [x_shape, (4,)] + ([] if bias_shape is None else [bias_shape])
    check_op_torch(F.linear, torch.nn.functional.linear, shapes, name="linear, 1-D weight")


@requires_torch
@pytest.mark.parametrize("x_shape, bias_shape", [((5, 4), ()), ((2, 3, 4), (3,)), ((4,), (1,)), ((2, 3, 4), (1, 3))],
                         ids=str)
def test_linear_with_a_1d_weight_refuses_a_bias_for_addmm_as_torch(x_shape, bias_shape):
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.zeros(x_shape), torch.zeros(4), torch.zeros(bias_shape))
    with pytest.raises(RuntimeError, match=r"added through addmm, which needs a 2-D weight, got \(4,\)"):
        F.linear(tg.zeros(*x_shape), tg.zeros(4), tg.zeros(*bias_shape))


@pytest.mark.parametrize("lib_name", ["tapegrad", pytest.param("torch", marks=requires_torch)])
@pytest.mark.parametrize("x_shape, weight_shape", [((3,), (4, 3)), ((2, 3), (4, 3)), ((1,), (1,)), ((2, 2, 3), (3,))],
                         ids=str)
@pytest.mark.parametrize("requiring_grad", ["bias", "weight", "input"])
def test_linear_saves_only_what_the_gradients_wanted_need(lib_name, x_shape, weight_shape, requiring_grad):
    """As torch's: the input is saved only for the weight's gradient and the weight only for the
    input's, so that with only the bias requiring grad a second backward runs and an in-place
    change of the input is no error (the fuzzer found tapegrad raising for both)."""
    lib = tg if lib_name == "tapegrad" else torch
    x = lib.tensor(np.linspace(-1, 1, int(np.prod(x_shape))).reshape(x_shape), requires_grad=requiring_grad == "input")
    weight = lib.tensor(np.linspace(0.5, 2, int(np.prod(weight_shape))).reshape(weight_shape),
                        requires_grad=requiring_grad == "weight")
    bias = lib.tensor(0.25, dtype=lib.float64, requires_grad=requiring_grad == "bias")
    out = F.linear(x, weight, bias) if lib is tg else torch.nn.functional.linear(x, weight, bias)
    out.sum().backward()
    if requiring_grad == "bias":
        x.add_(1)
        out.sum().backward()
        assert bias.grad.item() == 2 * out.numel()  # d(sum)/db, twice
    else:
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            out.sum().backward()


def log_softmax_np(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(reduction):
    target = np.array([0, 3, 1, 3, 2])
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(
        lambda x: F.cross_entropy(x, tg.tensor(target), reduction=reduction),
        lambda x: reduce(-log_softmax_np(x)[np.arange(5), target]),
        [(5, 4)], "float64", name=f"cross_entropy {reduction}",
    )


def test_cross_entropy_is_stable_for_huge_logits():
    loss = F.cross_entropy(tg.tensor([[1e4, -1e4, 0.0]], requires_grad=True), tg.tensor([1]))
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(2e4)


def test_cross_entropy_target_out_of_range_is_an_index_error():
    with pytest.raises(IndexError):
        F.cross_entropy(tg.zeros(2, 3), tg.tensor([0, 3]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: reduce((a - b) ** 2),
             [(4, 3), (4, 3)], "float64", name=f"mse_loss {reduction}")


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("shapes", [((3,), ()), ((), (3,)), ((), ())], ids=str)
def test_mse_loss_of_two_float_dtypes_is_the_wider_even_with_a_0d_operand(shapes, dtypes):
    """torch promotes the two dtypes as they are, unlike an elementwise op, where a 0-d
    operand's dtype gives way to a dimensioned one's (the fuzzer found float32 here)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape, dtype in zip(shapes, dtypes)]
    a, b = (tg.tensor(array, requires_grad=True) for array in arrays)
    loss = F.mse_loss(a, b)
    assert loss.dtype == tg.float64
    np.testing.assert_allclose(loss.item(), np.mean((arrays[0].astype(np.float64) - arrays[1]) ** 2), rtol=1e-6)
    loss.backward()
    assert (a.grad.dtype, b.grad.dtype) == (a.dtype, b.dtype)
