"""``backburner recurring``: list, trigger, pause, resume, remove.

Recurring jobs are defined in application code
(``client.recurring.add_or_update``); the command line inspects and
steers them through the same client API. Listing never imports
application code: function references and arguments are shown as
stored.
"""

from __future__ import annotations

import argparse
from typing import Any

from backburner.cli import session
from backburner.cli.failures import EXIT_OK, CommandError
from backburner.cli.output import emit, emit_json, human_time, json_time, table
from backburner.cli.parsing import add_command
from backburner.jobs.client import Client
from backburner.jobs.cron import InvalidCronError
from backburner.jobs.recurring import RecurringJob, check_recurring_id
from backburner.storage.base import JobId


def recurring_id(text: str) -> str:
    """A recurring job id (argparse type)."""
    try:
        return check_recurring_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``recurring`` command group to the command parser."""
    parser = add_command(
        commands,
        "recurring",
        help="list, trigger, pause, resume or remove recurring jobs",
    )
    group = parser.add_subparsers(
        dest="recurring_command", metavar="COMMAND", required=True
    )

    listing = add_command(
        group, "list", help="list recurring jobs with their last and next run"
    )
    listing.add_argument(
        "--json", action="store_true", help="print JSON (docs/recurring.md)"
    )
    listing.set_defaults(handler=run_list)

    for name, handler, words in (
        ("trigger", run_trigger, "create its job now"),
        ("pause", run_pause, "stop creating jobs, keep the definition"),
        ("resume", run_resume, "create jobs again from the next occurrence"),
        ("remove", run_remove, "remove it (the jobs it created stay)"),
    ):
        command = add_command(group, name, help=words)
        command.add_argument("id", type=recurring_id)
        command.set_defaults(handler=handler)


def recurring_document(job: RecurringJob) -> dict[str, Any]:
    """The JSON form of a recurring job (see ``docs/recurring.md``)."""
    return {
        "id": job.id,
        "status": job.status.value,
        "cron": job.cron,
        "time_zone": job.time_zone,
        "function": job.function,
        "queue": job.queue,
        "missed": job.missed.value,
        "timeout": job.timeout,
        "next_run_at": json_time(job.next_run_at),
        "last_run_at": json_time(job.last_run_at),
        "last_job_id": job.last_job_id,
        "last_job_state": (
            None if job.last_job_state is None else job.last_job_state.value
        ),
        "error": job.error,
        "failures": job.failures,
        "created_at": json_time(job.created_at),
        "updated_at": json_time(job.updated_at),
    }


def run_list(args: argparse.Namespace) -> int:
    """Print every recurring job.

    Raises:
        StorageError: the storage failed.
    """

    async def work(client: Client) -> list[RecurringJob]:
        return await client.recurring.list()

    jobs = session.with_client(session.open_checked(args), work)
    if args.json:
        emit_json({"recurring_jobs": [recurring_document(j) for j in jobs]})
        return EXIT_OK
    if not jobs:
        emit("no recurring jobs")
        return EXIT_OK
    emit(_table(jobs))
    for job in jobs:
        if job.error:
            emit(f"{job.id}: {' '.join(job.error.split())}")
    return EXIT_OK


def _last_job(job: RecurringJob) -> str | None:
    if job.last_job_id is None:
        return None
    state = "expired" if job.last_job_state is None else job.last_job_state
    return f"{job.last_job_id} ({state})"


def _table(jobs: list[RecurringJob]) -> str:
    rows = [
        (
            job.id,
            job.status.value,
            job.cron,
            job.time_zone,
            job.queue,
            job.function,
            human_time(job.next_run_at),
            human_time(job.last_run_at),
            _last_job(job),
        )
        for job in jobs
    ]
    headers = (
        "ID",
        "STATUS",
        "CRON",
        "TIME ZONE",
        "QUEUE",
        "FUNCTION",
        "NEXT RUN",
        "LAST RUN",
        "LAST JOB",
    )
    return table(headers, rows)


def run_trigger(args: argparse.Namespace) -> int:
    """Create the recurring job's job now.

    Raises:
        RecurringJobNotFoundError: there is no such recurring job.
    """

    async def work(client: Client) -> JobId:
        return await client.recurring.trigger(args.id)

    job_id = session.with_client(session.open_checked(args), work)
    emit(f"recurring job {args.id} triggered: job {job_id}")
    return EXIT_OK


def run_pause(args: argparse.Namespace) -> int:
    """Pause a recurring job.

    Raises:
        RecurringJobNotFoundError: there is no such recurring job.
    """

    async def work(client: Client) -> None:
        await client.recurring.pause(args.id)

    session.with_client(session.open_checked(args), work)
    emit(f"recurring job {args.id} paused")
    return EXIT_OK


def run_resume(args: argparse.Namespace) -> int:
    """Resume a paused (or stopped) recurring job.

    Raises:
        RecurringJobNotFoundError: there is no such recurring job.
        CommandError: its stored schedule cannot be read (or the
            ``cron`` extra is not installed).
    """

    async def work(client: Client) -> RecurringJob:
        await client.recurring.resume(args.id)
        return await client.recurring.get(args.id)

    try:
        job = session.with_client(session.open_checked(args), work)
    except InvalidCronError as error:
        raise CommandError(str(error)) from error
    emit(
        f"recurring job {args.id} resumed; next run "
        f"{human_time(job.next_run_at)}"
    )
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    """Remove a recurring job; the jobs it created stay.

    Raises:
        RecurringJobNotFoundError: there is no such recurring job.
    """

    async def work(client: Client) -> None:
        await client.recurring.remove(args.id)

    session.with_client(session.open_checked(args), work)
    emit(f"recurring job {args.id} removed")
    return EXIT_OK
