"""Resident memory of tapegrad and PyTorch (when installed), each library in a fresh process:

- freed: RSS after import, with 1 GiB of float32 tensors alive (64 of 16 MiB), and after
  they are dropped;
- sizes: peak RSS (VmHWM) of a loop whose tensor sizes grow, 3 steps of
  `((x*w + b).tanh()**2).sum().backward()` at each of 40 sizes from 1 to 40 MiB per tensor.

    python bench/memory.py
"""

import subprocess
import sys

MIB = 2 ** 20


def status_mib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB


def freed(lib):
    before = status_mib("VmRSS")
    tensors = [lib.ones(16 * MIB // 4) for _ in range(64)]
    alive = status_mib("VmRSS")
    del tensors
    return f"after import {before:.0f} MB, 1 GiB alive {alive:.0f} MB, dropped {status_mib('VmRSS'):.0f} MB"


def sizes(lib):
    for size in range(1, 41):
        x, w, b = (lib.ones(size * MIB // 4, requires_grad=True) for _ in range(3))
        for _ in range(3):
            ((x * w + b).tanh() ** 2).sum().backward()
            for leaf in (x, w, b):
                leaf.grad.zero_()
    return f"peak {status_mib('VmHWM'):.0f} MB"


if __name__ == "__main__":
    if len(sys.argv) == 3:
        library, workload = sys.argv[1:]
        print(f"{library:8} {workload:6} {globals()[workload](__import__(library))}", flush=True)
    else:
        for workload in ("freed", "sizes"):
            for library in ("tapegrad", "torch"):
                subprocess.run([sys.executable, __file__, library, workload], check=library == "tapegrad")
