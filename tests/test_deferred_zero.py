"""A deferred write is unobservable: `zero_` of a buffer that nothing shares only marks it (the
zeros are written on the next read, or a backward writes its gradient over them), so every way
a buffer leaves tapegrad (the buffer protocol, numpy(), __array__, data_ptr(), from_numpy) must
see and keep what PyTorch's eager zero_ gives. Each deferred zero (of a plain tensor, and of
.grad between backwards along each of the engine's paths that write over a lazily zeroed
.grad) is crossed with each escape, read through and written through, and checked against
values worked out with numpy and against the same program run by torch."""
import ctypes

import numpy as np
import pytest

import tapegrad as tg

try:
    import torch
except ImportError:
    torch = None

WRITTEN = 5.0  # what a program writes through its escaped view

# Routes by which a float32 buffer leaves the library. torch has no buffer protocol: its
# programs take numpy() for those routes, which shares memory the same way.
ROUTES = ["memoryview", "np.asarray", "np.frombuffer", "numpy()", "__array__", "data_ptr()"]


class Escaped:
    """A float32 tensor's buffer reached through one route, to read through and to write
    through (every element set to one value)."""

    def __init__(self, route, t):
        if route in ("memoryview", "np.asarray", "np.frombuffer") and not isinstance(t, tg.Tensor):
            route = "numpy()"
        self.view = None  # the memoryview route reads and writes through the memoryview itself
        if route == "memoryview":
            self.view = memoryview(t).cast("B").cast("f")
        elif route == "np.asarray":
            self.flat = np.asarray(t).reshape(-1)
        elif route == "np.frombuffer":
            self.flat = np.frombuffer(t, dtype=np.float32)
        elif route == "numpy()":
            self.flat = t.numpy().reshape(-1)
        elif route == "__array__":
            self.flat = t.__array__().reshape(-1)
        elif route == "data_ptr()":
            self.flat = np.ctypeslib.as_array((ctypes.c_float * t.numel()).from_address(t.data_ptr()))
        else:
            raise ValueError(route)

    def write(self, value):
        if self.view is not None:
            self.view[:] = np.full(len(self.view), value, dtype=np.float32)
        else:
            self.flat[:] = value

    def read(self):
        return np.array(self.view.tolist() if self.view is not None else self.flat, dtype=np.float64)


def values(shape, seed):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


# Graphs that reach each of the engine's paths writing a gradient over a lazily zeroed .grad:
# plain accumulation (a sum's gradient), a product's rule writing both factors' .grad in one
# pass and the add passing its gradient straight into b.grad (x*w + b), the fused chain of
# unary rules (tanh then **2), and the GEMM with beta = 1 into .grad (matmul). Each: its
# leaves' values, its loss, and each leaf's gradient worked out by hand.
GRAPHS = {
    "sum": (
        lambda shape: {"x": values(shape, 0)},
        lambda v: v["x"].sum(),
        lambda v: {"x": np.ones(v["x"].shape)},  # d(sum x)/dx = 1
    ),
    "x*w+b": (
        lambda shape: {"x": values(shape, 1), "w": values(shape, 2), "b": values(shape, 3)},
        lambda v: (v["x"] * v["w"] + v["b"]).sum(),
        lambda v: {"x": v["w"], "w": v["x"], "b": np.ones(v["b"].shape)},
    ),
    "tanh()**2": (
        lambda shape: {"x": values(shape, 4)},
        lambda v: (v["x"].tanh() ** 2).sum(),
        lambda v: {"x": 2 * np.tanh(v["x"]) * (1 - np.tanh(v["x"]) ** 2)},  # d(tanh^2)/dx
    ),
    "matmul": (
        lambda shape: {"a": values((shape[0], 5), 5), "b": values((5, shape[-1]), 6)},
        lambda v: (v["a"] @ v["b"]).sum(),
        lambda v: {"a": np.ones((len(v["a"]), v["b"].shape[1])) @ v["b"].T,  # d(sum a@b)/da = 1 @ b^T
                   "b": v["a"].T @ np.ones((len(v["a"]), v["b"].shape[1]))},
    ),
}

# 90,000 elements and more split across the thread pool.
SHAPES = [(2, 3), (300, 300)]
ORDERS = ["escape then zero_", "zero_ then escape"]


