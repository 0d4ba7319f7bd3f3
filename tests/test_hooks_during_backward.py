"""User code that runs inside backward (hooks) or beside it (another thread, while a pass
runs without the GIL) and changes what the engine holds: the hook lists, a tensor's .grad,
retained gradients, saved tensors. Each program runs in its own interpreter, so that a crash
fails its test alone, and gives torch's result: checked against a hand-computed expectation,
and against torch itself when it is installed."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from gradcheck import requires_torch

# Each program uses `lib` (tapegrad or torch) and sets `result` to something JSON can print.
PROGRAMS = {
    # A hook that registers another on the same tensor: the new one runs from the next pass on.
    "hook_registers_a_hook_on_its_tensor": ("""
        x = lib.ones(3, requires_grad=True)
        calls = []
        def rearm(grad):
            calls.append("rearm")
            x.register_hook(lambda grad: calls.append("new"))
        x.register_hook(rearm)
        x.register_hook(lambda grad: calls.append("second"))
        (x * 3).sum().backward()
        first = list(calls)
        calls.clear()
        (x * 3).sum().backward()
        result = [first, calls, x.grad.tolist()]
    """, [["rearm", "second"], ["rearm", "second", "new"], [6.0, 6.0, 6.0]]),
    # Many hooks registered from a hook, with allocations between (once a use-after-free).
    "hook_registers_many_hooks": ("""
        x = lib.ones(3, requires_grad=True)
        count = []
        def rearm(grad):
            for _ in range(100):
                x.register_hook(lambda grad: None)
            junk = [lib.ones(i + 1) for i in range(50)]
            count.append(1)
        x.register_hook(rearm)
        x.register_hook(lambda grad: grad * 2)
        for _ in range(3):
            (x * 3).sum().backward()
        result = [len(count), x.grad.tolist()]
    """, [3, [18.0, 18.0, 18.0]]),
    # A hook on an op's output that registers a hook on a tensor whose turn is still to come.
    "hook_registers_a_hook_on_an_earlier_tensor": ("""
        a = lib.ones(2, requires_grad=True)
        b = a * 2
        c = b * 3
        calls = []
        def arm(grad):
            b.register_hook(lambda grad: calls.append(grad.tolist()))
        c.register_hook(arm)
        c.sum().backward()
        result = calls
    """, [[3.0, 3.0]]),
    # A hook that removes a leaf's .grad: the pass's gradient alone lands in .grad.
    "hook_sets_grad_to_none": ("""
        x = lib.ones(3, requires_grad=True)
        x.grad = lib.ones(3)
        y = x * 5
        def drop(grad):
            x.grad = None
        y.register_hook(drop)
        y.sum().backward()
        result = x.grad.tolist()
    """, [5.0, 5.0, 5.0]),
    # A hook that puts another tensor as .grad: the gradient is added into that one, in place.
    "hook_replaces_grad": ("""
        x = lib.ones(3, requires_grad=True)
        x.grad = lib.ones(3)
        other = lib.zeros(3)
        y = x * 5
        def replace(grad):
            x.grad = other
        y.register_hook(replace)
        y.sum().backward()
        result = [x.grad.tolist(), other.tolist(), x.grad is other]
    """, [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], True]),
    # The same, from a hook on the leaf itself.
    "leaf_hook_replaces_its_grad": ("""
        x = lib.ones(3, requires_grad=True)
        x.grad = lib.ones(3)
        other = lib.full((3,), 10.0)
        def replace(grad):
            x.grad = other
        x.register_hook(replace)
        (x * 5).sum().backward()
        result = [x.grad.tolist(), other.tolist()]
    """, [[15.0, 15.0, 15.0], [15.0, 15.0, 15.0]]),
    # A hook that scales .grad in place before the pass adds into it.
    "hook_scales_grad_in_place": ("""
        x = lib.ones(3, requires_grad=True)
        x.grad = lib.ones(3)
        y = x * 5
        def scale(grad):
            x.grad.mul_(10)
        y.register_hook(scale)
        y.sum().backward()
        result = x.grad.tolist()
    """, [15.0, 15.0, 15.0]),
    # Setting a tensor as its own .grad, directly or from a hook.
    "own_grad": ("""
        x = lib.ones(3, requires_grad=True)
        outcomes = []
        try:
            x.grad = x
        except RuntimeError as error:
            outcomes.append(str(error))
        def own(grad):
            x.grad = x
        y = x * 2
        y.register_hook(own)
        try:
            y.sum().backward()
        except RuntimeError as error:
            outcomes.append(str(error))
        result = [outcomes, x.tolist() if x.grad is None else "grad set"]
    """, [["can't assign Variable as its own grad"] * 2, [1.0, 1.0, 1.0]]),
    # A retained gradient that a hook removes, and one that a hook asks for.
    "hook_removes_a_retained_grad": ("""
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        y.retain_grad()
        def drop(grad):
            y.grad = None
        y.register_hook(drop)
        (y * 3).sum().backward()
        result = [y.grad.tolist(), x.grad.tolist()]
    """, [[3.0, 3.0, 3.0], [6.0, 6.0, 6.0]]),
    "hook_retains_a_grad": ("""
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        z = y * 3
        z.register_hook(lambda grad: y.retain_grad())
        z.sum().backward()
        result = y.grad.tolist()
    """, [3.0, 3.0, 3.0]),
    # A hook that changes a tensor saved for backward.
    "hook_changes_a_saved_tensor": ("""
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        z = y * y
        def change(grad):
            y.add_(1)
        z.register_hook(change)
        try:
            z.sum().backward()
            result = "no error"
        except RuntimeError as error:
            result = "modified by an inplace operation" in str(error)
    """, True),
}


def hook_result_dtype_program(dtype, on_leaf):
    target = "x" if on_leaf else "y"
    return f"""
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        {target}.register_hook(lambda grad: grad.to(lib.{dtype}))
        try:
            (y * 3).sum().backward()
            result = x.grad.tolist()
        except RuntimeError as error:
            result = "changed the type of value" in str(error)
    """


for _dtype in ("float64", "int64"):
    for _on_leaf in (True, False):
        PROGRAMS[f"hook_returns_{_dtype}_{'on_a_leaf' if _on_leaf else 'on_an_op'}"] = (
            hook_result_dtype_program(_dtype, _on_leaf), True)

# The threads: while the main thread runs backward passes over a graph big enough that the
# pass releases the GIL (kReleaseGilWork elements), another registers hooks, sets .grad or
# retains gradients in a loop. The result after the other thread stops must be right.
THREADED = """
    import threading
    n = 1 << 17
    x = lib.ones(n, requires_grad=True)
    stop = threading.Event()
    meddled = []

    def meddle():
        for _ in range(500):  # each hook registered runs in every later pass
            if stop.is_set():
                break
            {action}
            meddled.append(1)

    thread = threading.Thread(target=meddle)
    thread.start()
    try:
        for _ in range(20):
            h = (x * 2).exp()
            y = (h * 3).sum()
            y.backward()
    finally:
        stop.set()
        thread.join()
    x.grad = None
    (x * 2).sum().backward()
    result = [bool(meddled), x.grad[:3].tolist()]
