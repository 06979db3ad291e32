"""``backburner jobs``: list, show, requeue and delete jobs.

Requeue and delete take one job id, several, or a selection (every job
in a state, on a queue, of a job function); :mod:`backburner.cli.bulk`
does the latter two.

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

from backburner._text import one_line
from backburner.cli import arguments, bulk, session
from backburner.cli.failures import EXIT_OK
from backburner.cli.output import (
    emit,
    emit_json,
    fields,
    human_time,
    json_time,
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
        "--function",
        type=arguments.function_reference,
        metavar="MODULE:NAME",
        help="only jobs of this job function (exact, as listed)",
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

    requeue = add_command(
        group, "requeue", help="put jobs back on their queues"
    )
    _add_bulk_options(requeue, "requeue")
    requeue.set_defaults(handler=run_requeue)

    delete = add_command(
        group, "delete", help="delete jobs (a running job is aborted)"
    )
    _add_bulk_options(delete, "delete")
    delete.set_defaults(handler=run_delete)


def _add_bulk_options(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("ids", type=arguments.job_id, nargs="*", metavar="ID")
    parser.add_argument(
        "--state",
        type=arguments.state,
        help=f"{verb} every job in this state (a selection)",
    )
    parser.add_argument(
        "--queue",
        type=arguments.queue,
        help="only the selected jobs on this queue",
    )
    parser.add_argument(
        "--function",
        type=arguments.function_reference,
        metavar="MODULE:NAME",
        help="only the selected jobs of this job function",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"{verb} every job the selection matches",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count the jobs the selection matches; change none",
    )


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
            function=args.function,
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


def _one_job(args: argparse.Namespace) -> bool:
    """Whether the command names one job and nothing else: it then
    answers as it always did (an error when the job is refused)."""
    selected = (args.state, args.queue, args.function)
    return (
        len(args.ids) == 1
        and selected == (None, None, None)
        and not args.dry_run
    )


def run_requeue(args: argparse.Namespace) -> int:
    """Move jobs back to *enqueued* (a running job is aborted).

    One job id: the job is requeued, or the command fails. Several ids
    or a selection: see :mod:`backburner.cli.bulk`.

    Raises:
        JobNotFoundError: there is no such job (one id).
        InvalidStateChangeError: the job is enqueued already (one id).
        UsageError: the jobs are named wrongly (see ``bulk``).
    """
    if not _one_job(args):
        return bulk.run(bulk.ACTIONS["requeue"], args)
    (job_id,) = args.ids

    async def work(client: Client) -> None:
        await client.requeue(job_id)

    session.with_client(session.open_checked(args), work)
    emit(f"job {job_id} requeued")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    """Move jobs to *deleted* (a running job is aborted).

    One job id: the job is deleted, or the command fails. Several ids
    or a selection: see :mod:`backburner.cli.bulk`.

    Raises:
        JobNotFoundError: there is no such job (one id).
        InvalidStateChangeError: the job is deleted already (one id).
        UsageError: the jobs are named wrongly (see ``bulk``).
    """
    if not _one_job(args):
        return bulk.run(bulk.ACTIONS["delete"], args)
    (job_id,) = args.ids

    async def work(client: Client) -> None:
        await client.delete(job_id)

    session.with_client(session.open_checked(args), work)
    emit(f"job {job_id} deleted")
    return EXIT_OK
