"""``python -m backburner``: the ``backburner`` command."""

from backburner.cli import main

raise SystemExit(main())
