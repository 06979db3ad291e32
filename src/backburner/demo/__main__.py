"""``python -m backburner.demo``: serve the demo with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

try:
    import uvicorn

    from backburner.demo.app import build_app
except ImportError as exc:  # pragma: no cover - depends on the install
    # A clear message instead of a traceback: the demo needs packages
    # that backburner itself does not.
    sys.exit(
        f"the demo needs FastAPI and uvicorn ({exc.name} is missing): "
        "pip install fastapi uvicorn, or run `make demo`"
    )

HOST_ENV = "BACKBURNER_DEMO_HOST"
PORT_ENV = "BACKBURNER_DEMO_PORT"

_log = logging.getLogger("backburner.demo")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a port number: {text!r}"
        ) from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line; defaults come from the environment.

    Raises:
        SystemExit: bad arguments (after printing the usage), or
            ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m backburner.demo",
        description=(
            "Serve the backburner request-cancellation demo: a page "
            "that starts slow requests and aborts them, with a live log "
            "of what the server did."
        ),
    )
    parser.add_argument(
        "--host",
        default=os.environ.get(HOST_ENV, "127.0.0.1"),
        help=f"address to listen on (env {HOST_ENV}; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=os.environ.get(PORT_ENV, "8000"),
        help=f"port to listen on (env {PORT_ENV}; default 8000)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until Ctrl+C.

    Raises:
        SystemExit: bad arguments, or ``--help``.
    """
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    _log.info(
        "backburner demo: open http://%s:%d/ in a browser; "
        "press Ctrl+C to stop",
        host,
        args.port,
    )
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
