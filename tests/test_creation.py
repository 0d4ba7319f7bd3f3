"""Constructors (tensor, arange, zeros, ones, randn, manual_seed), dtypes and the basic
attributes: dtype, shape as a plain tuple, data_ptr, requires_grad, is_leaf."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import to_numpy


@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        pytest.param([1.0, 2.0], tg.float32, (2,), id="float-list"),
        pytest.param([1, 2.5], tg.float32, (2,), id="mixed-int-float-list"),
        pytest.param([1, 2], tg.int64, (2,), id="int-list"),
        pytest.param([True, False], tg.bool, (2,), id="bool-list"),
        pytest.param(1.5, tg.float32, (), id="float-scalar"),
        pytest.param(3, tg.int64, (), id="int-scalar"),
        pytest.param([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], tg.float32, (2, 3), id="nested"),
        pytest.param([[[1.0], [2.0]]], tg.float32, (1, 2, 1), id="3d"),
        pytest.param(np.array([1.0, 2.0]), tg.float64, (2,), id="numpy-float64"),
        pytest.param(np.array([1.0, 2.0], dtype=np.float32), tg.float32, (2,), id="numpy-float32"),
        pytest.param(np.array([[1, 2]], dtype=np.int64), tg.int64, (1, 2), id="numpy-int64"),
        pytest.param(np.array(2.5), tg.float64, (), id="numpy-0d"),
    ],
)
def test_tensor_infers_dtype_and_shape_as_torch(data, dtype, shape):
    t = tg.tensor(data)
    assert t.dtype == dtype
    assert t.shape == shape
    np.testing.assert_array_equal(np.asarray(t), np.asarray(data))


def test_shape_is_a_plain_tuple():
    for t in (tg.tensor(1.0), tg.zeros(3), tg.ones(2, 3), tg.randn(2, 1, 4)):
        assert type(t.shape) is tuple
        assert all(type(n) is int for n in t.shape)
    assert tg.ones(2, 3).shape == (2, 3)
    assert tg.tensor(1.0).shape == ()


def test_dtypes_are_distinct():
    dtypes = [tg.float32, tg.float64, tg.int64, tg.bool]
    for i, a in enumerate(dtypes):
        for j, b in enumerate(dtypes):
            assert (a == b) == (i == j)


LARGE_INT64 = [2 ** 53 + 1, 123456789012345678, 2 ** 63 - 1, -(2 ** 63)]


@pytest.mark.parametrize("value", LARGE_INT64, ids=str)
def test_int64_from_a_python_int_is_exact(value):
    """Integers beyond 2**53 must not pass through a double."""
    assert np.asarray(tg.tensor(value)) == value
    assert np.asarray(tg.tensor([value]))[0] == value


@pytest.mark.parametrize("value", LARGE_INT64, ids=str)
def test_int64_item_is_exact(value):
    t = tg.from_numpy(np.array([value], dtype=np.int64))
    assert type(t.item()) is int
    assert t.item() == value


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tensor_dtype_keyword_converts(dtype):
    t = tg.tensor([1, 2, 3], dtype=getattr(tg, dtype))
    assert t.dtype == getattr(tg, dtype)
    np.testing.assert_array_equal(to_numpy(t), [1.0, 2.0, 3.0])


def test_tensor_requires_grad_keyword():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None
    assert not tg.tensor([1.0, 2.0]).requires_grad


def test_tensor_copies_a_numpy_array():
    a = np.array([1.0, 2.0, 3.0])
    t = tg.tensor(a)
    a[0] = 100.0
    np.testing.assert_array_equal(to_numpy(t), [1.0, 2.0, 3.0])
    assert t.data_ptr() != a.ctypes.data


@pytest.mark.parametrize(
    "args, expected, dtype",
    [
        pytest.param((4,), [0, 1, 2, 3], tg.int64, id="int-end"),
        pytest.param((4.0,), [0.0, 1.0, 2.0, 3.0], tg.float32, id="float-end"),
        pytest.param((1, 7, 2), [1, 3, 5], tg.int64, id="start-end-step"),
        pytest.param((0, 1, 0.25), [0.0, 0.25, 0.5, 0.75], tg.float32, id="float-step"),
        pytest.param((0,), [], tg.int64, id="empty"),
    ],
)
def test_arange(args, expected, dtype):
    t = tg.arange(*args)
    assert t.dtype == dtype
    assert t.shape == (len(expected),)
    np.testing.assert_array_equal(np.asarray(t), np.array(expected))


def test_arange_dtype_keyword():
    t = tg.arange(3, dtype=tg.float64)
    assert t.dtype == tg.float64
    np.testing.assert_array_equal(to_numpy(t), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("constructor, fill", [(tg.zeros, 0.0), (tg.ones, 1.0)], ids=["zeros", "ones"])
@pytest.mark.parametrize(
    "size, shape",
    [((3,), (3,)), ((2, 3), (2, 3)), (((2, 3),), (2, 3)), (((),), ()), ((0, 2), (0, 2)), ((1, 1, 2), (1, 1, 2))],
    ids=["ints-1d", "ints-2d", "tuple", "empty-tuple-0d", "size0", "3d"],
)
def test_zeros_and_ones(constructor, fill, size, shape):
    t = constructor(*size)
    assert t.shape == shape
    assert t.dtype == tg.float32
    assert not t.requires_grad
    np.testing.assert_array_equal(to_numpy(t), np.full(shape, fill))


@pytest.mark.parametrize("constructor", [tg.zeros, tg.ones], ids=["zeros", "ones"])
def test_zeros_and_ones_keywords(constructor):
    t = constructor(2, 2, dtype=tg.float64, requires_grad=True)
    assert t.dtype == tg.float64
    assert t.requires_grad and t.is_leaf


@pytest.mark.parametrize("size, shape", [((2, 3), (2, 3)), (((2, 3),), (2, 3)), ((5,), (5,))], ids=str)
def test_randn_shape_and_dtype(size, shape):
    t = tg.randn(*size)
    assert t.shape == shape
    assert t.dtype == tg.float32


def test_randn_size_keyword_gives_0d():
    t = tg.randn(size=(), requires_grad=True)
    assert t.shape == ()
    assert t.requires_grad and t.is_leaf
    assert tg.randn(size=(2, 2)).shape == (2, 2)
    assert tg.randn(3, dtype=tg.float64).dtype == tg.float64


def test_randn_is_standard_normal():
    values = to_numpy(tg.randn(100_000))
    assert abs(values.mean()) < 0.02
    assert abs(values.std() - 1.0) < 0.02
    assert len(np.unique(values)) > 99_000
    # About 68.3% of a standard normal lies within one standard deviation.
    assert abs(np.mean(np.abs(values) < 1.0) - 0.6827) < 0.01


def test_manual_seed_makes_randn_reproducible():
    tg.manual_seed(123)
    first = to_numpy(tg.randn(50))
    second = to_numpy(tg.randn(50))
    tg.manual_seed(123)
    np.testing.assert_array_equal(to_numpy(tg.randn(50)), first)
    np.testing.assert_array_equal(to_numpy(tg.randn(50)), second)
    assert not np.array_equal(first, second)
    tg.manual_seed(124)
    assert not np.array_equal(to_numpy(tg.randn(50)), first)


def test_data_ptr():
    a, b = tg.zeros(4), tg.zeros(4)
    assert isinstance(a.data_ptr(), int)
    assert a.data_ptr() != 0
    assert a.data_ptr() != b.data_ptr()
    assert a.data_ptr() == a.data_ptr()


def test_results_of_ops_on_plain_tensors_are_leaves_without_grad():
    y = tg.ones(3) * 2 + tg.zeros(3)
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.is_leaf


def test_len():
    assert len(tg.zeros(5)) == 5
    assert len(tg.zeros(2, 7)) == 2
