"""Exceptions that pickle, whatever their ``__init__`` takes.

Python pickles an exception as its class, its ``args`` and its
``__dict__``, and unpickles it by calling the class with ``args``. An
``__init__`` that takes other parameters than the message it passes up
then fails (``TypeError``) or builds the message a second time around
the first one. Process pools and ``multiprocessing`` pickle every
exception they hand back to the parent process, so backburner's own
exceptions are rebuilt without calling ``__init__``.
"""

from __future__ import annotations

from typing import Any, TypeVar

_E = TypeVar("_E", bound=BaseException)


class PicklableException(BaseException):
    """Base of the exceptions whose ``__init__`` takes other parameters
    than a message: unpickles to an equal exception.

    The copy has the same ``args`` (so the same message) and the same
    attributes; ``__init__`` is not called again.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (type(self), self.args, dict(vars(self))))


def _rebuilt(
    cls: type[_E], args: tuple[Any, ...], attributes: dict[str, Any]
) -> _E:
    error = cls.__new__(cls, *args)
    error.args = args
    vars(error).update(attributes)
    return error
