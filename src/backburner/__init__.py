"""backburner: request cancellation and durable background jobs.

The names most applications need are importable from here; the
submodules (:mod:`backburner.cancellation`, :mod:`backburner.web`,
:mod:`backburner.jobs`, :mod:`backburner.storage`) document the rest.
"""

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
