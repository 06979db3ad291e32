"""SQLite storage: one file, WAL mode, several processes on one machine.

What SQLite cannot do, and what it costs:

- One machine only. The file must be on a local disk: WAL needs shared
  memory between the processes, which network file systems do not give.
- One writer at a time. Write transactions are short (a batch of fetches
  or outcomes each), and writers queue behind a busy timeout; throughput
  is bounded by one core doing the writes.
- No cross-process notifications. Listeners hear about changes made
  through any storage on the same file *in this process* at once; other
  processes find new jobs when they next poll (the server's poll
  interval, half a second by default).
- ``synchronous=NORMAL`` in WAL mode: a committed transaction survives a
  crash of the process, but the last transactions before a power cut or
  an operating-system crash may be lost.
"""

from backburner.storage.sqlite.storage import SQLiteStorage, open_url

__all__ = ["SQLiteStorage", "open_url"]
