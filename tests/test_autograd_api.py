"""The Python layer of autograd (python/tapegrad/autograd.py, _grad_mode.py, the aliases and
repr wiring of __init__.py, nn.functional's names): autograd.grad and autograd.backward
with their retain_graph, gradcheck's verdicts, set_grad_enabled / no_grad / enable_grad as
calls, context managers and decorators. Gradients are checked against analytic numpy
derivatives and, when installed, against PyTorch running the same calls.
tests/mutation/run.py checks that these tests fail when that layer is broken."""
import functools

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import requires_torch, to_numpy

try:
    import torch
except ImportError:
    torch = None

X = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])
Y = np.array([3.0, -2.0, 0.5])
W = np.array([[1.0, -0.5, 2.0], [0.25, 3.0, -1.0]])


def three_leaves(lib):
    x = lib.tensor(X, requires_grad=True)
    y = lib.tensor(Y, requires_grad=True)
    s = lib.tensor(0.75, dtype=lib.float64, requires_grad=True)
    return x, y, s


def three_input_loss(x, y, s):
    """sum((x * y) ** 2 * s) + sum(sin(y)): each input's gradient differs from the others'."""
    return ((x * y) ** 2 * s).sum() + y.sin().sum()


def three_input_grads():
    """d/dx = 2 x y^2 s, d/dy = sum over rows of 2 x^2 y s + cos(y), d/ds = sum((x y)^2)."""
    s = 0.75
    return 2 * X * Y**2 * s, (2 * X**2 * Y * s).sum(0) + np.cos(Y), np.sum((X * Y) ** 2)


# ---------------------------------------------------------------- autograd.grad


def test_grad_returns_each_inputs_own_gradient_and_leaves_grad_alone():
    x, y, s = three_leaves(tg)
    grads = tg.autograd.grad(three_input_loss(x, y, s), [x, y, s])
    assert isinstance(grads, tuple) and len(grads) == 3
    for grad, expected, leaf in zip(grads, three_input_grads(), (x, y, s)):
        assert grad.shape == leaf.shape
        np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-12)
        assert leaf.grad is None


def test_grad_takes_inputs_in_any_order_and_as_a_tuple():
    x, y, s = three_leaves(tg)
    grads = tg.autograd.grad(three_input_loss(x, y, s), (s, x, y))
    expected_x, expected_y, expected_s = three_input_grads()
    for grad, expected in zip(grads, (expected_s, expected_x, expected_y)):
        np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-12)


