"""Random programs over the API contract, for tests/test_fuzz.py: the op table (how each op is
called, its numpy oracle, how to draw its arguments), the actions on autograd's state, the
drawing of programs (`draw_program(seed)`), the checker that runs one program with tapegrad
beside torch and numpy, and the worker loop that runs programs sent by the test in a
subprocess (`python fuzz_programs.py`), so that a crash fails the test instead of killing it.

A program is JSON-able data, printed when it fails and replayed by `check_program`:
    {"seed": 7, "inputs": [{"shape": [2, 3], "dtype": "float64", "requires_grad": true}, ...],
     "steps": [{"op": "add", "args": [{"reg": 0}, 2.5], "kwargs": {}},
               {"op": "exp", "args": [{"reg": 2}], "kwargs": {}, "no_grad": true},
               {"op": "register_hook", "args": [{"reg": 3}, {"hook": "scale", "factor": 2.0, "id": "2"}],
                "kwargs": {}}, ...],
     "final": "grad", "grad_inputs": [0, 3]}
Registers start as the inputs (values drawn from `seed`); an op step appends the tensors it
returns, an in-place step writes into its first argument, a step with "no_grad" runs under
no_grad; an action step (ACTIONS: register_hook, retain_grad, backward, zero_grad, escape,
write_escape) returns nothing. Arguments are literals or {"reg": i}; {"tensor": [...],
"dtype": d} is a literal tensor, {"scalar": v, "kind": k} a scalar of SCALAR_KINDS' kind k
(np.float32, 0-d array, ...), {"slice": [a, b, c]}, {"tuple": [...]} and "..." are index
parts. "final" is one of FINALS.

What a program checks:
- each step: tapegrad raises iff torch raises (the same builtin exception class); otherwise
  the same shapes, dtypes and requires_grad as torch, and the values of numpy's oracle run
  on the step's inputs as tapegrad holds them (so float32 rounding never accumulates); every
  numpy array escaped so far shows what torch's shows;
- at the end, when an input requires grad: sum_r sum(register_r * weight_r) over the
  registers that require grad is backpropagated (once, twice, or by autograd.grad with
  respect to "grad_inputs"); the gradients (leaves', retained ones', autograd.grad's) and
  what every hook saw match torch running the same program (nan equal to nan), and match
  central differences of the numpy oracle run on the whole program when every float is
  float64, no intermediate lies near a kink or a singularity, and no action changed the
  gradients (a scaling hook, an earlier backward, a write through an escaped array).
"""
import json
import math
import operator
import os
import re
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

FLOATS = ("float32", "float64")

# Values of one step against numpy: (rtol, atol per unit of scale), by result dtype.
VALUE_TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}
# Gradients against torch (same program, other rounding) and against central differences.
TORCH_GRAD_TOLERANCE = {"float32": (1e-3, 1e-3), "float64": (1e-6, 1e-8)}
DIFFERENCE_GRAD_TOLERANCE = (1e-5, 1e-6)
DIFFERENCE_STEP = 1e-6
# Central differences are trusted only when every argument stays this far from a kink or a
# singularity and every intermediate is finite and below BOUND in magnitude.
KINK_MARGIN = 1e-4
BOUND = 1e5
# The largest result of indexing by a register the strategy draws.
MAX_INDEXED_ELEMENTS = 2**20


# The scalars a binary op takes on either side: kind -> (family, the scalar from a JSON value).
SCALAR_KINDS = {
    "int": ("int", int), "float": ("float", float), "bool": ("bool", bool),
    "np.int64": ("int", np.int64), "np.float32": ("float", np.float32), "np.float64": ("float", np.float64),
    "np.bool_": ("bool", np.bool_),
    "0-d int64": ("int", lambda v: np.array(v, np.int64)), "0-d float32": ("float", lambda v: np.array(v, np.float32)),
    "0-d float64": ("float", lambda v: np.array(v, np.float64)), "0-d bool": ("bool", lambda v: np.array(v, np.bool_)),
}


class NotApplicable(Exception):
    """The registers hold nothing this op can take; the strategy draws another op."""


# ---------------------------------------------------------------- the numpy oracle helpers

def axes(x, dim):
    """torch's dim argument as numpy's axis: None, or a tuple of non-negative axes; a 0-d
    tensor's dim 0 / -1 is its only 'axis' (None)."""
    if dim is None or x.ndim == 0:
        return None
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return tuple(d % x.ndim for d in dims)


def reduce(fn):
    def oracle(x, dim=None, keepdim=False):
        return np.asarray(fn(x, axis=axes(x, dim), keepdims=keepdim))
    return oracle


def logsumexp(x, axis, keepdims):
    if x.size == 0:
        return np.full(np.sum(x, axis=axis, keepdims=keepdims).shape, -np.inf)
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    result = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return result if keepdims else np.squeeze(result, axis=axis) if axis is not None else result.reshape(())


def extremum(values_fn, index_fn):
    """max/min: over everything, or along one dim as (values, indices)."""
    def oracle(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray(values_fn(x))
        axis = axes(x, dim)
        if axis is None:
            return x.copy(), np.zeros((), np.int64)
        values = values_fn(x, axis=axis[0], keepdims=keepdim)
        indices = index_fn(x, axis=axis[0], keepdims=keepdim)
        return np.asarray(values), np.asarray(indices, dtype=np.int64)
    return oracle


def arg_extremum(index_fn):
    def oracle(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray(index_fn(x.reshape(-1)), dtype=np.int64)
        if x.ndim == 0:
            return np.zeros((), np.int64)
        return np.asarray(index_fn(x, axis=dim % x.ndim, keepdims=keepdim), dtype=np.int64)
    return oracle


def softmax(x, dim):
    if x.ndim == 0:
        return np.ones(())
    top = np.max(x, axis=dim, keepdims=True) if x.size else 0.0
    e = np.exp(x - top)
    return e / np.sum(e, axis=dim, keepdims=True)


def log_softmax(x, dim):
    if x.ndim == 0:
        return np.zeros(())
    top = np.max(x, axis=dim, keepdims=True) if x.size else 0.0
    shifted = x - top
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def sigmoid(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def clamp(x, min=None, max=None):
    result = x if min is None else np.maximum(x, min)
    return result if max is None else np.minimum(result, max)


def squeeze(x, dim=None):
    if dim is None:
        return x.reshape([n for n in x.shape if n != 1])
    dims = {d % max(x.ndim, 1) for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
    return x.reshape([n for i, n in enumerate(x.shape) if not (i in dims and n == 1)])


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])


def expand(x, *sizes):
    sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) else list(sizes)
    lead = len(sizes) - x.ndim
    target = [x.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes)]
    return np.broadcast_to(x, target)


def cat(tensors, dim=0):
    # torch still skips 1-D empty tensors in a cat of higher-dim tensors (a legacy rule)
    kept = [t for t in tensors if not (t.ndim == 1 and t.size == 0)] or tensors[:1]
    dtype = np.result_type(*tensors)
    return np.concatenate([t.astype(dtype) for t in kept], axis=dim % kept[0].ndim)


def stack(tensors, dim=0):
    return np.stack(tensors, axis=dim % (tensors[0].ndim + 1))


def getitem(x, index):
    """x[index] by torch's rule: an int selects its dim before index lists are placed (numpy
    counts it as one of them, which moves the result's dims elsewhere)."""
    parts = list(index) if isinstance(index, tuple) else [index]
    is_int = [isinstance(p, int) and not isinstance(p, bool) for p in parts]
    if not any(is_int) or not any(isinstance(p, (list, np.ndarray)) for p in parts):
        return np.array(x[index])
    ellipsis = [k for k, p in enumerate(parts) if p is Ellipsis]
    if ellipsis:
        consumed = sum(1 for p in parts if p is not None and p is not Ellipsis)
        k = ellipsis[0]
        parts[k:k + 1] = [slice(None)] * (x.ndim - consumed)
        is_int[k:k + 1] = [False] * (x.ndim - consumed)
    dim, selects, rest = 0, [], []
    for part, integer in zip(parts, is_int):
        if integer:
            selects.append((dim, part))
        else:
            rest.append(part)
        dim += part is not None
    for d, i in reversed(selects):
        x = x[(slice(None),) * d + (i,)]
    return np.array(x[tuple(rest)])


def t(x):
    return x.T if x.ndim == 2 else x


def linear_takes_addmm(x, bias):
    """Whether torch computes linear(x, weight, bias) as addmm over x's rows, the bias added to
    each row, rather than as matmul with the bias added to the output after (x and bias held
    contiguous: otherwise torch takes addmm for a 2-D x alone)."""
    return x.ndim == 2 or bias.ndim == 1 or sum(size != 1 for size in bias.shape) == 1


def linear(x, weight, bias=None):
    out = np.matmul(x, weight.T)
    if bias is None:
        return out
    if linear_takes_addmm(x, bias):
        return (out.reshape(math.prod(x.shape[:-1]), weight.shape[0]) + bias).reshape(out.shape)
    return out + bias


def mse_loss(a, b, reduction="mean"):
    squared = (a - b) ** 2
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](squared)


def cross_entropy(logits, target, reduction="mean"):
    log_p = log_softmax(logits, logits.ndim - 1 if logits.ndim else 0)
    if logits.ndim == 1:
        picked = -log_p[target]
    else:
        picked = -log_p[np.arange(len(target)), target]
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](picked)


