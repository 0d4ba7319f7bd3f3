"""Indexing t[...]: ints, slices with steps, None, Ellipsis, integer lists, ranges and int64
tensors that gather, bool masks, and index sequences that pick elements pairwise with
broadcasting. Values against numpy, gradients (scatter-added, so a repeated index
accumulates) against central differences, both against torch when it is installed; grad_fn
names and errors as torch has them."""
import warnings

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, check_op, check_op_torch, grad_fn_names_test, requires_torch, to_numpy, torch


def ints(lib, values):
    """An int64 index tensor (numpy array) of `values` in library `lib`."""
    return np.array(values, dtype=np.int64) if lib is np else lib.tensor(values, dtype=lib.int64)


def mask(lib, values):
    """A bool index tensor (numpy array) of `values` in library `lib`."""
    return np.array(values, dtype=bool) if lib is np else lib.tensor(values, dtype=lib.bool)


# (id, index written against a library `lib` (tg, torch or np), shape of the indexed tensor).
# Here numpy's rules give torch's result, so numpy is the oracle of values and gradients.
INDEXES = [
    ("int", lambda lib: 1, (3, 4)),
    ("negative-int", lambda lib: -1, (3, 4)),
    ("int-int", lambda lib: (1, -2), (3, 4)),
    ("ints-to-0d", lambda lib: (1, 2, 0), (2, 3, 4)),
    ("int-1d", lambda lib: 2, (4,)),
    ("slice", lambda lib: slice(1, 3), (4, 2)),
    ("slice-open", lambda lib: slice(1, None), (4, 2)),
    ("slice-negative-bounds", lambda lib: slice(-3, -1), (4, 2)),
    ("slice-beyond-the-end", lambda lib: slice(2, 10), (4, 2)),
    ("slice-empty", lambda lib: slice(3, 1), (4, 2)),
    ("slice-step", lambda lib: slice(None, None, 2), (5, 2)),
    ("slice-start-step", lambda lib: slice(1, None, 3), (7,)),
    ("slices-2d", lambda lib: (slice(1, 3), slice(None, None, 2)), (4, 5)),
    ("full-slice", lambda lib: slice(None), (2, 3)),
    ("column", lambda lib: (slice(None), 1), (3, 4)),
    ("column-negative", lambda lib: (slice(None), -1), (3, 4)),
    ("ellipsis-last", lambda lib: (Ellipsis, 1), (2, 3, 4)),
    ("ellipsis-first", lambda lib: (1, Ellipsis), (2, 3, 4)),
    ("ellipsis-middle", lambda lib: (0, Ellipsis, slice(1, 3)), (2, 3, 4)),
    ("ellipsis-alone", lambda lib: Ellipsis, (2, 3)),
    ("ellipsis-covers-nothing", lambda lib: (1, 2, Ellipsis, 3), (2, 3, 4)),
    ("none", lambda lib: None, (2, 3)),
    ("none-middle", lambda lib: (slice(None), None), (2, 3)),
    ("none-after-ellipsis", lambda lib: (Ellipsis, None), (2, 3)),
    ("int-none-int", lambda lib: (1, None, 2), (2, 3, 4)),
    ("empty-tuple", lambda lib: (), (2, 3)),
    ("0d-none", lambda lib: None, ()),
    ("0d-ellipsis", lambda lib: Ellipsis, ()),
    ("size1-dims", lambda lib: (0, slice(None), 0), (1, 3, 1)),
    ("size0-slice", lambda lib: (slice(None), slice(1, None)), (2, 0)),
    ("size0-int", lambda lib: 1, (2, 0, 3)),
    ("list", lambda lib: [2, 0], (3, 4)),
    ("list-repeated", lambda lib: [0, 2, 0, 0], (3, 2)),
    ("list-negative", lambda lib: [-1, 0], (3, 2)),
    ("list-empty", lambda lib: [], (3, 2)),
    ("range", lambda lib: range(1, 3), (3, 2)),
    ("int64-tensor", lambda lib: ints(lib, [1, 1, 0]), (2, 3)),
    ("int64-tensor-2d", lambda lib: ints(lib, [[0, 1], [1, 1]]), (2, 3)),
    ("int64-tensor-empty", lambda lib: ints(lib, []), (2, 3)),
    ("list-on-dim1", lambda lib: (slice(None), [2, 0, 2]), (2, 3)),
    ("list-on-last-dim", lambda lib: (Ellipsis, [0, 0]), (2, 3, 2)),
    ("pairwise", lambda lib: ([0, 1, 2], [1, 0, 1]), (3, 2)),
    ("pairwise-range", lambda lib: (range(3), ints(lib, [1, 0, 1])), (3, 2)),
    ("pairwise-repeated", lambda lib: ([0, 0, 1, 0], [1, 1, 0, 1]), (2, 2)),
    ("pairwise-broadcast", lambda lib: (ints(lib, [[0], [1]]), ints(lib, [0, 2, 1])), (2, 3)),
    ("pairwise-broadcast-scalar-list", lambda lib: ([1], [0, 2, 1]), (2, 3)),
    ("pairwise-then-full", lambda lib: ([1, 0], [2, 2]), (2, 3, 2)),
    ("pairwise-adjacent-inner", lambda lib: (slice(None), [1, 0], [2, 2]), (2, 3, 3)),
    ("pairwise-separated", lambda lib: ([1, 0], slice(None), [0, 1]), (2, 3, 2)),
    ("index-with-slice", lambda lib: ([0, 2], slice(1, 3)), (3, 4)),
    ("slice-with-index", lambda lib: (slice(0, 2), [3, 0]), (3, 4)),
    ("index-and-none", lambda lib: (None, [1, 0]), (2, 3)),
    ("mask", lambda lib: mask(lib, [True, False, True]), (3, 2)),
    ("mask-none-true", lambda lib: mask(lib, [False, False]), (2, 3)),
    ("mask-2d", lambda lib: mask(lib, [[True, False, True], [False, True, True]]), (2, 3)),
    ("mask-2d-of-3d", lambda lib: mask(lib, [[True, False], [True, True], [False, False]]), (3, 2, 2)),
    ("mask-on-dim1", lambda lib: (slice(None), mask(lib, [False, True, True])), (2, 3)),
    ("mask-list", lambda lib: [True, False, True], (3, 2)),
    ("mask-0d-true", lambda lib: True, (2, 3)),
    ("mask-0d-false", lambda lib: False, (2, 3)),
    ("mask-0d-on-0d", lambda lib: True, ()),
    ("mask-and-index", lambda lib: (mask(lib, [True, False, True]), [1, 0]), (3, 2)),
]
INDEX_PARAMS = [pytest.param(index, shape, id=name) for name, index, shape in INDEXES]

