"""Grad-mode context managers; the mode itself lives in C++, one flag per thread."""

import functools

from . import _core


class set_grad_enabled:
    """Sets grad mode on or off: a call, a context manager, or a decorator, as in torch."""

    def __init__(self, mode: bool):
        self.previous = _core.is_grad_enabled()
        self.mode = mode
        _core._set_grad_enabled(mode)

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        _core._set_grad_enabled(self.previous)
        return False

    def __call__(self, function):
        mode = self.mode
        _core._set_grad_enabled(self.previous)  # decorating must not change the mode now

        @functools.wraps(function)
        def with_grad_mode(*args, **kwargs):
            with set_grad_enabled(mode):
                return function(*args, **kwargs)

        return with_grad_mode


class _GradModeContext:
    """Base of no_grad/enable_grad: enters a fixed mode, restores the previous one."""

    mode = True

    def __enter__(self):
        self.previous = _core.is_grad_enabled()
        _core._set_grad_enabled(self.mode)

    def __exit__(self, *exc_info):
        _core._set_grad_enabled(self.previous)
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def with_grad_mode(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)

        return with_grad_mode


class no_grad(_GradModeContext):
    """Records nothing inside: results have requires_grad=False and no grad_fn."""

    mode = False


class enable_grad(_GradModeContext):
    """Turns recording back on inside a no_grad region."""

    mode = True
