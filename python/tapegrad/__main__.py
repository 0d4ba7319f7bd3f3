"""The tapegrad tour: `python -m tapegrad`."""

import time

import numpy as np

import tapegrad as tg


def section(title):
    print(f"\n== {title} ==")


def seed_example():
    section("The seed: y = 2 x.x")
    x = tg.arange(4.0)
    x.requires_grad_(True)
    print(">>> x = tg.arange(4.0); x.requires_grad_(True); x.grad")
    print(x.grad)
    y = 2 * tg.dot(x, x)
    y.backward()
    print(">>> y = 2 * tg.dot(x, x); y.backward(); print(x, '\\n', y, '\\n', x.grad)")
    print(x, "\n", y, "\n", x.grad)
    pointer = x.grad.data_ptr()
    z = x.sum()
    x.grad.zero_()  # gradients accumulate by default; clear them in place
    z.backward()
    print(">>> z = x.sum(); x.grad.zero_(); z.backward(); x.grad")
    print(x.grad)
    print(f"x.grad kept its buffer across both backward calls: {x.grad.data_ptr() == pointer}")


def worked_example(n=5):
    section("Worked example: z = (<x, w> - y)^2, dz/dw = 2(<x, w> - y) x")
    tg.manual_seed(0)
    for dtype in (tg.float32, tg.float64):
        x = tg.randn(n, dtype=dtype)
        w = tg.randn(n, dtype=dtype, requires_grad=True)
        y = tg.tensor(0.5, dtype=dtype)
        z = (tg.dot(x, w) - y) ** 2
        z.backward()
        analytic = 2 * (np.dot(x.numpy(), w.detach().numpy()) - 0.5) * x.numpy()
        error = np.abs(w.grad.numpy() - analytic).max()
        print(f"{dtype}: tape gradient matches the formula, max abs difference {error:.1e}")


def finite_difference_check(eps=1e-6):
    section("Finite differences in float64: f(a, b) = sum((a * b - a / b) ** 2) / norm(a)")
    tg.manual_seed(1)

    def f(a, b):
        return ((a * b - a / b) ** 2).sum() / a.norm()

    a = tg.randn(3, 1, dtype=tg.float64, requires_grad=True)
    b = tg.randn(4, dtype=tg.float64) + 3
    b.requires_grad_(True)
    f(a, b).backward()
    worst = 0.0
    for tensor in (a, b):
        values = tensor.detach().numpy()  # shares memory: nudging it changes the tensor
        numeric = np.zeros_like(values)
        for i in np.ndindex(values.shape):
            saved = values[i]
            values[i] = saved + eps
            up = f(a.detach(), b.detach()).item()
            values[i] = saved - eps
            down = f(a.detach(), b.detach()).item()
            values[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        worst = max(worst, float(np.abs(numeric - tensor.grad.numpy()).max()))
    print(f"broadcast (3, 1) x (4,): tape vs central differences, max abs difference {worst:.1e}")


def where_the_time_goes(ops=200, repeats=200):
    section("Where the time goes")
    w = tg.randn(16, requires_grad=True)
    x = tg.randn(16)

    def chain():
        y = x
        for _ in range(ops // 2):
            y = y * w
            y = y + 0.5
        return y.sum()

    def per_op(step):
        step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        return (time.perf_counter() - start) / (repeats * ops) * 1e9

    with tg.no_grad():
        no_tape = per_op(chain)
    forward = per_op(chain)
    both = per_op(lambda: chain().backward())
    print(f"a chain of {ops} elementwise ops on 16 floats, per op:")
    print(f"  forward, tape off (no_grad): {no_tape:6.0f} ns   (the Python call and the kernel)")
    print(f"  forward, tape on:            {forward:6.0f} ns   (+ recording the node)")
    print(f"  forward + backward:          {both:6.0f} ns   (+ replaying it in reverse)")
    stats = tg._core._pool_stats()
    print(f"buffers: {stats['os_allocations']} from the system, {stats['reuses']} reused from the pool")
    print("python bench/compare.py puts these next to PyTorch's.")


def main():
    seed_example()
    worked_example()
    finite_difference_check()
    where_the_time_goes()


if __name__ == "__main__":
    main()
