"""Threads: tg.set_num_threads / get_num_threads and their limits, forks while other threads
work, kernels split across the thread pool giving exactly the single-thread results, grad mode
per thread, Python threads training side by side, the GIL released inside long kernels, and
OpenBLAS's jobs on the pool."""
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tapegrad as tg

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))  # installed or checkout
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
BIG = 1 << 18  # elements: well above the size from which kernels split across the pool
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")  # CI's sanitizer stage preloads the runtime


@pytest.fixture
def restore_threads():
    before = tg.get_num_threads()
    yield
    tg.set_num_threads(before)


def run_python(code, env_changes=None, preexec_fn=None):
    """stdout of `code` run by a fresh interpreter that imports the tapegrad under test."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    env.pop("OMP_NUM_THREADS", None)
    env.update(env_changes or {})
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            preexec_fn=preexec_fn)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- set_num_threads / get_num_threads ---

def test_set_num_threads_round_trips(restore_threads):
    for threads in (1, 3, 2):
        tg.set_num_threads(threads)
        assert tg.get_num_threads() == threads


@pytest.mark.parametrize("threads", [0, -1])
def test_set_num_threads_rejects_non_positive_counts_as_torch(restore_threads, threads):
    tg.set_num_threads(2)
    with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
        tg.set_num_threads(threads)
    assert tg.get_num_threads() == 2


@pytest.mark.parametrize("threads, type_name", [(2.5, "float"), ("2", "str"), (True, "bool"), (None, "NoneType")])
def test_set_num_threads_rejects_what_is_not_an_int_as_torch_names_it(restore_threads, threads, type_name):
    tg.set_num_threads(2)
    with pytest.raises(TypeError, match=f"^set_num_threads expects an int, but got {type_name}$"):
        tg.set_num_threads(threads)
    assert tg.get_num_threads() == 2


def test_set_num_threads_takes_a_numpy_int(restore_threads):
    tg.set_num_threads(np.int64(3))
    assert tg.get_num_threads() == 3


def openblas_max_threads():
    """The MAX_THREADS that the OpenBLAS build tapegrad links was compiled with, from its own
    configuration string."""
    scipy_openblas32 = pytest.importorskip("scipy_openblas32")
    match = re.search(r"MAX_THREADS=(\d+)", scipy_openblas32.get_openblas_config())
    assert match, scipy_openblas32.get_openblas_config()
    return int(match.group(1))


@pytest.mark.parametrize("threads", [10**9, 2**31, 2**70])
def test_a_huge_thread_count_is_lowered_to_openblas_max_threads_with_a_warning(restore_threads, threads):
    """10**9 was taken as it was: the next op started threads until the machine ran out of
    process ids. 2**31 and more were a TypeError."""
    cap = openblas_max_threads()
    with pytest.warns(UserWarning, match=f"set_num_threads: {threads} threads is more than the {cap} "):
        tg.set_num_threads(threads)
    assert tg.get_num_threads() == cap
    a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
    np.testing.assert_allclose((tg.tensor(a) @ tg.tensor(a)).numpy(), a.astype(np.float64) @ a, rtol=1e-4, atol=1e-3)
    assert len(os.listdir("/proc/self/task")) <= 2 * cap + 8  # the pool's, OpenBLAS's own, Python's


def test_set_num_threads_rejects_a_hugely_negative_count(restore_threads):
    tg.set_num_threads(2)
    with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
        tg.set_num_threads(-2**70)
    assert tg.get_num_threads() == 2


def test_a_huge_omp_num_threads_is_lowered_to_openblas_max_threads():
    code = "import tapegrad; print(tapegrad.get_num_threads())"
    assert run_python(code, {"OMP_NUM_THREADS": "100000"}) == str(openblas_max_threads())


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot be lowered")
def test_set_num_threads_raises_when_the_system_cannot_start_the_threads():
    """With the address space limited, thread stacks cannot be mapped: set_num_threads fails
    with RuntimeError and keeps the count it had, and ops run on once the limit is lifted."""
    code = """
import resource, numpy as np, tapegrad as tg
tg.set_num_threads(1)
kib = int(next(line for line in open('/proc/self/status') if line.startswith('VmSize')).split()[1])
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, ((kib << 10) + (64 << 20), hard))  # 64 MiB more: a few 8 MiB stacks
try:
    tg.set_num_threads(%d)
except RuntimeError as error:
    print(error)
resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
print(tg.get_num_threads())
a = np.arange(90000, dtype=np.float32).reshape(300, 300) / 90000
print(np.allclose((tg.tensor(a) @ tg.tensor(a)).numpy(), a.astype(np.float64) @ a, rtol=1e-4))
""" % openblas_max_threads()
    lines = run_python(code).splitlines()
    assert re.fullmatch(r"set_num_threads: could not start \d+ threads \(\d+ did: .+\); the thread count stays 1", lines[0])
    assert lines[1:] == ["1", "True"]


def test_default_is_the_cores_this_process_may_use():
    assert run_python("import tapegrad; print(tapegrad.get_num_threads())") == str(len(os.sched_getaffinity(0)))
    # Pinned to one core, the process uses one thread.
    first_core = min(os.sched_getaffinity(0))
    pinned = run_python("import tapegrad; print(tapegrad.get_num_threads())",
                        preexec_fn=lambda: os.sched_setaffinity(0, {first_core}))
    assert pinned == "1"


@pytest.mark.parametrize("value, expected", [("3", "3"), ("1", "1"), ("5,2", "5")])
def test_omp_num_threads_sets_the_default(value, expected):
    code = "import tapegrad; print(tapegrad.get_num_threads())"
    assert run_python(code, {"OMP_NUM_THREADS": value}) == expected


@pytest.mark.parametrize("value", ["0", "-2", "many", ""])
def test_an_unusable_omp_num_threads_falls_back_to_the_core_count(value):
    code = "import tapegrad; print(tapegrad.get_num_threads())"
    assert run_python(code, {"OMP_NUM_THREADS": value}) == str(len(os.sched_getaffinity(0)))


def test_a_forked_child_runs_big_kernels():
    """The parent's pool has workers; the forked child has none of them and must not wait for them."""
    code = """
import os, numpy as np, tapegrad as tg
tg.set_num_threads(2)
x = tg.rand(1 << 20)
expected = (x * 2).numpy().copy()
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal((x * 2).numpy(), expected) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    assert run_python(code) == "0"


# Forks while other threads work. Each scenario runs in a fresh interpreter: a hang (a lock
# the child inherited held) then fails run_python's timeout instead of stopping the suite.
# The child reports through its exit status; the parent prints it.

@pytest.mark.parametrize("threads", [1, 2])
def test_a_fork_while_another_thread_is_inside_a_backward_leaves_the_child_a_working_engine(threads):
    """The child inherited the engine's lock held by a thread it does not have, and its first
    backward waited for ever; and the pass cut short left its partial gradient in x's
    accumulator (3, from x * 3, while x * 2's hook ran), which the child's pass added to its own."""
    code = """
import os, threading, time, numpy as np, tapegrad as tg
tg.set_num_threads(%d)
x = tg.ones(300, 300, requires_grad=True)
inside = threading.Event()
def slow_hook(grad):
    inside.set()
    time.sleep(0.3)  # the fork happens now
def train():
    doubled = x * 2  # recorded first, so its node runs after x * 3 has sent 3 toward x
    doubled.register_hook(slow_hook)
    ((x * 3).sum() + doubled.sum()).backward()
worker = threading.Thread(target=train)
worker.start()
inside.wait()
pid = os.fork()
if pid == 0:
    (x * 5).sum().backward()
    own_gradient_only = np.all(x.grad.numpy() == 5)
    w = tg.tensor(np.eye(300, dtype=np.float32), requires_grad=True)
    (tg.ones(300, 300) @ w).sum().backward()  # a product and its gradient, on the child's pool
    os._exit(0 if own_gradient_only and np.all(w.grad.numpy() == 300) else 3)
worker.join()
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), np.all(x.grad.numpy() == 5))
""" % threads
    assert run_python(code) == "0 True"


@pytest.mark.parametrize("threads", [1, 2])
def test_forks_while_another_thread_runs_matmuls_give_children_working_products(threads):
    """OpenBLAS's level-3 driver holds a lock of its own through a product; a child forked
    during one inherited it held and waited for ever in its first product."""
    code = """
import os, threading, numpy as np, tapegrad as tg
tg.set_num_threads(%d)
a = tg.rand(512, 512)
stop = threading.Event()
products = 0
def multiply():
    global products
    while not stop.is_set():
        a @ a
        products += 1
worker = threading.Thread(target=multiply)
worker.start()
statuses = []
b = np.arange(300 * 300, dtype=np.float32).reshape(300, 300) / 90000
for _ in range(10):
    while products == 0:
        pass
    pid = os.fork()
    if pid == 0:
        os._exit(0 if np.allclose((tg.tensor(b) @ tg.tensor(b)).numpy(), b.astype(np.float64) @ b, rtol=1e-4) else 3)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
