"""The cells of Dive into Deep Learning's "Automatic Differentiation" chapter with torch
replaced by tg, checked against the values the book derives."""
import numpy as np
import pytest

import tapegrad as tg
from gradcheck import to_numpy


@pytest.fixture
def x():
    x = tg.arange(4.0)
    x.requires_grad_(True)
    return x


def test_gradient_of_a_scalar_function(x):
    y = 2 * tg.dot(x, x)
    y.backward()
    assert (x.grad == 4 * x).all().item()

    x.grad.zero_()
    y = x.sum()
    y.backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.ones(4))


def test_backward_for_non_scalar_variables(x):
    y = x * x
    y.backward(gradient=tg.ones(len(y)))
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 2.0, 4.0, 6.0])


def test_sum_then_backward_equals_backward_with_ones(x):
    y = x * x
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 2.0, 4.0, 6.0])


def test_detaching_computation(x):
    y = x * x
    u = y.detach()
    z = u * x
    z.sum().backward()
    assert (x.grad == u).all().item()

    # y's own graph is untouched by the backward through z.
    x.grad.zero_()
    y.sum().backward()
    assert (x.grad == 2 * x).all().item()


def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


@pytest.mark.parametrize("seed", range(6))
def test_python_control_flow(seed):
    tg.manual_seed(seed)
    a = tg.randn(size=(), requires_grad=True)
    assert a.shape == ()
    d = f(a)
    d.backward()
    # d is a piecewise-linear function of a: d = k * a, so the gradient is d / a.
    np.testing.assert_allclose(a.grad.item(), (d / a).item(), rtol=1e-6)


@pytest.mark.parametrize("a_value, branch_factor", [(0.3, 1.0), (-0.3, 100.0), (2.5, 1.0), (-1e-3, 100.0)])
def test_python_control_flow_both_branches(a_value, branch_factor):
    """With a fixed a the doublings are known: b = a * 2^k with 2^k * |a| >= 1000."""
    a = tg.tensor(a_value, requires_grad=True)
    d = f(a)
    d.backward()
    doublings = 1
    while 2 ** doublings * abs(a_value) < 1000:
        doublings += 1
    expected_grad = branch_factor * 2 ** doublings
    assert a.grad.item() == expected_grad
    # The book's check, exact here because a * 2^k / a loses nothing.
    if branch_factor == 1.0:
        assert (a.grad == d / a).item()
