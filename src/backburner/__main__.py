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

        return main()
    except KeyboardInterrupt:
        sys.stderr.write("backburner: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(run())
