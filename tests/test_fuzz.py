"""Fuzzing: hypothesis draws random programs over the API contract (elementwise ops with
broadcasting and scalars, reductions over dims, shape ops, indexing, the matmul family,
in-place ops, softmax, losses, conversions) on random shapes (0-d and size-0 dims included)
and dtypes, with occasional invalid arguments, and tests/fuzz_programs.py checks each one:
every step raises iff torch raises (the same builtin exception class), else matches torch's
shape, dtype and requires_grad and numpy's values; the final gradient matches torch's and,
for float64 programs away from kinks, central differences.

Where tapegrad knowingly differs from torch (fuzz_programs.KNOWN_DIFFERENCES, e.g. TypeError
for a dtype an op does not take, as the API contract says) or has a reported bug not yet
fixed (fuzz_programs.OPEN_BUGS), the strategy draws no such step.

Programs run in a worker subprocess, so a crash or a hang fails the test with the program
printed (as JSON: `check_program(json.loads(...))` in tests/fuzz_programs.py replays it).

Budget: CI runs 500 programs drawn from a fixed seed (the same ones every run): about 40 s,
and a minute for this file, on 2 busy cores.
For a long local run:
    TAPEGRAD_FUZZ_EXAMPLES=20000 TAPEGRAD_FUZZ_SEED=$RANDOM python -m pytest tests/test_fuzz.py -s
TAPEGRAD_FUZZ_EXAMPLES sets the number of programs; TAPEGRAD_FUZZ_SEED (any int) draws other
programs than CI's; -s prints counts of what was checked.
"""
import collections
import json
import os
import select
import signal
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, seed, settings

from fuzz_programs import programs

pytest.importorskip("torch", reason="torch decides which programs are valid and is the gradient oracle")

EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "500"))
SEED = os.environ.get("TAPEGRAD_FUZZ_SEED")
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


def budget(test):
    """CI's budget: EXAMPLES programs from hypothesis's derandomized seed, no example
    database (so a run never depends on an earlier one); TAPEGRAD_FUZZ_SEED draws others."""
    configured = settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])(test)
    return configured if SEED is None else seed(int(SEED))(configured)


@budget
@given(program=programs())
def test_random_programs_match_torch_numpy_and_finite_differences(worker, program):
    worker.run(program)


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
