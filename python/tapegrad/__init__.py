"""tapegrad: reverse-mode automatic differentiation with a C++ tape and a PyTorch-style API."""

import os as _os

import numpy as _numpy  # noqa: F401 - loaded (with its own OpenBLAS) before the variable below is set


def _load_core():
    """Imports the extension with OpenBLAS told to put its own workers to sleep at once.

    OpenBLAS's parallel jobs run on tapegrad's pool (the core installs OpenBLAS's threading
    callback), so the workers OpenBLAS starts as it loads are never used. By default they
    spin for about 0.1 s first, and one still spinning when the first products run takes
    their jobs for its own (OpenBLAS keeps a worker's state by job index) and spins on
    beside them while products follow each other. OpenBLAS reads the variable as it loads;
    it is put back right after, and a value the user set is kept.
    """
    name = "OPENBLAS_THREAD_TIMEOUT"
    set_here = name not in _os.environ
    if set_here:
        _os.environ[name] = "4"  # OpenBLAS's least: 2^4 cycles
    try:
        from . import _core
    finally:
        if set_here:
            del _os.environ[name]
    return _core


_core = _load_core()
from ._core import Tensor, dtype  # noqa: E402

# Every public function of the core is tapegrad's own: tg.add, tg.dot, tg.zeros, ...
globals().update({name: value for name, value in vars(_core).items() if not name.startswith("_")})

from . import autograd, nn  # noqa: E402
from ._grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: E402
from ._tensor_str import tensor_repr as _tensor_repr  # noqa: E402

float32 = dtype.float32
float64 = dtype.float64
int64 = dtype.int64
bool = dtype.bool  # noqa: A001 - torch names its dtype `bool` too
float = float32  # noqa: A001
double = float64
long = int64


def _repr(self):
    grad_fn = self.grad_fn
    return _tensor_repr(
        self.detach().numpy(),
        dtype_name=self.dtype.name,
        requires_grad=self.requires_grad,
        grad_fn_name=grad_fn.name() if grad_fn is not None else None,
    )


Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.__module__ = "tapegrad"
Tensor.__array_priority__ = 1000  # numpy defers `np.float64(2) * t` to the tensor, as for torch


def _array_wrap(self, array, context=None, return_scalar=False):
    """Makes a tensor of what numpy computes from tensors, as torch does: `np.exp(t)`, and
    `t + np.array(1.5)`, which the tensor leaves to numpy (numpy's dtype rules then decide,
    and tapegrad's dtypes hold the result: int8 as int64, float16 as float32)."""
    return tensor(array)


Tensor.__array_wrap__ = _array_wrap

__version__ = "0.1.0"
