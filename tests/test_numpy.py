"""numpy interop: from_numpy and numpy() share memory both ways and keep their buffer alive,
np.asarray works, numpy() refuses tensors that require grad, tg.tensor copies."""
import gc
import operator

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import check_op

FLOAT_NUMPY_DTYPES = [np.float32, np.float64]


def churn_memory():
    """Frees and reuses memory so that a dangling buffer would likely be overwritten."""
    gc.collect()
    for _ in range(20):
        np.full(1000, -7.0)
        tg.ones(1000) * 3


@pytest.mark.parametrize("np_dtype", FLOAT_NUMPY_DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 1, 3)], ids=str)
def test_from_numpy_keeps_dtype_shape_values_and_address(shape, np_dtype):
    a = np.asarray(np.arange(int(np.prod(shape)), dtype=np_dtype).reshape(shape) + 0.5)
    t = tg.from_numpy(a)
    assert t.dtype == getattr(tg, np.dtype(np_dtype).name)
    assert t.shape == shape
    assert t.data_ptr() == a.ctypes.data
    np.testing.assert_array_equal(t.numpy(), a)


@pytest.mark.parametrize("np_dtype", FLOAT_NUMPY_DTYPES, ids=lambda d: d.__name__)
def test_from_numpy_sees_writes_to_the_array(np_dtype):
    a = np.zeros(4, dtype=np_dtype)
    t = tg.from_numpy(a)
    a[2] = 5.0
    assert t.sum().item() == 5.0
    assert (t == tg.tensor([0.0, 0.0, 5.0, 0.0])).all().item()


@pytest.mark.parametrize("np_dtype", FLOAT_NUMPY_DTYPES, ids=lambda d: d.__name__)
def test_array_sees_writes_to_the_tensor_from_numpy(np_dtype):
    a = np.arange(1.0, 5.0, dtype=np_dtype)
    t = tg.from_numpy(a)
    t.zero_()
    np.testing.assert_array_equal(a, np.zeros(4))


def test_from_numpy_keeps_the_array_alive():
    a = np.arange(1000, dtype=np.float64)
    t = tg.from_numpy(a)
    del a
    churn_memory()
    np.testing.assert_array_equal(t.numpy(), np.arange(1000, dtype=np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_shares_memory_with_the_tensor(dtype):
    t = tg.zeros(2, 3, dtype=getattr(tg, dtype))
    n = t.numpy()
    assert n.dtype == np.dtype(dtype)
    assert n.shape == (2, 3)
    assert n.ctypes.data == t.data_ptr()
    n[1, 2] = 4.0
    assert t.sum().item() == 4.0
    t.zero_()
    assert n[1, 2] == 0.0


def test_numpy_keeps_the_tensor_buffer_alive():
    t = tg.arange(1000.0) * 2
    n = t.numpy()
    del t
    churn_memory()
    np.testing.assert_array_equal(n, np.arange(1000.0) * 2)


def test_numpy_of_0d_tensor():
    n = tg.tensor(2.5).numpy()
    assert n.shape == ()
    assert n == 2.5


def test_numpy_on_a_tensor_requiring_grad_raises():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        x.numpy()
    with pytest.raises(RuntimeError):
        (x * 2).numpy()


def test_asarray_of_a_tensor_requiring_grad_raises():
    """As torch: np.asarray goes through numpy(), so the graph is never dropped silently."""
    with pytest.raises(RuntimeError):
        np.asarray(tg.ones(3, requires_grad=True))


@pytest.mark.parametrize("escape", [lambda t: t.numpy(), np.asarray, memoryview], ids=["numpy", "asarray", "memoryview"])
def test_a_tensor_requiring_grad_escapes_under_no_grad(escape):
    """As torch's numpy(): the check is for grad mode, where a write through the array would go
    unrecorded; under no_grad the array shares the buffer."""
    x = tg.ones(3, requires_grad=True)
    with tg.no_grad():
        array = np.asarray(escape(x))
        array[1] = 5
    assert x.tolist() == [1.0, 5.0, 1.0]
    with pytest.raises(RuntimeError):
        escape(x)


def test_numpy_of_detached_tensor_shares_memory():
    x = tg.ones(3, requires_grad=True)
    n = x.detach().numpy()
    assert n.ctypes.data == x.data_ptr()
    np.testing.assert_array_equal(n, np.ones(3))


def test_numpy_of_a_grad():
    x = tg.ones(3, requires_grad=True)
    (x * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 4.0))


@pytest.mark.parametrize(
    "make, expected",
    [
        pytest.param(lambda: tg.tensor([1.5, 2.5]), np.array([1.5, 2.5], dtype=np.float32), id="float32"),
        pytest.param(lambda: tg.tensor([1.5, 2.5], dtype=tg.float64), np.array([1.5, 2.5]), id="float64"),
        pytest.param(lambda: tg.arange(3), np.array([0, 1, 2], dtype=np.int64), id="int64"),
        pytest.param(lambda: tg.arange(3.0) > 0.5, np.array([False, True, True]), id="bool"),
        pytest.param(lambda: tg.tensor(7.0), np.array(7.0, dtype=np.float32), id="0d"),
    ],
)
def test_asarray(make, expected):
    result = np.asarray(make())
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_gradient_flows_to_a_tensor_from_numpy():
    a = np.array([1.0, -2.0, 3.0])
    x = tg.from_numpy(a).requires_grad_(True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * a)


def test_tensor_from_numpy_array_copies_and_keeps_float64():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a)
    assert t.dtype == tg.float64
    a[0] = -1.0
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


NUMPY_SCALARS = [
    pytest.param(np.float64(2.0), id="np.float64"),
    pytest.param(np.float32(2.0), id="np.float32"),
    pytest.param(np.int64(2), id="np.int64"),
]
SCALAR_OPS = [
    pytest.param(operator.add, "real", id="+"),
    pytest.param(operator.sub, "real", id="-"),
    pytest.param(operator.mul, "real", id="*"),
    pytest.param(operator.truediv, "nonzero", id="/"),
    pytest.param(operator.pow, "positive", id="**"),
]


@pytest.mark.parametrize("side", ["scalar-left", "scalar-right"])
@pytest.mark.parametrize("op, domain", SCALAR_OPS)
@pytest.mark.parametrize("scalar", NUMPY_SCALARS)
def test_numpy_scalar_operand_acts_like_a_python_scalar(scalar, op, domain, side):
    """As in torch: the result is a tapegrad tensor in the tensor's dtype, on the graph;
    numpy must not take the op over and return an ndarray."""
    number = scalar.item()
    if side == "scalar-left":
        fn_tg, fn_np = (lambda x: op(scalar, x)), (lambda x: op(number, x))
    else:
        fn_tg, fn_np = (lambda x: op(x, scalar)), (lambda x: op(x, number))
    check_op(fn_tg, fn_np, [(3,)], "float32", domains=domain, name=f"{side} {type(scalar).__name__} {op.__name__}")


@pytest.mark.parametrize("scalar", NUMPY_SCALARS)
def test_numpy_scalar_compared_with_tensor_gives_bool_tensor(scalar):
    x = tg.tensor([1.0, 2.0, 3.0])
    for result in (scalar < x, x < scalar, scalar == x):
        assert isinstance(result, type(x)), f"got a {type(result).__name__}"
        assert result.dtype == tg.bool
    np.testing.assert_array_equal(np.asarray(scalar < x), [False, False, True])