def power(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        # torch's integer power (bool included: True ** -1 is 1, False ** -1 is 0, not inf):
        # exact (wrapping) for exponents >= 0; for negative ones,
        # 1 ** e = 1, (-1) ** e = +-1 and anything else 0 (the quotient truncated).
        a, b = np.broadcast_arrays(a.astype(np.int64), b.astype(np.int64))
        with np.errstate(all="ignore"):
            result = np.power(a, np.maximum(b, 0))
        reciprocal = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
        return np.where(b < 0, reciprocal, result)
    with np.errstate(all="ignore"):
        return np.power(np.asarray(a, dtype=np.float64), b)


def divide(a, b):
    with np.errstate(all="ignore"):
        return np.true_divide(a, b)


def to_long(x):
    return np.trunc(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64)


def gap(x, axis=None):
    """Distance between the largest two values (along axis), which is where max, min, argmax
    and argmin jump."""
    if x.size < 2 or x.ndim == 0:
        return math.inf
    flat = np.moveaxis(x, axis, -1) if axis is not None else x.reshape(-1)
    if flat.shape[-1] < 2:
        return math.inf
    ordered = np.sort(flat, axis=-1)
    return float(np.min(np.minimum(ordered[..., -1] - ordered[..., -2], ordered[..., 1] - ordered[..., 0])))


def abs_min(x):
    x = np.asarray(x, dtype=np.float64)
    return float(np.min(np.abs(x))) if x.size else math.inf


# ---------------------------------------------------------------- drawing arguments

@dataclass
class Reg:
    """What the strategy knows of a register: torch ran the program so far."""
    shape: tuple
    dtype: str
    values: np.ndarray
    requires_grad: bool
    is_leaf: bool
    group: int  # registers that may share memory (views) have one group
    contiguous: bool = True  # torch's tensor is (tapegrad's always are)
    escaped: tuple = ()  # "tensor", "grad": what numpy arrays share memory with

    @property
    def ndim(self):
        return len(self.shape)

    def is_float(self):
        return self.dtype in FLOATS

    def finite(self, bound=BOUND):
        return self.values.size == 0 or bool(np.all(np.abs(self.values.astype(np.float64)) < bound))

    def above(self, floor):
        return self.is_float() and (self.values.size == 0 or bool(np.min(self.values) > floor))

    def away_from_zero(self, margin):
        return self.is_float() and (self.values.size == 0 or bool(np.min(np.abs(self.values)) > margin))


class Drawer:
    """The strategy's draws for one step, over the current registers, from a numpy generator:
    uniform, where hypothesis's own draws favour the first of a list (which made `abs`, first
    of the sorted op names, 12% of all steps)."""

    def __init__(self, rng, regs, escaped_regs=()):
        self.rng, self.regs = rng, regs
        self.escaped_regs = escaped_regs  # per escaped array: its register, or None for a .grad's
        self.spoiled = False

    def integer(self, low, high):
        return int(self.rng.integers(low, high + 1))

    def choice(self, options):
        options = list(options)
        return options[self.integer(0, len(options) - 1)]

    def coin(self):
        return self.integer(0, 1) == 1

    def bad(self):
        """An invalid argument, about one draw in ten, and at most one per step: with two,
        which error is raised first is each library's choice."""
        if self.spoiled:
            return False
        self.spoiled = self.integer(0, 9) == 0
        return self.spoiled

    def pick(self, accept=lambda r: True):
        candidates = [i for i, r in enumerate(self.regs) if accept(r)]
        if not candidates:
            raise NotApplicable
        return self.choice(candidates)

    def ref(self, accept=lambda r: True):
        return {"reg": self.pick(accept)}

    def dim(self, ndim, extra=0):
        """A dim of a tensor of ndim dims (extra=1 for unsqueeze/stack), sometimes out of range."""
        span = max(ndim + extra, 1)
        if self.bad():
            return self.choice([span, -span - 1, 9])
        return self.integer(-span, span - 1)

    def dims(self, ndim):
        """None, one dim, or a list of distinct dims (sometimes repeated)."""
        kind = self.integer(0, 2)
        if kind == 0:
            return None
        if kind == 1 or ndim == 0:
            return self.dim(ndim)
        chosen = sorted({self.integer(0, ndim - 1) for _ in range(self.integer(1, ndim))})
        if self.bad():
            chosen.append(chosen[0] - ndim)  # the same dim twice, once negative
        return [d - ndim if self.coin() else d for d in chosen]

    def scalar(self, floats=(2.0, -1.5, 0.5, 0.25, 3.0), ints=(3, 1, -2), bools=(True, False)):
        """A scalar of any kind SCALAR_KINDS names, with a value from the list of its family."""
        kind = self.choice(SCALAR_KINDS)
        family = SCALAR_KINDS[kind][0]
        value = self.choice({"int": ints, "float": floats, "bool": bools}[family])
        return value if kind in ("int", "float", "bool") else {"scalar": value, "kind": kind}

    def shape_of(self, index):
        return self.regs[index].shape


def is_float(r):
    return r.is_float()


def numeric(r):
    return r.dtype != "bool"


def broadcastable(*shapes):
    try:
        np.broadcast_shapes(*shapes)
        return True
    except ValueError:
        return False


def partner(d, first, accept=lambda r: True):
    """A register whose shape broadcasts with register `first`'s, or (when drawing an
    invalid argument) one whose shape does not."""
    shape = d.shape_of(first)
    if d.bad():
        try:
            return d.ref(lambda r: accept(r) and not broadcastable(shape, r.shape))
        except NotApplicable:
            pass
    return d.ref(lambda r: accept(r) and broadcastable(shape, r.shape))


def draw_unary(domain):
    def draw_args(d):
        accept = {
            "real": lambda r: is_float(r) and r.finite(20.0),
            "positive": lambda r: r.above(1e-2) and r.finite(),
            "numeric": lambda r: numeric(r) and r.finite(),
        }[domain]
        if d.bad():
            accept = lambda r: True  # noqa: E731 - ints, bools, values out of the domain
        return [d.ref(accept)], {}
    return draw_args


# Scalar values (floats, ints, bools) of divisors and exponents.
DIVISORS = ((2.0, -1.5, 0.5, 3.0), (2, -1, 3), (True,))
EXPONENTS = ((2.0, 0.5, -1.0, 1.5), (2, -1, 3), (True, False))


def draw_binary(divisor=False, power_op=False, ints=True):
    def draw_args(d):
        left_ok = (lambda r: r.above(0.1) and r.finite(100)) if power_op else \
            (lambda r: numeric(r) and (ints or is_float(r)) and r.finite())
        right_ok = (lambda r: r.away_from_zero(0.1) and r.finite()) if divisor else \
            (lambda r: (is_float(r) or r.dtype == "int64") and r.finite(3.0)) if power_op else left_ok
        if d.bad():
            left_ok = right_ok = lambda r: True  # noqa: E731
        form = d.integer(0, 3)
        if form == 1:
            value = d.scalar(*DIVISORS) if divisor else d.scalar(*EXPONENTS) if power_op else d.scalar()
            return [d.ref(left_ok), value], {}
        if form == 2:
            value = d.scalar(floats=(2.0, 0.5, 1.5), ints=(2, 3), bools=(True,)) if power_op else d.scalar()
            return [value, d.ref(right_ok)], {}
        first = d.pick(left_ok)
        return [{"reg": first}, partner(d, first, right_ok)], {}
    return draw_args


def draw_compare(d):
    first = d.pick(numeric)
    if d.integer(0, 3) == 0:
        return [{"reg": first}, d.scalar()], {}
    return [{"reg": first}, partner(d, first, numeric)], {}


def draw_where(d):
    """A bool register as the condition, or (when none fits or one time in two) a literal bool
    tensor broadcasting with the first operand."""
    first = d.pick(numeric)
    shape = d.shape_of(first)
    try:
        if d.coin():
            raise NotApplicable
        condition = partner(d, first, lambda r: r.dtype == "bool")
        condition_shape = d.shape_of(condition["reg"])
    except NotApplicable:
        condition_shape = tuple(1 if d.coin() else n for n in shape[d.integer(0, len(shape)):])
        condition = {"tensor": (d.rng.random(condition_shape) < 0.5).tolist(), "dtype": "bool"}
    if d.integer(0, 3) == 0:
        second = d.scalar()
    else:
        second = d.ref(lambda r: numeric(r) and broadcastable(r.shape, condition_shape, shape))
    return [condition, {"reg": first}, second], {}


def draw_clamp(d):
    x = d.ref(lambda r: numeric(r) and r.finite())
    low, high = d.choice([None, -1.0, -0.5, 0, 0.3]), d.choice([None, 1.0, 0.5, 2])
    if low is None and high is None and not d.bad():
        high = 1.0
    return [x], {"min": low, "max": high}


def draw_reduction(floats_only=True, dims=True):
    def draw_args(d):
        x = d.pick((lambda r: is_float(r) and r.finite()) if floats_only and not d.bad() else numeric)
        kwargs = {}
        if dims:
            dim = d.dims(d.regs[x].ndim)
            if dim is not None:
                kwargs = {"dim": dim, "keepdim": d.coin()}
        return [{"reg": x}], kwargs
    return draw_args


def draw_one_dim_reduction(d):
    """max, min, prod, argmax, argmin: over everything, or along one dim."""
    x = d.pick(lambda r: numeric(r) and r.finite())
    if d.coin():
        return [{"reg": x}], {}
    return [{"reg": x}], {"dim": d.dim(d.regs[x].ndim), "keepdim": d.coin()}


def draw_logsumexp(d):
    """torch's logsumexp needs a dim."""
    x = d.pick(lambda r: is_float(r) and r.finite())
    dim = d.dims(d.regs[x].ndim)
    return [{"reg": x}], {"dim": 0 if dim is None else dim, "keepdim": d.coin()}


def draw_softmax(d):
    x = d.pick(lambda r: (is_float(r) or d.bad()) and r.finite())
    return [{"reg": x}, d.dim(d.regs[x].ndim)], {}


def factor_shape(d, numel, ndim):
    """A random shape of `numel` elements with up to ndim + 1 dims, one maybe -1."""
    sizes = []
    remaining = numel
    for _ in range(d.integer(0, min(ndim + 1, 4))):
        divisors = [k for k in range(1, 5) if remaining % k == 0] if remaining else [0, 1, 2]
        size = d.choice(divisors)
        sizes.append(size)
        remaining = remaining // size if size else 0
    if remaining != 1 or numel == 0:
        sizes.append(remaining if numel else 0)
    if sizes and numel and d.coin():
        sizes[d.integer(0, len(sizes) - 1)] = -1
    if d.bad():
        sizes.append(d.choice([2, 3]) if numel else 5)
    return sizes


def draw_reshape(d):
    x = d.pick()
    return [{"reg": x}, factor_shape(d, int(np.prod(d.shape_of(x))), d.regs[x].ndim)], {}


def draw_flatten(d):
    x = d.pick()
    ndim = d.regs[x].ndim
    start, end = d.dim(ndim), d.dim(ndim)
    return [{"reg": x}], {"start_dim": start, "end_dim": end}


def draw_squeeze(d):
    x = d.pick()
    ndim = d.regs[x].ndim
    kind = d.integer(0, 2)
    if kind == 0:
        return [{"reg": x}], {}
    if kind == 1:
        return [{"reg": x}, d.dim(ndim)], {}
    return [{"reg": x}, sorted({d.dim(ndim) for _ in range(2)})], {}


def draw_unsqueeze(d):
    x = d.pick()
    return [{"reg": x}, d.dim(d.regs[x].ndim, extra=1)], {}


def draw_transpose(d):
    x = d.pick()
    ndim = d.regs[x].ndim
    return [{"reg": x}, d.dim(ndim), d.dim(ndim)], {}


def draw_permute(d):
    x = d.pick()
    ndim = d.regs[x].ndim
    order = list(range(ndim))
    for i in range(ndim - 1, 0, -1):
        j = d.integer(0, i)
        order[i], order[j] = order[j], order[i]
    if d.bad():
        order = order[:-1] if order and d.coin() else order + [0]
    return [{"reg": x}, *[k - ndim if d.coin() else k for k in order]], {}


def draw_matrix_transpose(d):
    return [d.ref(lambda r: r.ndim <= 2 or d.bad())], {}


def draw_expand(d):
    x = d.pick()
    shape = d.shape_of(x)
    sizes = [d.choice([1, 2, 3]) for _ in range(d.integer(0, 2))]
    for n in shape:
        sizes.append(d.choice([n, -1, 2, 3] if n == 1 else [n, -1]))
    if d.bad() and shape:
        sizes[-1] = shape[-1] + 1
    return [{"reg": x}, *sizes], {}


def draw_cat(d):
    first = d.pick(lambda r: r.ndim > 0 or d.bad())
    shape = d.shape_of(first)
    dim = d.dim(len(shape))
    along = dim % len(shape) if shape and -len(shape) <= dim < len(shape) else None

    def fits(r):
        if r.ndim != len(shape):
            return False
        return all(a == b for i, (a, b) in enumerate(zip(r.shape, shape)) if i != along)
    others = [d.ref(lambda r: fits(r) or d.bad()) for _ in range(d.integer(0, 2))]
    return [[{"reg": first}, *others]], {"dim": dim}


def draw_stack(d):
    first = d.pick()
    shape = d.shape_of(first)
    others = [d.ref(lambda r: r.shape == shape or d.bad()) for _ in range(d.integer(0, 2))]
    return [[{"reg": first}, *others]], {"dim": d.dim(len(shape), extra=1)}


def draw_index_part(d, size):
    """One index entry for a dim of `size`."""
    kind = d.integer(0, 5)
    if kind == 0:
        return d.integer(-size, size - 1) if size and not d.bad() else d.choice([size, -size - 1])
    if kind == 1:
        start, stop = d.integer(-size - 1, size + 1), d.integer(-size - 1, size + 1)
        return {"slice": [start, stop, d.choice([1, 1, 2, 3])]}
    if kind == 2:
        count = d.integer(0, 3)
        values = [d.integer(-size, size - 1) if size else 0 for _ in range(count)]
        if d.bad() or not size:
            values.append(size)
        return values
    if kind == 3:
        values = [d.integer(0, size - 1) if size else 0 for _ in range(d.integer(1, 3))]
        return {"tensor": values, "dtype": "int64"}
    if kind == 4:
        return {"slice": [None, None, 1]}
    return d.choice([None, "..."])


def draw_getitem(d):
    x = d.pick()
    shape = d.shape_of(x)
    if not shape:
        return [{"reg": x}, d.choice([None, "...", {"tuple": []}] + ([0] if d.bad() else []))], {}
    parts = [draw_index_part(d, shape[min(i, len(shape) - 1)]) for i in range(d.integer(1, len(shape)))]
    index = parts[0] if len(parts) == 1 and not isinstance(parts[0], list) else {"tuple": parts}
    return [{"reg": x}, index], {}


def draw_index_by_register(d):
    x = d.pick(lambda r: r.ndim > 0)
    size, row = d.shape_of(x)[0], math.prod(d.shape_of(x)[1:])
    # x[index] has index.size rows of x: x[x] of a 24 x 96 register had 221,184 elements, and
    # indexing by that made 509 million, which torch, tapegrad and numpy each held at once
    index = d.pick(lambda r: r.values.size * row <= MAX_INDEXED_ELEMENTS and (r.dtype == "int64" and (
        r.values.size == 0 or (np.max(r.values) < size and np.min(r.values) >= -size)) or (
        d.bad() and r.dtype != "bool")))
    return [{"reg": x}, {"reg": index}], {}


def draw_matmul(kind):
    def draw_args(d):
        wanted_ndim = {"dot": (1,), "mm": (2,), "outer": (1,), "matmul": tuple(range(1, 9))}[kind]
        a = d.pick(lambda r: is_float(r) and r.finite() and r.ndim in wanted_ndim or d.bad())
        shape = d.shape_of(a)

        def fits(r):
            if not is_float(r) or not r.finite():
                return False
            if not shape:  # a 0-d first operand: every second one is invalid
                return True
            if kind == "outer":
                return r.ndim == 1
            if kind == "dot":
                return r.shape == shape
            if kind == "mm":
                return r.ndim == 2 and r.shape[0] == shape[-1]
            if r.ndim == 0:
                return False
            inner = r.shape[0] if r.ndim == 1 else r.shape[-2]
            return inner == shape[-1] and (r.ndim < 3 or len(shape) < 3 or broadcastable(shape[:-2], r.shape[:-2]))
        try:
            b = d.pick(lambda r: fits(r) or d.bad())
        except NotApplicable:
            b = a
        return [{"reg": a}, {"reg": b}], {}
    return draw_args


def draw_linear(d):
    x = d.pick(lambda r: is_float(r) and r.ndim >= 1 and r.finite())
    features = d.shape_of(x)[-1]
    weight = d.pick(lambda r: is_float(r) and r.finite() and (r.ndim in (1, 2) and r.shape[-1] == features or d.bad()))
    # with a 1-D weight, a 0-d bias: an (outputs,) one goes through addmm, which needs a 2-D weight
    outputs = d.shape_of(weight)[0] if d.regs[weight].ndim == 2 else None
    bias = None if d.coin() else d.ref(lambda r: is_float(r) and (r.shape == (outputs,) or r.ndim == 0 or d.bad()))
    return [{"reg": x}, {"reg": weight}, bias], {}


def draw_mse(d):
    a = d.pick(lambda r: is_float(r) and r.finite())
    b = d.pick(lambda r: is_float(r) and r.finite() and (r.shape == d.shape_of(a) or d.bad()))
    return [{"reg": a}, {"reg": b}], {"reduction": d.choice(["mean", "sum", "none"] + (["max"] if d.bad() else []))}


def draw_cross_entropy(d):
    logits = d.pick(lambda r: is_float(r) and r.finite() and (r.ndim in (1, 2) and r.shape[-1] > 0 or d.bad()))
    shape = d.shape_of(logits)
    classes = shape[-1] if shape else 1
    count = shape[0] if len(shape) == 2 else None
    values = [d.integer(0, max(classes - 1, 0)) for _ in range(count if count is not None else 1)]
    if d.bad():
        values = [classes] + values[1:] if values else [classes]
    target = {"tensor": values if count is not None else values[0], "dtype": "int64"}
    return [{"reg": logits}, target], {"reduction": d.choice(["mean", "sum", "none"])}


def draw_inplace(kind):
    def draw_args(d):
        alone = [r.group for r in d.regs]
        # Only a register that shares memory with no other one: tapegrad's views differ from torch's.
        target = d.pick(lambda r: alone.count(r.group) == 1 and (is_float(r) or d.bad()) and r.finite())
        if kind == "none":
            return [{"reg": target}], {}
        if kind == "fill":
            return [{"reg": target}, d.scalar()], {}
        if kind == "clamp":
            return [{"reg": target}], {"min": d.choice([None, -0.5, 0]), "max": d.choice([1.0, 0.5])}
        shape = d.shape_of(target)
        if d.integer(0, 2) == 0 and kind != "copy":
            value = d.scalar(*DIVISORS) if kind == "divisor" else d.scalar()
            return [{"reg": target}, value], {}
        accept = (lambda r: r.away_from_zero(0.1) and r.finite()) if kind == "divisor" else \
            (lambda r: numeric(r) and r.finite())
        source = d.ref(lambda r: accept(r) and (broadcastable(shape, r.shape) and
                                                np.broadcast_shapes(shape, r.shape) == shape or d.bad()))
        return [{"reg": target}, source], {}
    return draw_args


def draw_convert(d):
    return [d.ref(lambda r: r.finite(1e9))], {}


def draw_to(d):
    return [d.ref(lambda r: r.finite(1e9)), d.choice(["float32", "float64", "int64"])], {}


# ---------------------------------------------------------------- the op table

def method(name):
    return lambda lib, x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


def function(name):
    return lambda lib, *args, **kwargs: getattr(lib, name)(*args, **kwargs)


def functional(name):
    return lambda lib, *args, **kwargs: getattr(lib.nn.functional, name)(*args, **kwargs)


def operator_call(fn):
    return lambda lib, *args: fn(*args)


@dataclass
class Op:
    call: Callable                  # (lib, *args, **kwargs): the call, for tapegrad and torch alike
    oracle: Callable                # (*arrays, **kwargs): numpy's float64 (or int64, bool) result
    draw_args: Callable             # (Drawer) -> (args, kwargs)
    inplace: bool = False           # writes its first argument and returns it
    view: bool = False              # its result may share memory with its first argument
    kink: Optional[Callable] = None  # (*arrays, **kwargs): distance of the arguments from a kink
    tolerance: float = 1.0          # scales the value tolerance (var and std lose digits to cancellation)


def kink_of_binary(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) or np.ndim(a) or np.ndim(b):
        return abs_min(np.subtract(np.asarray(a, np.float64), np.asarray(b, np.float64)))
    return math.inf


def clamp_kink(x, min=None, max=None):  # noqa: A002 - torch's keyword names
    return np.min([abs_min(x - bound) for bound in (min, max) if bound is not None] + [math.inf])


def reduce_kink(x, dim=None, keepdim=False):
    return gap(x) if dim is None else gap(x, axes(x, dim)[0] if axes(x, dim) else None)


def floating(fn):
    """A float function of ints and bools too: torch computes it in the default float dtype."""
    return lambda x: fn(np.asarray(x, dtype=np.float64))


UNARY = {
    "exp": (floating(np.exp), "real", None),
    "log": (floating(np.log), "positive", lambda x: abs_min(x)),
    "sqrt": (floating(np.sqrt), "positive", lambda x: abs_min(x)),
    "abs": (np.abs, "numeric", lambda x: abs_min(x)),
    "sin": (floating(np.sin), "real", None),
    "cos": (floating(np.cos), "real", None),
    "tanh": (floating(np.tanh), "real", None),
    "sigmoid": (floating(sigmoid), "real", None),
    "relu": (lambda x: np.maximum(x, 0), "numeric", lambda x: abs_min(x)),
    "neg": (np.negative, "numeric", None),
}

OPS = {name: Op(function(name), oracle, draw_unary(domain), kink=kink)
       for name, (oracle, domain, kink) in UNARY.items()}
OPS.update({
    "add": Op(operator_call(operator.add), np.add, draw_binary()),
    "sub": Op(function("sub"), np.subtract, draw_binary()),
    "mul": Op(operator_call(operator.mul), np.multiply, draw_binary()),
    "div": Op(operator_call(operator.truediv), divide, draw_binary(divisor=True),
              kink=lambda a, b: abs_min(b)),
    "pow": Op(operator_call(operator.pow), power, draw_binary(power_op=True),
              kink=lambda a, b: abs_min(a)),
    "maximum": Op(function("maximum"), np.maximum, draw_binary(ints=False), kink=kink_of_binary),
    "minimum": Op(function("minimum"), np.minimum, draw_binary(ints=False), kink=kink_of_binary),
    "lt": Op(operator_call(operator.lt), np.less, draw_compare, kink=kink_of_binary),
    "ge": Op(operator_call(operator.ge), np.greater_equal, draw_compare, kink=kink_of_binary),
    "eq": Op(operator_call(operator.eq), np.equal, draw_compare, kink=kink_of_binary),
    "ne": Op(operator_call(operator.ne), np.not_equal, draw_compare, kink=kink_of_binary),
    "where": Op(function("where"), np.where, draw_where),
    "clamp": Op(function("clamp"), clamp, draw_clamp,
                kink=clamp_kink),
    "sum": Op(function("sum"), reduce(np.sum), draw_reduction(floats_only=False)),
    "mean": Op(function("mean"), reduce(np.mean), draw_reduction()),
    "var": Op(function("var"), reduce(lambda x, axis, keepdims: np.var(x, axis=axis, ddof=1, keepdims=keepdims)),
              draw_reduction(), tolerance=100),
    "std": Op(function("std"), reduce(lambda x, axis, keepdims: np.std(x, axis=axis, ddof=1, keepdims=keepdims)),
              draw_reduction(), tolerance=100,
              kink=lambda x, dim=None, keepdim=False: abs_min(np.std(x, axis=axes(x, dim), ddof=1))),
    "norm": Op(method("norm"), reduce(lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))),
               draw_reduction(),
               kink=lambda x, dim=None, keepdim=False: abs_min(np.sqrt(np.sum(x * x, axis=axes(x, dim))))),
    "logsumexp": Op(function("logsumexp"), reduce(logsumexp), draw_logsumexp),
    "prod": Op(function("prod"), lambda x, dim=None, keepdim=False: np.asarray(
        np.prod(x, axis=axes(x, dim), keepdims=keepdim)), draw_one_dim_reduction),
    "max": Op(function("max"), extremum(np.max, np.argmax), draw_one_dim_reduction, kink=reduce_kink),
    "min": Op(function("min"), extremum(np.min, np.argmin), draw_one_dim_reduction, kink=reduce_kink),
    "argmax": Op(function("argmax"), arg_extremum(np.argmax), draw_one_dim_reduction, kink=reduce_kink),
    "argmin": Op(function("argmin"), arg_extremum(np.argmin), draw_one_dim_reduction, kink=reduce_kink),
    "softmax": Op(function("softmax"), softmax, draw_softmax),
    "log_softmax": Op(functional("log_softmax"), log_softmax, draw_softmax),
    "reshape": Op(method("reshape"), lambda x, shape: x.reshape(shape), draw_reshape, view=True),
    "view": Op(method("view"), lambda x, shape: x.reshape(shape), draw_reshape, view=True),
    "flatten": Op(function("flatten"), flatten, draw_flatten, view=True),
    "squeeze": Op(method("squeeze"), squeeze, draw_squeeze, view=True),
    "unsqueeze": Op(function("unsqueeze"), lambda x, dim: np.expand_dims(x, dim % (x.ndim + 1)), draw_unsqueeze,
                    view=True),
    "transpose": Op(function("transpose"), lambda x, a, b: np.swapaxes(x, a, b) if x.ndim else x, draw_transpose,
                    view=True),
    "permute": Op(method("permute"), lambda x, *order: np.transpose(x, [k % x.ndim for k in order]) if x.ndim else x,
                  draw_permute, view=True),
    "t": Op(method("t"), t, draw_matrix_transpose, view=True),
    "expand": Op(method("expand"), expand, draw_expand, view=True),
    "cat": Op(function("cat"), cat, draw_cat),
    "stack": Op(function("stack"), stack, draw_stack),
    "getitem": Op(operator_call(operator.getitem), getitem, draw_getitem, view=True),
    "gather": Op(operator_call(operator.getitem), lambda x, index: np.array(x[index]), draw_index_by_register,
                 view=True),
    "dot": Op(function("dot"), np.dot, draw_matmul("dot")),
    "mm": Op(function("mm"), np.matmul, draw_matmul("mm")),
    "matmul": Op(operator_call(operator.matmul), np.matmul, draw_matmul("matmul")),
    "outer": Op(function("outer"), np.outer, draw_matmul("outer")),
    "linear": Op(functional("linear"), linear, draw_linear),
    "mse_loss": Op(functional("mse_loss"), mse_loss, draw_mse),
    "cross_entropy": Op(functional("cross_entropy"), cross_entropy, draw_cross_entropy),
    "add_": Op(method("add_"), np.add, draw_inplace("any"), inplace=True),
    "sub_": Op(method("sub_"), np.subtract, draw_inplace("any"), inplace=True),
    "mul_": Op(method("mul_"), np.multiply, draw_inplace("any"), inplace=True),
    "div_": Op(method("div_"), divide, draw_inplace("divisor"), inplace=True, kink=lambda a, b: abs_min(b)),
    "iadd": Op(operator_call(operator.iadd), np.add, draw_inplace("any"), inplace=True),
    "zero_": Op(method("zero_"), np.zeros_like, draw_inplace("none"), inplace=True),
    "fill_": Op(method("fill_"), lambda x, v: np.full_like(x, v), draw_inplace("fill"), inplace=True),
    "copy_": Op(method("copy_"), lambda x, src: np.broadcast_to(src, x.shape).astype(x.dtype), draw_inplace("copy"),
                inplace=True),
    "clamp_": Op(method("clamp_"), clamp, draw_inplace("clamp"), inplace=True,
                 kink=clamp_kink),
    "float": Op(method("float"), lambda x: x.astype(np.float64), draw_convert, view=True),
    "double": Op(method("double"), lambda x: x.astype(np.float64), draw_convert, view=True),
    "long": Op(method("long"), to_long, draw_convert, view=True,
               kink=lambda x: abs_min(np.asarray(x, np.float64) - np.round(x))),
    "to": Op(method("to"), lambda x, dtype: to_long(x) if dtype == "int64" else x.astype(np.float64), draw_to,
             view=True, kink=lambda x, dtype: abs_min(np.asarray(x, np.float64) - np.round(x))
             if dtype == "int64" else math.inf),
    # The tape does not differentiate through detach: central differences hold its result fixed.
    "detach": Op(method("detach"), lambda x: x.copy(), draw_convert, view=True),
})