"""
THREAD_ACTIONS = {
    "register_hooks_on_the_leaf": "x.register_hook(lambda grad: None)",
    "register_hooks_on_an_op": "(x * 1).register_hook(lambda grad: None)",
    "set_grad_to_none": "x.grad = None",
    "set_grad_to_a_new_tensor": "x.grad = lib.zeros(n)",
    "retain_grads": "(x * 1).retain_grad()",
    "read_grad": "x.grad is None or x.grad[0].item()",
}
for _name, _action in THREAD_ACTIONS.items():
    PROGRAMS[f"thread_{_name}"] = (THREADED.format(action=_action), [True, [2.0, 2.0, 2.0]])


def run_program(lib_name, name):
    body = textwrap.dedent(PROGRAMS[name][0])
    code = f"import json\nimport {lib_name} as lib\n{body}\nprint(json.dumps(result))\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{name} with {lib_name} died (code {done.returncode}): {done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_user_code_changing_what_backward_holds(name):
    assert run_program("tapegrad", name) == PROGRAMS[name][1]


@requires_torch
@pytest.mark.parametrize("name", [name for name in PROGRAMS if not name.startswith("thread_")])
def test_torch_gives_the_expected_results(name):
    """The expectations above are torch's results for the same programs."""
    assert run_program("torch", name) == PROGRAMS[name][1]
