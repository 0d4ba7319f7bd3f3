"""tapegrad, PyTorch and a hand-written numpy reference, side by side in one process.

Benchmark runs (the two variables pick kernels for older OpenBLAS builds and slow current
ones; this script never changes them, it only reports which OpenBLAS core ran):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py

(tapegrad must be importable: installed, or PYTHONPATH=python from the repository root.)

Options: --threads N (every backend; default 1), --repeats R, --quick (a smoke test for CI:
3 repeats, 256K elements, 128 and 256 matmuls), --only NAME (repeatable or comma-separated;
a family name such as `matmul` picks all its sizes), --json PATH, --clock cpu|wall.

Workloads (unit; limit):
- seed: `x = arange(4.0)`, `2*dot(x, x).backward()`, `x.grad.zero_()`, `x.sum().backward()`
  (µs per iteration).
- chain: 200 ops alternating `y*w` and `y + 0.5` on 16 float32 (µs per op).
- elementwise: `((x*w + b).tanh()**2).sum()` on 4M float32 (GB/s, counting 24 bytes per
  element: reading x, w, b and writing their gradients once each is the least any
  implementation streams; limit: copy bandwidth).
- matmul-512, matmul-1024: `(A@B).sum()`, forward and backward = 3 GEMMs of 2n^3 flops
  (GFLOP/s; limit: one numpy sgemm of the same size).
- mlp-b64, mlp-b1: one SGD step of an MLP 784-256-256-10 with relu and cross_entropy
  (steps/s).
- graph0d: 2,000 ops `x = x*a + c` on 0-d tensors, micrograd-style (ms per graph).
- memory: peak RSS and RSS drift over 300 steps of mlp-b64.

How it measures:
- A step is forward + backward + reading and zeroing the gradients. "Reading" a value means
  passing it to the step's `observe` callback; while timing that is a no-op costing about
  50 ns a call, the same for every backend.
- Before timing, every backend runs one step from the same inputs and the observed values
  (losses and gradients) are compared with PyTorch's (with the numpy reference's when torch
  is not installed). A mismatch is printed, the workload is not timed, and the script exits
  with status 1.
- After a warm-up that also sizes a batch of steps (about 50 ms), each of `repeats` rounds
  times one batch per row in turn: tapegrad, torch, numpy, then the workload's limit probe,
  so machine noise hits all of them alike. Tables show medians; "spread" is the
  interquartile range as a fraction of the median.
- A step's time is this process's CPU time when every backend runs one thread (the default):
  on an idle machine it equals the wall-clock time, and on a busy one it leaves out the time
  other processes take the core. With more threads it is the wall clock (`--clock` chooses).
  Both are saved in the JSON; cache and memory-bandwidth contention still show in either.
- With more than one thread, each batch starts after a pause of SETTLE_SECONDS: a BLAS or
  OpenMP pool keeps its threads spinning for a while after a call before they sleep, and
  three libraries' pools in one process would otherwise take the cores from each other's
  next batch. Measured: tapegrad's 1024 matmul step on 2 threads ran at 128
  GFLOP/s alone and at 60 right after numpy's sgemm.
- "time / torch" is a ratio of median times per step: below 1 means faster than PyTorch.
- Limits are measured in the same rounds: streaming copy bandwidth (np.copyto of 64 MB,
  bytes read + written per second) for elementwise, numpy's sgemm at the same size for
  matmul. "of limit" is the row's figure divided by the limit's.
- `memory` runs 300 SGD steps of the batch-64 MLP per backend, each in a fresh subprocess so
  the peak RSS is that backend's own.
- Where tapegrad lacks an op a workload needs, the workload reports
  `n/a (tapegrad lacks X)`; torch and numpy are still checked against each other and timed.
  Without torch installed, tapegrad is checked against the numpy reference and the ratio
  columns stay empty.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

Observe = Callable[[str, Any], None]
Step = Callable[[Observe], None]

F32 = np.float32
MEMORY_STEPS = 300
MEMORY_DRIFT_FROM = 50


def ignore(label: str, value: Any) -> None:
    """The `observe` callback while timing: reading a value costs this call and nothing more."""


# ---------------------------------------------------------------------------------------------
# Workloads. Each `autograd` function serves tapegrad and torch alike (`lib` is the module) and
# is written as a torch user would write it; each `by_hand` function is the numpy reference with
# analytic gradients. Inputs come from `data`, once per workload, so every backend starts equal.


def seed_data() -> dict:
    return {}


def seed_autograd(lib, data: dict) -> Step:
    x = lib.arange(4.0, requires_grad=True)

    def step(observe: Observe) -> None:
        y = 2 * lib.dot(x, x)
        y.backward()
        observe("y", y)
        observe("x.grad after y.backward()", x.grad)
        x.grad.zero_()
        x.sum().backward()
        observe("x.grad after x.sum().backward()", x.grad)

    return step


def seed_by_hand(data: dict) -> Step:
    x = np.arange(4.0, dtype=F32)
    grad_x = np.zeros_like(x)

    def step(observe: Observe) -> None:
        y = 2 * np.dot(x, x)
        grad_x[:] += 4 * x  # d(2 x.x)/dx = 4x, accumulated as backward() does
        observe("y", y)
        observe("x.grad after y.backward()", grad_x)
        grad_x.fill(0)
        x.sum()
        grad_x[:] += 1  # d(sum x)/dx = 1
        observe("x.grad after x.sum().backward()", grad_x)

    return step


def chain_data(ops: int) -> dict:
    rng = np.random.default_rng(1)
    return {
        "x": rng.standard_normal(16, dtype=F32),
        "w": (1 + 0.01 * rng.standard_normal(16)).astype(F32),  # keeps 100 products near 1
        "pairs": ops // 2,
    }


def chain_autograd(lib, data: dict) -> Step:
    x = lib.tensor(data["x"])
    w = lib.tensor(data["w"], requires_grad=True)
    pairs = data["pairs"]

    def step(observe: Observe) -> None:
        y = x
        for _ in range(pairs):
            y = y * w
            y = y + 0.5
        loss = y.sum()
        loss.backward()
        observe("loss", loss)
        observe("w.grad", w.grad)
        w.grad.zero_()

    return step


def chain_by_hand(data: dict) -> Step:
    x, w, pairs = data["x"], data["w"], data["pairs"]
    grad_w = np.zeros_like(w)

    def step(observe: Observe) -> None:
        mul_inputs = []
        y = x
        for _ in range(pairs):
            mul_inputs.append(y)
            y = y * w
            y = y + 0.5
        loss = y.sum()
        grad_y = np.ones_like(y)  # d(sum y)/dy = 1, and d(y + 0.5)/dy = 1
        for y_in in reversed(mul_inputs):
            grad_w[:] += grad_y * y_in  # d(y*w)/dw = y
            grad_y = grad_y * w  # d(y*w)/dy = w
        observe("loss", loss)
        observe("w.grad", grad_w)
        grad_w.fill(0)

    return step


def elementwise_data(numel: int) -> dict:
    rng = np.random.default_rng(2)
    return {name: rng.standard_normal(numel, dtype=F32) for name in ("x", "w", "b")}


def elementwise_autograd(lib, data: dict) -> Step:
    x, w, b = (lib.tensor(data[name], requires_grad=True) for name in ("x", "w", "b"))

    def step(observe: Observe) -> None:
        loss = ((x * w + b).tanh() ** 2).sum()
        loss.backward()
        observe("loss", loss)
        for label, leaf in (("x.grad", x), ("w.grad", w), ("b.grad", b)):
            observe(label, leaf.grad)
            leaf.grad.zero_()

    return step


def elementwise_by_hand(data: dict) -> Step:
    x, w, b = data["x"], data["w"], data["b"]
    t, grad_x, grad_w, grad_u = (np.empty_like(x) for _ in range(4))

    def step(observe: Observe) -> None:
        np.multiply(x, w, out=t)
        np.add(t, b, out=t)
        np.tanh(t, out=t)  # t = tanh(u), u = x*w + b
        loss = np.dot(t, t)  # sum(t**2)
        np.multiply(t, t, out=grad_u)
        np.subtract(1, grad_u, out=grad_u)
        np.multiply(grad_u, t, out=grad_u)
        np.multiply(grad_u, 2, out=grad_u)  # d(sum tanh(u)**2)/du = 2 t (1 - t**2)
        np.multiply(grad_u, w, out=grad_x)  # du/dx = w
        np.multiply(grad_u, x, out=grad_w)  # du/dw = x; du/db = 1, so b.grad is grad_u
        observe("loss", loss)
        observe("x.grad", grad_x)
        observe("w.grad", grad_w)
        observe("b.grad", grad_u)

    return step


def copy_probe(numel: int) -> Step:
    source = np.ones(numel, dtype=F32)
    destination = np.empty_like(source)

    def step(observe: Observe) -> None:
        np.copyto(destination, source)

    return step


def matmul_data(n: int) -> dict:
    rng = np.random.default_rng(3)
    # Positive entries: the float32 sum of a million products then has no cancellation, so
    # the loss compares at a tight tolerance.
    return {"A": rng.random((n, n), dtype=F32), "B": rng.random((n, n), dtype=F32)}


def matmul_autograd(lib, data: dict) -> Step:
    A = lib.tensor(data["A"], requires_grad=True)
    B = lib.tensor(data["B"], requires_grad=True)

    def step(observe: Observe) -> None:
        loss = (A @ B).sum()
        loss.backward()
        observe("loss", loss)
        observe("A.grad", A.grad)
        observe("B.grad", B.grad)
        A.grad.zero_()
        B.grad.zero_()

    return step


def matmul_by_hand(data: dict) -> Step:
    A, B = data["A"], data["B"]
    product, grad_A, grad_B = (np.empty_like(A) for _ in range(3))
    grad_product = np.ones_like(A)

    def step(observe: Observe) -> None:
        np.matmul(A, B, out=product)
        loss = product.sum()
        np.matmul(grad_product, B.T, out=grad_A)  # d(sum AB)/dA = G B^T
        np.matmul(A.T, grad_product, out=grad_B)  # d(sum AB)/dB = A^T G
        observe("loss", loss)
        observe("A.grad", grad_A)
        observe("B.grad", grad_B)

    return step


def sgemm_probe(n: int) -> Step:
    rng = np.random.default_rng(4)
    A, B = rng.random((n, n), dtype=F32), rng.random((n, n), dtype=F32)
    product = np.empty_like(A)

    def step(observe: Observe) -> None:
        np.matmul(A, B, out=product)

    return step


MLP_SIZES = (784, 256, 256, 10)
MLP_GRAD_LABELS = ("W1.grad", "b1.grad", "W2.grad", "b2.grad", "W3.grad", "b3.grad")


def mlp_data(batch: int) -> dict:
    rng = np.random.default_rng(5)
    params = []
    for fan_in, fan_out in zip(MLP_SIZES, MLP_SIZES[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(F32))
        params.append(np.zeros(fan_out, dtype=F32))
    return {
        "X": rng.standard_normal((batch, MLP_SIZES[0]), dtype=F32),
        "y": rng.integers(0, MLP_SIZES[-1], batch),
        "params": params,
        "lr": 0.01,
    }


def mlp_autograd(lib, data: dict) -> Step:
    F = lib.nn.functional
    X, y, lr = lib.tensor(data["X"]), lib.tensor(data["y"]), data["lr"]
    params = [lib.tensor(p, requires_grad=True) for p in data["params"]]
    W1, b1, W2, b2, W3, b3 = params

    def step(observe: Observe) -> None:
        H1 = F.relu(X @ W1 + b1)
        H2 = F.relu(H1 @ W2 + b2)
        loss = F.cross_entropy(H2 @ W3 + b3, y)
        loss.backward()
        observe("loss", loss)
        with lib.no_grad():
            for label, p in zip(MLP_GRAD_LABELS, params):
                observe(label, p.grad)
                p -= lr * p.grad
                p.grad.zero_()

    return step


def mlp_by_hand(data: dict) -> Step:
    X, y, lr = data["X"], data["y"], data["lr"]
    params = [p.copy() for p in data["params"]]
    W1, b1, W2, b2, W3, b3 = params
    rows = np.arange(len(y))

    def step(observe: Observe) -> None:
        Z1 = X @ W1 + b1
        H1 = np.maximum(Z1, 0)
        Z2 = H1 @ W2 + b2
        H2 = np.maximum(Z2, 0)
        logits = H2 @ W3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) - shifted[rows, y])  # mean of -log softmax[target]
        grad_logits = exp / total
        grad_logits[rows, y] -= 1
        grad_logits /= len(y)  # d loss/d logits = (softmax - onehot) / batch
        grad_Z2 = (grad_logits @ W3.T) * (Z2 > 0)  # relu'(z) = [z > 0]
        grad_Z1 = (grad_Z2 @ W2.T) * (Z1 > 0)
        # np.dot, not @: at batch 1 matmul skips BLAS for the (n, 1) transposed operand and
        # runs about 7x slower.
        grads = (
            np.dot(X.T, grad_Z1), grad_Z1.sum(axis=0),  # d(XW + b)/dW = X^T G, /db = sum of rows
            np.dot(H1.T, grad_Z2), grad_Z2.sum(axis=0),
            np.dot(H2.T, grad_logits), grad_logits.sum(axis=0),
        )
        observe("loss", loss)
        for label, p, grad in zip(MLP_GRAD_LABELS, params, grads):
            observe(label, grad)
            p -= lr * grad

    return step


GRAPH0D_LEAVES = 16


def graph0d_data(ops: int) -> dict:
    rng = np.random.default_rng(6)
    # |a| < 1 keeps x = x*a + c bounded however long the graph.
    leaves = rng.uniform(-0.9, 0.9, GRAPH0D_LEAVES).astype(F32)
    schedule = [(i % GRAPH0D_LEAVES, (i + 7) % GRAPH0D_LEAVES) for i in range(ops // 2)]
    labels = [f"p{i}.grad" for i in range(GRAPH0D_LEAVES)]
    return {"leaves": leaves, "schedule": schedule, "labels": labels}


def graph0d_autograd(lib, data: dict) -> Step:
    leaves = [lib.tensor(float(v), requires_grad=True) for v in data["leaves"]]
    schedule = [(leaves[a], leaves[c]) for a, c in data["schedule"]]
    labels = data["labels"]

    def step(observe: Observe) -> None:
        x = leaves[0]
        for a, c in schedule:
            x = x * a + c
        x.backward()
        observe("x", x)
        for label, leaf in zip(labels, leaves):
            observe(label, leaf.grad)
            leaf.grad.zero_()

    return step


def graph0d_by_hand(data: dict) -> Step:
    # Plain Python floats: the fastest hand-written scalar code, as micrograd would run it.
    leaves = [float(v) for v in data["leaves"]]
    schedule, labels = data["schedule"], data["labels"]

    def step(observe: Observe) -> None:
        x = leaves[0]
        inputs = []
        for a, c in schedule:
            inputs.append(x)
            x = x * leaves[a] + leaves[c]
        grads = [0.0] * len(leaves)
        grad_x = 1.0
        for (a, c), x_in in zip(reversed(schedule), reversed(inputs)):
            grads[c] += grad_x  # d(x*a + c)/dc = 1
            grads[a] += grad_x * x_in  # d(x*a)/da = x
            grad_x *= leaves[a]  # d(x*a)/dx = a
        grads[0] += grad_x  # x started as leaf 0
        observe("x", x)
        for label, grad in zip(labels, grads):
            observe(label, grad)

    return step


@dataclass
class Limit:
    """A machine limit, timed in the same rounds as the backends."""

    name: str
    step: Callable[[], Step]
    figure: Callable[[float], float]  # seconds per step -> figure in the workload's unit


@dataclass
class Workload:
    name: str  # for --only; the family is the part before '-'
    title: str
    unit: str
    figure: Callable[[float], float]  # seconds per step -> figure in `unit`
    data: Callable[[], dict]
    autograd: Callable[[Any, dict], Step]
    by_hand: Callable[[dict], Step]
    limit: Limit | None = None
    # tapegrad attributes whose absence raises nothing: without `Tensor.__isub__`, `p -= g`
    # silently rebinds `p` to a new tensor.
    needs: tuple[str, ...] = ()
    rtol: float = 1e-4
    atol: float = 1e-5  # times the largest magnitude in the reference value


def workloads(quick: bool) -> list[Workload]:
    chain_ops, graph_ops = 200, 2000
    numel = 2**18 if quick else 2**22
    copy_numel = 2**24  # 64 MB of float32
    mlp = dict(unit="steps/s", figure=lambda s: 1 / s, autograd=mlp_autograd,
               by_hand=mlp_by_hand, needs=("Tensor.__isub__",))
    found = [
        Workload("seed", "x = arange(4.0); 2*dot(x, x).backward(); x.grad.zero_(); "
                 "x.sum().backward()", "µs/iteration", lambda s: s * 1e6,
                 seed_data, seed_autograd, seed_by_hand),
        Workload("chain", f"{chain_ops} ops alternating y*w and y+0.5 on 16 float32, then sum, "
                 "backward, read and zero w.grad", "µs/op", lambda s: s * 1e6 / chain_ops,
                 partial(chain_data, chain_ops), chain_autograd, chain_by_hand),
        # A fused kernel must read x, w, b and write their three gradients once each: 24 bytes
        # per element is the streaming lower bound (zeroing and everything else is extra).
        Workload("elementwise", f"((x*w + b).tanh()**2).sum(), {numel:,} float32, x/w/b "
                 "requiring grad; 24 bytes/element counted", "GB/s",
                 lambda s: 24 * numel / s / 1e9, partial(elementwise_data, numel),
                 elementwise_autograd, elementwise_by_hand,
                 Limit("np.copyto 64 MB", partial(copy_probe, copy_numel),
                       lambda s: 2 * 4 * copy_numel / s / 1e9)),
    ]
    for n in (128, 256) if quick else (512, 1024):
        found.append(Workload(
            f"matmul-{n}", f"(A@B).sum(), {n}x{n} float32, forward + backward = 3 GEMMs",
            "GFLOP/s", lambda s, n=n: 3 * 2 * n**3 / s / 1e9, partial(matmul_data, n),
            matmul_autograd, matmul_by_hand,
            Limit(f"numpy sgemm {n}", partial(sgemm_probe, n), lambda s, n=n: 2 * n**3 / s / 1e9),
            atol=1e-4))
    for batch in (64, 1):
        found.append(Workload(
            f"mlp-b{batch}", f"SGD step of MLP 784-256-256-10 (relu, cross_entropy), "
            f"batch {batch}", data=partial(mlp_data, batch), **mlp))
    found.append(Workload(
        "graph0d", f"{graph_ops} ops of 0-d tensors: x = x*a + c over 16 leaves, backward; "
        "numpy row: Python floats", "ms/graph", lambda s: s * 1e3,
        partial(graph0d_data, graph_ops), graph0d_autograd, graph0d_by_hand))
    return found


# ---------------------------------------------------------------------------------------------
# Backends and environment.


@dataclass
class Backend:
    name: str
    lib: Any  # the autograd module; None for the numpy reference

    def step(self, workload: Workload, data: dict) -> Step:
        if self.lib is None:
            return workload.by_hand(data)
        return workload.autograd(self.lib, data)


class Lacking(Exception):
    """tapegrad lacks something a workload needs."""


def missing_feature(error: Exception) -> str | None:
    """What an exception from tapegrad says it lacks, named as users name it, if it says."""
    owner = getattr(error, "obj", None)
    if isinstance(error, AttributeError) and error.name and owner is not None:
        if isinstance(owner, types.ModuleType):
            return f"{owner.__name__.replace('tapegrad', 'tg', 1)}.{error.name}"
        return f"{type(owner).__name__}.{error.name}"
    operator = re.match(r"unsupported operand type\(s\) for (\S+):", str(error))
    if isinstance(error, TypeError) and operator:
        return f"operator {operator.group(1)}"
    return None


def has_attribute_path(owner: Any, path: str) -> bool:
    for part in path.split("."):
        if not hasattr(owner, part):
            return False
        owner = getattr(owner, part)
    return True


def prepare(backend: Backend, workload: Workload, data: dict, observe: Observe) -> Step:
    """The backend's step after one run of it with `observe`; raises Lacking for tapegrad."""
    if backend.name != "tapegrad":
        step = backend.step(workload, data)
        step(observe)
        return step
    missing = [path for path in workload.needs if not has_attribute_path(backend.lib, path)]
    try:
        step = backend.step(workload, data)
        step(observe)
    except (AttributeError, TypeError, NotImplementedError) as error:
        # An error that names nothing is most likely a symptom of a missing `needs` entry.
        named = missing_feature(error)
        missing = ([named] if named else []) + missing
        raise Lacking(", ".join(missing) or f"what this needs: {type(error).__name__}: {error}")
    if missing:
        raise Lacking(", ".join(missing))
    return step