# ---------------------------------------------------------------- inputs and arguments

def input_values(program):
    """The inputs' values as numpy arrays of their dtypes, drawn from the program's seed."""
    rng = np.random.default_rng(program["seed"])
    values = []
    for spec in program["inputs"]:
        shape = tuple(spec["shape"])
        if spec["dtype"] == "int64":
            values.append(rng.integers(-3, 4, shape).astype(np.int64))
        elif spec["dtype"] == "bool":
            values.append(rng.random(shape) < 0.5)
        elif spec.get("positive"):
            values.append(rng.uniform(0.5, 2.0, shape).astype(spec["dtype"]))
        else:
            values.append(rng.standard_normal(shape).astype(spec["dtype"]))
    return values


def make_leaves(lib, program, values):
    return [lib.tensor(v, dtype=getattr(lib, spec["dtype"]), requires_grad=bool(spec.get("requires_grad")))
            for spec, v in zip(program["inputs"], values)]


def resolve(value, regs, lib):
    """A step's argument with register references replaced: by tensors of `lib`, or (lib=None)
    by numpy arrays."""
    if isinstance(value, list):
        return [resolve(v, regs, lib) for v in value]
    if value == "...":
        return Ellipsis
    if not isinstance(value, dict):
        return value
    if "reg" in value:
        return regs[value["reg"]]
    if "tuple" in value:
        return tuple(resolve(v, regs, lib) for v in value["tuple"])
    if "slice" in value:
        return slice(*value["slice"])
    if "hook" in value:
        return value
    if "scalar" in value:
        if lib is None and value["kind"] == "np.bool_":
            # torch takes a numpy bool as a float number (a bool tensor + np.bool_(True) is
            # float32 2.0, as in tapegrad), where numpy's bool + bool is True
            return float(value["scalar"])
        return SCALAR_KINDS[value["kind"]][1](value["scalar"])
    if "tensor" in value:
        if lib is None:
            return np.asarray(value["tensor"], dtype=value["dtype"])
        return lib.tensor(value["tensor"], dtype=getattr(lib, value["dtype"]))
    raise ValueError(f"unknown argument {value!r}")


