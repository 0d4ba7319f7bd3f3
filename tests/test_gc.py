"""Reference cycles through hooks and graphs are collected by gc.collect(): a weak reference
into the cycle dies and the tensors' buffers go back to the pool. Live hooks survive a
collection, and a collection during backward (from a hook, or on another thread) is safe."""
import gc
import subprocess
import sys
import threading
import weakref

import numpy as np
import pytest

import tapegrad as tg

# Buffers of this many float32 elements (1 MiB): one freed buffer shows in the pool's counter.
N = 256 * 1024
BUFFER_BYTES = 4 * N


def cached_bytes():
    return tg._core._pool_stats()["cached_bytes"]


def assert_collected(make_cycle, freed_bytes):
    """make_cycle() builds a cycle and returns a weak reference into it. The cycle must
    survive reference counting alone, then die in gc.collect(), returning at least
    freed_bytes of buffers to the pool."""
    gc.collect()
    tg.empty_cache()  # the pool keeps a bounded amount: room for what the cycle frees
    gc.disable()  # so that the cycle is not collected before it is checked
    try:
        ref = make_cycle()
        assert ref() is not None, "the test builds no cycle: reference counting freed it"
        before = cached_bytes()
        gc.collect()
        assert ref() is None, "gc.collect() did not collect the cycle"
        freed = cached_bytes() - before
        assert freed >= freed_bytes, f"the cycle returned {freed} bytes of buffers to the pool, expected {freed_bytes}"
    finally:
        gc.enable()


def test_leaf_hook_capturing_its_leaf():
    def make_cycle():
        x = tg.randn(N, requires_grad=True)
        x.register_hook(lambda grad: x)
        return weakref.ref(x)

    assert_collected(make_cycle, BUFFER_BYTES)


def test_result_hook_holding_its_result():
    x = tg.randn(N, requires_grad=True)

    def make_cycle():
        y = x * 2
        y.register_hook(lambda grad, y=y: grad)
        return weakref.ref(y)

    assert_collected(make_cycle, BUFFER_BYTES)
    assert x.grad is None


def test_hook_on_the_graph_path_capturing_the_output():
    """The hook sits on an intermediate's node (saved by the next op) and holds the output:
    the cycle runs output -> its node -> the saved intermediate and its node -> hook -> output."""
    x = tg.randn(N, requires_grad=True)

    def make_cycle():
        hidden = x * 2
        out = hidden.sin()
        hidden.register_hook(lambda grad: out)
        return weakref.ref(out)

    assert_collected(make_cycle, 2 * BUFFER_BYTES)  # hidden and out


def test_saved_leaf_whose_hook_holds_the_result():
    """A leaf saved (twice) by the op whose result its hook holds, once the leaf's own
    Python object is gone: result -> node -> saved leaf and accumulator -> hook -> result."""
    def make_cycle():
        x = tg.randn(N, requires_grad=True)
        y = x * x
        x.register_hook(lambda grad: y)
        return weakref.ref(y)

    assert_collected(make_cycle, 2 * BUFFER_BYTES)  # x and y


def test_cycle_through_a_retained_graph():
    x = tg.randn(N, requires_grad=True)

    def make_cycle():
        hidden = x.exp()
        loss = (hidden * hidden).sum()
        loss.backward(retain_graph=True)
        hidden.register_hook(lambda grad: loss)
        return weakref.ref(loss)

    assert_collected(make_cycle, BUFFER_BYTES)  # hidden, saved by the retained graph
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.detach().numpy()), rtol=1e-5)


def test_retained_graph_is_freed_when_its_output_goes():
    """No cycle: reference counting alone frees a retain_graph=True graph with its output."""
    x = tg.randn(N, requires_grad=True)
    tg.empty_cache()  # the pool keeps a bounded amount: room for the graph's buffers
    gc.disable()
    try:
        hidden = x.exp()
        loss = (hidden * hidden).sum()
        loss.backward(retain_graph=True)
        del hidden  # still saved by the graph
        before = cached_bytes()
        node = loss.grad_fn
        del loss
        assert cached_bytes() - before < BUFFER_BYTES, "the graph died while its node was referenced"
        del node
        assert cached_bytes() - before >= BUFFER_BYTES, "the retained graph's saved buffer was not freed"
    finally:
        gc.enable()


def test_live_hooks_survive_a_collection():
    """A hook that is part of a cycle still reachable from here must not be cleared."""
    x = tg.ones(3, requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(x) or grad * 2)
    hidden = x * 3
    hidden.register_hook(lambda grad, hidden=hidden: grad + 1)
    loss = hidden.sum()
    del hidden
    gc.collect()
    loss.backward()
    assert seen == [x]
    np.testing.assert_array_equal(x.grad.numpy(), [12.0, 12.0, 12.0])  # (1 + 1) * 3, doubled