def load_backends(names: list[str]) -> list[Backend]:
    backends = []
    for name in names:
        if name == "numpy":
            backends.append(Backend(name, None))
            continue
        try:
            backends.append(Backend(name, importlib.import_module(name)))
        except ImportError:
            if name == "tapegrad":
                raise
    return backends


def openblas_functions() -> dict[str, Any] | None:
    """numpy's OpenBLAS C API (the calls threadpoolctl makes), for when threadpoolctl is absent."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for prefix, suffix in (("openblas", ""), ("scipy_openblas", "64_"),
                               ("scipy_openblas", ""), ("openblas", "64_")):
            if hasattr(library, f"{prefix}_get_corename{suffix}"):
                functions = {name: getattr(library, f"{prefix}_{name}{suffix}")
                             for name in ("get_corename", "get_config", "get_num_threads",
                                          "set_num_threads")}
                functions["get_corename"].restype = ctypes.c_char_p
                functions["get_config"].restype = ctypes.c_char_p
                functions["path"] = path
                return functions
    return None


def set_threads(n: int, backends: list[Backend]) -> list[str]:
    """Gives every backend n threads; returns how, one phrase per library."""
    how = []
    for backend in backends:
        if backend.name == "torch":
            backend.lib.set_num_threads(n)
            how.append("torch.set_num_threads")
        elif backend.name == "tapegrad":
            if hasattr(backend.lib, "set_num_threads"):
                backend.lib.set_num_threads(n)
                how.append("tg.set_num_threads")
            else:
                how.append("tapegrad has no set_num_threads")
    if threadpoolctl is not None:
        # Called, not entered as a context: the limits hold for the rest of the process.
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
        how.append("BLAS libraries via threadpoolctl")
    elif (openblas := openblas_functions()) is not None:
        openblas["set_num_threads"](n)
        how.append("numpy's OpenBLAS via its set_num_threads (threadpoolctl not installed)")
    else:
        how.append("numpy's BLAS untouched (no threadpoolctl, no OpenBLAS found)")
    return how


def blas_description() -> str:
    """numpy's BLAS, with the core type OpenBLAS picked at run time."""
    if threadpoolctl is not None:
        entries = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
        return "; ".join(
            f"{info['internal_api']} {info.get('version')} ({os.path.basename(info['filepath'])}), "
            f"core type {info.get('architecture', '?')}, {info['num_threads']} threads"
            for info in entries) or "no BLAS found by threadpoolctl"
    openblas = openblas_functions()
    if openblas is None:
        return "not OpenBLAS, and threadpoolctl is not installed to say more"
    return (f"{openblas['get_config']().decode().strip()} ({os.path.basename(openblas['path'])}), "
            f"core type {openblas['get_corename']().decode()}, "
            f"{openblas['get_num_threads']()} threads (read from OpenBLAS; threadpoolctl not "
            "installed)")


