"""Shape ops: the views that share the buffer (reshape, view, flatten, squeeze, unsqueeze),
the copies that reorder or repeat elements (transpose, permute, T, mT, t, expand), cat and
stack. Values against numpy, gradients against central differences, both against torch when
it is installed; grad_fn names, buffer sharing and errors as torch has them."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, grad_fn_names_test, requires_torch, to_numpy, torch

# (id, op written against a library `lib` (tg or torch) and its tensors, the same op in
# numpy, input shapes). Shapes cover 0-d, size-0 and size-1 dims and 3-D.
CASES = [
    ("reshape", lambda lib, a: a.reshape(3, 4), lambda a: a.reshape(3, 4), [(2, 6)]),
    ("reshape-infer", lambda lib, a: a.reshape(-1, 2), lambda a: a.reshape(-1, 2), [(2, 3, 2)]),
    ("reshape-tuple", lambda lib, a: a.reshape((4, -1)), lambda a: a.reshape(4, -1), [(2, 3, 2)]),
    ("reshape-keyword", lambda lib, a: a.reshape(shape=(6,)), lambda a: a.reshape(6), [(2, 3)]),
    ("reshape-0d-to-1x1", lambda lib, a: a.reshape(1, 1), lambda a: a.reshape(1, 1), [()]),
    ("reshape-to-0d", lambda lib, a: a.reshape(()), lambda a: a.reshape(()), [(1, 1)]),
    ("reshape-size0", lambda lib, a: a.reshape(3, 0, 2), lambda a: a.reshape(3, 0, 2), [(0, 3, 2)]),
    ("lib.reshape", lambda lib, a: lib.reshape(a, (3, -1)), lambda a: a.reshape(3, -1), [(2, 3)]),
    ("view", lambda lib, a: a.view(6, 1), lambda a: a.reshape(6, 1), [(2, 3)]),
    ("view-list", lambda lib, a: a.view([3, 2]), lambda a: a.reshape(3, 2), [(2, 3)]),
    ("view_as", lambda lib, a, b: a.view_as(b) * b, lambda a, b: a.reshape(b.shape) * b, [(6,), (2, 3)]),
    ("reshape_as", lambda lib, a, b: a.reshape_as(b) + b, lambda a, b: a.reshape(b.shape) + b, [(2, 3), (3, 2)]),
    ("flatten", lambda lib, a: a.flatten(), lambda a: a.reshape(-1), [(2, 3, 4)]),
    ("flatten-start", lambda lib, a: a.flatten(1), lambda a: a.reshape(2, 12), [(2, 3, 4)]),
    ("flatten-range", lambda lib, a: a.flatten(0, 1), lambda a: a.reshape(6, 4), [(2, 3, 4)]),
    ("flatten-negative", lambda lib, a: a.flatten(start_dim=-2, end_dim=-1), lambda a: a.reshape(2, 12), [(2, 3, 4)]),
    ("flatten-0d", lambda lib, a: a.flatten(), lambda a: a.reshape(1), [()]),
    ("flatten-size0", lambda lib, a: a.flatten(), lambda a: a.reshape(-1), [(2, 0, 3)]),
    ("lib.flatten", lambda lib, a: lib.flatten(a, 1), lambda a: a.reshape(2, 12), [(2, 3, 4)]),
    ("squeeze", lambda lib, a: a.squeeze(), lambda a: np.squeeze(a), [(1, 3, 1, 2)]),
    ("squeeze-dim", lambda lib, a: a.squeeze(0), lambda a: np.squeeze(a, 0), [(1, 3, 1, 2)]),
    ("squeeze-dim-not-1", lambda lib, a: a.squeeze(1), lambda a: a, [(1, 3, 1, 2)]),
    ("squeeze-dims", lambda lib, a: a.squeeze((0, 2)), lambda a: np.squeeze(a, (0, 2)), [(1, 3, 1, 2)]),
    ("squeeze-negative", lambda lib, a: a.squeeze(-1), lambda a: np.squeeze(a, -1), [(2, 1)]),
    ("squeeze-0d", lambda lib, a: a.squeeze(), lambda a: a, [()]),
    ("squeeze-size0", lambda lib, a: a.squeeze(), lambda a: np.squeeze(a), [(1, 0)]),
    ("lib.squeeze", lambda lib, a: lib.squeeze(a, 1), lambda a: np.squeeze(a, 1), [(2, 1, 3)]),
    ("unsqueeze", lambda lib, a: a.unsqueeze(0), lambda a: a[None], [(2, 3)]),
    ("unsqueeze-middle", lambda lib, a: a.unsqueeze(1), lambda a: a[:, None], [(2, 3)]),
    ("unsqueeze-last", lambda lib, a: a.unsqueeze(-1), lambda a: a[..., None], [(2, 3)]),
    ("unsqueeze-0d", lambda lib, a: a.unsqueeze(0), lambda a: a.reshape(1), [()]),
    ("lib.unsqueeze", lambda lib, a: lib.unsqueeze(a, 2), lambda a: a[:, :, None], [(2, 3)]),
    ("transpose", lambda lib, a: a.transpose(0, 1), lambda a: a.T, [(2, 3)]),
    ("transpose-3d", lambda lib, a: a.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2), [(2, 3, 4)]),
    ("transpose-negative", lambda lib, a: a.transpose(-1, -2), lambda a: np.swapaxes(a, -1, -2), [(2, 3, 4)]),
    ("transpose-same-dim", lambda lib, a: a.transpose(1, 1), lambda a: a, [(2, 3)]),
    ("transpose-0d", lambda lib, a: a.transpose(0, -1), lambda a: a, [()]),
    ("transpose-size0", lambda lib, a: a.transpose(0, 1), lambda a: a.T, [(0, 3)]),
    ("transpose-size1", lambda lib, a: a.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2), [(1, 3, 1)]),
    ("lib.transpose", lambda lib, a: lib.transpose(a, 1, 0), lambda a: a.T, [(2, 3)]),
    ("permute", lambda lib, a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    ("permute-tuple", lambda lib, a: a.permute((1, 0)), lambda a: a.T, [(2, 3)]),
    ("permute-negative", lambda lib, a: a.permute(-1, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    ("permute-4d", lambda lib, a: a.permute(3, 1, 0, 2), lambda a: a.transpose(3, 1, 0, 2), [(2, 1, 3, 2)]),
    ("permute-identity", lambda lib, a: a.permute(0, 1), lambda a: a, [(2, 3)]),
    ("permute-0d", lambda lib, a: a.permute(()), lambda a: a, [()]),
    ("lib.permute", lambda lib, a: lib.permute(a, (1, 2, 0)), lambda a: a.transpose(1, 2, 0), [(2, 3, 4)]),
    ("T", lambda lib, a: a.T, lambda a: a.T, [(2, 3)]),
    ("mT", lambda lib, a: a.mT, lambda a: np.swapaxes(a, -1, -2), [(2, 3, 4)]),
    ("t", lambda lib, a: a.t(), lambda a: a.T, [(2, 3)]),
    ("t-1d", lambda lib, a: a.t(), lambda a: a, [(3,)]),
    ("lib.t", lambda lib, a: lib.t(a), lambda a: a.T, [(3, 2)]),
    ("expand", lambda lib, a: a.expand(2, 3), lambda a: np.broadcast_to(a, (2, 3)), [(3,)]),
    ("expand-keep", lambda lib, a: a.expand(2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), [(1, 3, 1)]),
    ("expand-new-dims", lambda lib, a: a.expand(4, 2, 3), lambda a: np.broadcast_to(a, (4, 2, 3)), [(2, 3)]),
    ("expand-tuple", lambda lib, a: a.expand((3, 2)), lambda a: np.broadcast_to(a, (3, 2)), [(3, 1)]),
    ("expand-same", lambda lib, a: a.expand(2, 3), lambda a: a, [(2, 3)]),
    ("expand-0d", lambda lib, a: a.expand(3), lambda a: np.broadcast_to(a, (3,)), [()]),
    ("expand-to-0", lambda lib, a: a.expand(0, 3), lambda a: np.broadcast_to(a, (0, 3)), [(1, 3)]),
    ("expand_as", lambda lib, a, b: a.expand_as(b) * b, lambda a, b: a * b, [(3, 1), (3, 4)]),
    ("cat", lambda lib, a, b: lib.cat([a, b]), lambda a, b: np.concatenate([a, b]), [(2, 3), (1, 3)]),
    ("cat-dim1", lambda lib, a, b: lib.cat((a, b), 1), lambda a, b: np.concatenate([a, b], 1), [(2, 3), (2, 1)]),
    ("cat-negative-dim", lambda lib, a, b: lib.cat([a, b], dim=-1), lambda a, b: np.concatenate([a, b], -1),
     [(2, 3, 2), (2, 3, 1)]),
    ("cat-middle-3d", lambda lib, a, b, c: lib.cat([a, b, c], 1), lambda a, b, c: np.concatenate([a, b, c], 1),
     [(2, 1, 2), (2, 3, 2), (2, 2, 2)]),
    ("cat-1d", lambda lib, a, b, c: lib.cat([a, b, c]), lambda a, b, c: np.concatenate([a, b, c]), [(2,), (3,), (1,)]),
    ("cat-size0", lambda lib, a, b: lib.cat([a, b]), lambda a, b: np.concatenate([a, b]), [(0, 3), (2, 3)]),
    ("cat-all-size0", lambda lib, a, b: lib.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1), [(0, 3), (0, 2)]),
    ("cat-one", lambda lib, a: lib.cat([a]), lambda a: a, [(2, 3)]),
    # torch still skips 1-D empty tensors, whatever the other shapes
    ("cat-legacy-empty", lambda lib, a, b: lib.cat([a, b], 1), lambda a, b: a, [(2, 3), (0,)]),
    ("cat-axis", lambda lib, a, b: lib.cat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1), [(2, 3), (2, 2)]),
    ("concat", lambda lib, a, b: lib.concat([a, b]), lambda a, b: np.concatenate([a, b]), [(1, 2), (2, 2)]),
    ("stack", lambda lib, a, b: lib.stack([a, b]), lambda a, b: np.stack([a, b]), [(2, 3), (2, 3)]),
    ("stack-dim1", lambda lib, a, b: lib.stack((a, b), 1), lambda a, b: np.stack([a, b], 1), [(2, 3), (2, 3)]),
    ("stack-last", lambda lib, a, b, c: lib.stack([a, b, c], dim=-1), lambda a, b, c: np.stack([a, b, c], -1),
     [(2, 3), (2, 3), (2, 3)]),
    ("stack-0d", lambda lib, a, b: lib.stack([a, b]), lambda a, b: np.stack([a, b]), [(), ()]),
    ("stack-size0", lambda lib, a, b: lib.stack([a, b], 1), lambda a, b: np.stack([a, b], 1), [(0, 2), (0, 2)]),
    ("stack-one", lambda lib, a: lib.stack([a]), lambda a: a[None], [(3,)]),
    ("stack-axis", lambda lib, a, b: lib.stack([a, b], axis=2), lambda a, b: np.stack([a, b], 2), [(2, 3), (2, 3)]),
    # fan-out: a tensor used twice through shape ops
    ("fan-out-views", lambda lib, a: a.reshape(6) * a.flatten(), lambda a: a.reshape(6) ** 2, [(2, 3)]),
    ("fan-out-transpose", lambda lib, a: a + a.T, lambda a: a + a.T, [(3, 3)]),
    ("fan-out-permute", lambda lib, a: a.permute(1, 0, 2) * a.transpose(0, 1),
     lambda a: a.transpose(1, 0, 2) ** 2, [(2, 3, 2)]),
    ("fan-out-expand", lambda lib, a: a.expand(2, 3) * a, lambda a: np.broadcast_to(a * a, (2, 3)), [(3,)]),
    ("fan-out-cat", lambda lib, a: lib.cat([a, a * 2, a]), lambda a: np.concatenate([a, a * 2, a]), [(2, 2)]),
    ("fan-out-stack", lambda lib, a: lib.stack([a, a], 1), lambda a: np.stack([a, a], 1), [(3, 2)]),
    ("chain", lambda lib, a: a.reshape(2, 3).T.unsqueeze(0).expand(2, 3, 2).flatten(1).squeeze(),
     lambda a: np.broadcast_to(a.reshape(2, 3).T[None], (2, 3, 2)).reshape(2, 6), [(6,)]),
]
CASE_PARAMS = [pytest.param(fn, fn_np, shapes, id=name) for name, fn, fn_np, shapes in CASES]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn, fn_np, shapes", CASE_PARAMS)
def test_value_and_gradient(fn, fn_np, shapes, dtype):
    check_op(lambda *a: fn(tg, *a), fn_np, shapes, dtype)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn, fn_np, shapes", CASE_PARAMS)
def test_matches_torch(fn, fn_np, shapes, dtype):
    check_op_torch(lambda *a: fn(tg, *a), lambda *a: fn(torch, *a), shapes, dtype)


# --- names, buffers, dtypes ---

# (expression over x of shape (2, 3, 4) and the library, torch's grad_fn name)
GRAD_FN_NAMES = [
    ("x.reshape(6, 4)", "ViewBackward0"),
    ("x.view(-1)", "ViewBackward0"),
    ("x.flatten(1)", "ViewBackward0"),
    ("x.squeeze()", "SqueezeBackward0"),
    ("x.squeeze(0)", "SqueezeBackward1"),
    ("x.squeeze((0, 1))", "SqueezeBackward2"),
    ("x.unsqueeze(1)", "UnsqueezeBackward0"),
    ("x.transpose(0, 1)", "TransposeBackward0"),
    ("x.permute(2, 0, 1)", "PermuteBackward0"),
    ("x[0].T", "PermuteBackward0"),
    ("x.mT", "TransposeBackward0"),
    ("x[0].t()", "TBackward0"),
    ("x.expand(2, 2, 3, 4)", "ExpandBackward0"),
    ("lib.cat([x, x], 1)", "CatBackward0"),
    ("lib.stack([x, x], 1)", "StackBackward0"),
]


test_grad_fn_names = grad_fn_names_test(GRAD_FN_NAMES)


@pytest.mark.parametrize("view", [
    lambda x: x.reshape(4, 3), lambda x: x.view(-1), lambda x: x.flatten(), lambda x: x.squeeze(),
    lambda x: x.unsqueeze(0), lambda x: x.view(1, 2, 1, 6).squeeze(2),
])
def test_views_share_the_buffer(view):
    x = tg.arange(12.0).reshape(2, 1, 6)
    y = view(x)
    assert y.data_ptr() == x.data_ptr()
    y.zero_()
    assert x.tolist() == np.zeros((2, 1, 6)).tolist()


@pytest.mark.parametrize("copy", [
    lambda x: x.transpose(0, 1), lambda x: x.permute(1, 0), lambda x: x.T, lambda x: x.expand(2, 2, 3),
    lambda x: tg.cat([x]), lambda x: tg.stack([x]),
])
def test_copies_have_their_own_buffer(copy):
    x = tg.arange(6.0).reshape(2, 3)
    y = copy(x)
    assert y.data_ptr() != x.data_ptr()
    y.zero_()
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_flatten_of_a_single_dim_is_the_tensor_itself():
    # as in torch: no new tensor, no node
    x = tg.zeros(2, 3, requires_grad=True)
    assert x.flatten(1, 1) is x
    assert x.flatten(-1) is x
    v = tg.zeros(4)
    assert v.flatten() is v


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
def test_T_warns_unless_2d_as_torch(shape):
    with pytest.warns(UserWarning, match="x.mT"):
        assert tg.zeros(*shape).T.shape == shape[::-1]
    with pytest.warns(UserWarning, match="0-D"):
        assert tg.tensor(1.0).T.shape == ()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tg.zeros(2, 3).T.shape == (3, 2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(3,), (2, 1, 3)])
def test_T_reverses_the_dims(shape, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_op(lambda a: a.T, lambda a: a.T, [shape], dtype)


@pytest.mark.parametrize("dtypes, expected", [
    (("int64", "float32"), "float32"),
    (("float32", "float64"), "float64"),
    (("int64", "bool"), "int64"),
    (("bool", "bool"), "bool"),
])
@pytest.mark.parametrize("join", ["cat", "stack"])
def test_cat_and_stack_promote_dtypes(dtypes, expected, join):
    parts = [tg.tensor([[1, 0]], dtype=getattr(tg, d)) for d in dtypes]
    out = getattr(tg, join)(parts)
    assert out.dtype == getattr(tg, expected)
    expected_values = [[1, 0], [1, 0]] if join == "cat" else [[[1, 0]], [[1, 0]]]
    assert np.array_equal(np.asarray(out), np.array(expected_values))


def test_cat_gradient_goes_to_the_float_inputs_in_their_dtype():
    a = tg.tensor([1.0, 2.0], dtype=tg.float32, requires_grad=True)
    b = tg.tensor([3.0], dtype=tg.float64, requires_grad=True)
    c = tg.tensor([7, 8])
    out = tg.cat([a, c, b])
    assert out.dtype == tg.float64
    out.backward(tg.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=tg.float64))
    assert a.grad.dtype == tg.float32 and a.grad.tolist() == [1.0, 2.0]
    assert b.grad.dtype == tg.float64 and b.grad.tolist() == [5.0]
    assert c.grad is None


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_shape_ops_on_int64_and_bool_tensors(dtype):
    values = np.arange(6).reshape(2, 3) % 2 if dtype == "bool" else np.arange(6).reshape(2, 3)
    x = tg.tensor(values.astype(dtype))
    for out, expected in [
        (x.T, values.T), (x.permute(1, 0), values.T), (x.reshape(3, 2), values.reshape(3, 2)),
        (x.unsqueeze(0).expand(2, 2, 3), np.broadcast_to(values, (2, 2, 3))),
        (tg.cat([x, x], 1), np.concatenate([values, values], 1)), (tg.stack([x, x]), np.stack([values, values])),
    ]:
        assert out.dtype == getattr(tg, dtype)
        assert np.array_equal(np.asarray(out), expected.astype(dtype))


def test_transpose_of_a_large_tensor():
    a = np.random.default_rng(0).standard_normal((37, 53, 3))
    x = tg.tensor(a)
    assert np.array_equal(to_numpy(x.permute(2, 0, 1)), a.transpose(2, 0, 1))
    assert np.array_equal(to_numpy(x.transpose(0, 1)), a.transpose(1, 0, 2))


def test_backward_twice_through_shape_ops_needs_no_saved_tensors():
    # as in torch, these nodes save nothing, so a second backward works without retain_graph
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = tg.cat([x.T, x.reshape(1, 4).expand(2, 4)], 1).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [[6.0, 6.0], [6.0, 6.0]]


# --- errors: the exception type torch raises, and a message naming what is wrong ---

# (id, op over x of shape (2, 3, 4) written against `lib`, exception type, message fragment)
ERRORS = [
    ("reshape-size", lambda lib, x: x.reshape(5, -1), RuntimeError, r"shape '\[5, -1\]' is invalid for input of size 24"),
    ("reshape-two-inferred", lambda lib, x: x.reshape(-1, -1), RuntimeError, "only one dimension can be inferred"),
    ("reshape-ambiguous", lambda lib, x: x[:0].reshape(3, 0, -1), RuntimeError,
     r"cannot reshape tensor of 0 elements into shape \[3, 0, -1\] because the unspecified dimension size -1 can be any value"),
    ("reshape-float", lambda lib, x: x.reshape(2.0, 12), TypeError, None),
    ("view-size", lambda lib, x: x.view(7), RuntimeError, r"shape '\[7\]' is invalid for input of size 24"),
    ("flatten-order", lambda lib, x: x.flatten(2, 1), RuntimeError, "start_dim cannot come after end_dim"),
    ("flatten-dim", lambda lib, x: x.flatten(5), IndexError, r"(?i)dimension out of range.*but got 5"),
    ("squeeze-dim", lambda lib, x: x.squeeze(3), IndexError, r"(?i)dimension out of range \(expected to be in range of \[-3, 2\], but got 3\)"),
    ("squeeze-repeated", lambda lib, x: x.squeeze((0, 0)), RuntimeError, "dim 0 appears multiple times"),
    ("unsqueeze-dim", lambda lib, x: x.unsqueeze(4), IndexError, r"(?i)dimension out of range \(expected to be in range of \[-4, 3\], but got 4\)"),
    ("transpose-dim", lambda lib, x: x.transpose(0, 3), IndexError, r"(?i)dimension out of range"),
    ("permute-count", lambda lib, x: x.permute(0, 1), RuntimeError, "(?i)number of dim"),
    ("permute-duplicate", lambda lib, x: x.permute(0, 1, 1), RuntimeError, "duplicate dims are not allowed"),
    ("permute-range", lambda lib, x: x.permute(0, 1, 3), IndexError, r"(?i)dimension out of range"),
    ("t-3d", lambda lib, x: x.t(), RuntimeError, r"t\(\) expects a tensor with <= 2 dimensions, but self is 3D"),
    ("mT-1d", lambda lib, x: x[0, 0].mT, RuntimeError, "only supported on matrices or batches of matrices"),
    ("expand-fewer", lambda lib, x: x.expand(3, 4), RuntimeError,
     r"the number of sizes provided \(2\) must be greater or equal to the number of dimensions in the tensor \(3\)"),
    ("expand-mismatch", lambda lib, x: x.expand(2, 4, 4), RuntimeError,
     r"(?i)the expanded size of the tensor \(4\) must match the existing size \(3\) at non-singleton dimension 1"),
    ("expand-to-0", lambda lib, x: x.expand(2, 3, 0), RuntimeError, r"(?i)expanded size of the tensor \(0\) must match"),
    ("expand-leading-minus-1", lambda lib, x: x.expand(-1, 2, 3, 4), RuntimeError,
     r"(?i)the expanded size of the tensor \(-1\) isn't allowed in a leading, non-existing dimension 0"),
    ("cat-empty-list", lambda lib, x: lib.cat([]), ValueError, "expected a non-empty list of Tensors"),
    ("cat-ndim", lambda lib, x: lib.cat([x, x[0]]), RuntimeError, "(?i)tensors must have same number of dimensions: got 3 and 2"),
    ("cat-sizes", lambda lib, x: lib.cat([x, x[:, :2]]), RuntimeError,
     "(?i)sizes of tensors must match except in dimension 0. Expected size 3 but got size 2 for tensor number 1"),
    ("cat-0d", lambda lib, x: lib.cat([x[0, 0, 0]]), RuntimeError, r"zero-dimensional tensor \(at position 0\) cannot be concatenated"),
    ("cat-dim", lambda lib, x: lib.cat([x, x], 3), IndexError, r"(?i)dimension out of range"),
    ("cat-not-a-list", lambda lib, x: lib.cat(x), TypeError, "tuple"),
    ("cat-not-a-tensor", lambda lib, x: lib.cat([x, 1]), TypeError, "expected Tensor as element 1"),
    ("stack-sizes", lambda lib, x: lib.stack([x, x[0]]), RuntimeError, "(?i)expects each tensor to be equal size"),
    ("stack-empty-list", lambda lib, x: lib.stack([]), RuntimeError, "(?i)non-empty"),
    ("stack-dim", lambda lib, x: lib.stack([x, x], 4), IndexError, r"(?i)dimension out of range"),
]
ERROR_PARAMS = [pytest.param(fn, error, match, id=name) for name, fn, error, match in ERRORS]


@pytest.mark.parametrize("fn, error, match", ERROR_PARAMS)
def test_errors(fn, error, match):
    with pytest.raises(error, match=match):
        fn(tg, tg.zeros(2, 3, 4))


@requires_torch
@pytest.mark.parametrize("fn, error, match", ERROR_PARAMS)
def test_torch_raises_the_same_exception_type(fn, error, match):
    with pytest.raises(error):
        fn(torch, torch.zeros(2, 3, 4))