def test_grad_with_respect_to_an_intermediate_and_a_leaf():
    """d loss / d h for h = x * y inside the graph, and d loss / d y beside it."""
    x, y, _ = three_leaves(tg)
    h = x * y
    loss = (h.tanh() * tg.tensor(W)).sum() + (y * y).sum()
    grad_h, grad_y = tg.autograd.grad(loss, [h, y])
    np.testing.assert_allclose(to_numpy(grad_h), W * (1 - np.tanh(X * Y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(grad_y), (W * (1 - np.tanh(X * Y) ** 2) * X).sum(0) + 2 * Y, rtol=1e-12)
    assert x.grad is None and y.grad is None


def test_grad_of_a_non_scalar_output_weights_it_by_grad_outputs():
    x = tg.tensor(X, requires_grad=True)
    out = x.exp()
    (grad,) = tg.autograd.grad(out, x, grad_outputs=tg.tensor(W), retain_graph=True)
    np.testing.assert_allclose(to_numpy(grad), W * np.exp(X), rtol=1e-12)
    (grad,) = tg.autograd.grad([out], [x], grad_outputs=[tg.tensor(-W)])
    np.testing.assert_allclose(to_numpy(grad), -W * np.exp(X), rtol=1e-12)


def test_grad_of_several_outputs_sums_their_gradients():
    x = tg.tensor(X, requires_grad=True)
    first, second = (x * x).sum(), (3 * x).sum()
    (grad,) = tg.autograd.grad([first, second], [x])
    np.testing.assert_allclose(to_numpy(grad), 2 * X + 3, rtol=1e-12)


@requires_torch
def test_grad_matches_torch():
    results = []
    for lib in (tg, torch):
        x, y, s = three_leaves(lib)
        h = x * y
        loss = three_input_loss(h, y, s)
        results.append([g.detach().numpy() for g in lib.autograd.grad(loss, [y, h, s, x])])
    for mine, theirs in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


@pytest.mark.parametrize("retain_graph", [None, False])
def test_grad_without_retain_graph_frees_the_graph(retain_graph):
    x = tg.tensor(X, requires_grad=True)
    loss = (x.exp() * x).sum()
    tg.autograd.grad(loss, [x], retain_graph=retain_graph)
    with pytest.raises(RuntimeError):
        tg.autograd.grad(loss, [x])


def test_grad_with_retain_graph_can_run_again():
    x = tg.tensor(X, requires_grad=True)
    loss = (x.exp() * x).sum()
    expected = np.exp(X) * (1 + X)
    (first,) = tg.autograd.grad(loss, [x], retain_graph=True)
    (second,) = tg.autograd.grad(loss, [x])
    np.testing.assert_allclose(to_numpy(first), expected, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(second), expected, rtol=1e-12)
    with pytest.raises(RuntimeError):
        tg.autograd.grad(loss, [x])


# ---------------------------------------------------------------- autograd.backward


@pytest.mark.parametrize("retain_graph", [None, False])
def test_backward_without_retain_graph_frees_the_graph(retain_graph):
    x = tg.tensor(X, requires_grad=True)
    loss = (x.exp() * x).sum()
    tg.autograd.backward(loss, retain_graph=retain_graph)
    with pytest.raises(RuntimeError):
        tg.autograd.backward(loss)


def test_backward_with_retain_graph_accumulates_a_second_pass():
    x = tg.tensor(X, requires_grad=True)
    loss = (x.exp() * x).sum()
    tg.autograd.backward([loss], retain_graph=True)
    tg.autograd.backward([loss])
    np.testing.assert_allclose(to_numpy(x.grad), 2 * np.exp(X) * (1 + X), rtol=1e-12)


@pytest.mark.parametrize("wrap", [lambda t: t, lambda t: [t], lambda t: (t,)], ids=["tensor", "list", "tuple"])
def test_backward_weights_each_output_by_its_grad_tensor(wrap):
    x = tg.tensor(X, requires_grad=True)
    tg.autograd.backward(wrap(x.sin()), wrap(tg.tensor(W)))
    np.testing.assert_allclose(to_numpy(x.grad), W * np.cos(X), rtol=1e-12)


def test_backward_of_several_outputs_with_and_without_grad_tensors():
    x = tg.tensor(X, requires_grad=True)
    tg.autograd.backward((x.sin(), (x * x).sum()), (tg.tensor(W), None))
    np.testing.assert_allclose(to_numpy(x.grad), W * np.cos(X) + 2 * X, rtol=1e-12)


# ---------------------------------------------------------------- gradcheck


def detached_square(x):
    """x * x with one factor detached: the tape's gradient is x, the true one 2 x."""
    return x.detach() * x


def test_gradcheck_accepts_right_gradients_of_every_input():
    x, y, s = three_leaves(tg)
    assert tg.autograd.gradcheck(three_input_loss, (x, y, s)) is True
    assert tg.autograd.gradcheck(lambda a: a.exp() * a, x) is True


def test_gradcheck_rejects_a_wrong_gradient():
    x = tg.tensor(X, requires_grad=True)
    with pytest.raises(tg.autograd.GradcheckError, match=r"output 0 with respect to input 0"):
        tg.autograd.gradcheck(detached_square, (x,))
    assert tg.autograd.gradcheck(detached_square, (x,), raise_exception=False) is False
    assert issubclass(tg.autograd.GradcheckError, RuntimeError)


def test_gradcheck_checks_every_input_that_requires_grad():
    x = tg.tensor(X, requires_grad=True)
    y = tg.tensor(Y, requires_grad=True)
    with pytest.raises(tg.autograd.GradcheckError, match=r"with respect to input 1"):
        tg.autograd.gradcheck(lambda a, b: a.sum() * detached_square(b), (x, y))


def test_gradcheck_checks_every_output():
    x = tg.tensor(X, requires_grad=True)
    with pytest.raises(tg.autograd.GradcheckError, match=r"output 1 with respect to input 0"):
        tg.autograd.gradcheck(lambda a: (a.exp(), detached_square(a)), (x,))


def test_gradcheck_catches_a_gradient_off_in_one_element():
    """x * x where one element's factor is detached: one Jacobian entry of the 6 x 6 is wrong."""
    x = tg.tensor(X, requires_grad=True)
    mask = tg.tensor((np.arange(6) == 4).reshape(2, 3).astype(np.float64))
    with pytest.raises(tg.autograd.GradcheckError, match=r"output element 4, input element 4"):
        tg.autograd.gradcheck(lambda a: a * (a * (1 - mask) + a.detach() * mask), (x,))


def test_gradcheck_skips_inputs_that_do_not_require_grad_and_leaves_inputs_unchanged():
    x = tg.tensor(X, requires_grad=True)
    constant = tg.tensor(Y)
    assert tg.autograd.gradcheck(lambda a, b, k: detached_square(b) * k + a.sin(), (x, constant, 2.0))
    np.testing.assert_array_equal(to_numpy(x), X)
    np.testing.assert_array_equal(to_numpy(constant), Y)


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="require grad"):
        tg.autograd.gradcheck(lambda a: a * 2, (tg.tensor(X),))


def test_gradcheck_tolerances_decide():
    """a * (1 + 1e-4) with the tape's factor 1 + 1e-4 and differences seeing it too: passes;
    the same with the tape's gradient 1e-4 off is rejected at rtol=1e-6 and accepted at 1e-3."""
    x = tg.tensor(X, requires_grad=True)
    off = lambda a: a + 1e-4 * a.detach()  # noqa: E731 - the gradient misses the 1e-4 * a
    assert tg.autograd.gradcheck(off, (x,), atol=0, rtol=1e-3)
    with pytest.raises(tg.autograd.GradcheckError):
        tg.autograd.gradcheck(off, (x,), atol=0, rtol=1e-6)


# ---------------------------------------------------------------- grad mode


def records(x):
    y = x * 2
    return y.requires_grad and y.grad_fn is not None


@pytest.fixture
def leaf():
    x = tg.tensor(Y, requires_grad=True)
    yield x
    assert tg.is_grad_enabled(), "a test left grad mode off"


def test_set_grad_enabled_as_a_call_switches_the_mode_until_switched_back(leaf):
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled()
        assert not records(leaf)
        tg.set_grad_enabled(True)
        assert tg.is_grad_enabled()
        assert records(leaf)
    finally:
        tg.set_grad_enabled(True)


@pytest.mark.parametrize("raises", [False, True])
def test_set_grad_enabled_as_a_context_manager_restores_the_mode(leaf, raises):
    with pytest.raises(ZeroDivisionError) if raises else _nothing():
        with tg.set_grad_enabled(False):
            assert not tg.is_grad_enabled()
            assert not records(leaf)
            if raises:
                1 / 0
    assert tg.is_grad_enabled() and records(leaf)
    with tg.no_grad():
        with tg.set_grad_enabled(True):
            assert records(leaf)
        assert not tg.is_grad_enabled()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def test_set_grad_enabled_as_a_decorator(leaf):
    @tg.set_grad_enabled(False)
    def without_grad(x):
        """Doubles x."""
        assert not tg.is_grad_enabled()
        return x * 2

    assert tg.is_grad_enabled(), "decorating must not change the mode"
    assert without_grad.__name__ == "without_grad" and without_grad.__doc__ == "Doubles x."
    result = without_grad(leaf)
    assert not result.requires_grad and result.grad_fn is None
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(True)
    def with_grad(x):
        return x * 2

    with tg.no_grad():
        assert with_grad(leaf).requires_grad
        assert not tg.is_grad_enabled()


@requires_torch
def test_set_grad_enabled_leaves_the_mode_as_torch_does():
    """After each use, is_grad_enabled() is what torch's is."""
    seen = {}
    for lib in (tg, torch):
        modes = []
        with lib.no_grad():
            lib.set_grad_enabled(True)
            modes.append(lib.is_grad_enabled())
        modes.append(lib.is_grad_enabled())
        with lib.set_grad_enabled(False):
            modes.append(lib.is_grad_enabled())
        modes.append(lib.is_grad_enabled())
        decorated = lib.set_grad_enabled(False)(lambda: lib.is_grad_enabled())
        modes.append(lib.is_grad_enabled())
        modes.append(decorated())
        modes.append(lib.is_grad_enabled())
        seen[lib.__name__] = modes
        lib.set_grad_enabled(True)
    assert seen["tapegrad"] == seen["torch"]


def test_no_grad_as_a_decorator(leaf):
    @tg.no_grad()
    def step(x):
        """One step."""
        assert not tg.is_grad_enabled()
        return x * 2

    assert step.__name__ == "step" and step.__doc__ == "One step."
    result = step(leaf)
    assert not result.requires_grad and result.grad_fn is None
    assert tg.is_grad_enabled() and records(leaf)


def test_enable_grad_as_a_decorator_and_a_context_manager_inside_no_grad(leaf):
    @tg.enable_grad()
    def recorded(x):
        assert tg.is_grad_enabled()
        return x * 2

    with tg.no_grad():
        result = recorded(leaf)
        assert not tg.is_grad_enabled()
        assert not records(leaf)
        with tg.enable_grad():
            assert records(leaf)
        assert not records(leaf)
    assert result.requires_grad and result.grad_fn is not None
    result.sum().backward()
    np.testing.assert_array_equal(to_numpy(leaf.grad), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("context", ["no_grad", "enable_grad"])
def test_grad_mode_contexts_restore_the_mode_after_an_exception(leaf, context):
    outer = tg.no_grad if context == "enable_grad" else tg.enable_grad

    def raising():
        with getattr(tg, context)():
            raise KeyError("inside")

    with outer():
        before = tg.is_grad_enabled()
        with pytest.raises(KeyError):
            raising()
        assert tg.is_grad_enabled() == before
        with pytest.raises(KeyError):
            getattr(tg, context)()(functools.partial(raising))()
        assert tg.is_grad_enabled() == before


# ---------------------------------------------------------------- the package's names


def test_dtype_aliases_are_torchs():
    assert tg.float is tg.float32 and tg.double is tg.float64 and tg.long is tg.int64
    assert [d.name for d in (tg.float32, tg.float64, tg.int64, tg.bool)] == ["float32", "float64", "int64", "bool"]
    assert tg.tensor([True]).dtype == tg.bool
    assert tg.tensor([1]).dtype == tg.int64
    assert tg.tensor([1.0]).dtype == tg.float32
    assert tg.zeros(1, dtype=tg.double).numpy().dtype == np.float64
    assert tg.zeros(1, dtype=tg.float).numpy().dtype == np.float32
    assert tg.zeros(1, dtype=tg.long).numpy().dtype == np.int64


def test_repr_and_str_of_a_tensor_show_its_values_and_autograd_state():
    x = tg.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    assert repr(x) == str(x) == "tensor([0., 1., 2., 3.], requires_grad=True)"
    assert repr(x * 2) == "tensor([0., 2., 4., 6.], grad_fn=<MulBackward0>)"
    assert repr(tg.tensor(1.5, dtype=tg.float64)) == "tensor(1.5000, dtype=tapegrad.float64)"
    assert repr(tg.tensor([True, False])) == "tensor([ True, False])"
    assert type(x).__module__ == "tapegrad" and type(x).__name__ == "Tensor"


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.float32(2.0), np.int64(2)], ids=repr)
def test_a_numpy_scalar_on_the_left_defers_to_the_tensor(scalar):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    for result in (scalar * x, scalar + x, scalar - x):
        assert isinstance(result, tg.Tensor) and result.requires_grad


