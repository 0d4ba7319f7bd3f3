"""The autograd engine: grad_fn names, accumulation into leaves in place, fan-out, retain_graph,
detach, no_grad, independent graphs, and 100,000-op chains (no recursion)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapegrad as tg
from gradcheck import to_numpy


@pytest.mark.parametrize(
    "make, name",
    [
        pytest.param(lambda x, y: x + y, "AddBackward0", id="x + y"),
        pytest.param(lambda x, y: x + 2, "AddBackward0", id="x + 2"),
        pytest.param(lambda x, y: 2 + x, "AddBackward0", id="2 + x"),
        pytest.param(lambda x, y: x - y, "SubBackward0", id="x - y"),
        pytest.param(lambda x, y: x - 2, "SubBackward0", id="x - 2"),
        pytest.param(lambda x, y: x * y, "MulBackward0", id="x * y"),
        pytest.param(lambda x, y: 2 * x, "MulBackward0", id="2 * x"),
        pytest.param(lambda x, y: x / y, "DivBackward0", id="x / y"),
        pytest.param(lambda x, y: x / 2, "DivBackward0", id="x / 2"),
        pytest.param(lambda x, y: -x, "NegBackward0", id="-x"),
        pytest.param(lambda x, y: x ** 2, "PowBackward0", id="x ** 2"),
        pytest.param(lambda x, y: x ** y, "PowBackward1", id="x ** y"),
        pytest.param(lambda x, y: tg.dot(x, y), "DotBackward0", id="tg.dot(x, y)"),
        pytest.param(lambda x, y: x.sum(), "SumBackward0", id="x.sum()"),
        pytest.param(lambda x, y: tg.sum(x), "SumBackward0", id="tg.sum(x)"),
        pytest.param(lambda x, y: x.mean(), "MeanBackward0", id="x.mean()"),
    ],
)
def test_grad_fn_names_are_torchs(make, name):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tg.tensor([0.5, 1.5, 2.5], requires_grad=True)
    assert make(x, y).grad_fn.name() == name


def test_leaf_and_result_attributes():
    x = tg.ones(3, requires_grad=True)
    y = x * 2
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert x.grad is None


def test_requires_grad_propagates_from_any_operand():
    x = tg.ones(3, requires_grad=True)
    c = tg.ones(3)
    assert (c * x).requires_grad
    assert (x + c).requires_grad
    assert not (c + c).requires_grad


def test_requires_grad_flag_can_be_cleared_on_a_leaf():
    x = tg.ones(3).requires_grad_()
    assert x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    assert (x * 2).grad_fn is None


def test_gradients_accumulate_in_place_across_backward_calls():
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    grad_buffer = x.grad.data_ptr()
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, -4.0, 6.0])

    (x * x).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [4.0, -8.0, 12.0])
    assert x.grad.data_ptr() == grad_buffer

    (3 * x).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [7.0, -5.0, 15.0])
    assert x.grad.data_ptr() == grad_buffer


def test_zero_is_in_place_and_later_backward_reuses_the_buffer():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    grad = x.grad
    grad_buffer = grad.data_ptr()
    grad.zero_()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 0.0])
    assert x.grad.data_ptr() == grad_buffer
    (x * 5).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [5.0, 5.0])
    # A handle taken before the backward sees the same buffer.
    np.testing.assert_array_equal(to_numpy(grad), [5.0, 5.0])
    assert x.grad.data_ptr() == grad_buffer


# Graphs of leaves x, w, b whose gradients have closed forms: after zero_, a backward writes
# its first contribution over a zeroed .grad (by each path: passed on, mapped, a product's
# two factors, a fused chain) and adds any later one.
def _tanh_squared_grad(u):
    t = np.tanh(u)
    return 2 * t * (1 - t * t)


FIRST_GRADIENT_GRAPHS = [
    pytest.param(lambda x, w, b: x + w, lambda x, w, b: {"x": np.ones_like(x), "w": np.ones_like(w)}, id="x + w"),
    pytest.param(lambda x, w, b: x * 3, lambda x, w, b: {"x": np.full_like(x, 3)}, id="x * 3"),
    pytest.param(lambda x, w, b: x * w - b, lambda x, w, b: {"x": w, "w": x, "b": -np.ones_like(b)}, id="x*w - b"),
    pytest.param(lambda x, w, b: x * w, lambda x, w, b: {"x": w, "w": x}, id="x * w"),
    pytest.param(lambda x, w, b: x.tanh() ** 2, lambda x, w, b: {"x": _tanh_squared_grad(x)}, id="tanh(x)**2"),
    pytest.param(lambda x, w, b: x * x + x.tanh(), lambda x, w, b: {"x": 2 * x + 1 - np.tanh(x) ** 2},
                 id="x*x + tanh(x)"),
    pytest.param(lambda x, w, b: b - x * w, lambda x, w, b: {"x": -w, "w": -x, "b": np.ones_like(b)}, id="b - x*w"),
    pytest.param(lambda x, w, b: x * b + b, lambda x, w, b: {"x": b, "b": x + 1}, id="x*b + b"),
    pytest.param(lambda x, w, b: (x * w + b) * w, lambda x, w, b: {"x": w * w, "w": 2 * x * w + b, "b": w},
                 id="(x*w + b) * w"),
    pytest.param(
        lambda x, w, b: (lambda u: u.tanh() + u * u)(x * w + b),
        lambda x, w, b: {name: (1 - np.tanh(x * w + b) ** 2 + 2 * (x * w + b)) * factor
                         for name, factor in (("x", w), ("w", x), ("b", 1))},
        id="tanh(u) + u*u, u = x*w + b",
    ),
    pytest.param(
        lambda x, w, b: (x * w + b).tanh() ** 2,
        lambda x, w, b: {"x": _tanh_squared_grad(x * w + b) * w, "w": _tanh_squared_grad(x * w + b) * x,
                         "b": _tanh_squared_grad(x * w + b)},
        id="tanh(x*w + b)**2",
    ),
]


@pytest.mark.parametrize("graph, gradients", FIRST_GRADIENT_GRAPHS)
@pytest.mark.parametrize("numel", [1, 1000, (1 << 20) + 3])  # the last streams and splits across threads
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_after_zero_writes_the_gradient_over_the_zeros(graph, gradients, numel, dtype):
    rng = np.random.default_rng(numel)
    values = {name: rng.uniform(-2, 2, numel).astype(dtype) for name in "xwb"}
    leaves = {name: tg.tensor(values[name], requires_grad=True) for name in "xwb"}
    expected = gradients(*(values[name].astype(np.float64) for name in "xwb"))
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    loss = lambda: graph(*leaves.values()).sum()  # noqa: E731
    loss().backward()
    loss().backward()  # every .grad holds twice its gradient
    buffers = {name: leaves[name].grad.data_ptr() for name in expected}
    for name in expected:
        leaves[name].grad.zero_()
    loss().backward()
    for name, gradient in expected.items():
        assert leaves[name].grad.data_ptr() == buffers[name]
        np.testing.assert_allclose(to_numpy(leaves[name].grad), gradient, rtol=tolerance, atol=tolerance, err_msg=name)
    loss().backward()  # now added to
    for name, gradient in expected.items():
        np.testing.assert_allclose(to_numpy(leaves[name].grad), 2 * gradient, rtol=tolerance, atol=tolerance,
                                   err_msg=name)


@pytest.mark.parametrize("numel", [5, (1 << 20) + 3])
def test_backward_after_zeroing_one_factor_adds_into_the_other(numel):
    x_values, w_values = np.linspace(-1, 1, numel), np.linspace(2, 3, numel)
    x, w = tg.tensor(x_values, requires_grad=True), tg.tensor(w_values, requires_grad=True)
    (x * w).sum().backward()
    x.grad.zero_()
    (x * w).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), w_values)
    np.testing.assert_array_equal(to_numpy(w.grad), 2 * x_values)


def test_backward_after_zero_writes_a_broadcast_leaf_gradient_over_the_zeros():
    x = tg.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    b = tg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    for _ in range(2):
        (x * b + b).sum().backward()
        b.grad.zero_()
        x.grad.zero_()
    (x * b + b).sum().backward()
    np.testing.assert_array_equal(to_numpy(b.grad), np.arange(12.0).reshape(4, 3).sum(axis=0) + 4)
    np.testing.assert_array_equal(to_numpy(x.grad), np.tile([1.0, -2.0, 0.5], (4, 1)))


def _zeroed_affine_leaves(numel=1000):
    """x, w, b whose .grad buffers a step of tanh(x*w + b)**2 made and zero_ then zeroed
    lazily, over that step's values; and the float64 values of x, w and x*w + b."""
    rng = np.random.default_rng(7)
    values = [rng.uniform(-2, 2, numel) for _ in range(3)]
    x, w, b = (tg.tensor(v, requires_grad=True) for v in values)
    ((x * w + b).tanh() ** 2).sum().backward()
    for leaf in (x, w, b):
        leaf.grad.zero_()
    return (x, w, b), (values[0], values[1], values[0] * values[1] + values[2])


