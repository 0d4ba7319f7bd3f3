"""tapegrad: reverse-mode automatic differentiation with a C++ tape and a PyTorch-style API."""

from . import autograd
from ._core import (
    Tensor,
    add,
    arange,
    div,
    dot,
    dtype,
    from_numpy,
    is_grad_enabled,
    manual_seed,
    mean,
    mul,
    neg,
    norm,
    ones,
    pow,
    randn,
    sub,
    sum,
    tensor,
    zeros,
)
from ._grad_mode import enable_grad, no_grad, set_grad_enabled
from ._tensor_str import tensor_repr as _tensor_repr

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

__version__ = "0.1.0"

__all__ = [
    "Tensor", "add", "arange", "autograd", "bool", "div", "dot", "double", "dtype", "enable_grad",
    "float", "float32", "float64", "from_numpy", "int64", "is_grad_enabled", "long", "manual_seed",
    "mean", "mul", "neg", "no_grad", "norm", "ones", "pow", "randn", "set_grad_enabled", "sub", "sum",
    "tensor", "zeros",
]
