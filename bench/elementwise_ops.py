"""Where the time of compare.py's elementwise workload goes: each op of
`((x*w + b).tanh()**2).sum()` timed alone, then the forward, the backward and the
`zero_`s of a whole step, with the bytes each moves at least (inputs read, output written)
and the rate that makes.

    env -u OPENBLAS_CORETYPE python bench/elementwise_ops.py [--numel N] [--threads N]

Times are medians of --repeats runs, wall clock.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tapegrad as tg


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm: buffers come from the pool from here on
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1 << 22)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    tg.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    x, w, b = (tg.tensor(rng.standard_normal(args.numel, dtype=np.float32), requires_grad=True) for _ in range(3))

    def forward():
        return ((x * w + b).tanh() ** 2).sum()

    def step():
        forward().backward()
        for leaf in (x, w, b):
            leaf.grad.zero_()

    step()  # every leaf has its .grad
    with tg.no_grad():
        product = x * w
        affine = product + b
        squashed = affine.tanh()
        squared = squashed**2
    arrays = 4 * args.numel  # bytes of one float32 array
    forward_time = median_seconds(forward, args.repeats)
    step_time = median_seconds(step, args.repeats)
    zero_time = median_seconds(lambda: [leaf.grad.zero_() for leaf in (x, w, b)], args.repeats)
    # (what, seconds, arrays read + written at least)
    rows = []
    with tg.no_grad():
        rows += [
            ("x * w", median_seconds(lambda: x * w, args.repeats), 3),
            ("+ b", median_seconds(lambda: product + b, args.repeats), 3),
            ("tanh", median_seconds(lambda: affine.tanh(), args.repeats), 2),
            ("** 2", median_seconds(lambda: squashed**2, args.repeats), 2),
            ("sum", median_seconds(lambda: squared.sum(), args.repeats), 1),
        ]
    rows += [
        ("forward (recorded)", forward_time, 11),
        ("backward", step_time - forward_time - zero_time, 6),
        ("three zero_", zero_time, 0),
        ("step", step_time, 17),
    ]
    print(f"{args.numel:,} float32 elements, {args.threads} thread(s), medians of {args.repeats}")
    print(f"  {'':20s} {'ms':>8s} {'GB/s':>8s}")
    for what, seconds, passes in rows:
        rate = f"{passes * arrays / seconds / 1e9:8.1f}" if passes else f"{'-':>8s}"
        print(f"  {what:20s} {seconds * 1e3:8.2f} {rate}")
    print("  GB/s counts each op's inputs read and output written once: 11 arrays for the eager forward,")
    print("  6 for the backward (x, w and tanh's output read; three .grad written over the zeros that")
    print("  zero_ only marks)")


if __name__ == "__main__":
    main()
