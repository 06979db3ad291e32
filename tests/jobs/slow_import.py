"""A module whose import takes long: its server process is still starting.

Importing it notes the process id in the file named by
``BACKBURNER_TEST_IMPORT_MARKER``, then sleeps.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

with Path(os.environ["BACKBURNER_TEST_IMPORT_MARKER"]).open("a") as marker:
    marker.write(f"{os.getpid()}\n")
time.sleep(60)
