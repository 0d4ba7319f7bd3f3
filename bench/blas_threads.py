"""OpenBLAS's parallel jobs on tapegrad's pool (the default, through OpenBLAS's threading
callback) against OpenBLAS's own threads, on compare.py's matmul and MLP workloads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/blas_threads.py [--threads 2] [--runs 8]

Each run is a fresh process in one of the two modes, and the modes alternate, so the
machine's load falls on both alike; a run times --batches batches of steps per workload
(wall clock) and reports their median. The table shows the median over runs of each mode,
and the median of the ratios of consecutive pairs. "own threads" resets the callback in
the scipy-openblas32 library that tapegrad's Python package links.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKLOADS = {  # name: (builder in compare.py, its argument, steps per batch)
    "matmul-512": ("matmul", 512, 10),
    "mlp-b64": ("mlp", 64, 100),
    "mlp-b1": ("mlp", 1, 400),
}


def run_one(threads: int, own_threads: bool, batches: int) -> dict:
    """Times every workload in this process; prints nothing, returns seconds per step."""
    import tapegrad as tg  # first: importing scipy_openblas32 loads the library

    sys.path.insert(0, str(Path(__file__).parent))
    import compare

    tg.set_num_threads(threads)
    if own_threads:
        import scipy_openblas32

        library = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), f"lib{scipy_openblas32.get_library()}.so"))
        library.scipy_openblas_set_threads_callback_function(None)
    results = {}
    for name, (family, size, steps) in WORKLOADS.items():
        data = getattr(compare, f"{family}_data")(size)
        step = getattr(compare, f"{family}_autograd")(tg, data)
        times = []
        for batch in range(batches + 1):  # the first batch warms up
            start = time.perf_counter()
            for _ in range(steps):
                step(lambda *_: None)
            if batch:
                times.append((time.perf_counter() - start) / steps)
        results[name] = statistics.median(times)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=8, help="runs of each mode")
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--one", choices=("pool", "own"), help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.threads, args.one == "own", args.batches)))
        return

    runs = {"pool": [], "own": []}
    for i in range(args.runs):
        for mode in ("pool", "own") if i % 2 == 0 else ("own", "pool"):
            command = [sys.executable, __file__, "--one", mode, "--threads", str(args.threads),
                       "--batches", str(args.batches)]
            # OpenBLAS's default spin before its workers sleep (tapegrad's import shortens it
            # for the workers it never uses, unless the variable is set).
            env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="28") if mode == "own" else None
            result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            runs[mode].append(json.loads(result.stdout))
    print(f"{args.threads} threads, {args.runs} runs of each mode; ms per step (medians)")
    print(f"{'workload':12} {'on the pool':>12} {'own threads':>12} {'pool / own':>11}")
    for name in WORKLOADS:
        pool = [run[name] for run in runs["pool"]]
        own = [run[name] for run in runs["own"]]
        ratio = statistics.median(p / o for p, o in zip(pool, own))
        print(f"{name:12} {statistics.median(pool) * 1e3:12.3f} {statistics.median(own) * 1e3:12.3f} {ratio:10.3f}x")


if __name__ == "__main__":
    main()
