"""Reductions along a dim and softmax on a big matrix, tapegrad beside PyTorch: the forward
alone, no tape (compare.py's workloads reduce small tensors, or everything at once).

    env -u OPENBLAS_CORETYPE python bench/reductions.py [--rows N] [--cols N] [--threads N]

Each figure is the median of --rounds rounds; a round times each library --repeats times,
the two in turn, and keeps each one's median (wall clock, both libraries on --threads; with
more than one, each batch starts after compare.py's pause, so that the other library's
spinning threads have parked).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tapegrad as tg
from compare import SETTLE_SECONDS
from elementwise_ops import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--cols", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch  # the comparison is the point: no torch, no figures

    tg.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    a = np.random.default_rng(0).standard_normal((args.rows, args.cols), dtype=np.float32)
    x, t = tg.tensor(a), torch.from_numpy(a)
    cases = {
        "sum(dim=1)": (lambda: x.sum(dim=1), lambda: t.sum(dim=1)),
        "sum(dim=0)": (lambda: x.sum(dim=0), lambda: t.sum(dim=0)),
        "var(dim=1)": (lambda: x.var(dim=1), lambda: t.var(dim=1)),
        "max(dim=1)": (lambda: x.max(dim=1).values, lambda: t.max(dim=1).values),  # and the indices
        "max(dim=0)": (lambda: x.max(dim=0).values, lambda: t.max(dim=0).values),
        "logsumexp(dim=1)": (lambda: tg.logsumexp(x, 1), lambda: torch.logsumexp(t, 1)),
        "softmax(dim=1)": (lambda: tg.softmax(x, 1), lambda: torch.softmax(t, 1)),
    }
    for name, (ours, theirs) in cases.items():
        np.testing.assert_allclose(ours().numpy(), theirs().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)

    def settled_median_seconds(fn) -> float:
        if args.threads > 1:
            time.sleep(SETTLE_SECONDS)
        return median_seconds(fn, args.repeats)

    print(f"({args.rows}, {args.cols}) float32, {args.threads} thread(s), medians of {args.rounds} rounds of {args.repeats}")
    print(f"  {'':18s} {'tapegrad ms':>12s} {'torch ms':>10s} {'tapegrad/torch':>15s}")
    for name, (ours, theirs) in cases.items():
        rounds = [(settled_median_seconds(ours), settled_median_seconds(theirs)) for _ in range(args.rounds)]
        mine = statistics.median(r[0] for r in rounds)
        torch_time = statistics.median(r[1] for r in rounds)
        ratio = statistics.median(r[0] / r[1] for r in rounds)
        print(f"  {name:18s} {mine * 1e3:12.2f} {torch_time * 1e3:10.2f} {ratio:14.2f}x")


if __name__ == "__main__":
    main()