def _buffers_taken(run):
    before = tg._core._pool_stats()
    run()
    after = tg._core._pool_stats()
    return sum(after[key] - before[key] for key in ("os_allocations", "reuses"))


def test_the_gradient_an_add_passes_to_a_zeroed_leaf_is_written_there_once():
    # In a pass that runs no user code, the add's gradient is computed straight into b.grad
    # and the product reads it there; a hook anywhere in the pass may replace b.grad, so there
    # the gradients are computed apart and added into the .grad buffers when their turn comes.
    taken = {}
    for hooked in (False, True):
        (x, w, b), (x_values, w_values, u) = _zeroed_affine_leaves()
        product = x * w
        if hooked:
            product.register_hook(lambda grad: None)
        loss = ((product + b).tanh() ** 2).sum()
        taken[hooked] = _buffers_taken(loss.backward)
        for leaf, factor in ((x, w_values), (w, x_values), (b, 1)):
            np.testing.assert_allclose(to_numpy(leaf.grad), _tanh_squared_grad(u) * factor, rtol=1e-12, atol=1e-12)
    assert taken[False] < taken[True]


def test_a_hook_on_the_product_changes_its_gradient_and_not_the_leaf_beside_it():
    (x, w, b), (x_values, w_values, u) = _zeroed_affine_leaves()
    product = x * w
    product.register_hook(lambda grad: grad * 3)
    ((product + b).tanh() ** 2).sum().backward()
    for leaf, factor in ((x, 3 * w_values), (w, 3 * x_values), (b, 1)):
        np.testing.assert_allclose(to_numpy(leaf.grad), _tanh_squared_grad(u) * factor, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("observe", ["hook", "retain_grad"])
def test_an_observed_add_still_passes_its_gradient_to_a_zeroed_leaf(observe):
    (x, w, b), (x_values, w_values, u) = _zeroed_affine_leaves()
    affine = x * w + b
    if observe == "hook":
        affine.register_hook(lambda grad: grad * 2)
    else:
        affine.retain_grad()
    (affine.tanh() ** 2).sum().backward()
    scale = 2 if observe == "hook" else 1
    if observe == "retain_grad":
        np.testing.assert_allclose(to_numpy(affine.grad), _tanh_squared_grad(u), rtol=1e-12, atol=1e-12)
        assert affine.grad.data_ptr() != b.grad.data_ptr()
    for leaf, factor in ((x, w_values), (w, x_values), (b, 1)):
        np.testing.assert_allclose(to_numpy(leaf.grad), scale * _tanh_squared_grad(u) * factor, rtol=1e-12,
                                   atol=1e-12)


def test_an_add_that_is_also_a_root_sums_both_gradients_into_a_zeroed_leaf():
    (x, w, b), (x_values, w_values, u) = _zeroed_affine_leaves()
    product = x * w
    affine = product + b
    loss = (affine.tanh() ** 2).sum()
    given = np.linspace(-1, 1, x_values.size)
    tg.autograd.backward([affine, loss, product], [tg.tensor(given), None, tg.tensor(given)])
    gradient = given + _tanh_squared_grad(u)
    for leaf, expected in ((x, (gradient + given) * w_values), (w, (gradient + given) * x_values), (b, gradient)):
        np.testing.assert_allclose(to_numpy(leaf.grad), expected, rtol=1e-12, atol=1e-12)


def test_a_leafs_own_zeroed_grad_given_as_the_root_gradient_is_read_as_zeros():
    (x, w, b), _ = _zeroed_affine_leaves()
    b.backward(b.grad)
    (x + b).backward(x.grad)
    for leaf in (x, b):
        np.testing.assert_array_equal(to_numpy(leaf.grad), np.zeros(1000))


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(to_numpy, id="numpy"),
        pytest.param(np.asarray, id="asarray"),
        pytest.param(lambda g: [g[i].item() for i in range(4)], id="item"),
        pytest.param(lambda g: g.tolist(), id="tolist"),
        pytest.param(lambda g: to_numpy(g * 2), id="op"),
        pytest.param(lambda g: to_numpy(g.view(2, 2)).ravel(), id="view"),
        pytest.param(lambda g: to_numpy(g.detach()), id="detach"),
        pytest.param(lambda g: [float(value) for value in str(g)[len("tensor(["):-2].split(",")], id="str"),
    ],
)
def test_a_zeroed_grad_reads_as_zeros(read):
    x = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(read(x.grad), np.zeros(4))