def resolve_step(step, regs, lib):
    args = [resolve(a, regs, lib) for a in step["args"]]
    kwargs = {k: resolve(v, regs, lib) for k, v in step["kwargs"].items()}
    if step["op"] == "to" and lib is not None:
        args[1] = getattr(lib, args[1])
    return args, kwargs


def oracle_args(step, arrays):
    """Arguments for numpy: index lists stay lists; dims lists become tuples."""
    args, kwargs = resolve_step(step, arrays, None)
    if "dim" in kwargs and isinstance(kwargs["dim"], list):
        kwargs["dim"] = tuple(kwargs["dim"])
    if step["op"] in ("reshape", "view") and len(args) == 2:
        args[1] = tuple(args[1])
    return args, kwargs


def dtype_name(tensor):
    return str(tensor.dtype).rsplit(".", 1)[-1]


def as_array(tensor):
    """A tensor's values as numpy: float64 for floats, int64, bool."""
    array = np.array(tensor.detach().numpy(), copy=True)
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def outputs_of(result):
    return list(result) if isinstance(result, tuple) else [result]


def attempt(call):
    try:
        return call(), None
    except Exception as error:  # noqa: BLE001 - which exception is what we compare
        return None, error


def builtin_class(error):
    """The builtin exception class a user catches: torch's IndexError, TypeError, ...; torch's
    NotImplementedError for an unsupported dtype is caught as the RuntimeError it derives from."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return RuntimeError if cls is NotImplementedError else cls
    return Exception


def same_error_class(tg_error, torch_error):
    """tapegrad raises torch's class; or, as the API contract says, TypeError for a dtype the
    op does not take, where torch raises RuntimeError."""
    expected = builtin_class(torch_error)
    if isinstance(tg_error, expected):
        return True
    about_dtype = re.search(r"dtype|not implemented for|floating point|bool tensor", str(torch_error))
    return expected is RuntimeError and isinstance(tg_error, TypeError) and about_dtype is not None


def tensor_args(step, regs):
    """The registers a step reads, in order (lists of tensors flattened)."""
    found = []
    for value in [*step["args"], *step["kwargs"].values()]:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "reg" in item:
                found.append(regs[item["reg"]])
    return found


# Where tapegrad knowingly differs from torch; the strategy draws no such step. Each entry:
# (what differs, predicate over the step and the Reg of each register).
KNOWN_DIFFERENCES = [
    ("pow with a bool tensor as the exponent: torch's backward computes exponent - 1 in bool and raises "
     "RuntimeError; tapegrad differentiates",
     lambda step, regs: step["op"] == "pow" and isinstance(step["args"][1], dict) and "reg" in step["args"][1] and
     regs[step["args"][1]["reg"]].dtype == "bool"),
    ("view of a tensor that torch holds transposed: tapegrad's tensors are contiguous, so view works as reshape",
     lambda step, regs: step["op"] == "view" and not tensor_args(step, regs)[0].contiguous),
    ("linear of an input (not 2-D) or a bias that torch holds transposed: torch adds the bias after matmul where, "
     "for contiguous tensors, it runs addmm, whose rules tapegrad follows (its tensors are contiguous): addmm "
     "refuses a bias of another dtype and a 1-D weight, and adds the bias to each of the input's rows",
     lambda step, regs: step["op"] == "linear" and len(tensor_args(step, regs)) == 3 and
     tensor_args(step, regs)[0].ndim != 2 and linear_takes_addmm(*tensor_args(step, regs)[::2]) and
     not all(r.contiguous for r in tensor_args(step, regs)[::2])),
    ("dot, mm, matmul, outer and linear of int or bool tensors: tapegrad's dtypes are not torch's",
     lambda step, regs: step["op"] in ("dot", "mm", "matmul", "outer", "linear") and
     not all(r.is_float() for r in tensor_args(step, regs))),
    ("matmul of float tensors of two dtypes when one is empty: torch's batched path may return an empty "
     "result unchecked (for shapes (1, 1, 1, 1) and (0, 1, 1, 1), not for (0, 2, 2) and (2, 2)); tapegrad "
     "always raises, as torch does for tensors with elements",
     lambda step, regs: step["op"] == "matmul" and len({r.dtype for r in tensor_args(step, regs)}) == 2 and
     any(r.values.size == 0 for r in tensor_args(step, regs))),
    ("an index with two ellipses: torch takes it (x[..., 0, ...] of a (2, 3) tensor is (2,)); tapegrad raises "
     "IndexError, as numpy does",
     lambda step, regs: step["op"] == "getitem" and isinstance(step["args"][1], dict) and
     step["args"][1].get("tuple", []).count("...") > 1),
    ("norm over more than two dims: tapegrad takes the 2-norm over them, as torch.linalg.vector_norm and "
     "torch.norm(p=2) do; torch.norm's default p='fro' raises for other than two",
     lambda step, regs: step["op"] == "norm" and isinstance(step["kwargs"].get("dim"), list) and
     len(step["kwargs"]["dim"]) > 2),
    ("cat with a 1-D empty tensor: torch's legacy rule skips it whatever the dim; tapegrad checks the dim",
     lambda step, regs: step["op"] == "cat" and any(r.shape == (0,) for r in tensor_args(step, regs))),
    ("cross_entropy takes (N, C) or (C,) logits; torch also takes (N, C, d1, ...)",
     lambda step, regs: step["op"] == "cross_entropy" and tensor_args(step, regs)[0].ndim not in (1, 2)),
    ("a float-only op on an empty int or bool tensor: torch returns it (no kernel runs), tapegrad raises TypeError",
     lambda step, regs: step["op"] in ("softmax", "log_softmax", "mean", "var", "std", "norm", "logsumexp") and
     not tensor_args(step, regs)[0].is_float() and tensor_args(step, regs)[0].values.size == 0),
    ("a result of more than 8 dims: tapegrad's limit (README, Known limits); torch's is 64",
     lambda step, regs: step["op"] in ("gather", "unsqueeze", "stack", "expand", "getitem") and
     result_ndim_bound(step, regs) > 8),
    ("a Python bool as the base of **: torch's backward fails an internal assert (\"unknown ivalue tag 4\" in "
     "c10/core/Scalar.cpp); tapegrad's gradient is 0, as torch's is for np.bool_",
     lambda step, regs: step["op"] == "pow" and scalar_kinds(step)[0] == "bool"),
    ("a 0-d numpy array as an operand where torch's own conversions differ (tests/test_scalar_operands.py "
     "lists them): torch computes `np.array(x) / t` through t.reciprocal(), compares `t == np.array(x)` "
     "elementwise but `!=` by identity, gives uint8 or int8 for a bool tensor with a 0-d bool array, and refuses "
     "the array in fill_; tapegrad raises TypeError for an array on the left as for `+ - * **`, answers == and "
     "!= alike, has no uint8 or int8, and fills with the array's value",
     lambda step, regs: step["op"] in ("div", "eq", "ne", "fill_") and
     any(kind and kind.startswith("0-d") for kind in scalar_kinds(step)) or
     any(kind == "0-d bool" for kind in scalar_kinds(step)) and any(r.dtype == "bool" for r in tensor_args(step, regs))),
    ("an in-place op with a 0-d numpy array: neither library writes in place (their in-place slots decline the "
     "array and numpy makes a new tensor of `t + a`), which the program's model of in-place steps does not follow",
     lambda step, regs: step["op"] in OPS and OPS[step["op"]].inplace and
     any(kind and kind.startswith("0-d") for kind in scalar_kinds(step))),
    ("a view under no_grad of a tensor requiring grad: torch's result is a view that requires grad (torch marks "
     "it made in no_grad mode); tapegrad's ops under no_grad record nothing, and their results do not require grad",
     lambda step, regs: step.get("no_grad") and step["op"] in OPS and OPS[step["op"]].view and step["op"] != "detach"
     and any(r.requires_grad for r in tensor_args(step, regs))),
]


def result_ndim_bound(step, regs):
    """At least as many dims as the step's result has, for the ops that add dims."""
    tensors = tensor_args(step, regs)
    if step["op"] == "gather":
        return tensors[0].ndim - 1 + tensors[1].ndim
    if step["op"] == "expand":
        return len(step["args"]) - 1
    if step["op"] == "getitem":
        index = step["args"][1]
        parts = index.get("tuple", []) if isinstance(index, dict) else [index]
        return tensors[0].ndim + sum(part is None for part in parts) + sum(
            len(np.shape(part.get("tensor"))) for part in parts if isinstance(part, dict) and "tensor" in part)
    return tensors[0].ndim + 1