def escaped_then_zeroed(route, order, tensors):
    """zero_ of each tensor and an escaped view of each, in `order`."""
    if order == "escape then zero_":
        escaped = [Escaped(route, t) for t in tensors]
    for t in tensors:
        t.zero_()
    if order == "zero_ then escape":
        escaped = [Escaped(route, t) for t in tensors]
    return escaped


def grad_program(lib, graph, shape, route, order, write):
    """A backward, then each leaf's .grad zeroed and escaped, read (and written) through the
    escape, and a second backward: each leaf's .grad and what its escape reads, and what the
    escape read after the zero_."""
    make, loss, _ = GRAPHS[graph]
    leaves = {name: lib.tensor(array, requires_grad=True) for name, array in make(shape).items()}
    loss(leaves).backward()
    escaped = escaped_then_zeroed(route, order, [leaf.grad for leaf in leaves.values()])
    read_after_zero = [view.read() for view in escaped]
    if write:
        for view in escaped:
            view.write(WRITTEN)
    loss(leaves).backward()
    grads = [np.array(leaf.grad.numpy(), dtype=np.float64) for leaf in leaves.values()]
    return grads, [view.read() for view in escaped], read_after_zero


def plain_program(lib, route, order, write):
    """zero_ of a tensor of ones and an escape of it, read (and written) through the escape:
    the tensor's values, what the escape reads, what it read after the zero_."""
    t = lib.ones(2, 3)
    (view,) = escaped_then_zeroed(route, order, [t])
    read_after_zero = view.read()
    if write:
        view.write(WRITTEN)
    return np.array(t.tolist(), dtype=np.float64).reshape(-1), view.read(), read_after_zero


@pytest.mark.parametrize("write", [True, False], ids=["write through", "read through"])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("graph", GRAPHS)
def test_escaped_grad_keeps_what_zero_and_backward_give(graph, shape, route, order, write):
    grads, seen, seen_after_zero = grad_program(tg, graph, shape, route, order, write)
    make, _, by_hand = GRAPHS[graph]
    inputs = make(shape)
    by_hand_grads = by_hand({name: array.astype(np.float64) for name, array in inputs.items()}).values()
    expected = [(WRITTEN if write else 0.0) + grad for grad in by_hand_grads]
    for name, grad, through, zeroed, want in zip(inputs, grads, seen, seen_after_zero, expected):
        np.testing.assert_array_equal(zeroed, 0.0, err_msg=f"{name}.grad read through {route} after zero_")
        np.testing.assert_allclose(grad.reshape(-1), want.reshape(-1), rtol=1e-5, atol=1e-5, err_msg=f"{name}.grad")
        np.testing.assert_array_equal(through, grad.reshape(-1), err_msg=f"{name}.grad read through {route}")
    if torch is not None and shape == SHAPES[0]:  # the large shape's values are those worked out above
        torch_grads, torch_seen, _ = grad_program(torch, graph, shape, route, order, write)
        for name, grad, want, through in zip(inputs, grads, torch_grads, torch_seen):
            np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5, err_msg=f"{name}.grad against torch")
            np.testing.assert_allclose(through, want.reshape(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("write", [True, False], ids=["write through", "read through"])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("route", ROUTES)
def test_escaped_tensor_keeps_what_zero_gives(route, order, write):
    values_now, seen, seen_after_zero = plain_program(tg, route, order, write)
    np.testing.assert_array_equal(seen_after_zero, 0.0)
    np.testing.assert_array_equal(values_now, WRITTEN if write else 0.0)
    np.testing.assert_array_equal(seen, values_now)
    if torch is not None:
        np.testing.assert_array_equal(values_now, plain_program(torch, route, order, write)[0])


@pytest.mark.parametrize("write", [True, False], ids=["write through", "read through"])
def test_tensor_from_numpy_keeps_what_zero_gives(write):
    array = np.ones(6, dtype=np.float32)
    t = tg.from_numpy(array)
    t.zero_()
    np.testing.assert_array_equal(array, 0.0)
    if write:
        array[:] = WRITTEN
    np.testing.assert_array_equal(t.numpy(), WRITTEN if write else 0.0)
