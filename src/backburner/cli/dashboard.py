"""``backburner dashboard``: serve the job dashboard on its own.

The dashboard runs under uvicorn with the default authorization, which
serves only requests from loopback that did not come through a proxy:
``--host 0.0.0.0`` makes it listen everywhere but still answers 401 to
every other machine. To open it to people, mount
:func:`backburner.dashboard.create_dashboard` in an application that
signs them in, and give it an ``authorize`` hook.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

from backburner.cli import session
from backburner.cli.failures import EXIT_OK, CommandError
from backburner.cli.parsing import add_command

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def port(text: str) -> int:
    """A TCP port number: 1 to 65535."""
    value = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return value


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``dashboard`` command to the command parser."""
    parser = add_command(
        commands,
        "dashboard",
        help="serve the job dashboard (loopback only)",
        description=(
            "Serve the job dashboard until Ctrl-C. Only requests from "
            "this machine are answered (see docs/dashboard.md)."
        ),
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="show jobs but refuse every action",
    )
    parser.set_defaults(handler=run)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``.

    Bound here rather than by uvicorn so that a port in use is one line
    and exit code 1, like every other mistake of the command.

    Raises:
        CommandError: the address cannot be listened on.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(
            f"cannot listen on {host}:{port}: {reason}"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted.

    Raises:
        CommandError: the dashboard's dependencies are not installed, or
            the address cannot be listened on.
        InvalidStorageURLError: the storage URL names no storage.
    """
    try:
        import uvicorn

        from backburner.dashboard import create_dashboard
    except ImportError as error:
        raise CommandError(
            f"the dashboard needs {error.name or 'its dependencies'}: "
            "install backburner[dashboard]"
        ) from None

    storage = session.open_checked(args)
    app = create_dashboard(storage, read_only=args.read_only)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    sock = listen(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host

    async def serve() -> None:
        async with storage:
            print(
                f"backburner dashboard on http://{host}:{args.port}/ "
                "(Ctrl-C to stop)",
                flush=True,
            )
            await server.serve(sockets=[sock])

    with sock:
        asyncio.run(serve())

    asyncio.run(serve())
    return EXIT_OK
