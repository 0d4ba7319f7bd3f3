"""Mutation testing of tapegrad's Python layer: each mutant below changes one thing in one file
of python/tapegrad/ (a hand-made fault: a check dropped, a flag ignored, an alias swapped),
and the tests that cover that file must fail. A mutant they pass with has survived: the tests
would not have noticed that fault.

For each mutant, the runner copies python/, tests/ and pyproject.toml to a temporary directory
(the compiled _core beside the package is linked, not copied), applies the mutant there, and
runs the mutant's test files with PYTHONPATH pointing at the copy (tests/test_repr.py loads
_tensor_str.py by its path under tests/../python, which is the copy's too). The working tree
is never written.

    python tests/mutation/run.py                 # every mutant; exit status 1 if any survived
    python tests/mutation/run.py --list          # the mutants, one per line
    python tests/mutation/run.py grad_first_input_everywhere no_grad_decorator_does_nothing

Each mutant's `old` must occur exactly once in its file, so a mutant that no longer applies
after the code changes fails loudly instead of testing nothing. All 55 took 20 minutes on 2 busy
cores (7 to 9 s for most; the test files run with -x, so the first failure kills the mutant).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Test files that cover each file of the package; a mutant runs those of its file.
AUTOGRAD_TESTS = ["tests/test_autograd_api.py", "tests/test_autograd.py", "tests/test_gradcheck.py"]
GRAD_MODE_TESTS = ["tests/test_autograd_api.py", "tests/test_autograd.py", "tests/test_hostile.py"]
PACKAGE_TESTS = ["tests/test_autograd_api.py", "tests/test_creation.py", "tests/test_numpy.py",
                 "tests/test_threads.py"]
REPR_TESTS = ["tests/test_repr.py", "tests/test_autograd_api.py"]
FUNCTIONAL_TESTS = ["tests/test_autograd_api.py", "tests/test_linalg.py", "tests/test_numerics.py"]


@dataclass
class Mutant:
    name: str
    path: str  # under python/tapegrad/
    old: str
    new: str
    tests: list


AUTOGRAD = "autograd.py"
GRAD_MODE = "_grad_mode.py"
INIT = "__init__.py"
TENSOR_STR = "_tensor_str.py"
FUNCTIONAL = "nn/functional.py"

MUTANTS = [
    # autograd.py: backward, grad
    Mutant("backward_ignores_retain_graph_false", AUTOGRAD,
           "_core._run_backward(outputs, grads, bool(retain_graph), [])",
           "_core._run_backward(outputs, grads, True, [])", AUTOGRAD_TESTS),
    Mutant("grad_ignores_retain_graph_false", AUTOGRAD,
           "_core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs))",
           "_core._run_backward(outputs, grads, True, _as_list(inputs))", AUTOGRAD_TESTS),
    Mutant("grad_first_input_everywhere", AUTOGRAD,
           "return tuple(_core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs)))",
           "found = _core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs))\n"
           "    return tuple(found[:1] * len(found))", AUTOGRAD_TESTS),
    Mutant("grad_reversed_order", AUTOGRAD,
           "return tuple(_core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs)))",
           "return tuple(_core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs)[::-1]))",
           AUTOGRAD_TESTS),
    Mutant("grad_ignores_grad_outputs", AUTOGRAD,
           "    grads = _as_list(grad_outputs) or [None] * len(outputs)\n    return",
           "    grads = [None] * len(outputs)\n    return", AUTOGRAD_TESTS),
    Mutant("backward_ignores_grad_tensors", AUTOGRAD,
           "    grads = _as_list(grad_tensors) or [None] * len(outputs)\n    _core",
           "    grads = [None] * len(outputs)\n    _core", AUTOGRAD_TESTS),
    Mutant("as_list_drops_all_but_first", AUTOGRAD,
           "return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]",
           "return list(tensors)[:1] if isinstance(tensors, (list, tuple)) else [tensors]", AUTOGRAD_TESTS),
    Mutant("as_list_tuple_not_a_sequence", AUTOGRAD,
           "isinstance(tensors, (list, tuple))", "isinstance(tensors, list)", AUTOGRAD_TESTS),
    # autograd.py: gradcheck
    Mutant("gradcheck_always_true", AUTOGRAD,
           "    import numpy as np\n", "    return True\n    import numpy as np\n", AUTOGRAD_TESTS),
    Mutant("gradcheck_compares_analytic_with_itself", AUTOGRAD,
           "np.allclose(analytic, numeric,", "np.allclose(analytic, analytic,", AUTOGRAD_TESTS),
    Mutant("gradcheck_false_reported_as_true", AUTOGRAD,
           "                return False", "                return True", AUTOGRAD_TESTS),
    Mutant("gradcheck_never_raises", AUTOGRAD,
           "if raise_exception:", "if False:", AUTOGRAD_TESTS),
    Mutant("gradcheck_first_input_only", AUTOGRAD,
           "    if not checked:\n", "    checked = checked[:1]\n    if not checked:\n", AUTOGRAD_TESTS),
    Mutant("gradcheck_first_output_only", AUTOGRAD,
           "enumerate(outputs_at(inputs))", "enumerate(outputs_at(inputs)[:1])", AUTOGRAD_TESTS),
    Mutant("gradcheck_first_jacobian_row_only", AUTOGRAD,
           "for j in range(flat_size):", "for j in range(min(flat_size, 1)):", AUTOGRAD_TESTS),
    Mutant("gradcheck_one_sided_difference", AUTOGRAD,
           "values[m] = saved - eps", "values[m] = saved", AUTOGRAD_TESTS),
    Mutant("gradcheck_ignores_rtol", AUTOGRAD,
           "rtol=rtol, atol=atol)", "rtol=1e-2, atol=atol)", AUTOGRAD_TESTS),
    Mutant("gradcheck_no_error_without_grad_inputs", AUTOGRAD,
           "    if not checked:\n", "    if False:\n", AUTOGRAD_TESTS),
    Mutant("gradcheck_leaves_inputs_nudged", AUTOGRAD,
           "                values[m] = saved\n", "                values[m] = saved - eps\n", AUTOGRAD_TESTS),
    # _grad_mode.py
    Mutant("set_grad_enabled_does_nothing", GRAD_MODE,
           "        self.mode = mode\n        _core._set_grad_enabled(mode)\n",
           "        self.mode = mode\n", GRAD_MODE_TESTS),
    Mutant("set_grad_enabled_exit_keeps_mode", GRAD_MODE,
           "    def __exit__(self, *exc_info):\n        _core._set_grad_enabled(self.previous)\n        return False\n\n"
           "    def __call__(self, function):\n        mode",
           "    def __exit__(self, *exc_info):\n        return False\n\n"
           "    def __call__(self, function):\n        mode", GRAD_MODE_TESTS),
    Mutant("set_grad_enabled_decorating_changes_mode", GRAD_MODE,
           "        _core._set_grad_enabled(self.previous)  # decorating", "        pass  # decorating",
           GRAD_MODE_TESTS),
    Mutant("set_grad_enabled_decorator_does_nothing", GRAD_MODE,
           "            with set_grad_enabled(mode):\n                return function(*args, **kwargs)",
           "            return function(*args, **kwargs)", GRAD_MODE_TESTS),
    Mutant("set_grad_enabled_decorator_without_wraps", GRAD_MODE,
           "        @functools.wraps(function)\n        def with_grad_mode(*args, **kwargs):\n            with set",
           "        def with_grad_mode(*args, **kwargs):\n            with set", GRAD_MODE_TESTS),
    Mutant("grad_mode_decorators_do_nothing", GRAD_MODE,
           "            with type(self)():\n                return function(*args, **kwargs)",
           "            return function(*args, **kwargs)", GRAD_MODE_TESTS),
    Mutant("no_grad_decorator_does_nothing", GRAD_MODE,
           "            with type(self)():", "            with (_GradModeContext() if isinstance(self, no_grad) "
           "else type(self)()):", GRAD_MODE_TESTS),
    Mutant("enable_grad_decorator_does_nothing", GRAD_MODE,
           "            with type(self)():", "            with (no_grad() if isinstance(self, enable_grad) "
           "else type(self)()):", GRAD_MODE_TESTS),
    Mutant("grad_mode_context_exit_keeps_mode", GRAD_MODE,
           "    def __exit__(self, *exc_info):\n        _core._set_grad_enabled(self.previous)\n        return False\n\n"
           "    def __call__(self, function):\n        @",
           "    def __exit__(self, *exc_info):\n        return False\n\n"
           "    def __call__(self, function):\n        @", GRAD_MODE_TESTS),
    Mutant("grad_mode_context_exit_always_enables", GRAD_MODE,
           "    def __exit__(self, *exc_info):\n        _core._set_grad_enabled(self.previous)\n        return False\n\n"
           "    def __call__(self, function):\n        @",
           "    def __exit__(self, *exc_info):\n        _core._set_grad_enabled(True)\n        return False\n\n"
           "    def __call__(self, function):\n        @", GRAD_MODE_TESTS),
    Mutant("grad_mode_context_swallows_exceptions", GRAD_MODE,
           "        _core._set_grad_enabled(self.previous)\n        return False\n\n    def __call__(self, function):\n"
           "        @",
           "        _core._set_grad_enabled(self.previous)\n        return True\n\n    def __call__(self, function):\n"
           "        @", GRAD_MODE_TESTS),
    Mutant("enable_grad_disables", GRAD_MODE,
           '    """Turns recording back on inside a no_grad region."""\n\n    mode = True',
           '    """Turns recording back on inside a no_grad region."""\n\n    mode = False', GRAD_MODE_TESTS),
    # __init__.py
    Mutant("double_is_float32", INIT, "double = float64", "double = float32", PACKAGE_TESTS),
    Mutant("float_is_float64", INIT, "float = float32  #", "float = float64  #", PACKAGE_TESTS),
    Mutant("long_is_float64", INIT, "long = int64", "long = float64", PACKAGE_TESTS),
    Mutant("repr_never_shows_requires_grad", INIT,
           "requires_grad=self.requires_grad,", "requires_grad=False,", PACKAGE_TESTS),
    Mutant("repr_never_shows_grad_fn", INIT,
           "grad_fn_name=grad_fn.name() if grad_fn is not None else None,", "grad_fn_name=None,", PACKAGE_TESTS),
    Mutant("repr_is_the_default", INIT, "Tensor.__repr__ = _repr\n", "", PACKAGE_TESTS),
    Mutant("tensor_module_is_core", INIT, 'Tensor.__module__ = "tapegrad"', 'Tensor.__module__ = "tapegrad._core"',
           PACKAGE_TESTS),
    Mutant("ndarray_does_not_defer", INIT,
           "Tensor.__array_priority__ = 1000", "Tensor.__array_priority__ = -1000", PACKAGE_TESTS),
    Mutant("openblas_timeout_left_set", INIT,
           "        if set_here:\n            del _os.environ[name]", "        pass", PACKAGE_TESTS),
    # _tensor_str.py
    Mutant("repr_precision_3", TENSOR_STR, "PRECISION = 4", "PRECISION = 3", REPR_TESTS),
    Mutant("repr_threshold_100", TENSOR_STR, "THRESHOLD = 1000", "THRESHOLD = 100", REPR_TESTS),
    Mutant("repr_edgeitems_2", TENSOR_STR, "EDGEITEMS = 3", "EDGEITEMS = 2", REPR_TESTS),
    Mutant("repr_sci_ratio_100", TENSOR_STR, "hi / lo > 1000.0", "hi / lo > 100.0", REPR_TESTS),
    Mutant("repr_no_int_mode", TENSOR_STR,
           "self.int_mode = bool(np.all(finite == np.ceil(finite)))", "self.int_mode = False", REPR_TESTS),
    Mutant("repr_float64_implicit", TENSOR_STR,
           '_IMPLICIT_DTYPES = ("float32", "int64", "bool")', '_IMPLICIT_DTYPES = ("float32", "float64", "int64", "bool")',
           REPR_TESTS),
    Mutant("repr_wraps_at_true_length", TENSOR_STR,
           'len(text) - text.rfind("\\n") + 1', 'len(text) - text.rfind("\\n") - 1', REPR_TESTS),
    Mutant("repr_one_blank_line_between_blocks", TENSOR_STR,
           '"\\n" * (values.ndim - 1)', '"\\n"', REPR_TESTS),
    Mutant("repr_zeros_choose_notation", TENSOR_STR,
           "finite = flat[np.isfinite(flat) & (flat != 0)]", "finite = flat[np.isfinite(flat)]", REPR_TESTS),
    # nn/functional.py
    Mutant("functional_softmax_is_log_softmax", FUNCTIONAL,
           "softmax = _core.softmax", "softmax = _core.log_softmax", FUNCTIONAL_TESTS),
    Mutant("functional_log_softmax_is_softmax", FUNCTIONAL,
           "log_softmax = _core.log_softmax", "log_softmax = _core.softmax", FUNCTIONAL_TESTS),
    Mutant("functional_relu_is_abs", FUNCTIONAL, "relu = _core.relu", "relu = _core.abs", FUNCTIONAL_TESTS),
    Mutant("functional_cross_entropy_summed", FUNCTIONAL,
           "cross_entropy = _core._cross_entropy",
           "cross_entropy = lambda *a, reduction='mean': _core._cross_entropy(*a, reduction='sum')",
           FUNCTIONAL_TESTS),
    Mutant("functional_mse_loss_summed", FUNCTIONAL,
           "mse_loss = _core._mse_loss",
           "mse_loss = lambda *a, reduction='mean': _core._mse_loss(*a, reduction='sum')", FUNCTIONAL_TESTS),
    Mutant("functional_linear_without_bias", FUNCTIONAL,
           "linear = _core._linear", "linear = lambda x, w, b=None: _core._linear(x, w)", FUNCTIONAL_TESTS),
]


def copy_tree(destination):
    """python/ (with _core linked), tests/ (without the C++ tests) and pyproject.toml."""
    ignore = shutil.ignore_patterns("__pycache__", "cpp", ".hypothesis", "_core*.so")
    shutil.copytree(os.path.join(ROOT, "python"), os.path.join(destination, "python"), ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(destination, "tests"), ignore=ignore)
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), destination)
    package = os.path.join(ROOT, "python", "tapegrad")
    cores = [name for name in os.listdir(package) if name.startswith("_core") and name.endswith(".so")]
    if not cores:
        sys.exit(f"no compiled _core*.so in {package}: build the extension first (see README)")
    for name in cores:
        os.symlink(os.path.realpath(os.path.join(package, name)), os.path.join(destination, "python", "tapegrad", name))


def apply(mutant, tree):
    path = os.path.join(tree, "python", "tapegrad", mutant.path)
    with open(path) as source:
        text = source.read()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: {mutant.old!r} occurs {count} times in {mutant.path}, not once")
    with open(path, "w") as target:
        target.write(text.replace(mutant.old, mutant.new))


def run_tests(tree, tests):
    tests = [path for path in tests if os.path.exists(os.path.join(tree, path))]
    environment = dict(os.environ, PYTHONPATH=os.path.join(tree, "python"), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if not lines:
        return done.returncode, [done.stderr[-300:]]
    first_failure = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED", "ERROR"))][:1]
    return done.returncode, lines[-1:] + first_failure


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    options = parser.parse_args()
    chosen = [m for m in MUTANTS if not options.names or m.name in options.names]
    unknown = set(options.names) - {m.name for m in MUTANTS}
    if unknown:
        sys.exit(f"unknown mutants: {sorted(unknown)}")
    if options.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:45} {mutant.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tapegrad-mutation-") as scratch:
        baseline = os.path.join(scratch, "baseline")
        copy_tree(baseline)
        for tests in sorted({tuple(m.tests) for m in chosen}):
            code, tail = run_tests(baseline, list(tests))
            if code != 0:
                sys.exit(f"the unmutated tests fail ({' '.join(tests)}): {tail}")
        survivors = []
        for mutant in chosen:
            tree = os.path.join(scratch, mutant.name)
            copy_tree(tree)
            apply(mutant, tree)
            start = time.monotonic()
            code, tail = run_tests(tree, mutant.tests)
            verdict = "killed" if code != 0 else "SURVIVED"
            if code == 0:
                survivors.append(mutant)
            print(f"{verdict:8} {mutant.name:45} {mutant.path:18} {time.monotonic() - start:5.1f} s  {' '.join(tail)}",
                  flush=True)
            shutil.rmtree(tree)
    print(f"\n{len(chosen) - len(survivors)} of {len(chosen)} mutants killed; survived: "
          f"{[m.name for m in survivors] or 'none'}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