stop.set()
worker.join()
print(statuses)
""" % threads
    assert run_python(code) == str([0] * 10)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_fork_from_a_hook_inside_backward_finishes_the_pass_in_both_processes(threads):
    """The forking thread holds the engine's lock: fork must not wait for it (it would wait
    for itself), and the child, whose pass goes on, must keep it until the pass ends."""
    code = """
import os, numpy as np, tapegrad as tg
tg.set_num_threads(%d)
parent = os.getpid()
x = tg.ones(300, 300, requires_grad=True)
w = tg.tensor(np.eye(300, dtype=np.float32), requires_grad=True)
children = []
def forking_hook(grad):
    pid = os.fork()
    if pid:
        children.append(pid)
hidden = (x @ w).tanh()
hidden.register_hook(forking_hook)
(hidden * 2).sum().backward()
expected = 2 * (1 - np.tanh(1.0) ** 2)
ok = np.allclose(x.grad.numpy(), expected, rtol=1e-5)
(x * 3).sum().backward()  # a second pass: the engine's lock was released
ok = ok and np.allclose(x.grad.numpy(), expected + 3, rtol=1e-5)
if os.getpid() != parent:
    os._exit(0 if ok else 3)
print(os.waitstatus_to_exitcode(os.waitpid(children[0], 0)[1]), ok)
""" % threads
    assert run_python(code) == "0 True"


def gradient_in_a_worker(seed):
    """The gradient of sum(tanh(x @ w)) with respect to w, for multiprocessing's workers."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((64, 200)).astype(np.float32))
    w = tg.tensor(rng.standard_normal((200, 50)).astype(np.float32) * 0.1, requires_grad=True)
    (x @ w).tanh().sum().backward()
    return w.grad.numpy()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_multiprocessing_fork_pool_computes_gradients_while_the_parent_trains(threads):
    code = """
import multiprocessing, threading, numpy as np, tapegrad as tg
from test_threads import gradient_in_a_worker
tg.set_num_threads(%d)
stop, training = threading.Event(), threading.Event()
def train():
    w = tg.rand(256, 256, requires_grad=True)
    while not stop.is_set():
        (w @ w).sum().backward()  # two products in the backward against one before it
        training.set()
trainer = threading.Thread(target=train)
trainer.start()
training.wait()
with multiprocessing.get_context("fork").Pool(4) as pool:
    grads = pool.map(gradient_in_a_worker, range(4))
stop.set()
trainer.join()
for seed, grad in enumerate(grads):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 200)).astype(np.float32).astype(np.float64)
    w = (rng.standard_normal((200, 50)).astype(np.float32) * 0.1).astype(np.float64)
    np.testing.assert_allclose(grad, x.T @ (1 - np.tanh(x @ w) ** 2), rtol=1e-4, atol=1e-5)
print(len(grads))
""" % threads
    assert run_python(code, {"PYTHONPATH": os.pathsep.join([PACKAGE_PARENT, TESTS_DIR])}) == "4"


# --- parallel kernels give the single-thread results ---

def inputs(shape_a, shape_b, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape_a).astype(np.float32)
    b = rng.uniform(0.5, 2, shape_b).astype(np.float32)
    return a, b


SHAPES = [
    ((BIG,), (BIG,)),                # one merged row
    ((600, 437), (437,)),            # a broadcast row: the outer dim splits
    ((3, 100003), (3, 1)),           # a short outer dim: the row splits
    ((7, 1, 20011), (1, 5, 20011)),  # both operands broadcast
    ((BIG,), ()),                    # a 0-d operand
]

OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: b ** a,  # b is the positive one
    "maximum": lambda a, b: tg.maximum(a, b) if isinstance(a, tg.Tensor) else np.maximum(a, b),
    "exp(a) - b": lambda a, b: (a.exp() if isinstance(a, tg.Tensor) else np.exp(a)) - b,
    "tanh(a * b)": lambda a, b: (a * b).tanh() if isinstance(a, tg.Tensor) else np.tanh(a * b),
    "a < b": lambda a, b: a < b,
}
EXACT = {"add", "mul", "div", "maximum", "a < b"}  # one IEEE operation: numpy's result exactly


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("name", OPS)
def test_elementwise_ops_on_the_pool_equal_single_thread_results_bitwise(restore_threads, shapes, name):
    a, b = inputs(*shapes, seed=len(name))
    op = OPS[name]
    results = {}
    for threads in (1, 2, 3):
        tg.set_num_threads(threads)
        results[threads] = op(tg.tensor(a), tg.tensor(b)).numpy()
    np.testing.assert_array_equal(results[2], results[1])
    np.testing.assert_array_equal(results[3], results[1])
    expected = op(a, b)
    if name in EXACT:
        np.testing.assert_array_equal(results[2], expected)
    else:
        np.testing.assert_allclose(results[2], expected, rtol=2e-6, atol=1e-6)


