"""backburner: request cancellation and durable background jobs.

The names most applications need are importable from here; the
submodules (:mod:`backburner.cancellation`, :mod:`backburner.web`,
:mod:`backburner.jobs`, :mod:`backburner.storage`) document the rest.

Names and submodules are imported on first use (:pep:`562`), and this
module imports nothing itself, not even :mod:`typing`: the
``backburner`` command imports this package before it can catch a
Ctrl-C, and turns one into a clean exit only from there on (see
:mod:`backburner.__main__`).
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (12 ms): type checkers
# take any constant of this name for true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

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

_FROM_CANCELLATION = frozenset(__all__) - {"__version__"}

# Hidden from type checkers, which would otherwise type every misspelt
# name as Any and report none.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _FROM_CANCELLATION:
            from backburner import cancellation

            value = getattr(cancellation, name)
            globals()[name] = value  # Found here from now on.
            return value
        # A submodule not imported yet (``backburner.jobs`` after a bare
        # ``import backburner``), as when this package imported it.
        import importlib

        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_CANCELLATION)
