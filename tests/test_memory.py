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


def resident_samples(loop, iterations, warmup, every):
    """The resident set size after `warmup` calls of loop, then after each `every` further
    calls, up to `iterations`; with the cyclic garbage collector off meanwhile."""
    for _ in range(warmup):
        loop()
    gc.collect()
    samples = [resident_bytes()]
    gc.disable()
    try:
        for _ in range(iterations // every):
            for _ in range(every):
                loop()
            samples.append(resident_bytes())
    finally:
        gc.enable()
    return samples


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


def test_mlp_training_keeps_memory_in_a_fixed_band():
    """100,000 steps of a 16-32-4 MLP on a batch of 8: forward, backward, an SGD update under
    no_grad and zero_ of each gradient. After 10,000 warm-up steps, the resident set size,
    sampled every 10,000 steps, stays in a band narrower than ALLOWED_GROWTH."""
    functional = tg.nn.functional
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((8, 16)).astype(np.float32))
    target = tg.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    w1 = tg.tensor((0.25 * rng.standard_normal((32, 16))).astype(np.float32), requires_grad=True)
    b1 = tg.zeros(32, requires_grad=True)
    w2 = tg.tensor((0.25 * rng.standard_normal((4, 32))).astype(np.float32), requires_grad=True)
    b2 = tg.zeros(4, requires_grad=True)
    parameters = [w1, b1, w2, b2]

    def loss():
        hidden = functional.relu(functional.linear(x, w1, b1))
        return functional.mse_loss(functional.linear(hidden, w2, b2), target)

    def step():
        loss().backward()
        with tg.no_grad():
            for parameter in parameters:
                parameter -= 0.01 * parameter.grad
                parameter.grad.zero_()

    first = loss().item()
    samples = resident_samples(step, iterations=100_000, warmup=10_000, every=10_000)
    band = max(samples) - min(samples)
    assert band < ALLOWED_GROWTH, (
        f"MLP steps: resident memory moved over a band of {band / 2 ** 20:.2f} MB "
        f"(samples in MB: {[round(s / 2 ** 20, 2) for s in samples]})"
    )
    last = loss().item()
    assert last < 0.5 * first, f"the MLP did not train: loss {first} at first, {last} after 110,000 steps"


MIB = 2 ** 20
# What the pool may keep of freed buffers whatever is in use (kMinCachedBytes in pool.cpp).
POOL_KEEPS = 64 * MIB


def test_freed_tensors_give_their_memory_back_to_the_system():
    """512 MiB of tensors dropped: the pool keeps at most POOL_KEEPS of them, the rest goes
    back to the system as it goes without a pool (torch's resident set falls by all of it)."""
    gc.collect()
    before = resident_bytes()
    tensors = [tg.ones(16 * MIB // 4) for _ in range(32)]
    assert resident_bytes() - before > 400 * MIB  # the pages were written
    del tensors
    growth = resident_bytes() - before
    assert growth < POOL_KEEPS + 16 * MIB, f"512 MiB dropped, resident memory still {growth / MIB:.0f} MB up"


def test_empty_cache_gives_the_pool_s_buffers_back():
    tensors = [tg.ones(16 * MIB // 4) for _ in range(3)]
    del tensors
    assert tg._core._pool_stats()["cached_bytes"] >= 48 * MIB
    before = resident_bytes()
    tg.empty_cache()
    assert tg._core._pool_stats()["cached_bytes"] == 0
    assert before - resident_bytes() >= 40 * MIB


def test_workload_whose_sizes_change_holds_little_more_than_its_largest_step():
    """Steps of ((x*w + b).tanh()**2).sum() at sizes growing from 1 to 24 MiB per tensor: the
    pool must give back buffers of sizes no longer asked for, so the resident set stays
    within what the largest step uses (about 9 tensors of its size: 216 MiB), plus what the
    pool may keep. Kept, they would add up to 1 GiB."""
    gc.collect()
    tg.empty_cache()
    before = resident_bytes()
    peak = before
    for size in range(1, 25):
        x, w, b = (tg.ones(size * MIB // 4, requires_grad=True) for _ in range(3))
        for _ in range(2):
            ((x * w + b).tanh() ** 2).sum().backward()
            for leaf in (x, w, b):
                leaf.grad.zero_()
            peak = max(peak, resident_bytes())
    growth = peak - before
    assert growth < 9 * 24 * MIB + POOL_KEEPS, f"sizes 1 to 24 MiB: resident memory peaked {growth / MIB:.0f} MB up"


def test_steady_state_steps_on_large_buffers_ask_the_system_for_none():
    x, w, b = (tg.randn(16 * MIB // 4, requires_grad=True) for _ in range(3))

    def step():
        ((x * w + b).tanh() ** 2).sum().backward()
        for leaf in (x, w, b):
            leaf.grad.zero_()

    step()
    step()
    before = tg._core._pool_stats()["os_allocations"]
    for _ in range(5):
        step()
    assert tg._core._pool_stats()["os_allocations"] == before