def cpu_model() -> str:
    fields = {}
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
    return (f"{fields.get('model name', platform.processor() or '?')} "
            f"(family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}), "
            f"{os.cpu_count()} logical CPUs")


def environment(backends: list[Backend], threads_how: list[str], args) -> dict:
    versions = {backend.name: getattr(backend.lib, "__version__", "?")
                for backend in backends if backend.lib is not None}
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "load average": "{:.2f} {:.2f} {:.2f} (other work on the machine skews every figure)"
                        .format(*os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tapegrad": versions.get("tapegrad"),
        "torch": versions.get("torch", "not installed: tapegrad and numpy figures only, "
                              "checked against the numpy reference"),
        "threads": f"{args.threads} per backend: " + ", ".join(threads_how),
        "numpy BLAS": blas_description(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "mode": f"{'quick' if args.quick else 'full'}, {args.repeats} repeats",
        "clock": "process CPU time" if args.clock == "cpu" else "wall clock",
    }


# ---------------------------------------------------------------------------------------------
# Checking and timing, shared by every workload.


def as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().numpy()
    return np.array(value, copy=True)


def recorder() -> tuple[list, Observe]:
    seen: list[tuple[str, np.ndarray]] = []
    return seen, lambda label, value: seen.append((label, as_array(value)))


def mismatches(workload: Workload, name: str, seen: list, reference_name: str,
               reference: list) -> list[str]:
    """Why `seen` differs from `reference`, one line per value; empty when they agree."""
    labels, reference_labels = [label for label, _ in seen], [label for label, _ in reference]
    if labels != reference_labels:
        return [f"{name} observed {labels}, {reference_name} observed {reference_labels}"]
    problems = []
    for (label, actual), (_, expected) in zip(seen, reference):
        if actual.shape != expected.shape:
            problems.append(f"{name} {label} has shape {actual.shape}, {reference_name} "
                            f"{expected.shape}")
            continue
        atol = workload.atol * float(np.max(np.abs(expected), initial=0))
        if not np.allclose(actual, expected, rtol=workload.rtol, atol=atol):
            error = np.abs(actual.astype(np.float64) - expected)
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
            problems.append(
                f"{name} {label} differs from {reference_name}'s: worst at index {worst}, "
                f"{float(actual[worst]):.7g} vs {float(expected[worst]):.7g} "
                f"(rtol {workload.rtol:g}, atol {atol:.3g})")
    return problems


@dataclass
class Row:
    """One timed line of a workload's table: a backend or a limit probe."""

    name: str
    step: Step
    figure: Callable[[float], float]
    batch: int = 1
    wall: list[float] = field(default_factory=list)  # seconds per step, one per round
    cpu: list[float] = field(default_factory=list)  # the same in this process's CPU time


def calibrate(row: Row, warmup_seconds: float, batch_seconds: float) -> None:
    """Warms the row up and sizes its batch to take about `batch_seconds`."""
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < warmup_seconds:
        row.step(ignore)
        steps += 1
    row.batch = max(1, round(batch_seconds * steps / (time.perf_counter() - start)))


SETTLE_SECONDS = 0.3


def time_interleaved(rows: list[Row], repeats: int, settle: bool) -> None:
    for _ in range(repeats):
        for row in rows:
            if settle:
                time.sleep(SETTLE_SECONDS)
            step, batch = row.step, row.batch
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(batch):
                step(ignore)
            row.cpu.append((time.process_time() - cpu) / batch)
            row.wall.append((time.perf_counter() - wall) / batch)


def run_workload(workload: Workload, backends: list[Backend], args) -> dict:
    """Checks, then times, one workload; returns its JSON record (with a 'status').

    Without tapegrad's row (it lacks an op, or raised) the other rows are still checked and
    timed; a mismatch stops the workload before any timing.
    """
    data = workload.data()
    record: dict[str, Any] = {"title": workload.title, "unit": workload.unit, "status": "ok"}
    rows, observed = [], {}
    for backend in backends:
        seen, observe = recorder()
        try:
            step = prepare(backend, workload, data, observe)
        except Lacking as lacking:
            record["status"] = f"n/a (tapegrad lacks {lacking})"
            continue
        except Exception as error:  # a tapegrad failure is reported; the run goes on
            if backend.name != "tapegrad":
                raise
            record["status"] = f"FAILED: tapegrad raised {type(error).__name__}: {error}"
            continue
        observed[backend.name] = seen
        rows.append(Row(backend.name, step, workload.figure))
    reference_name = "torch" if "torch" in observed else "numpy"
    problems = [problem for name, seen in observed.items() if name != reference_name
                for problem in mismatches(workload, name, seen, reference_name,
                                          observed[reference_name])]
    if problems:
        return {**record, "status": "FAILED: values differ", "problems": problems}
    if workload.limit is not None:
        rows.append(Row(f"limit: {workload.limit.name}", workload.limit.step(),
                        workload.limit.figure))
    warmup, batch_seconds = (0.02, 0.005) if args.quick else (0.2, 0.05)
    for row in rows:
        calibrate(row, warmup, batch_seconds)
    gc.collect()
    time_interleaved(rows, args.repeats, settle=args.threads > 1)
    medians = {row.name: statistics.median(getattr(row, args.clock)) for row in rows}
    torch_median = medians.get("torch")
    limit_figure = rows[-1].figure(medians[rows[-1].name]) if workload.limit else None
    backend_names = {backend.name for backend in backends}
    record["rows"] = {}
    for row in rows:
        seconds, median = getattr(row, args.clock), medians[row.name]
        quartiles = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else None
        record["rows"][row.name] = {
            "median_seconds": median,
            "figure": row.figure(median),
            "time_vs_torch": median / torch_median
            if torch_median and row.name in backend_names else None,
            "of_limit": row.figure(median) / limit_figure if limit_figure else None,
            "spread": (quartiles[2] - quartiles[0]) / median if quartiles else None,
            "batch": row.batch,
            "wall_seconds": row.wall,
            "cpu_seconds": row.cpu,
        }
    return record


# ---------------------------------------------------------------------------------------------
# Memory: each backend's MLP steps in a fresh process of this script.


def rss_bytes(field_name: str = "VmRSS") -> int:
    """The process's resident set now (VmRSS) or at its peak (VmHWM), from /proc/self/status.

    Not getrusage's ru_maxrss: that survives exec, so a child would report its parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def memory_child(backend_name: str, args) -> dict:
    """Runs in the subprocess: MLP steps of one backend, RSS along the way."""
    backend = load_backends([backend_name])[0]
    set_threads(args.threads, [backend])
    workload = next(w for w in workloads(args.quick) if w.name == "mlp-b64")
    try:
        step = prepare(backend, workload, workload.data(), ignore)
    except Lacking as lacking:
        return {"status": f"n/a (tapegrad lacks {lacking})"}
    after_setup = rss_bytes()
    for done in range(1, MEMORY_STEPS):  # prepare() ran the first step
        step(ignore)
        if done + 1 == MEMORY_DRIFT_FROM:
            at_drift_start = rss_bytes()
    at_end = rss_bytes()
    return {
        "status": "ok",
        "rss_after_first_step": after_setup,
        "peak_rss": rss_bytes("VmHWM"),
        f"rss_at_step_{MEMORY_DRIFT_FROM}": at_drift_start,
        f"rss_at_step_{MEMORY_STEPS}": at_end,
        "drift": at_end - at_drift_start,
    }


def run_memory(backends: list[Backend], args) -> dict:
    record: dict[str, Any] = {
        "title": f"{MEMORY_STEPS} SGD steps of the batch-64 MLP, one fresh process per backend",
        "unit": "MB", "status": "ok", "rows": {}}
    for backend in backends:
        command = [sys.executable, os.path.abspath(__file__), "--memory-child", backend.name,
                   "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            record["rows"][backend.name] = json.loads(done.stdout.strip().splitlines()[-1])
            continue
        failure = f"FAILED: the {backend.name} process exited with {done.returncode}"
        record["rows"][backend.name] = {"status": failure, "stderr": done.stderr[-2000:]}
        record["status"] = failure
    return record


# ---------------------------------------------------------------------------------------------
# Output.


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}x" if value < 1 else f"{value:.2f}x"


def print_table(header: list[str], lines: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    for cells in [header, *lines]:
        print("  " + cells[0].ljust(widths[0]) + "".join(
            "  " + cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])))


def print_workload(name: str, record: dict) -> None:
    print(f"\n{name}: {record['title']}")
    if record["status"] != "ok":
        print(f"  {record['status']}")
        for problem in record.get("problems", []):
            print(f"    {problem}")
    if not record.get("rows"):
        return
    if name == "memory":
        header = ["backend", "RSS after 1st step", "peak RSS",
                  f"RSS at step {MEMORY_DRIFT_FROM}", f"drift {MEMORY_DRIFT_FROM}->{MEMORY_STEPS}"]

        def megabytes(value: int) -> str:
            return f"{value / 2**20:,.1f} MB"

        rows = record["rows"]
        print_table(header, [
            [backend, megabytes(row["rss_after_first_step"]), megabytes(row["peak_rss"]),
             megabytes(row[f"rss_at_step_{MEMORY_DRIFT_FROM}"]), megabytes(row["drift"])]
            for backend, row in rows.items() if row["status"] == "ok"])
        for backend, row in rows.items():
            if row["status"] != "ok":
                print(f"  {backend}: {row['status']}\n{row.get('stderr', '')}".rstrip())
        return
    print_table(
        ["", record["unit"], "time / torch", "of limit", "spread"],
        [[backend, number(row["figure"]), ratio(row["time_vs_torch"]),
          f"{row['of_limit']:.0%}" if row["of_limit"] is not None else "—",
          f"{row['spread']:.1%}" if row["spread"] is not None else "—"]
         for backend, row in record["rows"].items()])


def print_summary(results: dict) -> None:
    print("\nsummary (tapegrad / torch: ratio of times, below 1 = tapegrad faster)")
    lines = []
    for name, record in results.items():
        if name == "memory":
            continue
        rows = record.get("rows", {})

        def figure(backend: str) -> str:
            return number(rows[backend]["figure"]) if backend in rows else "—"

        tapegrad = rows.get("tapegrad", {})
        limit = tapegrad.get("of_limit")
        lines.append([name, record["unit"], figure("tapegrad"), figure("torch"), figure("numpy"),
                      ratio(tapegrad.get("time_vs_torch")) if tapegrad else
                      record["status"].split(" ")[0].rstrip(":"),
                      f"{limit:.0%}" if limit is not None else "—"])
    print_table(["workload", "unit", "tapegrad", "torch", "numpy", "tapegrad / torch",
                 "tapegrad of limit"], lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for every backend")
    parser.add_argument("--repeats", type=int, help="timed rounds (default 11, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="workloads or families to run (repeatable, comma-separated)")
    parser.add_argument("--json", metavar="PATH", help="save the results as JSON")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="what a step's time is: this process's CPU time or the wall "
                             "clock (auto: cpu with one thread, else wall)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 11
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    if args.clock == "auto":
        args.clock = "cpu" if args.threads == 1 else "wall"
    return args


def selected(names: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return names
    wanted = [item for group in only for item in group.split(",") if item]
    unknown = [item for item in wanted
               if not any(item in (name, name.split("-")[0]) for name in names)]
    if unknown:
        sys.exit(f"unknown workload {', '.join(unknown)}; choose from {', '.join(names)} "
                 "or a family (matmul, mlp)")
    return [name for name in names if name in wanted or name.split("-")[0] in wanted]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args)))
        return 0
    by_name = {workload.name: workload for workload in workloads(args.quick)}
    names = selected([*by_name, "memory"], args.only)
    try:
        backends = load_backends(["tapegrad", "torch", "numpy"])
    except ImportError as error:
        sys.exit(f"cannot import tapegrad ({error}); run from the repository with "
                 "PYTHONPATH=python, or install it")
    threads_how = set_threads(args.threads, backends)
    env = environment(backends, threads_how, args)
    print("tapegrad vs PyTorch vs numpy by hand")
    for key, value in env.items():
        print(f"  {key}: {value}")
    if env["OPENBLAS_CORETYPE"] != "unset" or env["OPENBLAS_L2_SIZE"] != "unset":
        print("  warning: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set; benchmark runs should be "
              "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py`")
    results = {}
    for name in names:
        gc.collect()
        if name == "memory":
            results[name] = run_memory(backends, args)
        else:
            results[name] = run_workload(by_name[name], backends, args)
        print_workload(name, results[name])
        sys.stdout.flush()
    if any(name != "memory" for name in results):
        print_summary(results)
    failed = [name for name, record in results.items() if record["status"].startswith("FAILED")]
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"environment": env, "workloads": results}, out, indent=1)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
