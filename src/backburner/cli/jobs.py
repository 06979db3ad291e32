"""``backburner jobs``: list, show, requeue and delete jobs.

Everything here goes through the client API, so a change made from the
command line is the same compare-and-set state change as one made by
application code: requeueing an enqueued job, or deleting a deleted
one, is refused and leaves the job as it was.

Arguments and results are shown as stored (the JSON the serializer
wrote), so listing or showing a job never imports application code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from backburner.cli import arguments, session
from backburner.cli.failures import EXIT_OK
from backburner.cli.output import (
    emit,
    emit_json,
    fields,
    human_time,
    json_time,
    one_line,
    table,
)
from backburner.cli.parsing import add_command
from backburner.jobs.client import Client, Job, JobPage
from backburner.jobs.results import RESULT, RESULT_ERROR, stored_result
from backburner.jobs.serializer import encode_value
from backburner.storage.base import HistoryEntry, JobState, JSONValue


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``jobs`` command group to the command parser."""
    parser = add_command(
        commands, "jobs", help="list, show, requeue or delete jobs"
    )
    group = parser.add_subparsers(
        dest="jobs_command", metavar="COMMAND", required=True
    )

    listing = add_command(group, "list", help="list jobs, newest first")
    listing.add_argument(
        "--state",
        type=arguments.state,
        help=f"only jobs in this state ({arguments.STATE_NAMES})",
    )
    listing.add_argument(
        "--queue", type=arguments.queue, help="only jobs on this queue"
    )
    listing.add_argument(
        "--limit",
        type=arguments.page_size,
        default=50,
        metavar="N",
        help="jobs per page, 1-1000 (default 50)",
    )
    listing.add_argument(
        "--before",
        type=arguments.job_id,
        metavar="ID",
        help="start below this id (the next page)",
    )
    listing.add_argument(
        "--json", action="store_true", help="print JSON (docs/cli.md)"
    )
    listing.set_defaults(handler=run_list)

    show = add_command(group, "show", help="show one job and its history")
    show.add_argument("id", type=arguments.job_id)
    show.add_argument(
        "--json", action="store_true", help="print JSON (docs/cli.md)"
    )
    show.set_defaults(handler=run_show)

    requeue = add_command(group, "requeue", help="put a job back on its queue")
    requeue.add_argument("id", type=arguments.job_id)
    requeue.set_defaults(handler=run_requeue)

    delete = add_command(
        group, "delete", help="delete a job (a running job is aborted)"
    )
    delete.add_argument("id", type=arguments.job_id)
    delete.set_defaults(handler=run_delete)


# -- documents ---------------------------------------------------------


def job_document(job: Job) -> dict[str, Any]:
    """The JSON form of a job as listed (see ``docs/cli.md``)."""
    return {
        "id": job.id,
        "function": job.function,
        "queue": job.queue,
        "state": job.state.value,
        "reason": job.reason,
        "attempt": job.attempt,
        "created_at": json_time(job.created_at),
        "state_changed_at": json_time(job.state_changed_at),
        "scheduled_at": json_time(job.scheduled_at),
        "server": job.server,
        "expires_at": json_time(job.expires_at),
        "timeout": job.timeout,
    }


def _stored_arguments(job: Job) -> Any:
    try:
        return json.loads(job.raw_arguments)
    except ValueError:
        return job.raw_arguments  # Damaged: show what is there.


def _stored_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    # The client decodes parameters; encoding them again gives back the
    # stored JSON form, which needs no application code to print.
    return {
        name: json.loads(encode_value(value, name))
        for name, value in parameters.items()
    }


def _history_document(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "state": entry.state.value,
        "reason": entry.reason,
        "at": json_time(entry.at),
        "data": dict(entry.data),
    }


def _result_document(job: Job) -> dict[str, Any]:
    stored = stored_result(job.state, job.history)
    return {
        RESULT: stored.get(RESULT),
        RESULT_ERROR: stored.get(RESULT_ERROR),
    }


def job_detail_document(job: Job) -> dict[str, Any]:
    """The JSON form of one job with arguments, parameters and history."""
    return {
        **job_document(job),
        "arguments": _stored_arguments(job),
        "parameters": _stored_parameters(job.parameters),
        **_result_document(job),
        "history": [_history_document(entry) for entry in job.history],
    }