def test_an_array_sharing_a_grad_sees_zero():
    x = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    (x * x).sum().backward()
    shared = x.grad.numpy()
    x.grad.zero_()
    np.testing.assert_array_equal(shared, np.zeros(4))
    (x * 3).sum().backward()
    np.testing.assert_array_equal(shared, np.full(4, 3.0))


def test_grad_handle_stays_live_across_backward_calls():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.sum().backward()
    handle = x.grad
    x.sum().backward()
    np.testing.assert_array_equal(to_numpy(handle), [2.0, 2.0])


def test_fan_out_in_one_expression():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x + x).sum().backward()  # d/dx = 2x + 1
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 5.0, 7.0])


def test_fan_out_through_an_intermediate_diamond():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    b = a * a + a / 2 - a  # db/da = 2a + 1/2 - 1
    b.sum().backward()
    a_values = np.array([3.0, 6.0])
    np.testing.assert_allclose(to_numpy(x.grad), 3 * (2 * a_values - 0.5), rtol=1e-6)


def test_backward_with_explicit_gradient_on_non_scalar():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(gradient=tg.tensor([1.0, 0.5, -1.0]))
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, 2.0, -6.0])


def test_backward_with_gradient_none_on_a_scalar():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward(gradient=None)
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, 4.0])


