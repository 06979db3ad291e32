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

# Where each name lives.
_HOMES = dict.fromkeys(
    set(__all__) - {"__version__"}, "backburner.cancellation"
)

# Hidden from type checkers, which would otherwise type every misspelt
# name as Any and report none.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # Imported here, not above: see this module's docstring.
        from backburner._lazy import resolve

        return resolve(globals(), __name__, name, _HOMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
