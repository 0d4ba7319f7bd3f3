"""The seed example, which must print exactly what PyTorch prints, and the worked example
z = (<x, w> - y)^2 with its closed-form gradients."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import FLOAT_DTYPES, TOLERANCES, requires_torch, to_numpy, torch

SEED_PRINT = (
    "tensor([0., 1., 2., 3.], requires_grad=True) \n"
    " tensor(28., grad_fn=<MulBackward0>) \n"
    " tensor([ 0.,  4.,  8., 12.])\n"
)


def run_seed_example(lib, capsys):
    """The seed cells, written against `lib` (tapegrad, or torch for the reference)."""
    x = lib.arange(4.0)
    x.requires_grad_(True)
    assert x.grad is None
    y = 2 * lib.dot(x, x)
    y.backward()
    print(x, "\n", y, "\n", x.grad)
    assert capsys.readouterr().out == SEED_PRINT

    z = x.sum()
    x.grad.zero_()
    z.backward()
    assert repr(x.grad) == "tensor([1., 1., 1., 1.])"


def test_seed_example_prints_what_pytorch_prints(capsys):
    run_seed_example(tg, capsys)


@requires_torch
def test_seed_example_expected_text_is_pytorchs(capsys):
    """Guards the expected strings above: PyTorch itself must print them."""
    run_seed_example(torch, capsys)


def test_seed_example_values_and_graph():
    x = tg.arange(4.0)
    assert x.dtype == tg.float32
    assert not x.requires_grad
    x.requires_grad_(True)
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    y = 2 * tg.dot(x, x)
    assert y.shape == ()
    assert y.grad_fn.name() == "MulBackward0"
    assert not y.is_leaf
    assert y.item() == 28.0
    y.backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 4.0, 8.0, 12.0])
    assert (x.grad == 4 * x).all().item()
    assert x.grad.dtype == tg.float32
    assert not x.grad.requires_grad

    grad_buffer = x.grad.data_ptr()
    x.grad.zero_()
    np.testing.assert_array_equal(to_numpy(x.grad), np.zeros(4))
    x.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.ones(4))
    assert x.grad.data_ptr() == grad_buffer


def least_squares_case(n, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype),
            np.asarray(rng.standard_normal(), dtype=dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [1, 3, 100])
def test_worked_example_squared_residual(n, dtype):
    """z = (<x, w> - y)^2: dz/dw = 2(<x, w> - y) x, dz/dx = 2(<x, w> - y) w, dz/dy = -2(<x, w> - y)."""
    x_np, w_np, y_np = least_squares_case(n, dtype, seed=n)
    x = tg.tensor(x_np, requires_grad=True)
    w = tg.tensor(w_np, requires_grad=True)
    y = tg.tensor(y_np, requires_grad=True)
    z = (tg.dot(x, w) - y) ** 2
    z.backward()

    x64, w64, y64 = (a.astype(np.float64) for a in (x_np, w_np, y_np))
    residual = np.dot(x64, w64) - y64
    tolerance = TOLERANCES[dtype]["grad"]
    assert z.dtype == getattr(tg, dtype)
    np.testing.assert_allclose(z.item(), residual ** 2, **tolerance)
    np.testing.assert_allclose(to_numpy(w.grad), 2 * residual * x64, err_msg="dz/dw", **tolerance)
    np.testing.assert_allclose(to_numpy(x.grad), 2 * residual * w64, err_msg="dz/dx", **tolerance)
    np.testing.assert_allclose(to_numpy(y.grad), -2 * residual, err_msg="dz/dy", **tolerance)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [1, 3, 100])
def test_worked_example_with_python_float_target(n, dtype):
    x_np, w_np, y_np = least_squares_case(n, dtype, seed=n)
    x = tg.tensor(x_np)
    w = tg.tensor(w_np, requires_grad=True)
    target = float(y_np)
    z = (tg.dot(x, w) - target) ** 2
    z.backward()

    x64 = x_np.astype(np.float64)
    residual = np.dot(x64, w_np.astype(np.float64)) - target
    assert x.grad is None
    np.testing.assert_allclose(to_numpy(w.grad), 2 * residual * x64, **TOLERANCES[dtype]["grad"])
