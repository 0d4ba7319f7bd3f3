"""User errors raise the exception a PyTorch user expects, with a message that says what broke;
none of them crashes the interpreter or corrupts later results."""
import operator
import re

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import to_numpy


def shape_pattern(shape):
    """Matches a shape written as a tuple or a list: (2, 3), [2, 3], (3,), [3] or (3)."""
    numbers = r"\s*,\s*".join(str(n) for n in shape)
    return r"[(\[]\s*" + numbers + r"\s*,?\s*[)\]]"


ARITHMETIC = [
    pytest.param(operator.add, id="+"),
    pytest.param(operator.sub, id="-"),
    pytest.param(operator.mul, id="*"),
    pytest.param(operator.truediv, id="/"),
    pytest.param(operator.pow, id="**"),
    pytest.param(operator.eq, id="=="),
    pytest.param(operator.lt, id="<"),
]


@pytest.mark.parametrize("shapes", [[(3,), (4,)], [(2, 3), (3, 2)], [(2, 1, 3), (4, 2)]], ids=str)
@pytest.mark.parametrize("op", ARITHMETIC)
def test_shape_mismatch_raises_runtime_error_naming_both_shapes(op, shapes):
    a, b = (tg.ones(shape) for shape in shapes)
    with pytest.raises(RuntimeError) as caught:
        op(a, b)
    message = str(caught.value)
    for shape in shapes:
        assert re.search(shape_pattern(shape), message), f"{shape} not named in: {message}"


def test_shape_mismatch_with_grad_leaves_no_trace():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        x * tg.ones(4)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.full(3, 2.0))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda x: x + "a", id="x + str"),
        pytest.param(lambda x: "a" + x, id="str + x"),
        pytest.param(lambda x: x * None, id="x * None"),
        pytest.param(lambda x: x - [1.0], id="x - list"),
        pytest.param(lambda x: x / object(), id="x / object"),
        pytest.param(lambda x: x ** "2", id="x ** str"),
        pytest.param(lambda x: tg.dot(x, 3), id="dot(x, int)"),
        pytest.param(lambda x: tg.dot("x", x), id="dot(str, x)"),
        pytest.param(lambda x: tg.dot(x, [1.0, 2.0, 3.0]), id="dot(x, list)"),
    ],
)
def test_wrong_argument_type_raises_type_error(call):
    with pytest.raises(TypeError):
        call(tg.ones(3))


@pytest.mark.parametrize(
    "shapes", [[(2, 2), (2, 2)], [(3,), (1, 3)], [(), ()], [(3,), (4,)]], ids=str,
)
def test_dot_needs_two_1d_tensors_of_equal_length(shapes):
    a, b = (tg.ones(shape) for shape in shapes)
    with pytest.raises(RuntimeError):
        tg.dot(a, b)


def test_backward_on_non_scalar_without_gradient_raises():
    x = tg.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError):
        y.backward()
    assert x.grad is None


def test_backward_with_gradient_of_wrong_shape_raises():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2).backward(gradient=tg.ones(4))


def test_backward_on_tensor_not_requiring_grad_raises():
    with pytest.raises(RuntimeError):
        tg.ones(3).sum().backward()


def test_second_backward_message_suggests_retain_graph():
    x = tg.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_bool_of_multi_element_tensor_raises():
    with pytest.raises(RuntimeError):
        bool(tg.ones(3) > 0)


def test_item_of_multi_element_tensor_raises():
    with pytest.raises((RuntimeError, ValueError)):
        tg.ones(3).item()


def test_ragged_nested_list_raises():
    with pytest.raises((ValueError, TypeError)):
        tg.tensor([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: tg.arange(4).requires_grad_(True), id="int64.requires_grad_"),
        pytest.param(lambda: tg.tensor([1, 2], requires_grad=True), id="tensor(ints, requires_grad)"),
        pytest.param(lambda: (tg.ones(2) > 0).requires_grad_(True), id="bool.requires_grad_"),
    ],
)
def test_only_float_tensors_can_require_grad(make):
    with pytest.raises(RuntimeError):
        make()


@pytest.mark.parametrize(
    "make, error",
    [
        pytest.param(lambda: tg.zeros(-1), RuntimeError, id="zeros(-1)"),
        pytest.param(lambda: tg.ones(2, -3), RuntimeError, id="ones(2, -3)"),
        pytest.param(lambda: tg.randn(-1), RuntimeError, id="randn(-1)"),
        pytest.param(lambda: tg.zeros(2.5), TypeError, id="zeros(2.5)"),
        pytest.param(lambda: tg.tensor("abc"), TypeError, id="tensor(str)"),
        pytest.param(lambda: tg.from_numpy([1.0, 2.0]), TypeError, id="from_numpy(list)"),
    ],
)
def test_bad_constructor_arguments(make, error):
    with pytest.raises(error):
        make()


@pytest.mark.parametrize(
    "value", [2 ** 63, -(2 ** 63) - 1, [1, 2 ** 63], [1, 2 ** 64]],
    ids=["2**63", "-2**63-1", "list-with-2**63", "list-with-2**64"],
)
def test_integer_out_of_int64_range_raises(value):
    """torch raises an overflow ValueError: no silent float tensor, no binding-layer cast error."""
    with pytest.raises((ValueError, OverflowError, TypeError)) as caught:
        tg.tensor(value)
    assert "pybind11" not in str(caught.value).lower()


def test_bool_of_empty_tensor_raises():
    with pytest.raises(RuntimeError):
        bool(tg.tensor([]))
