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


class GradcheckError(RuntimeError):
    """The tape's gradient differs from central finite differences."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Checks the tape's gradients of `fn` at `inputs` against central differences, as
    torch.autograd.gradcheck does: every output element's gradient with respect to every
    input that requires grad. Use float64 inputs: float32 is too coarse for eps=1e-6.
    Returns True, or raises GradcheckError (False with raise_exception=False) naming the
    output and input whose Jacobians differ and by how much."""
    import numpy as np

    from . import _core

    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, _core.Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: at least one input tensor must require grad")

    def outputs_at(arguments):
        result = fn(*arguments)
        return result if isinstance(result, (list, tuple)) else (result,)

    detached = [t.detach() if isinstance(t, _core.Tensor) else t for t in inputs]
    for k, output in enumerate(outputs_at(inputs)):
        flat_size = output.numel()
        for i in checked:
            # Analytic Jacobian, one row per output element: grad of output[j] w.r.t. input i.
            analytic = np.zeros((flat_size, inputs[i].numel()))
            for j in range(flat_size):
                seed = np.zeros(flat_size, dtype=output.detach().numpy().dtype)
                seed[j] = 1
                seed_tensor = _core.from_numpy(seed.reshape(output.shape))
                (row,) = grad([output], [inputs[i]], grad_outputs=[seed_tensor], retain_graph=True)
                analytic[j] = row.numpy().ravel()
            # Numeric Jacobian: nudge each element of input i through its shared numpy view.
            values = detached[i].numpy().reshape(-1)
            numeric = np.zeros_like(analytic)
            for m in range(values.size):
                saved = values[m]
                values[m] = saved + eps
                up = outputs_at(detached)[k].numpy().ravel().astype(np.float64)
                values[m] = saved - eps
                down = outputs_at(detached)[k].numpy().ravel().astype(np.float64)
                values[m] = saved
                numeric[:, m] = (up - down) / (2 * eps)
            if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
                worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), analytic.shape)
                message = (
                    f"gradcheck: Jacobian mismatch for output {k} with respect to input {i}: "
                    f"at (output element {worst[0]}, input element {worst[1]}) the tape gives "
                    f"{analytic[worst]:.6g} and finite differences {numeric[worst]:.6g} "
                    f"(atol={atol}, rtol={rtol}).\nanalytic:\n{analytic}\nnumeric:\n{numeric}"
                )
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True