def test_backward_from_0d_with_explicit_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(gradient=tg.tensor(3.0))
    np.testing.assert_array_equal(to_numpy(x.grad), [6.0, 12.0])


def test_broadcast_gradient_is_reduced_to_each_leaf_shape():
    col = tg.ones(3, 1, requires_grad=True)
    row = tg.ones(1, 4, requires_grad=True)
    scalar = tg.tensor(2.0, requires_grad=True)
    (col * row * scalar).sum().backward()
    assert col.grad.shape == (3, 1)
    assert row.grad.shape == (1, 4)
    assert scalar.grad.shape == ()
    np.testing.assert_array_equal(to_numpy(col.grad), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(to_numpy(row.grad), np.full((1, 4), 6.0))
    assert scalar.grad.item() == 12.0


def test_a_sums_gradient_is_seen_in_full_shape():
    """A sum's gradient reaches an elementwise node as one value; whatever observes that node's
    gradient (retain_grad, a hook, autograd.grad) sees it expanded to the node's shape."""
    x = tg.tensor([[1.0, -2.0], [3.0, 0.5], [0.0, 4.0]], requires_grad=True)
    retained = x * 2
    retained.retain_grad()
    hooked = x * 3
    seen = []
    hooked.register_hook(lambda grad: seen.append(to_numpy(grad)))
    (retained.sum() + hooked.sum()).backward()
    np.testing.assert_array_equal(to_numpy(retained.grad), np.ones((3, 2)))
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], np.ones((3, 2)))
    np.testing.assert_array_equal(to_numpy(x.grad), np.full((3, 2), 5.0))
    (grad,) = tg.autograd.grad((x * 4).sum(), [x])
    np.testing.assert_array_equal(to_numpy(grad), np.full((3, 2), 4.0))
    scaled = x * 4
    (grad,) = tg.autograd.grad(scaled.mean(), [scaled])
    np.testing.assert_array_equal(to_numpy(grad), np.full((3, 2), np.float32(1 / 6)))


