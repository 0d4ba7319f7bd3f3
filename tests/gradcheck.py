"""The one oracle for op tests: an op's value is checked against numpy, each input's gradient
against central differences computed with numpy in float64, and both against PyTorch when it
is installed.

Inputs are drawn in float64 and rounded through the dtype under test, so numpy and finite
differences see exactly the numbers tapegrad sees; only tapegrad's arithmetic runs in that
dtype. The gradient checked is that of `(out * weights).sum()` for random weights, passed
to `out.backward(gradient=weights)` so that no other op takes part.
"""
import numpy as np
import pytest

import tapegrad as tg

try:
    import torch
except ImportError:
    torch = None

requires_torch = pytest.mark.skipif(
    torch is None,
    reason="torch is not installed (or TAPEGRAD_TESTS_NO_TORCH=1), so the extra cross-check against PyTorch is skipped",
)

FLOAT_DTYPES = ("float32", "float64")

# Value and gradient tolerances differ: the value is one rounding away from numpy's, the
# gradient compounds the op's rounding with the finite-difference error.
TOLERANCES = {
    "float32": {"value": {"rtol": 1e-5, "atol": 1e-5}, "grad": {"rtol": 1e-4, "atol": 1e-4}},
    "float64": {"value": {"rtol": 1e-10, "atol": 1e-12}, "grad": {"rtol": 1e-6, "atol": 1e-7}},
}

# Central differences in float64, at step and step/2 combined by Richardson extrapolation:
# truncation error ~ step**4 (a steep composition such as sin(x**8) left 1e-6 of relative
# error at step**2), rounding error ~ 1e-16 / step.
FINITE_DIFFERENCE_STEP = 1e-6


def draw(shape, domain, rng):
    """Random float64 values of `shape`: 'real' is standard normal, 'positive' lies in
    [0.5, 2] (bases of real powers), 'nonzero' in +-[0.5, 2] (divisors)."""
    if domain == "real":
        values = rng.standard_normal(shape)
    elif domain == "positive":
        values = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        values = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        raise ValueError(f"unknown input domain {domain!r}")
    return np.asarray(values, dtype=np.float64)


def to_numpy(tensor):
    """A float64 copy of a tapegrad tensor's values."""
    return np.array(tensor.detach().numpy(), dtype=np.float64, copy=True)


def promoted(dtypes):
    """The result dtype of arithmetic on float tensors of `dtypes`, as torch promotes."""
    return "float64" if "float64" in dtypes else "float32"


def _per_input(value, count):
    if isinstance(value, str):
        return [value] * count
    assert len(value) == count, f"{value!r} must give one entry per input ({count})"
    return list(value)


def _case(shapes, dtype, domains, seed):
    """The inputs, per-input dtypes and gradient weights of one check, all float64 arrays
    holding values representable in the dtype under test."""
    dtypes = _per_input(dtype, len(shapes))
    domains = _per_input(domains, len(shapes))
    rng = np.random.default_rng(seed)
    arrays = [
        draw(shape, domain, rng).astype(dtype).astype(np.float64)
        for shape, domain, dtype in zip(shapes, domains, dtypes)
    ]
    return arrays, dtypes, rng


def _tolerances(dtypes, value_tol, grad_tol):
    loosest = promoted(dtypes)
    return value_tol or TOLERANCES[loosest]["value"], grad_tol or TOLERANCES[loosest]["grad"]


def central_differences(fn_np, arrays, index, weights, step=FINITE_DIFFERENCE_STEP):
    """d/d arrays[index] of sum(fn_np(*arrays) * weights), by central differences in float64."""
    point = [a.copy() for a in arrays]
    flat = point[index].reshape(-1)  # a view: writing it moves the point

    def difference(j, h):
        original = flat[j]
        flat[j] = original + h
        above = np.array(fn_np(*point), dtype=np.float64)  # a copy: fn_np may return a view of the point
        flat[j] = original - h
        below = np.array(fn_np(*point), dtype=np.float64)
        flat[j] = original
        # Differenced before the sum: outputs that do not depend on element j cancel exactly
        # instead of adding their rounding (large outputs elsewhere once gave 2e-6 here).
        return np.sum((above - below) * weights) / (2 * h)

    grad = np.array([(4 * difference(j, step / 2) - difference(j, step)) / 3 for j in range(flat.size)])
    return grad.reshape(arrays[index].shape)


def _run_tapegrad(fn_tg, arrays, dtypes, weights_fn, name):
    """Evaluates fn_tg on fresh leaves, backpropagates the weights and returns
    (output tensor, its values, leaves)."""
    leaves = [tg.tensor(a.astype(d), requires_grad=True) for a, d in zip(arrays, dtypes)]
    out = fn_tg(*leaves)
    assert isinstance(out, type(leaves[0])), f"{name}: result is a {type(out).__name__}, not a tapegrad tensor"
    assert out.requires_grad, f"{name}: the result of an op on leaves requiring grad must require grad"
    assert out.grad_fn is not None, f"{name}: the result of an op on leaves requiring grad needs a grad_fn"
    out_values = to_numpy(out)
    weights = weights_fn(tuple(out.shape))
    out.backward(gradient=tg.tensor(weights.astype(promoted(dtypes))))
    return out, out_values, weights, leaves


