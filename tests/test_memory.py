"""Memory stays flat: discarded results, graphs and gradients are freed (or reused from a pool),
read from the process's resident set size after a warm-up."""
import gc
import os

import numpy as np
import pytest

import tapegrad as tg

STATM = "/proc/self/statm"
pytestmark = pytest.mark.skipif(not os.path.exists(STATM), reason=f"needs {STATM} to read the resident set size")

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
ALLOWED_GROWTH = 4 * 2 ** 20  # bytes; a leak of 8 bytes per op over 1,000,000 ops exceeds it


def resident_bytes():
    with open(STATM) as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def growth_over(loop, iterations, warmup):
    """Resident-set growth in bytes over `iterations` calls of loop, after `warmup` calls.
    The cyclic garbage collector is off meanwhile: results and graphs must be freed by
    reference counting alone, as torch's are."""
    for _ in range(warmup):
        loop()
    gc.collect()
    before = resident_bytes()
    gc.disable()
    try:
        for _ in range(iterations):
            loop()
        after = resident_bytes()
    finally:
        gc.enable()
    return after - before


def assert_flat(growth, what, allowed=ALLOWED_GROWTH):
    assert growth < allowed, f"{what}: resident memory grew by {growth / 2 ** 20:.1f} MB"


def test_discarded_forward_ops_with_grad_on_free_their_graphs():
    """1,000,000 small ops (250,000 iterations of 4) whose results are dropped at once."""
    x = tg.randn(16, requires_grad=True)
    y = tg.randn(16)

    def four_ops():
        ((x * y + 1.0) / 2.0).sum()

    assert_flat(growth_over(four_ops, iterations=250_000, warmup=25_000), "forward ops")
    assert x.grad is None


def test_discarded_0d_ops_with_grad_on():
    a = tg.tensor(1.5, requires_grad=True)
    b = tg.tensor(0.5, requires_grad=True)

    def four_ops():
        (a * b - a) ** 2 + b

    assert_flat(growth_over(four_ops, iterations=100_000, warmup=10_000), "0-d ops")


def test_training_loop_with_backward_is_flat_and_grad_buffer_stable():
    """A persistent leaf, a fresh graph and backward per step, zero_ between steps."""
    w = tg.randn(32, requires_grad=True)
    x = tg.randn(8, 32)
    target = tg.randn(8, 1)
    (w * x).sum().backward()
    grad_buffer = w.grad.data_ptr()

    def step():
        prediction = (x * w).sum() / 32
        loss = ((prediction - target) ** 2).mean()
        loss.backward()
        w.grad.zero_()

    assert_flat(growth_over(step, iterations=30_000, warmup=3_000), "training steps")
    assert w.grad.data_ptr() == grad_buffer


def test_discarded_leaves_graphs_and_gradients_are_freed():
    def step():
        leaf = tg.randn(64, requires_grad=True)
        y = (leaf * leaf).sum()
        y.backward(retain_graph=True)  # the retained graph goes with y
        tg.dot(leaf.grad, leaf)

    assert_flat(growth_over(step, iterations=30_000, warmup=3_000), "leaves with gradients")


def test_large_buffers_are_returned():
    """A leaked 1 MB buffer per iteration would add over 100 MB; the allowance leaves room
    for the heap or a pool keeping a few freed buffers for reuse."""
    x = tg.randn(256 * 1024, requires_grad=True)
    y = tg.randn(256 * 1024)

    def step():
        (x * y + x).sum().backward()

    assert_flat(growth_over(step, iterations=100, warmup=10), "1 MB buffers", allowed=16 * 2 ** 20)


def test_numpy_round_trips_are_freed():
    a = np.ones(1024)

    def step():
        t = tg.from_numpy(a) * 2
        np.asarray(t).sum()
        t.numpy()

    assert_flat(growth_over(step, iterations=50_000, warmup=5_000), "numpy round trips")
