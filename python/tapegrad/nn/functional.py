"""tapegrad.nn.functional: as torch.nn.functional, for the ops the API contract lists.

linear, cross_entropy and mse_loss are fused C++ kernels; the activations are the core's.
"""

from .. import _core

linear = _core._linear
cross_entropy = _core._cross_entropy
mse_loss = _core._mse_loss
relu = _core.relu
softmax = _core.softmax
log_softmax = _core.log_softmax


__all__ = ["cross_entropy", "linear", "log_softmax", "mse_loss", "relu", "softmax"]