def test_collection_in_a_hook_during_backward():
    """Hooks that run gc.collect() while garbage cycles (of other graphs and of this one's
    tensors) exist: backward completes with the right gradient."""
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    collections = []

    def collect(grad):
        # Fresh garbage each time: a cycle through a hook on a result (recorded with grad
        # mode on again: backward turns it off while it runs).
        with tg.enable_grad():
            garbage = x * 5
            garbage.register_hook(lambda g, garbage=garbage: g)
            del garbage
        collections.append(gc.collect())
        return None

    hidden = x * x
    hidden.register_hook(collect)
    hidden.register_hook(lambda grad, hidden=hidden: collect(grad))  # the hook holds its own tensor
    loss = (hidden * 2).sum()
    del hidden
    loss.backward()
    assert len(collections) == 2 and all(count > 0 for count in collections)
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0, 12.0])  # d(2 x^2)/dx = 4x


def test_collections_while_another_thread_runs_backward():
    """backward releases the GIL: collections on this thread meanwhile must neither crash
    nor free what the other thread's graphs still use."""
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    steps = 300
    errors = []

    def train():
        try:
            for _ in range(steps):
                hidden = w * w
                hidden.register_hook(lambda grad, hidden=hidden: grad)  # a cycle per step
                (hidden * 3).sum().backward()
        except Exception as error:  # reported below, on the main thread
            errors.append(error)

    thread = threading.Thread(target=train)
    thread.start()
    while thread.is_alive():
        gc.collect(0)  # the youngest generation: this thread's new tensors, quickly
    thread.join()
    assert not errors
    np.testing.assert_array_equal(w.grad.numpy(), [6.0 * steps, 12.0 * steps])  # d(3 w^2)/dw = 6w


@pytest.mark.parametrize("cycles", [1, 1000])
def test_many_cycles_are_all_collected(cycles):
    def make_cycle():
        tensors = []
        for _ in range(cycles):
            x = tg.randn(16, requires_grad=True)
            x.register_hook(lambda grad, x=x: grad)
            tensors.append(weakref.ref(x))

        def any_alive():
            return next((x for x in (ref() for ref in tensors) if x is not None), None)

        return any_alive

    assert_collected(make_cycle, cycles * 16 * 4)


def test_cycle_through_a_hook_on_a_tensor_changed_in_place_since():
    """The hook sits on the node that was the tensor's grad_fn when it was registered; an
    in-place op then gives the tensor a new history above that node."""
    x = tg.randn(N, requires_grad=True)

    def make_cycle():
        hidden = x * 2
        hidden.register_hook(lambda grad, hidden=hidden: grad)
        hidden.mul_(3)
        return weakref.ref(hidden)

    assert_collected(make_cycle, BUFFER_BYTES)


# Prints how many tensors and nodes one gc.collect() walks with a 20,000-node graph alive:
# with no Python hook held anywhere (one was registered and dropped), with hooks on the
# graph's leaf and on an intermediate that Python holds, and with that intermediate dropped.
WALKS = """
import gc
import tapegrad as tg

def walked_by_one_collection():
    gc.collect()
    before = tg._core._objects_walked_by_collector()
    gc.collect()
    return tg._core._objects_walked_by_collector() - before

dropped = tg.ones(1, requires_grad=True)
dropped.register_hook(lambda grad: grad)
del dropped
x = tg.ones(1, requires_grad=True)
y = x
for step in range(20_000):
    y = y * 1.0
    if step == 10_000:
        hidden = y
print(walked_by_one_collection())
x.register_hook(lambda grad: grad)
print(walked_by_one_collection())
hidden.register_hook(lambda grad: grad)
print(walked_by_one_collection())
del hidden
print(walked_by_one_collection())
"""


def test_collection_walks_a_graph_only_where_a_hook_may_be_found():
    """The collector asks each tensor object for the Python objects its graph holds. A graph
    is walked only where a Python hook may be found there: from the object it was registered
    through, or from every object once a hook's tensor object is gone (its hook is then held by
    a graph alone). gc.collect() walked all 400,000 nodes of a live graph, several times, for
    a hook anywhere. A fresh process, so that no other test's hook is alive."""
    result = subprocess.run([sys.executable, "-c", WALKS], check=True, capture_output=True, text=True)
    no_hook, leaf_hook, held_intermediate_hook, dropped_intermediate_hook = map(int, result.stdout.split())
    assert no_hook == 0
    assert leaf_hook == 0  # x is held by its object and by the graph: no graph is x's alone
    assert held_intermediate_hook <= 2  # hidden's own tensor, for each of the collector's walks
    assert dropped_intermediate_hook >= 20_000  # the walk that finds the hook still happens
