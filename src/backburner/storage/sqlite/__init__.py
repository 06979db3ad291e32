"""SQLite storage: one file, WAL mode, several processes on one machine.

What SQLite cannot do, and what it costs:

- One machine only. The file must be on a local disk: WAL needs shared
  memory between the processes, which network file systems do not give.
- One writer at a time. Write transactions are short (a batch of fetches
  or outcomes each), and writers queue behind a busy timeout; throughput
  is bounded by one core doing the writes.
- No notifications between processes. Listeners hear about changes
  made through any storage on the same file *in this process* at once.
  Jobs enqueued by other processes are heard within about 10 ms: while
  anyone listens, a thread reads ``PRAGMA data_version`` (which changes
  when another connection commits) a hundred times a second, about 1%
  of a core when idle. Aborts made by other processes are not heard
  this way; the server's abort check finds them.
- A small enqueue may block the event loop for one short transaction:
  it runs on the calling thread when the storage thread is idle and the
  write lock is free at once (never waiting for a lock there), which
  halves its cost. Its connection leaves checkpoints to the storage
  thread, so the WAL grows to about 16 MB between restarts.
  ``inline_enqueue=False`` (URL: ``?inline_enqueue=false``) turns it
  off.
- ``synchronous=NORMAL`` in WAL mode: a committed transaction survives a
  crash of the process, but the last transactions before a power cut or
  an operating-system crash may be lost.
"""

from backburner.storage.sqlite.storage import SQLiteStorage, open_url

__all__ = ["SQLiteStorage", "open_url"]