def scalar_kind(value):
    """The SCALAR_KINDS name of a step's argument, or None when it is not a scalar."""
    if isinstance(value, dict):
        return value.get("kind") if "scalar" in value else None
    return type(value).__name__ if isinstance(value, (bool, int, float)) else None


def scalar_kinds(step):
    """The kinds of the scalars among a step's arguments, in order, None for the others."""
    return [scalar_kind(value) for value in step["args"]]


# Bugs the fuzzer found in code being rewritten elsewhere, left to its owners; the strategy
# draws no such step until the entry is removed with the fix.
OPEN_BUGS = [
    ("the order in which a hook's side effects land: torch runs a leaf's AccumulateGrad, and the leaf's hooks, as "
     "soon as its gradient is complete (its sequence number is the largest), tapegrad runs every AccumulateGrad "
     "after the op nodes; so a hook that registers a hook on another tensor, or sets another leaf's .grad, can "
     "find that tensor's turn already passed in one library and still to come in the other",
     lambda step, regs: step["op"] == "register_hook" and step["args"][1]["hook"] in ("register", "set_grad") and
     step["args"][1].get("target") != step["args"][0]["reg"]),
    ("autograd.grad runs every node behind its outputs, not only those that lead to its inputs: it raises for a "
     "saved tensor freed by an earlier backward or changed in place off that path, and runs hooks off it; torch "
     "does neither (x, w leaves, w.register_hook(h), autograd.grad((x * w).sum(), [x]) calls h in tapegrad alone)",
     lambda step, regs: step["op"] == "autograd.grad" and any(
         op in ("backward", "register_hook") or op in OPS and OPS[op].inplace for op in step["kwargs"]["after"])),
    ("autograd.grad leaves the .grad of a register that retains its grad alone; torch fills it (y = x * 2; "
     "y.retain_grad(); autograd.grad((y * y).sum(), [x]) sets y.grad in torch, not in tapegrad)",
     lambda step, regs: step["op"] == "autograd.grad" and "retain_grad" in step["kwargs"]["after"]),
]


def known_difference(step, regs, open_bugs=None):
    """What excludes the step, or None; `open_bugs` (default OPEN_BUGS) lists the bugs excluded."""
    excluded = KNOWN_DIFFERENCES + (OPEN_BUGS if open_bugs is None else open_bugs)
    return next((what for what, applies in excluded if applies(step, regs)), None)


def describe(step):
    return json.dumps(step)


# ---------------------------------------------------------------- actions

class Session:
    """One library's run of a program: its registers, what each hook saw (by hook id, in the
    order it fired: values and dtype), and the numpy arrays that escaped from its tensors and
    gradients."""

    def __init__(self, lib, regs):
        self.lib, self.regs = lib, regs
        self.hook_calls = {}
        self.escapes = []
        self.escaped_from = []  # "tensor" or "grad", one per escaped array


def escaped_array(session, tensor, how):
    """A numpy array sharing `tensor`'s memory. torch's numpy() refuses a tensor requiring grad and
    torch has no buffer protocol, so its escape is always detach().numpy(); tapegrad's goes
    through __array__ or through a memoryview, as asked."""
    if session.lib.__name__ == "torch":
        return tensor.detach().numpy()
    if tensor.requires_grad:  # refused, as torch's numpy() refuses it
        tensor = tensor.detach()
    return np.asarray(tensor) if how == "asarray" else np.asarray(memoryview(tensor))


def make_hook(session, spec):
    """The hook of a register_hook step: records each gradient it is given, then per spec["hook"]:
    'observe' returns None, 'scale' returns the gradient times spec["factor"], 'register' registers
    an observing hook on register spec["target"], 'set_grad' sets register spec["target"]'s .grad
    to a new tensor of spec["value"]."""
    lib, kind = session.lib, spec["hook"]

    def hook(grad):
        session.hook_calls.setdefault(spec["id"], []).append((as_array(grad), dtype_name(grad)))
        if kind == "scale":
            return grad * spec["factor"]
        if kind == "register":
            inner = {"hook": "observe", "id": f"{spec['id']}/{len(session.hook_calls[spec['id']])}"}
            session.regs[spec["target"]].register_hook(make_hook(session, inner))
        if kind == "set_grad":
            target = session.regs[spec["target"]]
            target.grad = lib.full(tuple(target.shape), spec["value"], dtype=target.dtype)
        return None
    return hook


def run_register_hook(session, tensor, spec):
    tensor.register_hook(make_hook(session, spec))


def run_retain_grad(session, tensor):
    tensor.retain_grad()


def run_backward(session, root, weight_seed, retain_graph):
    weights = np.random.default_rng(weight_seed).standard_normal(tuple(root.shape))
    root.backward(session.lib.tensor(weights, dtype=root.dtype), retain_graph=retain_graph)


def run_zero_grad(session, tensor):
    grad = tensor.grad
    if grad is None:
        raise AttributeError("the register has no .grad to zero")
    grad.zero_()


def run_escape(session, tensor, of, how):
    tensor = tensor.grad if of == "grad" else tensor
    if tensor is None:
        raise AttributeError("the register has no .grad to take a view of")
    session.escapes.append(escaped_array(session, tensor, how))
    session.escaped_from.append(of)


def run_write_escape(session, which, value):
    session.escapes[which][...] = value


def grad_holders(torch_regs):
    """Leaves whose .grad torch holds."""
    return [i for i, t in enumerate(torch_regs) if t.requires_grad and t.is_leaf and t.grad is not None]


def draw_register_hook(d, torch_regs, escapes):
    index = d.pick(lambda r: r.requires_grad or d.bad())
    spec = {"hook": d.choice(HOOK_KINDS)}
    if spec["hook"] == "scale":
        spec["factor"] = d.choice([2.0, -0.5, 0.0, 3.0])
    if spec["hook"] in ("register", "set_grad"):
        leaves = [i for i, r in enumerate(d.regs) if r.requires_grad and (r.is_leaf or spec["hook"] == "register")]
        if not leaves:
            raise NotApplicable
        spec["target"] = d.choice(leaves)
        spec["value"] = d.choice([0.0, 1.5])
    return [{"reg": index}, spec], {}