# torch applies ints before index sequences, so an int between two of them does not move
# the sequences' dims to the front as numpy does: (id, index, shape, numpy equivalent).
TORCH_ONLY = [
    ("int-then-list-separated", lambda lib: (0, slice(None), [0, 1]), (2, 3, 4), lambda a: a[0][:, [0, 1]]),
    ("0d-int64-tensor-is-an-int", lambda lib: (lib.tensor(1), slice(None), [0, 1]), (2, 3, 4),
     lambda a: a[1][:, [0, 1]]),
    ("list-int-list", lambda lib: ([1, 0], 1, [2, 0]), (2, 3, 4), lambda a: a[:, 1][[1, 0], [2, 0]]),
    ("list-none-list", lambda lib: ([0, 1], None, [1, 0]), (2, 3, 4), lambda a: a[[0, 1], None, [1, 0]]),
]
TORCH_ONLY_PARAMS = [pytest.param(index, shape, fn_np, id=name) for name, index, shape, fn_np in TORCH_ONLY]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index, shape", INDEX_PARAMS)
def test_value_and_gradient(index, shape, dtype):
    check_op(lambda a: a[index(tg)], lambda a: a[index(np)], [shape], dtype)


@requires_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index, shape", INDEX_PARAMS)
def test_matches_torch(index, shape, dtype):
    check_op_torch(lambda a: a[index(tg)], lambda a: a[index(torch)], [shape], dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index, shape, fn_np", TORCH_ONLY_PARAMS)
def test_torch_order_value_and_gradient(index, shape, fn_np, dtype):
    check_op(lambda a: a[index(tg)], fn_np, [shape], dtype)


@requires_torch
@pytest.mark.parametrize("index, shape, fn_np", TORCH_ONLY_PARAMS)
def test_torch_order_matches_torch(index, shape, fn_np):
    check_op_torch(lambda a: a[index(tg)], lambda a: a[index(torch)], [shape], "float64")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fn", [
    pytest.param(lambda a: a[0] * a[1], id="two-rows"),
    pytest.param(lambda a: a[:, 1:] - a[:, :-1], id="differences"),
    pytest.param(lambda a: a[[0, 1, 0]] * a[[1, 1, 0]], id="gathers"),
    pytest.param(lambda a: a[a > 0] * 2, id="mask-of-itself"),
    pytest.param(lambda a: a[1:][[0, 0]][:, ::2], id="chained"),
])
def test_fan_out(fn, dtype):
    check_op(fn, fn, [(2, 3)], dtype, domains="nonzero")