@pytest.mark.parametrize("lib_name", ["tapegrad", pytest.param("torch", marks=requires_torch)])
def test_an_array_on_the_left_defers_to_the_tensor_and_raises_typeerror(lib_name):
    """ndarray * t: numpy defers to the tensor (__array_priority__), whose number slots take no
    arrays: TypeError, as torch's; numpy converting the tensor instead would raise RuntimeError
    (a tensor requiring grad has no numpy())."""
    lib = tg if lib_name == "tapegrad" else torch
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError):
        np.ones(2) * x


def test_nn_functional_names_the_right_functions():
    logits = np.array([[1.0, -0.5, 2.0], [0.25, 0.0, -1.0]])
    target = np.array([2, 0])
    x = tg.tensor(logits)
    F = tg.nn.functional
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    np.testing.assert_allclose(to_numpy(F.relu(x)), np.maximum(logits, 0))
    np.testing.assert_allclose(to_numpy(F.softmax(x, 1)), np.exp(log_p), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(F.log_softmax(x, 1)), log_p, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(F.log_softmax(x, 0)),
                               logits - np.log(np.exp(logits).sum(0, keepdims=True)), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(x, tg.tensor(target)).item(),
                               -log_p[[0, 1], target].mean(), rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(x, tg.tensor(W)).item(), np.mean((logits - W) ** 2), rtol=1e-12)
    weight, bias = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]), np.array([0.5, -0.5])
    np.testing.assert_allclose(to_numpy(F.linear(x, tg.tensor(weight), tg.tensor(bias))),
                               logits @ weight.T + bias, rtol=1e-12)
    assert sorted(F.__all__) == ["cross_entropy", "linear", "log_softmax", "mse_loss", "relu", "softmax"]