def draw_retain_grad(d, torch_regs, escapes):
    return [d.ref(lambda r: r.requires_grad and not r.is_leaf or d.bad())], {}


def draw_backward(d, torch_regs, escapes):
    return [d.ref(lambda r: r.requires_grad and not r.is_leaf or d.bad())], {
        "weight_seed": d.integer(0, 2**16), "retain_graph": d.integer(0, 3) > 0}


def draw_zero_grad(d, torch_regs, escapes):
    holders = grad_holders(torch_regs)
    if not holders:
        raise NotApplicable
    return [{"reg": d.choice(holders)}], {}


def draw_escape(d, torch_regs, escapes):
    holders = grad_holders(torch_regs)
    of = d.choice(["grad", "tensor"]) if holders else "tensor"
    index = d.choice(holders) if of == "grad" else d.pick(lambda r: r.dtype in FLOATS)
    return [{"reg": index}], {"of": of, "how": d.choice(["asarray", "memoryview"])}


def draw_write_escape(d, torch_regs, escapes):
    groups = [r.group for r in d.regs]
    # Only through an array of a .grad or of a register that shares memory with no other one:
    # tapegrad's views (transpose, slices) copy, so a write through their base shows in torch's alone.
    writable = [k for k, reg in enumerate(d.escaped_regs) if reg is None or groups.count(d.regs[reg].group) == 1]
    if not writable:
        raise NotApplicable
    return [d.choice(writable), d.choice([1.5, -2.0, 0.0])], {}


@dataclass
class Action:
    """A step that returns nothing and reaches into autograd's state: its errors are compared with
    torch's as an op's are; what it changes is compared at the end (hooks, retained .grad) or
    after every step (escaped arrays)."""
    run: Callable        # (Session, *args, **kwargs), with registers resolved to the session's tensors
    draw_args: Callable  # (Drawer, torch's registers, torch's escaped arrays) -> (args, kwargs)
    # Central differences of the program no longer give the gradients once the action succeeded.
    spoils_differences: Callable = lambda step: False


ACTIONS = {
    "register_hook": Action(run_register_hook, draw_register_hook,
                            spoils_differences=lambda step: step["args"][1]["hook"] != "observe"),
    "retain_grad": Action(run_retain_grad, draw_retain_grad),
    "backward": Action(run_backward, draw_backward, spoils_differences=lambda step: True),
    "zero_grad": Action(run_zero_grad, draw_zero_grad),
    "escape": Action(run_escape, draw_escape),
    "write_escape": Action(run_write_escape, draw_write_escape, spoils_differences=lambda step: True),
}
HOOK_KINDS = ("observe", "scale", "register", "set_grad")
# Fractions of the steps a program draws: actions rather than ops, and ops run under no_grad.
ACTION_SHARE = 0.2
NO_GRAD_SHARE = 0.1
FINALS = ("backward", "backward twice", "grad")


def run_step(step, session, resolved):
    """Runs one step for one library: an action (returns None), or an op, under no_grad when the
    step says so; returns (result, error)."""
    args, kwargs = resolved
    if step["op"] in ACTIONS:
        return attempt(lambda: ACTIONS[step["op"]].run(session, *args, **kwargs))
    op = OPS[step["op"]]
    if step.get("no_grad"):
        with session.lib.no_grad():
            return attempt(lambda: op.call(session.lib, *args, **kwargs))
    return attempt(lambda: op.call(session.lib, *args, **kwargs))


# ---------------------------------------------------------------- the strategy

def draw_shapes(d, grad_mode):
    """Inputs' specs: the first of one base shape of up to 5 dims (0-d one time in eight), grown
    towards `cap` elements (8 to 4096), the others suffixes of it, some dims set to 1 so that
    they broadcast; one base in ten has a 0 dim."""
    cap = d.choice([8, 64, 512, 4096])
    base = [d.choice([1, 2, 3, 4, 5, 6, 8]) for _ in range(d.choice([0, 1, 2, 2, 3, 3, 4, 5]))]
    growing = [k for k, n in enumerate(base) if n > 1]
    while growing and math.prod(base) * 2 <= cap:
        base[d.choice(growing)] *= 2
    while math.prod(base) > cap:
        largest = base.index(max(base))
        base[largest] //= 2
    if base and d.integer(0, 9) == 0:
        base[d.integer(0, len(base) - 1)] = 0
    inputs = []
    for k in range(d.integer(1, 4)):
        cut = 0 if k == 0 else d.integer(0, len(base))
        shape = [1 if d.integer(0, 3) == 0 else n for n in base[cut:]]
        dtype = d.choice(["float64", "float64", "int64"] if grad_mode == "float64 with grad"
                         else ["float32", "float64", "int64", "bool"])
        spec = {"shape": shape, "dtype": dtype}
        if dtype in FLOATS:
            spec["requires_grad"] = grad_mode == "float64 with grad" or d.coin()
            spec["positive"] = d.coin()
        inputs.append(spec)
    return inputs


def draw_program(seed, max_steps=8, open_bugs=None):
    """One program, drawn from `seed` (an int or a list of ints) by a numpy generator; torch runs
    each step as it is drawn, so later steps know the shapes, dtypes and values they draw
    arguments for. Steps that known_difference() excludes are not drawn."""
    import torch

    rng = np.random.default_rng(seed)
    d = Drawer(rng, [])
    grad_mode = d.choice(["float64 with grad", "any dtype"])
    program = {"seed": d.integer(0, 2**16), "inputs": draw_shapes(d, grad_mode), "steps": []}
    values = input_values(program)
    session = Session(torch, make_leaves(torch, program, values))
    regs = [Reg(tuple(v.shape), spec["dtype"], v, bool(spec.get("requires_grad")), True, i)
            for i, (spec, v) in enumerate(zip(program["inputs"], values))]
    names, actions = sorted(OPS), sorted(ACTIONS)
    follow_ups = []  # steps drawn next: a zero_ of what an escaped array shares, a write through it
    escaped_regs = []  # Drawer.escaped_regs
    for _ in range(d.integer(1, max_steps)):
        step = None
        while follow_ups and step is None:
            step = follow_ups.pop(0)
            if known_difference(step, regs, open_bugs) is not None:
                step = None
        for attempt in range(0 if step is not None else 6):
            drawer = Drawer(rng, regs, escaped_regs)
            if attempt % 3 == 0:  # an op that found no arguments gets two more tries: a rare fit is still drawn
                name = d.choice(actions) if rng.random() < ACTION_SHARE else d.choice(names)
            try:
                if name in ACTIONS:
                    args, kwargs = ACTIONS[name].draw_args(drawer, session.regs, session.escapes)
                else:
                    args, kwargs = OPS[name].draw_args(drawer)
            except NotApplicable:
                continue
            step = {"op": name, "args": args, "kwargs": kwargs}
            # Not a conversion: to the tensor's own dtype it returns the tensor itself, graph and all, which
            # central differences would hold fixed as a result made under no_grad.
            if name in OPS and name not in ("float", "double", "long", "to") and rng.random() < NO_GRAD_SHARE:
                step["no_grad"] = True
            if known_difference(step, regs, open_bugs) is None:
                break
            step = None
        if step is None:
            continue
        if step["op"] == "register_hook":
            step["args"][1]["id"] = str(len(program["steps"]))
        program["steps"].append(step)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, error = run_step(step, session, resolve_step(step, session.regs, torch))
        if error is not None:
            continue
        if step["op"] not in ACTIONS and not all(isinstance(out, torch.Tensor) for out in outputs_of(result)):
            program["steps"].pop()  # torch's answer is no tensor (== of a 0-d array is a bool): nothing to check
            continue
        if step["op"] == "escape":
            index, of = step["args"][0]["reg"], step["kwargs"]["of"]
            regs[index].escaped += (of,)
            escaped_regs.append(None if of == "grad" else index)
            # zero_ of a register that shares memory with no other: tapegrad's views differ from torch's.
            if d.coin() and (of == "grad" or [r.group for r in regs].count(regs[index].group) == 1):
                follow_ups.append({"op": "zero_grad", "args": [{"reg": index}], "kwargs": {}} if of == "grad" else
                                  {"op": "zero_", "args": [{"reg": index}], "kwargs": {}, "no_grad": True})
                if d.coin():
                    follow_ups.append({"op": "write_escape", "args": [len(session.escapes) - 1, d.choice([1.5, -2.0])],
                                       "kwargs": {}})
        holders = grad_holders(session.regs) if step["op"] == "backward" else []
        if holders and d.coin():  # then a view of a .grad, or a zero_grad() before the next backward
            follow_ups.append({"op": "escape", "args": [{"reg": d.choice(holders)}],
                               "kwargs": {"of": "grad", "how": d.choice(["asarray", "memoryview"])}})
        elif holders:
            follow_ups.append({"op": "zero_grad", "args": [{"reg": d.choice(holders)}], "kwargs": {}})
        if step["op"] in ACTIONS:
            for i, tensor in enumerate(session.regs):  # a backward or a hook may have changed values
                regs[i].values = as_array(tensor)
            continue
        if OPS[step["op"]].inplace:
            target = step["args"][0]["reg"]
            regs[target].values = as_array(session.regs[target])
            regs[target].requires_grad = session.regs[target].requires_grad  # `i *= x` may make it require grad
            continue
        first = step["args"][0] if step["args"] else None
        group_of_first = regs[first["reg"]].group if isinstance(first, dict) and "reg" in first else None
        for out in outputs_of(result):
            session.regs.append(out)
            regs.append(Reg(tuple(out.shape), dtype_name(out), as_array(out), out.requires_grad, out.is_leaf,
                            group_of_first if OPS[step["op"]].view and group_of_first is not None else len(regs),
                            out.is_contiguous()))
    program["final"] = d.choice(FINALS)
    if program["final"] == "grad":
        candidates = [i for i, r in enumerate(regs) if r.requires_grad]
        program["grad_inputs"] = sorted({d.choice(candidates) for _ in range(d.integer(1, 3))}) if candidates else []
        as_step = {"op": "autograd.grad", "args": [{"reg": i} for i in program["grad_inputs"]],
                   "kwargs": {"after": sorted({step["op"] for step in program["steps"]})}}
        if known_difference(as_step, regs, open_bugs) is not None:
            program["final"] = d.choice([final for final in FINALS if final != "grad"])
            del program["grad_inputs"]
    return program


# ---------------------------------------------------------------- the checker

class Mismatch(AssertionError):
    pass


