"""``backburner enqueue``: create a job from the command line.

The job function is imported and its signature is checked against the
arguments before anything is written, so a typo in a name or a missing
argument is reported here instead of failing later in a worker.
Arguments are JSON values (a string is written ``'"text"'``); the job
stores them exactly as the client API would.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

from backburner.cli import arguments, session
from backburner.cli.failures import EXIT_OK, CommandError, UsageError
from backburner.cli.output import emit
from backburner.cli.parsing import add_command
from backburner.jobs.client import Client, JobOptions
from backburner.jobs.functions import import_reference, resolve


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``enqueue`` command to the command parser."""
    parser = add_command(
        commands,
        "enqueue",
        help="create a job that runs MODULE:FUNCTION",
        description=(
            "Create a job and print its id. Each ARG is one JSON value "
            "(write a string as '\"text\"'), passed positionally."
        ),
    )
    parser.add_argument(
        "function",
        metavar="MODULE:FUNCTION",
        help="the job function, e.g. myapp.mail:send_welcome",
    )
    parser.add_argument(
        "args",
        metavar="ARG",
        nargs="*",
        help="a positional argument as JSON",
    )
    parser.add_argument(
        "--kwargs",
        type=arguments.json_object,
        default={},
        metavar="JSON_OBJECT",
        help="keyword arguments as one JSON object",
    )
    parser.add_argument(
        "--queue", type=arguments.queue, help="queue (default: default)"
    )
    parser.add_argument(
        "--delay",
        type=arguments.seconds,
        metavar="SECONDS",
        help="schedule the job this many seconds from now",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.positive_seconds,
        metavar="SECONDS",
        help="cancel an attempt that runs longer than this",
    )
    parser.set_defaults(handler=run)


def _options(args: argparse.Namespace) -> JobOptions:
    try:
        return JobOptions(
            queue=args.queue, delay=args.delay or None, timeout=args.timeout
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _positional(texts: list[str]) -> list[Any]:
    values = []
    for index, text in enumerate(texts, start=1):
        try:
            values.append(arguments.json_value(text, f"argument {index}"))
        except argparse.ArgumentTypeError as error:
            raise UsageError(str(error)) from None
    return values


def find_function(reference: str) -> Callable[..., Any]:
    """Import the job function ``reference`` names.

    Raises:
        UsageError: ``reference`` is not of the form ``module:qualname``.
        CommandError: it does not import (for any reason), or is not
            callable.
    """
    module, sep, qualname = reference.partition(":")
    if not (sep and module and qualname):
        raise UsageError(
            f"job function must be MODULE:FUNCTION, got {reference!r}"
        )
    try:
        found = import_reference(reference)
    # The module is application code: whatever its import raises (a
    # SyntaxError, a missing setting...) is reported as one line naming
    # the error, like a missing module.
    except Exception as error:  # noqa: BLE001 - reported, not swallowed
        raise CommandError(
            f"cannot import job function {reference}: "
            f"{type(error).__name__}: {error}"
        ) from None
    if not callable(found):
        raise CommandError(f"{reference} is not callable")
    function: Callable[..., Any] = found
    return function


def check_call(
    reference: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Check that the job function accepts ``args`` and ``kwargs``.

    The server fills a parameter annotated as a cancellation token
    itself, so such a parameter may be left out; a method of a runner
    class is checked without its ``self``.

    Raises:
        CommandError: the call would fail with a ``TypeError``.
    """
    resolved = resolve(reference)
    try:
        signature = inspect.signature(resolved.target)
    except (TypeError, ValueError):
        return  # Builtins without a signature: the worker will tell.
    if resolved.runner_class is not None:
        parameters = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=parameters)
    try:
        signature.bind(*args, **kwargs)
        return
    except TypeError:
        pass
    tokens = {
        name: None
        for name in resolved.token_parameters
        if name in signature.parameters and name not in kwargs
    }
    try:
        signature.bind(*args, **tokens, **kwargs)
    except TypeError as error:
        raise CommandError(
            f"{reference}{_plain(signature)} cannot take these "
            f"arguments: {error}"
        ) from None


def _plain(signature: inspect.Signature) -> inspect.Signature:
    # Names and defaults say what to pass; annotations (strings under
    # ``from __future__ import annotations``) only add noise.
    return signature.replace(
        parameters=[
            parameter.replace(annotation=inspect.Parameter.empty)
            for parameter in signature.parameters.values()
        ],
        return_annotation=inspect.Signature.empty,
    )


def run(args: argparse.Namespace) -> int:
    """Check the call, create the job and print its id.

    Raises:
        UsageError: malformed JSON, bad options or storage URL.
        CommandError: the function is missing or refuses the arguments.
        JobError, StorageError: the job could not be stored; nothing was
            written.
    """
    options = _options(args)
    positional = _positional(args.args)
    storage = session.open_checked(args)  # A bad URL fails first.
    func = find_function(args.function)
    check_call(args.function, positional, args.kwargs)

    async def create(client: Client) -> int:
        return await client.enqueue_with(
            options, func, *positional, **args.kwargs
        )

    emit(str(session.with_client(storage, create)))
    return EXIT_OK