def _check_grad_shape_and_dtype(leaf, array, dtype, index, name):
    assert leaf.grad is not None, f"{name}: input {index} (shape {array.shape}) got no gradient"
    assert tuple(leaf.grad.shape) == array.shape, (
        f"{name}: gradient of input {index} has shape {tuple(leaf.grad.shape)}, "
        f"the input has shape {array.shape}"
    )
    assert leaf.grad.dtype == getattr(tg, dtype), (
        f"{name}: gradient of input {index} has dtype {leaf.grad.dtype}, the input is {dtype}"
    )


def check_op(fn_tg, fn_np, shapes, dtype="float64", *, domains="real", seed=0,
             value_tol=None, grad_tol=None, name=None):
    """Checks tapegrad's fn_tg against numpy's fn_np on random inputs of `shapes`.

    dtype and domains are one value for all inputs or one per input. The result must have
    numpy's shape, the promoted dtype and numpy's values; each input's gradient must have
    the input's shape and dtype and match central differences of fn_np.
    """
    name = name or getattr(fn_tg, "__name__", "op")
    arrays, dtypes, rng = _case(shapes, dtype, domains, seed)
    value_tol, grad_tol = _tolerances(dtypes, value_tol, grad_tol)
    out_dtype = promoted(dtypes)
    expected = np.asarray(fn_np(*arrays), dtype=np.float64)

    def weights_fn(shape):
        assert shape == expected.shape, f"{name}: result has shape {shape}, numpy gives {expected.shape}"
        return draw(shape, "real", rng).astype(out_dtype).astype(np.float64)

    out, out_values, weights, leaves = _run_tapegrad(fn_tg, arrays, dtypes, weights_fn, name)
    assert out.dtype == getattr(tg, out_dtype), f"{name}: result dtype {out.dtype}, expected {out_dtype}"
    np.testing.assert_allclose(out_values, expected, err_msg=f"{name}: value differs from numpy", **value_tol)
    for index, (leaf, array, leaf_dtype) in enumerate(zip(leaves, arrays, dtypes)):
        _check_grad_shape_and_dtype(leaf, array, leaf_dtype, index, name)
        numeric = central_differences(fn_np, arrays, index, weights)
        np.testing.assert_allclose(
            to_numpy(leaf.grad), numeric,
            err_msg=f"{name}: gradient of input {index} (shape {array.shape}, {leaf_dtype}) "
                    f"differs from central differences",
            **grad_tol,
        )


def check_op_torch(fn_tg, fn_torch, shapes, dtype="float64", *, domains="real", seed=0,
                   value_tol=None, grad_tol=None, name=None):
    """Checks tapegrad's fn_tg against PyTorch's fn_torch on the same random inputs: result
    shape, dtype, values, and each input's gradient. Use under @requires_torch."""
    name = name or getattr(fn_tg, "__name__", "op")
    arrays, dtypes, rng = _case(shapes, dtype, domains, seed)
    value_tol, grad_tol = _tolerances(dtypes, value_tol, grad_tol)
    torch_leaves = [
        torch.tensor(a.astype(d), requires_grad=True) for a, d in zip(arrays, dtypes)
    ]
    torch_out = fn_torch(*torch_leaves)
    torch_dtype = str(torch_out.dtype).removeprefix("torch.")
    weights = draw(tuple(torch_out.shape), "real", rng).astype(torch_dtype).astype(np.float64)
    torch_out.backward(gradient=torch.tensor(weights.astype(torch_dtype)))

    def weights_fn(shape):
        assert shape == tuple(torch_out.shape), (
            f"{name}: result has shape {shape}, torch gives {tuple(torch_out.shape)}"
        )
        return weights

    out, out_values, _, leaves = _run_tapegrad(fn_tg, arrays, dtypes, weights_fn, name)
    assert out.dtype == getattr(tg, torch_dtype), f"{name}: result dtype {out.dtype}, torch gives {torch_dtype}"
    np.testing.assert_allclose(
        out_values, torch_out.detach().double().numpy(),
        err_msg=f"{name}: value differs from torch", **value_tol,
    )
    for index, (leaf, torch_leaf, array, leaf_dtype) in enumerate(zip(leaves, torch_leaves, arrays, dtypes)):
        _check_grad_shape_and_dtype(leaf, array, leaf_dtype, index, name)
        np.testing.assert_allclose(
            to_numpy(leaf.grad), torch_leaf.grad.double().numpy(),
            err_msg=f"{name}: gradient of input {index} (shape {array.shape}, {leaf_dtype}) "
                    f"differs from torch",
            **grad_tol,
        )


def grad_fn_name(expression, lib, x):
    """The grad_fn name of `expression`, evaluated with `x` and `lib` (tapegrad or torch) in scope."""
    return eval(expression, {"x": x, "lib": lib}).grad_fn.name()


def grad_fn_names_test(table):
    """A test parametrised over `table`, pairs of (an expression over `x`, ones of shape
    (2, 3, 4) requiring grad, and `lib`; torch's grad_fn name for it): tapegrad's result has a
    grad_fn of that name, and so has torch's when torch is installed, which keeps the table
    torch's. A test file binds it: `test_grad_fn_names = grad_fn_names_test(GRAD_FN_NAMES)`."""
    @pytest.mark.parametrize("lib_name", ["tapegrad", pytest.param("torch", marks=requires_torch)])
    @pytest.mark.parametrize("expression, name", table)
    def test(expression, name, lib_name):
        lib = tg if lib_name == "tapegrad" else torch
        assert grad_fn_name(expression, lib, lib.ones(2, 3, 4, requires_grad=True)) == name

    return test
