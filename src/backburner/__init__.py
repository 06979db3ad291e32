"""backburner: request cancellation and durable background jobs.

The names most applications need are importable from here; the
submodules (:mod:`backburner.cancellation`, :mod:`backburner.web`,
:mod:`backburner.jobs`, :mod:`backburner.storage`) document the rest.

They are imported on first use (PEP 562), so that ``import backburner``
itself costs nothing: the ``backburner`` command starts by importing
this package, and it must be able to turn Ctrl-C into a clean exit
before it imports anything heavy (see :mod:`backburner.__main__`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backburner.cancellation import (
        CallbackRegistration,
        CancellationReason,
        CancellationToken,
        CancellationTokenSource,
        OperationCancelled,
        cancellable,
        run_cancellable,
    )

__version__ = "0.1.0"

__all__ = [
    "CallbackRegistration",
    "CancellationReason",
    "CancellationToken",
    "CancellationTokenSource",
    "OperationCancelled",
    "__version__",
    "cancellable",
    "run_cancellable",
]

_LAZY = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("backburner.cancellation"), name)
    globals()[name] = value  # Later lookups skip this function.
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
