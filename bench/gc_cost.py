"""What the cyclic garbage collector costs with a large graph alive (process CPU time):
gc.collect() with one tensor owning a 400,000-node graph (y = y * x, each node saving both
factors), with no hook, then with a Python hook on the leaf x, then also on an intermediate
that Python holds, and last with that intermediate dropped (its hook is then held by the graph
alone, which the collector must walk to find it); and 30,000 steps of a loop that keeps
`total = total + loss` (its graph grows by two nodes a step) and a log entry per step (so the
collector runs every 700 steps, as in a loop that records its history), timed per 5,000 steps,
without a hook and then with one on the parameter w.

    python bench/gc_cost.py [--library torch]
"""

import argparse
import gc
import time

parser = argparse.ArgumentParser()
parser.add_argument("--library", default="tapegrad")
lib = __import__(parser.parse_args().library)


def collect_time():
    start = time.process_time()
    gc.collect()
    return time.process_time() - start


x = lib.ones(1, requires_grad=True)
y = x
for step in range(400_000):
    y = y * x
    if step == 200_000:
        hidden = y
print("gc.collect() with a 400,000-node graph alive, s:")
print(f"  no hook: {collect_time():.3f}")
x.register_hook(lambda grad: grad)
print(f"  a hook on the leaf: {collect_time():.3f}")
hidden.register_hook(lambda grad: grad)
print(f"  and one on an intermediate Python holds: {collect_time():.3f}")
del hidden
print(f"  the intermediate dropped, its hook held by the graph alone: {collect_time():.3f}")
del x, y


def grow_total(w):
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
    return " ".join(f"{t:.2f}" for t in per_chunk)


w = lib.randn(16, requires_grad=True)
print("total = total + loss, s per 5,000 steps:")
print("  no hook:", grow_total(w))
w.register_hook(lambda grad: grad)
print("  a hook on w:", grow_total(w))
