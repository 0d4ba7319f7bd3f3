"""What the cyclic garbage collector costs with a large graph alive (process CPU time):
gc.collect() with one tensor owning a 400,000-node graph (y = y * x, each node saving both
factors), and 30,000 steps of a loop that
keeps `total = total + loss` (its graph grows by two nodes a step) and a log entry per step
(so the collector runs every 700 steps, as in a loop that records its history), timed per
5,000 steps.

    python bench/gc_cost.py [--library torch]
"""

import argparse
import gc
import time

parser = argparse.ArgumentParser()
parser.add_argument("--library", default="tapegrad")
lib = __import__(parser.parse_args().library)

x = lib.ones(1, requires_grad=True)
y = x
for _ in range(400_000):
    y = y * x
start = time.process_time()
gc.collect()
print(f"gc.collect() with a 400,000-node graph alive: {time.process_time() - start:.3f} s")
del x, y

w = lib.randn(16, requires_grad=True)
total = lib.zeros(())
log = []
per_chunk = []
for _ in range(6):
    start = time.process_time()
    for step in range(5_000):
        loss = (w * w).sum()
        total = total + loss
        log.append([step])
    per_chunk.append(time.process_time() - start)
print("total = total + loss, s per 5,000 steps:", " ".join(f"{t:.2f}" for t in per_chunk))
