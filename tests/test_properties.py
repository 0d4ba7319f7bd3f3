"""Property-based tests: hypothesis draws broadcast-compatible shapes and random
compositions of ops; values are checked against numpy and gradients against central
differences in float64 (the same oracle as every op test)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from gradcheck import check_op

# (tapegrad, numpy, input domain) for the binary ops; the domain keeps divisors and bases valid.
BINARY = {
    "add": (lambda a, b: a + b, np.add, ("real", "real")),
    "sub": (lambda a, b: a - b, np.subtract, ("real", "real")),
    "mul": (lambda a, b: a * b, np.multiply, ("real", "real")),
    "div": (lambda a, b: a / b, np.divide, ("real", "nonzero")),
    "pow": (lambda a, b: a ** b, np.power, ("positive", "real")),
    "maximum": (tg.maximum, np.maximum, ("real", "real")),
}

# Unary steps of a random composition, each defined on all reals (or made so).
UNARY = {
    "tanh": (tg.tanh, np.tanh),
    "sigmoid": (tg.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "sin": (tg.sin, np.sin),
    "square": (lambda x: x * x, np.square),
    "exp_of_tanh": (lambda x: tg.exp(tg.tanh(x)), lambda x: np.exp(np.tanh(x))),
    "neg": (lambda x: -x, np.negative),
    "scale": (lambda x: 0.5 * x + 1.0, lambda x: 0.5 * x + 1.0),
}


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: a common shape, with dims dropped from the front of either
    and sizes replaced by 1 at random."""
    base = draw(st.lists(st.integers(0, 3), min_size=0, max_size=4))

    def variant():
        cut = draw(st.integers(0, len(base)))
        return tuple(1 if draw(st.booleans()) else size for size in base[cut:])

    return variant(), variant()


@settings(max_examples=60, deadline=None)
@given(shapes=broadcast_pair(), op=st.sampled_from(sorted(BINARY)), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_binary_ops_on_random_broadcast_shapes(shapes, op, dtype, seed):
    fn_tg, fn_np, domains = BINARY[op]
    check_op(fn_tg, fn_np, list(shapes), dtype, domains=domains, seed=seed, name=op)


@settings(max_examples=40, deadline=None)
@given(shapes=broadcast_pair(), steps=st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=4),
       combine=st.sampled_from(["add", "mul", "sub"]), reduce=st.booleans(), seed=st.integers(0, 2**16))
def test_random_compositions(shapes, steps, combine, reduce, seed):
    """f(a, b) = [sum of] unary_n(...unary_1(a op b)): the tape through several ops at once."""
    combine_tg, combine_np, _ = BINARY[combine]

    def fn_tg(a, b):
        x = combine_tg(a, b)
        for step in steps:
            x = UNARY[step][0](x)
        return x.sum() if reduce else x

    def fn_np(a, b):
        x = combine_np(a, b)
        for step in steps:
            x = UNARY[step][1](x)
        return x.sum() if reduce else x

    check_op(fn_tg, fn_np, list(shapes), "float64", seed=seed, name=" -> ".join([combine, *steps]))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**16))
def test_reductions_over_random_dims(shape, data, seed):
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    keepdim = data.draw(st.booleans())
    op = data.draw(st.sampled_from(["sum", "mean", "logsumexp"]))
    numpy_ops = {
        "sum": lambda x: x.sum(axis=dims, keepdims=keepdim),
        "mean": lambda x: x.mean(axis=dims, keepdims=keepdim),
        "logsumexp": lambda x: np.log(np.exp(x).sum(axis=dims, keepdims=keepdim)),
    }
    check_op(lambda x: getattr(tg, op)(x, dim=dims, keepdim=keepdim), numpy_ops[op], [tuple(shape)], "float64",
             seed=seed, name=f"{op}{dims}")