# -- list --------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    """Print a page of jobs, newest first.

    Raises:
        StorageError: the storage failed.
    """

    async def work(client: Client) -> JobPage:
        return await client.list_jobs(
            state=args.state,
            queue=args.queue,
            before=args.before,
            limit=args.limit,
        )

    page = session.with_client(session.open_checked(args), work)
    if args.json:
        emit_json(
            {
                "jobs": [job_document(job) for job in page.jobs],
                "next_before": page.next_before,
            }
        )
        return EXIT_OK
    if not page.jobs:
        emit("no jobs")
        return EXIT_OK
    emit(_jobs_table(page))
    if page.next_before is not None:
        emit(f"(more: add --before {page.next_before})")
    return EXIT_OK


def _jobs_table(page: JobPage) -> str:
    rows = [
        (
            job.id,
            job.state.value,
            job.queue,
            job.function,
            job.attempt,
            human_time(job.created_at),
            human_time(job.state_changed_at),
            job.reason,
        )
        for job in page.jobs
    ]
    headers = (
        "ID",
        "STATE",
        "QUEUE",
        "FUNCTION",
        "ATTEMPT",
        "CREATED",
        "CHANGED",
        "REASON",
    )
    return table(headers, rows, right={0, 4})


# -- show --------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    """Print one job with its arguments, parameters and history.

    Raises:
        JobNotFoundError: there is no such job.
        StorageError: the storage failed.
    """

    async def work(client: Client) -> Job:
        return await client.get(args.id)

    job = session.with_client(session.open_checked(args), work)
    if args.json:
        emit_json(job_detail_document(job))
    else:
        emit(_job_text(job))
    return EXIT_OK


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _job_text(job: Job) -> str:
    stored = _stored_arguments(job)
    args = stored.get("args") if isinstance(stored, dict) else stored
    kwargs = stored.get("kwargs") if isinstance(stored, dict) else None
    timeout = None if job.timeout is None else f"{job.timeout:g} s"
    progress = job.progress
    shown = None
    if progress is not None:
        shown = f"{progress.percent:.0f}%"
        shown += f" {progress.message}" if progress.message else ""
    summary = fields(
        [
            ("id", job.id),
            ("function", job.function),
            ("state", f"{job.state.value} ({job.reason})"),
            ("progress", shown),
            ("queue", job.queue),
            ("attempt", job.attempt),
            ("created", human_time(job.created_at)),
            ("changed", human_time(job.state_changed_at)),
            ("scheduled", human_time(job.scheduled_at)),
            ("server", job.server),
            ("expires", human_time(job.expires_at)),
            ("timeout", timeout),
            ("args", _compact(args)),
            ("kwargs", _compact(kwargs)),
            ("result", _result_text(job)),
        ]
    )
    parameters = _stored_parameters(job.parameters)
    sections = [summary, "", "parameters:"]
    if parameters:
        sections.append(
            _indent(fields([(n, _compact(v)) for n, v in parameters.items()]))
        )
    else:
        sections.append("  (none)")
    sections += ["", "history (oldest first):", _history_text(job)]
    return "\n".join(sections)


def _result_text(job: Job) -> str | None:
    if job.state is not JobState.SUCCEEDED:
        return None
    stored = stored_result(job.state, job.history)
    if RESULT_ERROR in stored:
        return f"not kept: {stored[RESULT_ERROR]}"
    return _compact(stored.get(RESULT))


def _indent(text: str, by: int = 2) -> str:
    return "\n".join(" " * by + line for line in text.splitlines())


def _history_text(job: Job) -> str:
    rows = [
        (human_time(entry.at), entry.state.value, entry.reason)
        for entry in job.history
    ]
    lines = table(("AT", "STATE", "REASON"), rows).splitlines()
    # Facts of each change (server, duration, the exception of a
    # failure) go under its row; multi-line text such as a traceback
    # is printed as a block.
    out = [lines[0]]
    for line, entry in zip(lines[1:], job.history, strict=True):
        out.append(line)
        out.extend(_data_lines(entry.data))
    return _indent("\n".join(out))


def _data_lines(data: Mapping[str, JSONValue]) -> list[str]:
    lines = []
    for name, value in data.items():
        if name == RESULT:
            continue  # On the job's result line: it may be long.
        if isinstance(value, str) and "\n" in value:
            lines.append(f"    {name}:")
            lines.extend(
                f"      {one_line(line)}"
                for line in value.rstrip().splitlines()
            )
        else:
            text = value if isinstance(value, str) else _compact(value)
            lines.append(f"    {name}: {one_line(text)}")
    return lines


# -- requeue, delete -----------------------------------------------------


def run_requeue(args: argparse.Namespace) -> int:
    """Move a job back to *enqueued* (a running job is aborted).

    Raises:
        JobNotFoundError: there is no such job.
        InvalidStateChangeError: the job is enqueued already.
    """

    async def work(client: Client) -> None:
        await client.requeue(args.id)

    session.with_client(session.open_checked(args), work)
    emit(f"job {args.id} requeued")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    """Move a job to *deleted* (a running job is aborted).

    Raises:
        JobNotFoundError: there is no such job.
        InvalidStateChangeError: the job is deleted already.
    """

    async def work(client: Client) -> None:
        await client.delete(args.id)

    session.with_client(session.open_checked(args), work)
    emit(f"job {args.id} deleted")
    return EXIT_OK
