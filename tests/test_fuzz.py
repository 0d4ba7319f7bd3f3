"""Fuzzing: tests/fuzz_programs.py draws random programs over the API contract (elementwise
ops with broadcasting and scalars of every kind, reductions over dims, shape ops, indexing, the
matmul family, in-place ops, softmax, losses, conversions, ops under no_grad) on random shapes
(0-d and size-0 dims included, up to 5 dims and 4096 elements) and dtypes, with occasional
invalid arguments, and actions on autograd's state between them (hooks, retain_grad, a
backward in the middle, zeroing a .grad, numpy arrays escaping from tensors and gradients and
written through); it checks each one: every step raises iff torch raises (the same builtin
exception class), else matches torch's shape, dtype and requires_grad and numpy's values; at
the end a backward, a second backward after retain_graph=True, or autograd.grad of leaves and
intermediates, whose gradients, retained .grads and hooks' gradients match torch's (nan equal
to nan) and, for float64 programs away from kinks, central differences.

Where tapegrad knowingly differs from torch (fuzz_programs.KNOWN_DIFFERENCES, e.g. TypeError
for a dtype an op does not take, as the API contract says) or has a reported bug not yet
fixed (fuzz_programs.OPEN_BUGS), no such step is drawn.

Programs run in a worker subprocess, so a crash or a hang fails the test with the program
printed (as JSON: `check_program(json.loads(...))` in tests/fuzz_programs.py replays it).

Budget: CI runs the 1000 programs of seeds [0, 0] to [0, 999] (the same ones every run): about
40 s for this file on 2 busy cores.
For a long local run (about 7 min per 10^4 programs on 2 busy cores; -s prints counts of what
was checked):
    TAPEGRAD_FUZZ_EXAMPLES=100000 TAPEGRAD_FUZZ_SEED=$RANDOM python -m pytest tests/test_fuzz.py -s -k random_programs
TAPEGRAD_FUZZ_EXAMPLES sets the number of programs; TAPEGRAD_FUZZ_SEED (any int) draws other
programs than CI's; TAPEGRAD_FUZZ_OPEN_BUGS=1 draws the steps of fuzz_programs.OPEN_BUGS too
(to check a fix before its entry is removed).
"""
import collections
import functools
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile

import pytest

import numpy as np

from fuzz_programs import ACTIONS, FINALS, HOOK_KINDS, OPEN_BUGS, OPS, SCALAR_KINDS, Reg, draw_program, scalar_kind

pytest.importorskip("torch", reason="torch decides which programs are valid and is the gradient oracle")

CI_EXAMPLES = 1000
EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", str(CI_EXAMPLES)))
SEED = int(os.environ.get("TAPEGRAD_FUZZ_SEED", "0"))
OPEN_BUGS_DRAWN = os.environ.get("TAPEGRAD_FUZZ_OPEN_BUGS") == "1"
# A program runs in well under a second; one that takes this long hangs.
PROGRAM_TIMEOUT = 120.0
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_programs.py")


