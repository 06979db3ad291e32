"""Cancellation tokens: ask running work to stop, and say why.

The model follows .NET's ``CancellationToken``: a
:class:`CancellationTokenSource` owns a :class:`CancellationToken`; work
receives the token, and stops when it fires, raising
:class:`OperationCancelled` (a :class:`BaseException`, so a plain
``except Exception:`` does not swallow it).

- Poll: :attr:`CancellationToken.is_cancellation_requested`,
  :meth:`CancellationToken.raise_if_cancellation_requested`.
- Wait: ``await token.wait()`` in coroutines,
  :meth:`CancellationToken.wait_blocking` in threads.
- React: :meth:`CancellationToken.register` a callback.
- Combine: :meth:`CancellationTokenSource.linked`,
  :meth:`CancellationTokenSource.cancel_after`.
- Interrupt asyncio code blocked on I/O: :func:`cancellable`,
  :func:`run_cancellable`.
"""

from backburner.cancellation.reasons import (
    CancellationReason,
    OperationCancelled,
)
from backburner.cancellation.scope import cancellable, run_cancellable
from backburner.cancellation.token import (
    CallbackRegistration,
    CancellationToken,
    CancellationTokenSource,
)

__all__ = [
    "CallbackRegistration",
    "CancellationReason",
    "CancellationToken",
    "CancellationTokenSource",
    "OperationCancelled",
    "cancellable",
    "run_cancellable",
]