def test_repeated_index_accumulates():
    x = tg.ones(3, requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    y = tg.ones(2, 2, requires_grad=True)
    (y[[1, 1, 1], [0, 0, 1]] * tg.tensor([1.0, 2.0, 4.0])).sum().backward()
    assert y.grad.tolist() == [[0.0, 0.0], [3.0, 4.0]]


def test_d2l_picks_the_predicted_probability_of_each_label():
    # Dive into Deep Learning 3.6: cross_entropy(y_hat, y) = -log(y_hat[range(len(y_hat)), y])
    y_hat = tg.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]], requires_grad=True)
    y = tg.tensor([0, 2])
    picked = y_hat[range(len(y_hat)), y]
    assert picked.tolist() == pytest.approx([0.1, 0.5])
    (picked * tg.tensor([2.0, 3.0])).sum().backward()
    assert y_hat.grad.tolist() == [[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_indexing_int64_and_bool_tensors(dtype):
    values = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    x = tg.tensor(values)
    for index in [1, (slice(None), 2), [2, 0], ([0, 1], [3, 3]), (Ellipsis, slice(1, None, 2)),
                  np.array([True, False, True])]:
        out = x[index if not isinstance(index, np.ndarray) else tg.tensor(index)]
        assert out.dtype == getattr(tg, dtype)
        assert np.array_equal(np.asarray(out), values[index])


def test_numpy_arrays_and_numpy_ints_index():
    a = np.arange(12.0).reshape(3, 4)
    x = tg.tensor(a)
    assert np.array_equal(np.asarray(x[np.int64(1)]), a[1])
    assert np.array_equal(np.asarray(x[np.array([2, 0])]), a[[2, 0]])
    assert np.array_equal(np.asarray(x[np.array([[0, 1], [1, 2]])]), a[[[0, 1], [1, 2]]])
    assert np.array_equal(np.asarray(x[:, np.array([True, False, False, True])]), a[:, [0, 3]])
    assert np.array_equal(np.asarray(x[tg.tensor(2)]), a[2])


def test_results_are_copies():
    x = tg.arange(6.0).reshape(2, 3)
    row = x[0]
    assert row.data_ptr() != x.data_ptr()
    row.zero_()
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_iteration_yields_the_rows():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    rows = list(x)
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    (rows[0] * rows[2]).sum().backward()
    assert x.grad.tolist() == [[5.0, 6.0], [0.0, 0.0], [1.0, 2.0]]
    assert [float(v) for v in tg.tensor([1.5, 2.5])] == [1.5, 2.5]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(tg.tensor(1.0))


def test_a_list_holding_sequences_is_a_tuple_with_a_warning_as_in_torch():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    with pytest.warns(UserWarning, match="non-tuple sequence"):
        out = x[[0, [1, 0]]]
    assert np.array_equal(np.asarray(out), np.asarray(x[0, [1, 0]]))


def test_second_backward_through_a_gather_needs_retain_graph_and_through_a_slice_does_not():
    # as in torch: an index gather saves its indices, select and slice save nothing
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[1:].sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [0.0, 2.0, 2.0]
    z = x[[0, 0]].sum()
    z.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()
    w = x[[2]].sum()
    w.backward(retain_graph=True)
    w.backward()
    assert x.grad.tolist() == [2.0, 2.0, 4.0]


# (expression over x of shape (2, 3, 4), torch's grad_fn name for it)
GRAD_FN_NAMES = [
    ("x[0]", "SelectBackward0"),
    ("x[:, 1]", "SelectBackward0"),
    ("x[..., 1]", "SelectBackward0"),
    ("x[1, 2]", "SelectBackward0"),
    ("x[lib.tensor(1)]", "SelectBackward0"),
    ("x[1:3]", "SliceBackward0"),
    ("x[:]", "SliceBackward0"),
    ("x[0:5]", "SliceBackward0"),
    ("x[0:2, ::2]", "SliceBackward0"),
    ("x[:, :1, :]", "SliceBackward0"),
    ("x[-2:, :]", "SliceBackward0"),
    ("x[:, :]", "AliasBackward0"),
    ("x[0:2, :]", "AliasBackward0"),
    ("x[...]", "AliasBackward0"),
    ("x[()]", "AliasBackward0"),
    ("x[None]", "UnsqueezeBackward0"),
    ("x[0, None]", "UnsqueezeBackward0"),
    ("x[None, None, 0]", "SelectBackward0"),
    ("x[[0, 1]]", "IndexBackward0"),
    ("x[:, [0, 1], [1, 2]]", "IndexBackward0"),
    ("x[x > 0]", "IndexBackward0"),
    ("x[True]", "IndexBackward0"),
    ("x[lib.tensor([1, 0]), lib.tensor(1)]", "IndexBackward0"),
]


test_grad_fn_names = grad_fn_names_test(GRAD_FN_NAMES)


# --- errors: the exception type torch raises, and a message naming what is wrong ---

# (id, index into x of shape (2, 3, 4) written against `lib`, exception type, message fragment)
ERRORS = [
    ("int-out-of-range", lambda lib, x: x[5], IndexError, "index 5 is out of bounds for dimension 0 with size 2"),
    ("negative-int-out-of-range", lambda lib, x: x[-3], IndexError, "index -3 is out of bounds for dimension 0 with size 2"),
    ("int-on-dim1", lambda lib, x: x[:, 3], IndexError, "index 3 is out of bounds for dimension 1 with size 3"),
    ("list-out-of-range", lambda lib, x: x[[0, 2]], IndexError, "index 2 is out of bounds for dimension 0 with size 2"),
    ("tensor-negative-out-of-range", lambda lib, x: x[lib.tensor([-3])], IndexError,
     "index -3 is out of bounds for dimension 0 with size 2"),
    ("pairwise-out-of-range", lambda lib, x: x[[0, 1], [5, 0]], IndexError,
     "index 5 is out of bounds for dimension 1 with size 3"),
    ("too-many-indices", lambda lib, x: x[0, 0, 0, 0], IndexError, "too many indices for tensor of dimension 3"),
    ("too-many-with-list", lambda lib, x: x[0, 0, 0, [0]], IndexError, "too many indices for tensor of dimension 3"),
    ("int-of-0d", lambda lib, x: x[0, 0, 0][0], IndexError, "invalid index of a 0-dim tensor"),
    ("float", lambda lib, x: x[1.5], IndexError, r"only integers, slices .* are valid indices \(got float\)"),
    ("numpy-float", lambda lib, x: x[np.float64(1.0)], IndexError, "valid indices"),
    ("dict", lambda lib, x: x[{1: 2}], IndexError, r"valid indices \(got dict\)"),
    ("object", lambda lib, x: x[object()], IndexError, r"valid indices \(got object\)"),
    ("string", lambda lib, x: x["a"], TypeError, None),
    ("float-tensor", lambda lib, x: x[lib.tensor([1.0])], IndexError,
     "tensors used as indices must be long, int, byte or bool tensors"),
    ("negative-step", lambda lib, x: x[::-1], ValueError, "step must be greater than zero"),
    ("zero-step", lambda lib, x: x[::0], ValueError, "slice step cannot be zero"),
    ("float-slice-bound", lambda lib, x: x[1.5:], TypeError, "slice indices must be integers"),
    ("shapes-do-not-broadcast", lambda lib, x: x[[0, 1], [0, 1, 2]], IndexError,
     r"shape mismatch: indexing tensors could not be broadcast together with shapes"),
    ("mask-shape", lambda lib, x: x[lib.ones(3, dtype=lib.bool)], IndexError,
     r"The shape of the mask .*3.* at index 0 does not match the shape of the indexed tensor"),
    ("mask-list-shape", lambda lib, x: x[[True]], IndexError, "The shape of the mask"),
    ("int-overflow", lambda lib, x: x[2 ** 70], ValueError, None),
]
ERROR_PARAMS = [pytest.param(fn, error, match, id=name) for name, fn, error, match in ERRORS]


@pytest.mark.parametrize("fn, error, match", ERROR_PARAMS)
def test_errors(fn, error, match):
    with pytest.raises(error, match=match):
        fn(tg, tg.zeros(2, 3, 4))


@requires_torch
@pytest.mark.parametrize("fn, error, match", ERROR_PARAMS)
def test_torch_raises_the_same_exception_type(fn, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error):
            fn(torch, torch.zeros(2, 3, 4))


def test_a_second_ellipsis_is_an_error():
    # numpy's rule; torch lets each ellipsis expand, which reads x[..., 0, ...] as x[..., 0]
    with pytest.raises(IndexError, match=r"an index can only have a single ellipsis \('...'\)"):
        tg.zeros(2, 3, 4)[..., 0, ...]