class Worker:
    """A subprocess running fuzz_programs.serve(): one program per line in, one verdict per
    line out. Restarted after a crash, so the next program runs in a fresh one."""

    def __init__(self):
        self.process = None
        self.log = tempfile.TemporaryFile(mode="w+")
        self.stats = collections.Counter()

    def start(self):
        self.log.seek(0)
        self.log.truncate()
        self.process = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        self.reply(None, timeout=PROGRAM_TIMEOUT)

    def stop(self, kill=False):
        """Ends the worker: by closing its input (it exits when done), or by killing it."""
        if self.process is None:
            return
        if kill and self.process.poll() is None:
            self.process.kill()
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it died with input unread
        self.process.wait(timeout=PROGRAM_TIMEOUT)
        self.process.stdout.close()
        self.process = None

    def close(self):
        self.stop()
        self.log.close()

    def failure(self, program, what):
        self.stop(kill=True)
        self.log.seek(0)
        log = self.log.read()[-4000:]
        shown = json.dumps(program) if program is not None else "(none: the worker failed to start)"
        return f"{what}\nprogram: {shown}\nworker stderr:\n{log}"

    def reply(self, program, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(self.failure(program, f"the worker hung for {timeout:.0f} s"))
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=PROGRAM_TIMEOUT)
            cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise AssertionError(self.failure(program, f"the worker died ({cause}): tapegrad crashed"))
        return json.loads(line)

    def send(self, program):
        try:
            self.process.stdin.write(json.dumps(program) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died; reply() reports how

    def run(self, program):
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.send(program)
        verdict = self.reply(program, PROGRAM_TIMEOUT)
        if not verdict["ok"]:
            raise AssertionError(f"{verdict['message']}\nprogram: {json.dumps(program)}")
        self.stats.update(verdict["stats"])
        self.stats["programs"] += 1


@pytest.fixture(scope="module")
def worker():
    running = Worker()
    yield running
    running.close()
    print(f"\nfuzz: {dict(running.stats)}")


@functools.lru_cache(maxsize=None)
def ci_programs():
    """CI's programs, drawn once for the tests below (drawing runs torch: about 10 s)."""
    return tuple(draw_program([0, i]) for i in range(CI_EXAMPLES))


def fuzzed_programs():
    if SEED == 0 and EXAMPLES <= CI_EXAMPLES and not OPEN_BUGS_DRAWN:
        yield from ci_programs()[:EXAMPLES]
        return
    for i in range(EXAMPLES):
        yield draw_program([SEED, i], open_bugs=[] if OPEN_BUGS_DRAWN else None)


def test_random_programs_match_torch_numpy_and_finite_differences(worker):
    for program in fuzzed_programs():
        worker.run(program)


# Ops that take a scalar operand, and what an OPEN_BUGS entry may exclude of each drawn feature.
SCALAR_OPS = {"add", "sub", "mul", "div", "pow", "lt", "ge", "eq", "ne", "where", "add_", "sub_", "mul_", "div_",
              "iadd", "fill_"}
PROBE_REGS = [Reg((2,), "float64", np.ones(2), True, False, 0)]


def open_bug_excludes(step):
    return any(applies(step, PROBE_REGS) for _, applies in OPEN_BUGS)


def test_the_programs_draw_every_op_and_feature_often():
    """The distribution of CI's programs: every op drawn at least 10 times, none more than twice
    as often as the average or less than a quarter as often; most programs have inputs of many elements and
    several steps; every action, hook kind, scalar kind and final pass drawn (but those an
    OPEN_BUGS entry excludes), and steps under no_grad."""
    programs = ci_programs()
    steps = [step for program in programs for step in program["steps"]]
    ops = collections.Counter(step["op"] for step in steps if step["op"] in OPS)
    average = sum(ops.values()) / len(OPS)
    assert set(ops) == set(OPS), f"never drawn: {sorted(set(OPS) - set(ops))}"
    rare = {name: n for name, n in ops.items() if n < max(average / 4, 10)}
    common = {name: n for name, n in ops.items() if n > 2 * average}
    assert not rare and not common, f"average {average:.0f} steps per op; rare {rare}, common {common}"
    sizes = [max(math.prod(spec["shape"]) for spec in program["inputs"]) for program in programs]
    assert sum(size > 1 for size in sizes) > 0.7 * len(programs)
    assert sum(size > 100 for size in sizes) > 0.2 * len(programs)
    assert sum(size > 1000 for size in sizes) > 0.08 * len(programs)
    assert sum(max(len(spec["shape"]) for spec in program["inputs"]) >= 3 for program in programs) > 0.3 * len(programs)
    assert sum(len(program["steps"]) > 1 for program in programs) > 0.75 * len(programs)
    assert sum(bool(step.get("no_grad")) for step in steps) > 0.05 * len(steps)
    actions = collections.Counter(step["op"] for step in steps if step["op"] in ACTIONS)
    assert all(actions[name] >= 10 for name in ACTIONS), actions
    hooks = collections.Counter(step["args"][1]["hook"] for step in steps if step["op"] == "register_hook")
    drawn_hooks = [kind for kind in HOOK_KINDS
                   if not open_bug_excludes({"op": "register_hook", "args": [{"reg": 0}, {"hook": kind}], "kwargs": {}})]
    assert all(hooks[kind] >= 10 for kind in drawn_hooks), hooks
    scalars = collections.Counter(scalar_kind(arg) for step in steps if step["op"] in SCALAR_OPS for arg in step["args"])
    drawn_scalars = [kind for kind in SCALAR_KINDS if not open_bug_excludes(
        {"op": "add", "args": [{"reg": 0}, {"scalar": 1, "kind": kind}], "kwargs": {}})]
    assert all(scalars[kind] >= 5 for kind in drawn_scalars), scalars
    finals = collections.Counter(program["final"] for program in programs)
    assert all(finals[final] > 0.1 * len(programs) for final in FINALS), finals


def test_a_crash_fails_with_the_program_printed():
    """The harness itself: a worker killed by a signal mid-program is a failure naming the
    program, and the next program runs in a fresh worker."""
    probe = Worker()
    probe.start()
    os.kill(probe.process.pid, signal.SIGSEGV)
    program = {"seed": 1, "inputs": [], "steps": []}
    probe.send(program)
    with pytest.raises(AssertionError, match=r"died \(signal SIGSEGV\)[\s\S]*program: \{\"seed\": 1"):
        probe.reply(program, PROGRAM_TIMEOUT)
    probe.run({"seed": 1, "inputs": [{"shape": [2], "dtype": "float64", "requires_grad": True}],
               "steps": [{"op": "exp", "args": [{"reg": 0}], "kwargs": {}}]})
    probe.close()
    assert probe.stats["programs"] == 1


# Programs the fuzzer found failing, shrunk by hand to the step that failed; one per fixed bug.
REGRESSIONS = {
    "squeeze of a 0-d tensor with a dim listed twice raises": {
        "seed": 0, "inputs": [{"shape": [], "dtype": "float64"}],
        "steps": [{"op": "squeeze", "args": [{"reg": 0}, [-1, 0]], "kwargs": {}}]},
    "x.mul_(y) and x.div_(y) with y requiring grad: backward ran into x's own write": {
        "seed": 0, "inputs": [{"shape": [1], "dtype": "float64", "requires_grad": True},
                              {"shape": [3], "dtype": "float64"}, {"shape": [3], "dtype": "float64"}],
        "steps": [{"op": "mul_", "args": [{"reg": 1}, {"reg": 0}], "kwargs": {}},
                  {"op": "div_", "args": [{"reg": 2}, {"reg": 0}], "kwargs": {}}]},
    "an int tensor that copy_ writes from a tensor requiring grad does not require grad": {
        "seed": 0,
        "inputs": [{"shape": [], "dtype": "int64"}, {"shape": [], "dtype": "float64", "requires_grad": True}],
        "steps": [{"op": "neg", "args": [{"reg": 1}], "kwargs": {}},
                  {"op": "copy_", "args": [{"reg": 0}, {"reg": 2}], "kwargs": {}}]},
    "linear with a 0-d bias of another dtype raises (torch casts it to the input's dtype)": {
        "seed": 0, "inputs": [{"shape": [3], "dtype": "float32", "requires_grad": True},
                              {"shape": [2, 3], "dtype": "float32", "requires_grad": True},
                              {"shape": [], "dtype": "float64", "requires_grad": True}],
        "steps": [{"op": "linear", "args": [{"reg": 0}, {"reg": 1}, {"reg": 2}], "kwargs": {}}]},
}


@pytest.mark.parametrize("program", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_programs_the_fuzzer_found_failing(worker, program):
    worker.run(program)
