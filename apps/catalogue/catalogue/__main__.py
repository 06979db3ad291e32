"""``python -m catalogue``: serve the reference app with uvicorn.

Settings come from the environment (see :mod:`catalogue.settings`).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from catalogue.app import create_app
from catalogue.settings import Settings, SettingsError


def main() -> int:
    """Serve until Ctrl-C; return the exit code."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins at INFO; the migrations it
    # runs are still logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        settings = Settings.from_environment()
    except SettingsError as error:
        print(f"catalogue: {error}", file=sys.stderr)
        return 2
    app = create_app(settings)
    mode = "development" if settings.development else "production"
    logging.getLogger("catalogue").info(
        "catalogue (%s) at http://%s:%d/ - job dashboard at /jobs",
        mode,
        settings.host,
        settings.port,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the format configured above
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
