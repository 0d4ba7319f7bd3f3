"""The oracle itself: check_op must fail, naming the culprit, when a value or a gradient is
wrong; otherwise a passing op test would mean nothing."""
import numpy as np
import pytest

from gradcheck import central_differences, check_op, check_op_torch, requires_torch


def test_central_differences_match_an_analytic_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    y = rng.standard_normal(3)
    weights = rng.standard_normal((2, 3))

    def f(a, b):
        return a ** 3 * b

    np.testing.assert_allclose(central_differences(f, [x, y], 0, weights), 3 * x ** 2 * y * weights, rtol=1e-7)
    np.testing.assert_allclose(central_differences(f, [x, y], 1, weights), (x ** 3 * weights).sum(axis=0), rtol=1e-7)


def test_check_op_rejects_a_wrong_value():
    with pytest.raises(AssertionError, match="value differs from numpy"):
        check_op(lambda a: a * 2, lambda a: a * 2.001, [(3,)])


def test_check_op_rejects_a_wrong_gradient_and_names_the_input():
    """The value of a * b.detach() is right, but input 1 receives no gradient through it."""
    def a_times_detached_b(a, b):
        return a * b.detach() + 0 * b

    with pytest.raises(AssertionError, match="gradient of input 1"):
        check_op(a_times_detached_b, lambda a, b: a * b, [(3,), (3,)])


def test_check_op_rejects_a_half_counted_fan_out():
    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_op(lambda a: a * a.detach(), lambda a: a * a, [(4,)], "float32")


def test_check_op_rejects_a_missing_gradient():
    with pytest.raises(AssertionError, match="input 1 .* got no gradient"):
        check_op(lambda a, b: a * b.detach(), lambda a, b: a * b, [(3,), (3,)])


@requires_torch
def test_check_op_torch_rejects_a_difference_from_torch():
    with pytest.raises(AssertionError, match="value differs from torch"):
        check_op_torch(lambda a: a * 2, lambda a: a * 3, [(3,)])