def close(where, actual, expected, dtype, scale, tolerance=1.0, torch_values=None):
    """`actual` as numpy's `expected`, converted to `dtype`. Where one of them is not finite, as
    `torch_values` too will do: an op computed in float32 overflows (or not) by the order of its
    operations (a float32 prod is inf in torch and tapegrad where numpy's product is 1e25)."""
    if dtype not in FLOATS:
        if actual.shape != expected.shape or not np.array_equal(actual, expected.astype(actual.dtype)):
            raise Mismatch(f"{where}: values differ from numpy's\n tapegrad {actual!r}\n numpy {expected!r}")
        return
    with np.errstate(all="ignore"):
        expected = np.asarray(expected, dtype=np.float64).astype(dtype).astype(np.float64)
    if torch_values is not None and actual.shape == expected.shape == torch_values.shape:
        as_torch = (~np.isfinite(actual) | ~np.isfinite(expected)) & (
            (actual == torch_values) | np.isnan(actual) & np.isnan(torch_values))
        expected = np.where(as_torch, actual, expected)
    rtol, atol = VALUE_TOLERANCE[dtype]
    try:
        np.testing.assert_allclose(actual, expected, rtol=rtol * tolerance, atol=atol * scale * tolerance)
    except AssertionError as error:
        raise Mismatch(f"{where}: values differ from numpy's{error}") from None


def magnitude(arrays):
    finite = [np.abs(a[np.isfinite(a)]).max() for a in arrays
              if isinstance(a, np.ndarray) and a.dtype.kind == "f" and np.isfinite(a).any()]
    return max([1.0, *finite])


def array_args(args, kwargs):
    flat = []
    for value in [*args, *kwargs.values()]:
        if isinstance(value, (list, tuple)):
            flat.extend(v for v in value if isinstance(v, np.ndarray))
        elif isinstance(value, np.ndarray):
            flat.append(value)
    return flat


def check_step(where, step, op, args, kwargs, tg_result, torch_result, requires_grad_expected=None):
    """One step's results: structure, shapes, dtypes, requires_grad as torch, values as numpy."""
    tg_outs, torch_outs = outputs_of(tg_result), outputs_of(torch_result)
    if not all(hasattr(out, "grad_fn") for out in tg_outs):
        raise Mismatch(f"{where}: tapegrad returns {type(tg_result).__name__} {tg_result!r}, torch a tensor")
    if len(tg_outs) != len(torch_outs) or isinstance(tg_result, tuple) != isinstance(torch_result, tuple):
        raise Mismatch(f"{where}: tapegrad returns {type(tg_result).__name__} of {len(tg_outs)}, "
                       f"torch {type(torch_result).__name__} of {len(torch_outs)}")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, error = attempt(lambda: op.oracle(*args, **kwargs))
    if error is not None and all(out.numel() == 0 for out in torch_outs):
        # torch checks no index against an empty selection (x[0:0, [5]]); numpy does
        expected = tuple(np.zeros(tuple(out.shape)) for out in torch_outs)
    elif error is not None:
        raise Mismatch(f"{where}: the numpy oracle failed where torch did not (a fuzzer bug): {error!r}")
    expected = outputs_of(expected)
    inputs = array_args(args, kwargs)
    work = max(1.0, sum(a.size for a in inputs) / max(1, max(np.asarray(e).size for e in expected)))
    for k, (mine, theirs, wanted) in enumerate(zip(tg_outs, torch_outs, expected)):
        label = f"{where}, output {k}"
        if tuple(mine.shape) != tuple(theirs.shape):
            raise Mismatch(f"{label}: shape {tuple(mine.shape)}, torch gives {tuple(theirs.shape)}")
        if dtype_name(mine) != dtype_name(theirs):
            raise Mismatch(f"{label}: dtype {dtype_name(mine)}, torch gives {dtype_name(theirs)}")
        if mine.requires_grad != theirs.requires_grad:
            raise Mismatch(f"{label}: requires_grad={mine.requires_grad}, torch gives {theirs.requires_grad}")
        wanted = np.asarray(wanted)
        if wanted.shape != tuple(theirs.shape):
            raise Mismatch(f"{label}: the numpy oracle gives shape {wanted.shape}, torch {tuple(theirs.shape)} "
                           f"(a fuzzer bug)")
        close(label, as_array(mine), wanted, dtype_name(mine), magnitude(inputs + [wanted]) * work, op.tolerance,
              as_array(theirs))


def interpret(program, values, valid, frozen=None):
    """The whole program in numpy, float64, over the ops torch ran; returns the registers, the
    smallest distance of any argument from a kink (inf when none, None when an intermediate is
    not finite or exceeds BOUND), and the results of the steps the tape does not differentiate
    (detach, and ops under no_grad) by step index. With `frozen`, those steps' results are
    taken from it: central differences then hold them fixed, as the tape does."""
    regs = [v.astype(np.float64) if v.dtype.kind == "f" else v for v in values]
    margin = math.inf
    constants = {}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (step, ok) in enumerate(zip(program["steps"], valid)):
            if not ok or step["op"] in ACTIONS:
                continue
            op = OPS[step["op"]]
            constant = bool(step.get("no_grad")) or step["op"] == "detach"
            args, kwargs = oracle_args(step, regs)
            if constant and frozen is not None:
                outs = frozen[k]
            else:
                if op.kink is not None and not constant:
                    margin = min(margin, op.kink(*args, **kwargs))
                try:
                    outs = [np.asarray(o) for o in outputs_of(op.oracle(*args, **kwargs))]
                except IndexError:  # an empty selection that torch does not bounds-check
                    return regs, None, constants
                for out in outs:
                    bounded = out.size == 0 or np.all(np.isfinite(out)) and np.max(np.abs(out)) < BOUND
                    if out.dtype.kind == "f" and not bounded:
                        margin = None
                if margin is None:
                    return regs, None, constants
            if constant:
                constants[k] = outs
            if op.inplace:
                target = step["args"][0]["reg"]
                regs[target] = outs[0].astype(regs[target].dtype)
            else:
                regs.extend(outs)
    return regs, margin, constants


# Nodes that save a tensor torch's do not, so that changing it in place makes tapegrad's backward
# raise where torch's runs (which tensors an op saves is its own choice).
SAVES_MORE_THAN_TORCH = {
    "NllLossBackward0": "cross_entropy is one fused node that saves the logits; torch's log_softmax and nll_loss "
                        "save the log-probabilities",
    "DivBackward0": "a number divided by a tensor is one node that saves the tensor; torch records reciprocal "
                    "then mul, which save the reciprocal (a tensor divided by a tensor saves both in either)",
}


def saved_more_than_torch(tg_error, torch_error):
    return torch_error is None and tg_error is not None and "inplace operation" in str(tg_error) and any(
        f"saved by {node}" in str(tg_error) for node in SAVES_MORE_THAN_TORCH)


def compare_errors(where, tg_result, tg_error, torch_result, torch_error):
    """tapegrad raises iff torch raises, and the same builtin class."""
    if torch_error is not None:
        if tg_error is None:
            raise Mismatch(f"{where}: torch raises {type(torch_error).__name__}: {torch_error}\n"
                           f"but tapegrad returns {tg_result!r}")
        if not same_error_class(tg_error, torch_error):
            raise Mismatch(f"{where}: tapegrad raises {type(tg_error).__name__}: {tg_error}\n"
                           f"torch raises {builtin_class(torch_error).__name__}: {torch_error}")
    elif tg_error is not None:
        raise Mismatch(f"{where}: tapegrad raises {type(tg_error).__name__}: {tg_error}\n"
                       f"torch accepts it: {torch_result!r}")


def close_to_torch(where, mine, theirs, dtype, session=None):
    """Gradients (or what a hook saw) against torch's, nan equal to nan and inf to inf; at float32's
    tolerance when torch's `session` holds any float32 register (a float64 gradient may have
    passed through one)."""
    if session is not None and any(dtype_name(r) == "float32" for r in session.regs):
        dtype = "float32"
    mine, theirs = np.asarray(mine, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if mine.shape != theirs.shape:
        raise Mismatch(f"{where}: shape {mine.shape}, torch's {theirs.shape}")
    rtol, atol = TORCH_GRAD_TOLERANCE[dtype]
    try:
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol * magnitude([theirs]), equal_nan=True)
    except AssertionError as error:
        raise Mismatch(f"{where}: differs from torch's{error}") from None


def compare_escapes(where, mine, theirs):
    """Each escaped array shows what torch's shows: it still shares its tensor's memory."""
    for k, (a, b) in enumerate(zip(mine.escapes, theirs.escapes)):
        close_to_torch(f"{where}: escaped array {k} ({mine.escaped_from[k]})", a, b,
                       "float64" if b.dtype == np.float64 else "float32", theirs)


def compare_hooks(where, mine, theirs):
    """Every hook fired as often as torch's, seeing the same gradients."""
    for hook_id in sorted(set(mine.hook_calls) | set(theirs.hook_calls)):
        seen, expected = mine.hook_calls.get(hook_id, []), theirs.hook_calls.get(hook_id, [])
        if len(seen) != len(expected):
            raise Mismatch(f"{where}: the hook of step {hook_id} fired {len(seen)} times, torch's {len(expected)}")
        for call, ((a, _), (b, dtype)) in enumerate(zip(seen, expected)):
            close_to_torch(f"{where}: call {call} of the hook of step {hook_id}", a, b, dtype, theirs)


COMPARISONS = ("lt", "ge", "eq", "ne")


def compared_as_torch(np_args, torch_args):
    """A comparison's operands for numpy, rounded to the dtype torch compares them in: a float32
    tensor == a 0-d float64 tensor compares in float32 (0.1 == 0.1 is True in both libraries,
    where numpy's float64 comparison says False)."""
    import torch

    try:
        common = torch.result_type(*torch_args)
    except (TypeError, RuntimeError):
        return np_args
    if common != torch.float32:
        return np_args
    with np.errstate(all="ignore"):
        return [np.asarray(a).astype(np.float32).astype(np.float64) for a in np_args]


def std_of_equal_elements(step, input_values, torch_result):
    """Whether a recorded std step reduced a slice whose elements are all equal. std is not
    differentiable there: its gradient (x - mean) / ((n - 1) std) is 0 / 0, and torch's comes
    out 0 where its std is exactly 0 (along dims, by Welford's algorithm) but of order 1 where
    rounding leaves ~1e-16 (over the whole tensor, in two passes), as tapegrad's does for both
    (its two passes in double are exact for float32 alone)."""
    if step["op"] != "std" or step.get("no_grad") or not torch_result.requires_grad:
        return False
    stds = torch_result.detach().double().numpy()
    return bool(np.any(np.abs(stds) <= 1e-12 * magnitude([np.asarray(input_values, dtype=np.float64)])))