@pytest.mark.parametrize("broadcast_first", [True, False])
def test_a_broadcast_gradient_summed_with_a_full_one(broadcast_first):
    """One node gets a sum's one-value gradient and a full one, in either order: d/dx of
    sum(y) + sum(y * y) with y = 2x is 2 (1 + 2y)."""
    values = np.array([1.0, -2.0, 3.0, 0.5])
    x = tg.tensor(values, requires_grad=True)
    y = x * 2
    loss = y.sum() + (y * y).sum() if broadcast_first else (y * y).sum() + y.sum()
    loss.backward()
    np.testing.assert_allclose(to_numpy(x.grad), 2 * (1 + 4 * values))


# Chains of unary elementwise ops, whose backward runs as one pass over blocks (the engine's
# fusion), with their derivative in numpy: the oracle.
UNARY_CHAINS = [
    pytest.param(lambda x: x.tanh() ** 2, lambda x: 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), id="tanh(x)**2"),
    pytest.param(lambda x: x.exp().tanh().sigmoid(),
                 lambda x: (lambda t: (lambda s: s * (1 - s))(1 / (1 + np.exp(-t))) * (1 - t * t) * np.exp(x))(
                     np.tanh(np.exp(x))), id="sigmoid(tanh(exp(x)))"),
    pytest.param(lambda x: (x ** 3).relu() ** 0.5,
                 lambda x: np.where(x > 0, 1.5 * np.sqrt(np.abs(x)), 0.0), id="relu(x**3)**0.5"),
]


@pytest.mark.parametrize("numel", [0, 1, 7, 1024, 2049, 150_001])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn, derivative", UNARY_CHAINS)
@pytest.mark.parametrize("reduction", ["sum", "weights"])
def test_unary_chains_backward_as_their_derivative(fn, derivative, dtype, numel, reduction):
    """150,001 elements split across threads and into blocks with a ragged end; a sum sends
    one value down the chain, explicit weights a full gradient; the leaf's .grad, when it
    exists, is added into."""
    rng = np.random.default_rng(numel)
    values = rng.uniform(-2, 2, numel).astype(dtype)
    weights = rng.standard_normal(numel).astype(dtype) if reduction == "weights" else np.ones(numel, dtype)
    x = tg.tensor(values, requires_grad=True)
    for accumulated in (1, 2):
        out = fn(x)
        (out.sum() if reduction == "sum" else (out * tg.tensor(weights)).sum()).backward()
        tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
        expected = accumulated * weights.astype(np.float64) * derivative(values.astype(np.float64))
        np.testing.assert_allclose(to_numpy(x.grad), expected, **tolerance)


def test_a_unary_chain_stops_at_a_node_with_two_consumers_or_a_hook():
    values = np.array([0.5, -1.0, 2.0])
    x = tg.tensor(values, requires_grad=True)
    e = x.exp()
    ((e ** 2).sum() + e.sum()).backward()  # e's gradient has two sources
    np.testing.assert_allclose(to_numpy(x.grad), 2 * np.exp(2 * values) + np.exp(values))
    x.grad.zero_()
    t = x.tanh()
    seen = []
    t.register_hook(lambda grad: seen.append(to_numpy(grad)))
    (t ** 2).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * np.tanh(values))
    np.testing.assert_allclose(to_numpy(x.grad), 2 * np.tanh(values) * (1 - np.tanh(values) ** 2))