def test_fills_and_conversions_on_the_pool_are_right(restore_threads):
    tg.set_num_threads(2)
    np.testing.assert_array_equal(tg.full((BIG,), 1.5).numpy(), np.full(BIG, 1.5, np.float32))
    np.testing.assert_array_equal(tg.arange(BIG).numpy(), np.arange(BIG))
    x = tg.ones(3, BIG)
    x.zero_()
    assert not x.numpy().any()
    x.fill_(-2.0)
    assert (x.numpy() == -2).all()
    a, _ = inputs((BIG,), (), seed=0)
    np.testing.assert_array_equal(tg.tensor(a).double().numpy(), a.astype(np.float64))


def test_gradients_on_the_pool_equal_single_thread_gradients_bitwise(restore_threads):
    a, b = inputs((512, 300), (300,), seed=7)
    grads = {}
    for threads in (1, 2):
        tg.set_num_threads(threads)
        x = tg.tensor(a, requires_grad=True)
        w = tg.tensor(b, requires_grad=True)
        ((x * w).tanh() ** 2 + x.exp() / w).sum(dim=1).mean().backward()
        grads[threads] = (x.grad.numpy(), w.grad.numpy())
    np.testing.assert_array_equal(grads[2][0], grads[1][0])
    np.testing.assert_array_equal(grads[2][1], grads[1][1])


@pytest.mark.parametrize("dim", [0, 1, None])
def test_reductions_and_softmax_on_big_tensors_do_not_depend_on_the_thread_count(restore_threads, dim):
    a, _ = inputs((700, 400), (), seed=3)
    results = {}
    for threads in (1, 2):
        tg.set_num_threads(threads)
        x = tg.tensor(a)
        largest = x.max(dim).values if dim is not None else x.max()
        results[threads] = [x.sum(dim=dim).numpy(), largest.numpy(), tg.softmax(x, dim or 0).numpy()]
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(two, one)
    np.testing.assert_allclose(results[2][0], a.sum(axis=dim, dtype=np.float64), rtol=1e-5)


# --- Python threads ---

def test_grad_mode_is_per_thread():
    """One thread inside no_grad while another, at the same time, records a graph."""
    inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def without_grad():
        with tg.no_grad():
            inside.set()
            checked.wait(10)
            seen["no_grad thread"] = (tg.is_grad_enabled(), (tg.ones(2, requires_grad=True) * 2).grad_fn)

    worker = threading.Thread(target=without_grad)
    worker.start()
    assert inside.wait(10)
    seen["main thread"] = (tg.is_grad_enabled(), (tg.ones(2, requires_grad=True) * 2).grad_fn)
    checked.set()
    worker.join()
    assert seen["main thread"][0] is True and seen["main thread"][1].name() == "MulBackward0"
    assert seen["no_grad thread"] == (False, None)
    assert tg.is_grad_enabled()