def check_program(program, trace=lambda text: None):
    """Runs one program with tapegrad, torch and numpy; raises Mismatch on a difference and
    returns counts of what it checked. `trace` is told each step before it runs."""
    import torch
    import tapegrad as tg

    values = input_values(program)
    mine, theirs = Session(tg, make_leaves(tg, program, values)), Session(torch, make_leaves(torch, program, values))
    valid = []
    stats = {"steps": 0, "invalid": 0, "actions": 0, "no_grad": 0, "grad_vs_torch": 0, "grad_vs_differences": 0}
    # Central differences stop giving the gradients once a hook scales one, a backward ran before
    # the last, or a leaf was changed under no_grad; torch's gradients stop being comparable once
    # an escaped array wrote into a tensor (tapegrad and torch may have saved different ones),
    # or once a std of equal elements is on the graph (std_of_equal_elements).
    spoiled, overwritten, at_std_kink = False, False, False
    for k, step in enumerate(program["steps"]):
        where = f"step {k} {describe(step)}"
        trace(where)
        action = ACTIONS.get(step["op"])
        if action is None:
            np_args, np_kwargs = oracle_args(step, [as_array(r) for r in mine.regs])
            if step["op"] in COMPARISONS:
                np_args = compared_as_torch(np_args, resolve_step(step, theirs.regs, torch)[0])
        tg_result, tg_error = run_step(step, mine, resolve_step(step, mine.regs, tg))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own deprecations
            torch_result, torch_error = run_step(step, theirs, resolve_step(step, theirs.regs, torch))
        stats["steps"] += 1
        valid.append(torch_error is None)
        stats["invalid"] += torch_error is not None
        if saved_more_than_torch(tg_error, torch_error):
            stats["saved_more_than_torch"] = 1  # the libraries' gradients part here: nothing more to compare
            return stats
        compare_errors(where, tg_result, tg_error, torch_result, torch_error)
        if torch_error is not None and step["op"] == "backward":
            return stats  # torch may have run hooks and filled .grads before it raised: the states part
        if torch_error is None and action is not None:
            stats["actions"] += 1
            spoiled = spoiled or action.spoils_differences(step)
            overwritten = overwritten or (step["op"] == "write_escape" and
                                          mine.escaped_from[step["args"][0]] == "tensor")
        elif torch_error is None:
            op = OPS[step["op"]]
            stats["no_grad"] += bool(step.get("no_grad"))
            check_step(where, step, op, np_args, np_kwargs, tg_result, torch_result)
            at_std_kink = at_std_kink or std_of_equal_elements(step, np_args[0], torch_result)
            if op.inplace:
                if tg_result is not tg_regs_of(mine, step):
                    raise Mismatch(f"{where}: an in-place op must return the tensor it wrote")
                spoiled = spoiled or bool(step.get("no_grad")) and tg_result.requires_grad
            else:
                mine.regs.extend(outputs_of(tg_result))
                theirs.regs.extend(outputs_of(torch_result))
        compare_escapes(where, mine, theirs)
    trace("backward")
    check_gradients(program, values, valid, mine, theirs, stats, spoiled, overwritten, at_std_kink)
    return stats


def tg_regs_of(session, step):
    return session.regs[step["args"][0]["reg"]]


def kept_grads(session):
    """Registers whose .grad a backward fills: leaves requiring grad, and retain_grad's."""
    return [i for i, r in enumerate(session.regs) if r.requires_grad and (r.is_leaf or r.retains_grad)]


def check_gradients(program, values, valid, mine, theirs, stats, spoiled, overwritten, at_std_kink=False):
    tg, torch = mine.lib, theirs.lib
    final = program.get("final", "backward")
    leaves = [i for i, spec in enumerate(program["inputs"]) if spec.get("requires_grad")]
    # Every register on the graph: results, and inputs that an in-place op put on it.
    outputs = [i for i, r in enumerate(theirs.regs) if r.requires_grad and not r.is_leaf]
    where = f"{final} of sum(register * weight) over registers {outputs}"
    if not leaves or not outputs:
        compare_hooks(where, mine, theirs)
        compare_with_torch(where, program, mine, theirs, None, None)
        return
    rng = np.random.default_rng(program["seed"] + 1)
    weights = [rng.standard_normal(tuple(theirs.regs[i].shape)) for i in outputs]
    for i in outputs:
        if not mine.regs[i].requires_grad:
            raise Mismatch(f"register {i} does not require grad; torch's does")
    if program["seed"] % 2:
        # As in a training step after zero_grad(): the gradients land on zeroed .grads, whose
        # zeros tapegrad writes lazily (the buffer underneath holds 1000s until then).
        for i in leaves:
            mine.regs[i].grad = tg.full(tuple(mine.regs[i].shape), 1000.0, dtype=mine.regs[i].dtype)
            mine.regs[i].grad.zero_()
            theirs.regs[i].grad = torch.zeros_like(theirs.regs[i])

    def run(session, retain_graph=None):
        lib = session.lib
        roots = [session.regs[i] for i in outputs]
        seeds = [lib.tensor(w, dtype=session.regs[i].dtype) for i, w in zip(outputs, weights)]
        if final == "grad":
            return lib.autograd.grad(roots, [session.regs[i] for i in program["grad_inputs"]], seeds,
                                     retain_graph=retain_graph)
        return lib.autograd.backward(roots, seeds, retain_graph=retain_graph)

    passes = [True, None] if final == "backward twice" else [None]
    tg_results = torch_results = None
    # Which tensors an op saves is its own choice: where torch saved a tensor that an in-place op
    # then changed and tapegrad did not need it, tapegrad's gradients are checked against central
    # differences alone.
    torch_saved_more = False
    for retain_graph in passes:
        tg_results, tg_error = attempt(lambda: run(mine, retain_graph))
        if torch_saved_more:
            compare_errors(where, tg_results, tg_error, None, None)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_results, torch_error = attempt(lambda: run(theirs, retain_graph))
        torch_saved_more = torch_error is not None and tg_error is None and "inplace operation" in str(torch_error)
        if torch_saved_more:
            continue
        if saved_more_than_torch(tg_error, torch_error):
            stats["saved_more_than_torch"] = 1
            return
        compare_errors(where, tg_results, tg_error, torch_results, torch_error)
        if torch_error is not None:  # torch may have run hooks and filled .grads before it raised
            return
    compare_escapes(where, mine, theirs)
    if at_std_kink:
        stats["std_of_equal_elements"] = 1
    elif not torch_saved_more and not overwritten:
        compare_hooks(where, mine, theirs)
        compare_with_torch(where, program, mine, theirs, tg_results, torch_results)
        stats["grad_vs_torch"] += 1
    if spoiled or overwritten or any(r.dtype == torch.float32 for r in theirs.regs):
        return
    base, margin, constants = interpret(program, values, valid)
    if margin is None or margin < KINK_MARGIN:
        return
    if final == "grad":
        checked = [(i, result) for i, result in zip(program["grad_inputs"], tg_results) if i in leaves]
    else:
        checked = [(i, mine.regs[i].grad) for i in leaves]
    compare_with_differences(where, program, values, valid, constants, outputs, weights, checked,
                             times=len(passes))
    stats["grad_vs_differences"] += 1


def compare_with_torch(where, program, mine, theirs, tg_results, torch_results):
    """The .grad of every leaf and retained register, or autograd.grad's results, as torch's."""
    if program.get("final") == "grad" and tg_results is not None:
        for i, a, b in zip(program["grad_inputs"], tg_results, torch_results):
            close_to_torch(f"{where}: autograd.grad's gradient of register {i}", as_array(a), b.double().numpy(),
                           dtype_name(b), theirs)
    kept, expected = kept_grads(mine), kept_grads(theirs)
    if kept != expected:
        raise Mismatch(f"{where}: .grad is kept for registers {kept}, torch keeps it for {expected}")
    for i in kept:
        a, b = mine.regs[i].grad, theirs.regs[i].grad
        if (a is None) != (b is None):
            raise Mismatch(f"{where}: register {i}'s grad is {'None' if a is None else 'set'}, torch's "
                           f"{'None' if b is None else 'set'}")
        if a is not None:
            close_to_torch(f"{where}: gradient of register {i}", as_array(a), b.double().numpy(), dtype_name(b),
                           theirs)


# Leaves of more elements than this are checked along random directions: one central difference
# each, where a full check takes two runs of the program per element.
FULL_DIFFERENCES_UP_TO = 32
DIRECTIONS = 3


def compare_with_differences(where, program, values, valid, constants, outputs, weights, checked, times=1):
    """Each (leaf, gradient) in `checked` against central differences of `times` the loss,
    with the results of detach and no_grad steps held at their values."""
    def loss_terms(point):
        regs, _, _ = interpret(program, point, valid, frozen=constants)
        return [regs[i] * w for i, w in zip(outputs, weights)]

    def loss(point):
        return times * sum(float(np.sum(term)) for term in loss_terms(point))

    scale = times * sum(float(np.sum(np.abs(term))) for term in loss_terms(values))
    for i, grad in checked:
        mine = np.zeros(values[i].shape) if grad is None else as_array(grad)
        if values[i].size > FULL_DIFFERENCES_UP_TO:
            rng = np.random.default_rng(program["seed"] + 2)
            for _ in range(DIRECTIONS):
                direction = rng.standard_normal(values[i].shape)
                point_up = [v.copy() for v in values]
                point_down = [v.copy() for v in values]
                point_up[i] = values[i] + DIFFERENCE_STEP * direction
                point_down[i] = values[i] - DIFFERENCE_STEP * direction
                numeric = (loss(point_up) - loss(point_down)) / (2 * DIFFERENCE_STEP)
                analytic = float(np.sum(mine * direction))
                rtol, atol = DIFFERENCE_GRAD_TOLERANCE
                bound = rtol * abs(numeric) + atol * np.linalg.norm(mine) * np.linalg.norm(direction) + 1e-9 * scale
                if not abs(analytic - numeric) <= bound:
                    raise Mismatch(f"{where}: gradient of input {i} along a random direction is {analytic!r}, "
                                   f"central differences give {numeric!r}")
            continue
        point = [v.copy() for v in values]
        flat = point[i].reshape(-1)
        numeric = np.zeros(flat.size)
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + DIFFERENCE_STEP
            above = loss(point)
            flat[j] = original - DIFFERENCE_STEP
            below = loss(point)
            flat[j] = original
            numeric[j] = (above - below) / (2 * DIFFERENCE_STEP)
        numeric = numeric.reshape(values[i].shape)
        rtol, atol = DIFFERENCE_GRAD_TOLERANCE
        try:  # as along a direction, with room for the rounding of a loss of large terms
            np.testing.assert_allclose(mine, numeric, rtol=rtol, atol=atol * magnitude([numeric]) + 1e-9 * scale)
        except AssertionError as error:
            raise Mismatch(f"{where}: gradient of input {i} differs from central differences{error}") from None


# ---------------------------------------------------------------- the worker

def serve():
    """Reads one program per line on stdin, answers one JSON line per program on the
    original stdout; everything else anything prints goes to stderr, where each step is
    named before it runs (so a crash's report ends with the step that crashed)."""
    import faulthandler

    faulthandler.enable()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    warnings.simplefilter("ignore")
    import tapegrad  # noqa: F401 - imported before the first program, so its time is not a program's
    import torch  # noqa: F401
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        program = json.loads(line)
        try:
            reply = {"ok": True, "stats": check_program(program, trace=lambda text: print(text, file=sys.stderr))}
        except Mismatch as error:
            reply = {"ok": False, "message": str(error)}
        except Exception:  # noqa: BLE001 - a fuzzer bug; reported with its traceback
            reply = {"ok": False, "message": "the checker itself failed:\n" + traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
