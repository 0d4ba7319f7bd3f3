"""tapegrad.autograd: the functional interface of the backward engine."""

from . import _core


def _as_list(tensors):
    if tensors is None:
        return None
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def backward(tensors, grad_tensors=None, retain_graph=None):
    """Accumulates the gradients of `tensors` into the leaves' .grad."""
    outputs = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(outputs)
    _core._run_backward(outputs, grads, bool(retain_graph), [])


def grad(outputs, inputs, grad_outputs=None, retain_graph=None):
    """The gradients of `outputs` with respect to `inputs`, as a tuple; .grad is left alone."""
    outputs = _as_list(outputs)
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    return tuple(_core._run_backward(outputs, grads, bool(retain_graph), _as_list(inputs)))