def train_mlp(seed, steps=6, batch=256, hidden=512):
    """SGD on a two-layer MLP, big enough that its kernels split across the pool and its
    products release the GIL; returns the parameters as numpy arrays."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((batch, 64)).astype(np.float32))
    y = tg.tensor(rng.integers(0, 10, batch))
    w1 = tg.tensor((rng.standard_normal((64, hidden)) * 0.1).astype(np.float32), requires_grad=True)
    b1 = tg.zeros(hidden, requires_grad=True)
    w2 = tg.tensor((rng.standard_normal((hidden, 10)) * 0.1).astype(np.float32), requires_grad=True)
    b2 = tg.zeros(10, requires_grad=True)
    params = [w1, b1, w2, b2]
    for _ in range(steps):
        hidden_out = (x @ w1 + b1).relu()
        loss = tg.nn.functional.cross_entropy(hidden_out @ w2 + b2, y)
        loss.backward()
        with tg.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad.zero_()
    return [p.detach().numpy().copy() for p in params]


def test_two_threads_training_their_own_models_get_the_single_thread_results():
    expected = {seed: train_mlp(seed) for seed in (1, 2)}
    results = {}
    errors = []

    def train(seed):
        try:
            results[seed] = train_mlp(seed)
        except Exception as error:  # reported below, with the seed
            errors.append((seed, error))

    threads = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for seed in (1, 2):
        for got, want in zip(results[seed], expected[seed]):
            np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}")


def ran_during(op, step=lambda: time.sleep(0), attempts_for=30.0):
    """Whether another Python thread, counting calls of `step`, made progress while `op` ran.
    The switch interval is raised so that the interpreter never preempts this thread: the
    other thread can then run only while `op` has released the GIL. `step` must release the
    GIL itself, so that this thread gets it back when `op` ends."""
    counter = 0
    stop = False

    def count():
        nonlocal counter
        while not stop:
            step()
            counter += 1

    interval = sys.getswitchinterval()
    # Before the thread starts: a thread waiting for the GIL keeps the interval it began with.
    sys.setswitchinterval(1000.0)
    counting = threading.Thread(target=count)
    counting.start()
    try:
        while counter == 0:
            time.sleep(0.001)
        deadline = time.monotonic() + attempts_for
        progressed = False
        while not progressed and time.monotonic() < deadline:
            before = counter
            op()
            progressed = counter != before
        return progressed
    finally:
        sys.setswitchinterval(interval)
        stop = True
        counting.join()


BIG_OPS = {
    "matmul": lambda a, m: m @ m,
    "mm": lambda a, m: tg.mm(m, m),
    "mul": lambda a, m: a * a,
    "tg.add": lambda a, m: tg.add(a, 1.0),
    "exp": lambda a, m: a.exp(),
    "+=": lambda a, m: a.__iadd__(1.0),
    "compare": lambda a, m: a < 0.5,
    "sum": lambda a, m: a.sum(dim=0),
    "softmax": lambda a, m: tg.softmax(a, 1),
    "linear": lambda a, m: tg.nn.functional.linear(m, m),
}


@pytest.mark.parametrize("name", BIG_OPS)
def test_long_kernels_release_the_gil(name):
    a = tg.rand(512, 2048)
    m = tg.rand(512, 512)
    assert ran_during(lambda: BIG_OPS[name](a, m))


def test_small_kernels_keep_the_gil():
    """The control for the test above: an op on 16 elements never lets the counter run."""
    a = tg.rand(16)
    assert not ran_during(lambda: [a * a for _ in range(1000)], attempts_for=0.5)


def test_another_thread_runs_ops_while_a_big_matmul_runs():
    """While one thread is inside a big matmul, another thread's big elementwise ops run to
    the end (on that thread alone: the matmul has the pool). Two threads' big matmuls take
    turns on the pool, as OpenBLAS's jobs of different calls share its buffers."""
    big = tg.rand(1024, 1024)
    other = tg.rand(BIG)
    assert ran_during(lambda: big @ big, step=lambda: other * 2)


# --- OpenBLAS on tapegrad's pool ---

def test_openblas_own_workers_stay_asleep_while_products_run():
    """OpenBLAS's parallel jobs run on tapegrad's pool, so only two threads work through 0.5 s
    of 512 matmuls on two threads. OpenBLAS's own workers, left spinning from its load,
    took a third (a core's worth of CPU time on two cores)."""
    code = """
import os, time, tapegrad as tg
tg.set_num_threads(2)
a = tg.rand(512, 512, requires_grad=True)
def cpu_ticks():
    ticks = {}
    for task in os.listdir('/proc/self/task'):
        fields = open(f'/proc/self/task/{task}/stat').read().rsplit(')', 1)[1].split()
        ticks[task] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks
before = cpu_ticks()
end = time.monotonic() + 0.5
while time.monotonic() < end:
    (a @ a).sum().backward()
after = cpu_ticks()
print(sum(after[task] - before.get(task, 0) >= 5 for task in after))  # threads busy for 50 ms or more
"""
    assert int(run_python(code)) <= 2


def test_loading_leaves_openblas_thread_timeout_as_it_was():
    code = "import os; {}; import tapegrad; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    assert run_python(code.format("os.environ.pop('OPENBLAS_THREAD_TIMEOUT', None)")) == "None"
    assert run_python(code.format("os.environ['OPENBLAS_THREAD_TIMEOUT'] = '20'")) == "20"
