"""Running one job: find its function, call it, and decide its outcome.

:func:`perform` is the heart of a worker: it resolves the job function,
decodes the arguments, hands the job's cancellation token to the
parameters that ask for it, builds a runner through the activator when
the function is a runner method, and calls it (``async def`` functions
on the event loop, under the token; plain ones on a job thread).
:func:`outcome_of` turns how the call ended into the state change the
server writes; the write itself is batched by the server.

How an ending maps to a state change:

========================================  =================================
ending                                    change
========================================  =================================
returned                                  succeeded (expires later); a value
                                          other than None is kept (results)
                                          unless the job keeps no result
raised, policy allows another attempt     scheduled for the retry
raised, attempts exhausted / never retry  failed, or deleted (policy)
raised RetryAfter, attempts left          scheduled after the delay the
                                          job chose (never_retry ignored)
raised RetryAfter, attempts exhausted     failed, or deleted (policy)
function cannot be imported or arguments  failed at once, no retry
cannot be decoded
token fired: timeout                      counts as a failure (as raised)
token fired: shutdown                     interrupted: back on its queue
token fired: anything else (deleted,      nothing: the job already left
requeued, server declared dead)           *processing* without us
========================================  =================================
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backburner.cancellation import (
    CallbackRegistration,
    CancellationReason,
    CancellationToken,
    OperationCancelled,
)
from backburner.jobs import states
from backburner.jobs.activator import Activator
from backburner.jobs.context import (
    JobContext,
    context_parameters,
    reset_current,
    set_current,
)
from backburner.jobs.errors import JobFunctionError
from backburner.jobs.functions import ResolvedFunction, resolve
from backburner.jobs.results import keeps_result
from backburner.jobs.retry import (
    DEFAULT_RETRY,
    RetryAfter,
    RetryPolicy,
    policy_of,
)
from backburner.jobs.serializer import decode_arguments
from backburner.jobs.thread_pool import JobThreads
from backburner.storage.base import JobRecord, JSONValue, StateChange

__all__ = ["Ending", "outcome_of", "perform"]

_MAX_TRACEBACK = 16_000


@dataclass(frozen=True, slots=True)
class Ending:
    """How one execution of a job ended.

    Attributes:
        error: what the job raised, or ``None`` when it returned.
        runnable: ``False`` when the job could not even start (its
            function does not import, its arguments do not decode).
        policy: the job function's retry policy.
        duration: seconds from the start of :func:`perform` to the end.
        value: what the job function returned (``None`` when it raised,
            or when its result is not to be kept).
        keep_result: ``False`` when the job's options, or else its job
            function's declaration, say its result is not to be kept.
    """

    error: BaseException | None
    runnable: bool
    policy: RetryPolicy
    duration: float
    value: Any = None
    keep_result: bool = True


async def perform(
    job: JobRecord,
    token: CancellationToken,
    activator: Activator,
    threads: JobThreads,
    interrupt_delay: float = 0.0,
    context: JobContext | None = None,
) -> Ending:
    """Run ``job`` once and report how it ended; never raises for the job.

    ``context`` goes to the parameters annotated ``JobContext`` and is
    what :func:`~backburner.jobs.context.current_job` returns meanwhile
    (one is built from ``job`` and ``token`` when not given).

    An ``async def`` job is interrupted at whatever it awaits
    ``interrupt_delay`` seconds after its token fired, unless it ended by
    itself meanwhile: a job that watches its token gets to stop its own
    way (note its progress, raise its own error) first.

    Raises:
        asyncio.CancelledError: the task running the job was cancelled
            (the server gave up waiting for it).
    """
    started = time.monotonic()

    def ending(
        error: BaseException | None,
        policy: RetryPolicy = DEFAULT_RETRY,
        *,
        runnable: bool = True,
        value: Any = None,
        keep: bool = True,
    ) -> Ending:
        duration = time.monotonic() - started
        return Ending(error, runnable, policy, duration, value, keep)

    # 1. Find the function and its arguments; failing here is final.
    try:
        function = resolve(job.function)
        args, kwargs = decode_arguments(job.arguments)
    except JobFunctionError as error:
        return ending(error, runnable=False)
    except ValueError as error:
        refused = JobFunctionError(
            f"the stored arguments of job {job.id} cannot be decoded: {error}"
        )
        return ending(refused, runnable=False)
    policy = policy_of(function.target)
    keep = job.keep_result
    if keep is None:
        keep = keeps_result(function.target)
    if context is None:
        context = JobContext(
            job.id, job.function, job.queue, job.attempt, token
        )
    plan = _plan_of(function)
    if plan:
        args, kwargs = _inject(plan, args, kwargs, token, context)
    # Only coroutines can be interrupted; threads never look at it.
    delay = interrupt_delay if function.is_async else 0.0

    # 2. Call it, inside the activator's scope for a runner method.
    current = set_current(context)
    try:
        if function.runner_class is None:
            target = function.target
            value = await _call(
                function, target, args, kwargs, token, delay, threads
            )
        else:
            runner_class: type[Any] = function.runner_class
            async with activator.scope(runner_class) as runner:
                assert function.method_name is not None
                target = getattr(runner, function.method_name)
                value = await _call(
                    function, target, args, kwargs, token, delay, threads
                )
    except (Exception, OperationCancelled) as error:  # noqa: BLE001
        # Any failure of the job function is the job's outcome.
        return ending(error, policy, keep=keep)
    finally:
        reset_current(current)
    if not keep:
        # Not held until the outcome is written: nothing reads it.
        value = None
    return ending(None, policy, value=value, keep=keep)


async def _call(
    function: ResolvedFunction,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    token: CancellationToken,
    delay: float,
    threads: JobThreads,
) -> Any:
    """Call the job function (a coroutine here, a plain one on a thread);
    return what it returned."""
    if function.is_async:
        # The token stops the coroutine at what it awaits, ``delay``
        # seconds after it fired.
        coroutine = target(*args, **kwargs)
        return await _Interruption(token, delay).run(coroutine)
    # A thread cannot be interrupted: synchronous jobs cooperate by
    # looking at their token. The thread runs in a copy of this task's
    # context, so that current_job() answers there too.
    copied = contextvars.copy_context()
    result = await threads.run(
        functools.partial(copied.run, target, *args, **kwargs)
    )
    if inspect.isawaitable(result):
        # A plain callable that returns a coroutine (a decorated
        # ``async def``): the coroutine is the job.
        return await _Interruption(token, 0.0).run(result)
    return result


class _Interruption:
    """Cancels the running task ``delay`` seconds after ``token`` fired.

    The same protocol as :func:`~backburner.cancellation.cancellable`
    (``Task.cancel`` then ``Task.uncancel``, so an outside cancellation
    still wins), with the delay built in: one callback on the job's
    token instead of a second token source that follows it.
    """

    __slots__ = (
        "_delay",
        "_ended",
        "_fired",
        "_loop",
        "_task",
        "_timer",
        "_token",
    )

    def __init__(self, token: CancellationToken, delay: float) -> None:
        self._token = token
        self._delay = delay
        self._fired = False
        self._ended = False
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None

    async def run(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` and return its value; raise
        ``OperationCancelled`` if cut short.

        Raises:
            OperationCancelled: the token fired (before the call too, when
                there is no delay) and the awaitable was interrupted.
        """
        if self._delay <= 0 and self._token.is_cancellation_requested:
            _close(awaitable)
            self._token.raise_if_cancellation_requested()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a job coroutine must run inside a task")
        self._task = task
        self._loop = asyncio.get_running_loop()
        # Registered from the loop: the callback runs on it.
        registration = self._token.register(self._arm)
        try:
            value = await awaitable
        except asyncio.CancelledError as error:
            if self._end(registration):
                reason = self._token.reason or CancellationReason.REQUESTED
                raise OperationCancelled(reason, self._token) from error
            raise
        except BaseException:
            self._end(registration)
            raise
        if self._end(registration):
            # The job swallowed the interruption and returned: it was
            # still cut short.
            reason = self._token.reason or CancellationReason.REQUESTED
            raise OperationCancelled(reason, self._token)
        return value

    def _arm(self) -> None:
        if self._ended:
            # Dispatched from another thread just as the job ended.
            return
        # Always through the loop, even without a delay: the task is then
        # suspended at an await inside the job when it is cancelled.
        if self._delay > 0:
            self._timer = self._loop.call_later(self._delay, self._interrupt)
        else:
            self._timer = self._loop.call_soon(self._interrupt)

    def _interrupt(self) -> None:
        self._timer = None
        if self._ended:
            return
        self._fired = True
        self._task.cancel(msg=f"cancellation token: {self._token.reason}")

    def _end(self, registration: CallbackRegistration) -> bool:
        """Stop watching; True if our own cancellation ended the call."""
        self._ended = True
        registration.unregister()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._fired:
            return False
        # Someone else cancelled the task too: theirs wins.
        return self._task.uncancel() == 0


