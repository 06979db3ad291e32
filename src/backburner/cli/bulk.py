"""``backburner jobs requeue|delete`` on several jobs at once.

Two ways to name the jobs, never both in one command:

- job ids: each is requeued or deleted as ``backburner jobs requeue ID``
  would, one after the other;
- a selection: every job in one state (``--state``, required), narrowed
  by ``--queue`` and ``--function``. Acting on it needs ``--yes``;
  ``--dry-run`` only counts the jobs it matches.

A selection is read page by page, newest first, and each job of a page
is changed with the selected state as the state it must still be in (a
compare-and-set): a job that left that state since the page was read is
skipped and counted, never moved from wherever it went. The pages
continue below the last id seen, so a job that comes back into the
state meanwhile (requeued, run and failed again) is not met twice.

Every change is its own transaction, as from the dashboard: a command
stopped half-way leaves the jobs it reached changed and the others as
they were, and running it again finishes the work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from backburner._text import one_line
from backburner.cli import session
from backburner.cli.failures import (
    EXIT_OK,
    EXIT_PARTIAL,
    CommandError,
    UsageError,
)
from backburner.cli.output import emit
from backburner.jobs import states
from backburner.jobs.client import Client
from backburner.jobs.errors import InvalidStateChangeError, JobNotFoundError
from backburner.storage.base import JobId, JobState, StorageError

__all__ = ["ACTIONS", "BulkAction", "Selection", "run"]

# Jobs read per page of a selection; the command changes them one by
# one, so a page is short work however large the selection.
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class BulkAction:
    """What ``requeue`` or ``delete`` does to one job, and its words."""

    verb: str  # "requeue"
    done: str  # "requeued"
    target: JobState
    change: Callable[[Client, JobId, JobState | None], Awaitable[None]]


async def _requeue(
    client: Client, job_id: JobId, expected: JobState | None
) -> None:
    await client.requeue(job_id, expected_state=expected)


async def _delete(
    client: Client, job_id: JobId, expected: JobState | None
) -> None:
    await client.delete(job_id, expected_state=expected)


ACTIONS = {
    "requeue": BulkAction("requeue", "requeued", JobState.ENQUEUED, _requeue),
    "delete": BulkAction("delete", "deleted", JobState.DELETED, _delete),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Every job in ``state``, on ``queue`` and of ``function`` if given."""

    state: JobState
    queue: str | None
    function: str | None


@dataclass(slots=True)
class _Tally:
    changed: int = 0
    skipped: int = 0


def run(action: BulkAction, args: argparse.Namespace) -> int:
    """Apply ``action`` to the jobs ``args`` name (ids or a selection).

    Raises:
        UsageError: the jobs are named wrongly (see :func:`_checked`);
            nothing was read or written.
        CommandError: the storage failed part way; the message says
            how many jobs were changed and skipped before.
        StorageError: the storage failed before any job was changed.
    """
    ids, selection = _checked(action, args)
    storage = session.open_checked(args)
    if selection is not None and args.dry_run:
        matched = session.with_client(
            storage, lambda client: _count(client, selection)
        )
        emit(f"would {action.verb} {matched} (dry run: nothing changed)")
        return EXIT_OK

    tally = _Tally()

    async def work(client: Client) -> None:
        if selection is None:
            await _act_on_ids(client, action, ids, tally)
        else:
            await _act_on_selection(client, action, selection, tally)

    try:
        session.with_client(storage, work)
    except StorageError as error:
        if tally.changed == tally.skipped == 0:
            raise
        raise CommandError(
            f"{error} (after {action.done} {tally.changed}, "
            f"skipped {tally.skipped}; run the command again to go on)"
        ) from error
    emit(f"{action.done} {tally.changed}, skipped {tally.skipped}")
    return EXIT_PARTIAL if tally.skipped else EXIT_OK


def _checked(
    action: BulkAction, args: argparse.Namespace
) -> tuple[list[JobId], Selection | None]:
    """The job ids, or the selection, that the command line names.

    Raises:
        UsageError: ids and a selection together, neither, a selection
            without ``--state`` or without ``--yes`` (or ``--dry-run``),
            ``--dry-run`` with ids, or a state that no job can be moved
            out of by this action.
    """
    ids = list(dict.fromkeys(args.ids))  # Each job once, in order.
    narrowed = args.queue is not None or args.function is not None
    if ids and (args.state is not None or narrowed):
        raise UsageError(
            "give job ids or a selection (--state, --queue, --function), "
            "not both"
        )
    if ids:
        if args.dry_run:
            raise UsageError("--dry-run counts a selection, not job ids")
        return ids, None
    if args.state is None:
        raise UsageError(
            f"give the ids of the jobs to {action.verb}, or select them "
            "with --state (and --queue, --function)"
        )
    if not states.can_move(args.state, action.target):
        raise UsageError(
            f"a job that is {args.state.value} cannot be {action.done}"
        )
    if not (args.yes or args.dry_run):
        raise UsageError(
            f"a selection acts on every job it matches: add --yes to "
            f"{action.verb} them, or --dry-run to count them first"
        )
    return [], Selection(args.state, args.queue, args.function)


async def _act_on_ids(
    client: Client, action: BulkAction, ids: Sequence[JobId], tally: _Tally
) -> None:
    for job_id in ids:
        await _act(client, action, job_id, None, tally)


async def _act_on_selection(
    client: Client, action: BulkAction, selection: Selection, tally: _Tally
) -> None:
    async for jobs in _pages(client, selection, PAGE_SIZE):
        for job_id in jobs:
            await _act(client, action, job_id, selection.state, tally)


async def _act(
    client: Client,
    action: BulkAction,
    job_id: JobId,
    expected: JobState | None,
    tally: _Tally,
) -> None:
    try:
        await action.change(client, job_id, expected)
    except (InvalidStateChangeError, JobNotFoundError) as error:
        # Not a failure of the command: the job moved, or was never
        # there. Said on stderr so that stdout keeps only the counts.
        tally.skipped += 1
        sys.stderr.write(f"backburner: skipped: {one_line(str(error))}\n")
    else:
        tally.changed += 1


async def _count(client: Client, selection: Selection) -> int:
    matched = 0
    async for jobs in _pages(client, selection, 1000):
        matched += len(jobs)
    return matched


async def _pages(
    client: Client, selection: Selection, size: int
) -> AsyncIterator[list[JobId]]:
    """The ids of the jobs matching ``selection``, a page at a time,
    each page read after the one before it was used."""
    before: JobId | None = None
    while True:
        page = await client.list_jobs(
            state=selection.state,
            queue=selection.queue,
            function=selection.function,
            before=before,
            limit=size,
        )
        yield [job.id for job in page.jobs]
        if page.next_before is None:
            return
        before = page.next_before
