"""tapegrad.nn: the functional building blocks of neural networks."""

from . import functional

__all__ = ["functional"]