def test_a_unary_chain_frees_every_saved_tensor_or_keeps_them_with_retain_graph():
    x = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    loss = x.exp().tanh().sigmoid().sum()
    loss.backward(retain_graph=True)
    first = to_numpy(x.grad)
    loss.backward()
    np.testing.assert_allclose(to_numpy(x.grad), 2 * first)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [4.0, 8.0])


def test_second_backward_through_freed_graph_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()
    # The failed call added nothing.
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, 4.0])


def test_retained_graph_is_freed_by_the_last_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_without_retain_graph_frees_every_buffer_a_node_keeps():
    """logsumexp's node keeps the rows' shifts and log-sums beside its input and result: the
    last backward returns them to the pool, while the result, and so its node, lives on."""
    rows = 64 * 1024
    tg.empty_cache()  # the pool keeps a bounded amount: room for the node's buffers
    x = tg.randn(rows, 2, requires_grad=True)
    y = x.logsumexp(1)
    y.backward(tg.ones(rows), retain_graph=True)  # the backward's temporaries are in the pool now
    before = tg._core._pool_stats()["cached_bytes"]
    y.backward(tg.ones(rows))  # takes its temporaries from the pool and gives them back
    freed = tg._core._pool_stats()["cached_bytes"] - before
    assert freed >= 2 * rows * 4, f"the last backward returned {freed} bytes to the pool, expected two float32 rows"


def test_freed_part_of_graph_raises_from_a_later_root():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError):
        (h * 2).sum().backward()


def test_backward_of_one_graph_leaves_another_graph_alone():
    x1 = tg.tensor([1.0, 2.0], requires_grad=True)
    x2 = tg.tensor([3.0, 4.0], requires_grad=True)
    y1 = (x1 * x1).sum()
    y2 = (x2 * x2).sum()
    y1.backward()
    assert x2.grad is None
    y2.backward()
    np.testing.assert_array_equal(to_numpy(x1.grad), [2.0, 4.0])
    np.testing.assert_array_equal(to_numpy(x2.grad), [6.0, 8.0])


def test_two_graphs_sharing_a_leaf_are_independent():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y1 = (x * x).sum()
    y2 = (x * 3).sum()
    y1.backward()  # frees y1's graph, not y2's
    y2.backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [5.0, 7.0])


def test_backward_reaches_only_ancestors_of_the_root():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([1.0, 1.0], requires_grad=True)
    unused = (w * x).sum()
    (x * 2).sum().backward()
    assert w.grad is None
    assert unused.requires_grad


def test_leaf_not_requiring_grad_gets_no_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    c = tg.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 4.0])


def test_backward_from_an_intermediate():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    z = h * h
    h.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 3.0])
    z.sum().backward()  # adds 18x
    np.testing.assert_array_equal(to_numpy(x.grad), [21.0, 39.0])


def test_detach_shares_storage_and_cuts_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.data_ptr() == y.data_ptr()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    np.testing.assert_array_equal(to_numpy(d), [2.0, 4.0])
    (d * x).sum().backward()  # d is a constant
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, 4.0])
    assert x.detach().data_ptr() == x.data_ptr()


def test_no_grad_records_nothing():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2
        z = tg.dot(x, x) + x.sum() - x.mean() / x.norm()
        w = -(x ** 2)
    for result in (y, z, w):
        assert not result.requires_grad
        assert result.grad_fn is None
    np.testing.assert_array_equal(to_numpy(y), [2.0, 4.0])
    assert x.requires_grad


def test_recording_resumes_after_no_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        pass
    y = x * 2
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [2.0, 2.0])


def test_no_grad_is_restored_when_the_block_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert (x * 2).requires_grad


def test_nested_no_grad():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        with tg.no_grad():
            pass
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_update_under_no_grad_like_sgd():
    """Dive into Deep Learning's sgd: param -= lr * grad under no_grad, then grad.zero_()."""
    w = tg.tensor([1.0, -1.0], requires_grad=True)
    for _ in range(3):
        loss = ((w - 3) ** 2).sum()
        loss.backward()
        with tg.no_grad():
            w_next = w - 0.25 * w.grad
        assert not w_next.requires_grad
        w = w_next.requires_grad_(True)
    np.testing.assert_allclose(to_numpy(w), [3 - 2 * 0.5 ** 3, 3 - 4 * 0.5 ** 3])