def _close(awaitable: Awaitable[Any]) -> None:
    # A coroutine that will never be awaited: close it quietly.
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


_Plan = tuple[tuple[str, "int | None", bool], ...]


@functools.lru_cache(maxsize=1024)
def _plan_of(function: ResolvedFunction) -> _Plan:
    """Where the job's token and context go: ``(name, position, is_token)``.

    Computed once per job function; empty for the common function that
    asks for neither.
    """
    target = function.target
    names = [(name, True) for name in function.token_parameters]
    names += [(name, False) for name in context_parameters(target)]
    if not names:
        return ()
    positions = _positions(target, bound=function.runner_class is not None)
    return tuple((name, positions.get(name), kind) for name, kind in names)


def _inject(
    plan: _Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    token: CancellationToken,
    context: JobContext,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Put the job's token and context where the plan says, whatever was
    stored there."""
    replaced = list(args)
    kwargs = dict(kwargs)
    for name, position, is_token in plan:
        value = token if is_token else context
        if position is not None and position < len(replaced):
            replaced[position] = value
        else:
            kwargs[name] = value
    return tuple(replaced), kwargs


def _positions(
    target: Callable[..., Any], *, bound: bool
) -> Mapping[str, int]:
    """Positional parameters by name, as the call passes them.

    A runner method is called bound to its runner: ``self`` is not
    among the arguments.
    """
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    names = [p.name for p in parameters if p.kind in positional]
    if bound:
        names = names[1:]
    return {name: index for index, name in enumerate(names)}


def describe(error: BaseException) -> str:
    """One line naming an error: ``Type: message``."""
    if isinstance(error, OperationCancelled):
        return f"cancelled: {error.reason}"
    message = str(error)
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def failure_data(error: BaseException) -> dict[str, JSONValue]:
    """The facts about a failure kept in the job's history."""
    kind = type(error)
    text = "".join(traceback.format_exception(error))
    return {
        "exception_type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(error),
        "traceback": text[-_MAX_TRACEBACK:],
    }


def outcome_of(
    job: JobRecord,
    ending: Ending,
    token: CancellationToken,
    now: datetime,
    data: Mapping[str, JSONValue],
    retention: timedelta,
) -> StateChange | None:
    """The state change that records ``ending``, or ``None`` for none.

    ``data`` (server, worker, duration) goes into the history row.
    """
    error = ending.error
    cancelled_by = token.reason
    if error is None:
        return states.succeed(job.id, job.version, now, data, retention)
    if cancelled_by == CancellationReason.SHUTDOWN:
        # Whatever the job raised, it raised while being stopped.
        return states.interrupted(
            job.id, job.version, now, "interrupted by shutdown", data
        )
    if cancelled_by is not None and cancelled_by != CancellationReason.TIMEOUT:
        # Deleted, requeued or recovered meanwhile: storage moved the job
        # already and would refuse any outcome of ours.
        return None

    facts = {**data, **failure_data(error)}
    if cancelled_by == CancellationReason.TIMEOUT:
        facts["cancelled"] = cancelled_by
        message = f"timed out after {job.timeout or 0:g} s"
    elif not ending.runnable:
        message = str(error)
    else:
        message = describe(error)
    policy = ending.policy
    if not ending.runnable:
        return states.fail(job.id, job.version, now, message, facts)
    asked = _asked(error, cancelled_by)
    if asked is not None:
        facts["retry_delay"] = asked.delay
        facts["retry_reason"] = asked.reason
        message = _asked_words(asked)
        # Asked for by the job: never_retry does not apply.
        again = job.attempt < policy.attempts
    else:
        again = policy.should_retry(error, job.attempt)
    if again:
        next_attempt = job.attempt + 1
        if asked is not None:
            delay = asked.delay
        else:
            delay = policy.delay_before(next_attempt)
        at = _after(now, delay)
        reason = f"retry {next_attempt} of {policy.attempts}: {message}"
        return states.retry_later(job.id, job.version, now, at, reason, facts)
    if asked is None and isinstance(error, policy.never_retry):
        summary = f"not retried ({message})"
    else:
        tried = "attempt" if job.attempt == 1 else "attempts"
        summary = f"gave up after {job.attempt} {tried} ({message})"
    if policy.on_exhausted == "delete":
        return states.give_up_deleted(
            job.id, job.version, now, f"deleted: {summary}", facts, retention
        )
    return states.fail(job.id, job.version, now, f"failed: {summary}", facts)


def _asked(
    error: BaseException, cancelled_by: str | None
) -> RetryAfter | None:
    """The job's own request for a retry, if that is how it ended.

    A RetryAfter raised while a timeout stopped the job is only how it
    stopped: the timeout is the failure, as with any other error.
    """
    if isinstance(error, RetryAfter) and cancelled_by is None:
        return error
    return None


def _asked_words(error: RetryAfter) -> str:
    """How a retry the job asked for reads in its history."""
    words = f"the job asked to retry after {error.delay:g} s"
    return f"{words}: {error.reason}" if error.reason else words


def _after(now: datetime, seconds: float) -> datetime:
    """``seconds`` after ``now``, but no later than
    :data:`~backburner.jobs.states.LATEST_READY_AT`."""
    try:
        return min(now + timedelta(seconds=seconds), states.LATEST_READY_AT)
    except OverflowError:
        # RetryAfter and retry() refuse such delays; only the moments
        # since they checked can push one past the last date.
        return states.LATEST_READY_AT
