"""``python -m backburner`` and the ``backburner`` script: the command.

Both enter through :func:`run`, which imports the command's code only
once it can catch a Ctrl-C: the imports take a tenth of a second, and an
interrupt during them would otherwise print a traceback of whatever
module was loading.
"""

from __future__ import annotations

import sys

# As backburner.cli.failures.EXIT_INTERRUPTED, which cannot be imported
# before the interrupt is caught.
EXIT_INTERRUPTED = 130


def run() -> int:
    """Run the ``backburner`` command; return its exit code."""
    try:
        from backburner.cli import main

        code = main()
        # Done. A worker stops on Ctrl-C without an interrupt: pressed
        # again as the process exits, it must not end in one either.
        _ignore_further_interrupts()
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        sys.stderr.write("backburner: interrupted\n")
        return EXIT_INTERRUPTED
    return code


def _ignore_further_interrupts() -> None:
    """Ignore Ctrl-C from now on: the command is ending.

    Pressed now, it would only interrupt the report or Python's exit
    (its wait for threads, its exit hooks) with a traceback.
    """
    # Loaded by the command's imports by then, unless the first Ctrl-C
    # came early in them: a second one during this import still wins.
    import signal

    # run() is the script's, in the main thread: it may set handlers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(run())