def run_in_subprocess(code):
    """Runs `code` in a fresh interpreter so that a crash (stack overflow) fails one test
    instead of killing the whole run."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        env=environment, timeout=120,
    )
    assert result.returncode == 0, (
        f"subprocess exited with {result.returncode} (negative = killed by signal)\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    )
    return result.stdout


CHAIN_LENGTH = 100_000


def test_backward_through_a_long_additive_chain():
    """y = x + x + ... (100,001 uses of x): the gradient 100,001 is exact in float32."""
    run_in_subprocess(f"""
        import tapegrad as tg
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        y = x
        for _ in range({CHAIN_LENGTH}):
            y = y + x
        y.sum().backward()
        assert (x.grad == {CHAIN_LENGTH + 1}).all().item(), x.grad
        del y
    """)


def test_backward_through_a_long_multiplicative_chain():
    run_in_subprocess(f"""
        import math
        import tapegrad as tg
        x = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
        y = x
        for _ in range({CHAIN_LENGTH}):
            y = y * 1.0000001
        y.backward()
        expected = 1.0000001 ** {CHAIN_LENGTH}
        assert math.isclose(x.grad.item(), expected, rel_tol=1e-9), (x.grad.item(), expected)
        assert math.isclose(y.item(), expected, rel_tol=1e-9), (y.item(), expected)
    """)


@pytest.mark.parametrize("when", ["never-backpropagated", "after-retained-backward"])
def test_dropping_a_long_chain_does_not_crash(when):
    backward = "y.backward(retain_graph=True)" if when == "after-retained-backward" else ""
    stdout = run_in_subprocess(f"""
        import tapegrad as tg
        x = tg.tensor(1.0, requires_grad=True)
        y = x
        for _ in range({CHAIN_LENGTH}):
            y = y * 1.0000001
        {backward}
        del y
        print("dropped")
    """)
    assert stdout.strip() == "dropped"


def test_independent_graphs_backpropagated_from_several_threads():
    """backward() may release the GIL: graphs that share nothing must not disturb each other."""
    run_in_subprocess("""
        import threading
        import numpy as np
        import tapegrad as tg

        results = {}

        def train(seed):
            values = np.random.default_rng(seed).standard_normal(1000)
            x = tg.tensor(values, requires_grad=True)
            for _ in range(500):
                ((x * x) * 0.5).sum().backward()  # adds x each time
            results[seed] = (x.grad.numpy().copy(), values * 500)

        threads = [threading.Thread(target=train, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 4
        for seed, (grad, expected) in results.items():
            np.testing.assert_allclose(grad, expected, rtol=1e-5, err_msg=f"thread {seed}")
    """)


def test_backward_from_several_threads_into_a_shared_leaf_loses_nothing():
    """As in torch, concurrent backward calls each add their whole contribution to the
    shared leaf's .grad: 4 threads x 100 calls of 1 each must give exactly 400."""
    run_in_subprocess("""
        import threading
        import numpy as np
        import tapegrad as tg

        x = tg.ones(100_000, requires_grad=True)

        def accumulate():
            for _ in range(100):
                (x * 1.0).sum().backward()

        threads = [threading.Thread(target=accumulate) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        grad = x.grad.numpy()
        assert (grad == 400).all(), f"lost updates: .grad ranges from {grad.min()} to {grad.max()}, expected 400"
    """)


def test_zero_on_a_leaf_requiring_grad_raises_outside_no_grad():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        x.zero_()
    with tg.no_grad():
        x.zero_()
    np.testing.assert_array_equal(to_numpy(x), np.zeros(3))
    assert x.requires_grad


def test_zeroing_a_saved_tensor_through_detach_makes_backward_raise():
    """detach() shares storage, so zeroing it changes what x * x saved: backward must refuse
    rather than return a wrong gradient."""
    x = tg.ones(3, requires_grad=True)
    y = x * x
    x.detach().zero_()
    with pytest.raises(RuntimeError):
        y.sum().backward()
