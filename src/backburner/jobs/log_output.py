"""Log lines written by a thread of their own, in batches.

A busy server logs two lines per job (its start and its end). Written by
a plain :class:`logging.StreamHandler`, each line is formatted and sent
with its own ``write`` system call on the thread that logged it: for
``async def`` jobs that is the event loop, which then runs fewer jobs.
:class:`BackgroundLogHandler` takes the record's message on the calling
thread (so later changes to the arguments cannot alter it) and leaves
the rest to one writer thread: the time stamp, the traceback, and the
output, where every line waiting at that moment goes out in one write.

Known limit: a line reaches its stream a little after the call that
logged it (usually well under a millisecond), and lines still queued are
lost if the process is killed with SIGKILL. A normal exit, including
``sys.exit`` and an unhandled exception, writes them first
(:func:`logging.shutdown` closes the handler).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TextIO

__all__ = ["BackgroundLogHandler"]

_STOP = None  # put on the queue by close(): the writer thread ends
_MAX_BATCH = 1000


class BackgroundLogHandler(logging.Handler):
    """Formats and writes records to ``stream`` on a writer thread.

    Args:
        stream: where the lines go (``sys.stderr``, an open file).
        level: the handler's level.
    """

    def __init__(self, stream: TextIO, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.stream = stream
        self._records: queue.SimpleQueue[logging.LogRecord | None] = (
            queue.SimpleQueue()
        )
        # Lines queued but not yet written; flush() waits for none.
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._thread = threading.Thread(
            target=self._write_forever,
            name="backburner-log-writer",
            daemon=True,
        )
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; its message is fixed now, the rest later."""
        try:
            record.msg = record.getMessage()
            record.args = None
        except Exception:  # noqa: BLE001 - logging's own error report
            self.handleError(record)
            return
        if self._closed:
            return
        with self._pending_lock:
            self._pending += 1
            self._idle.clear()
        self._records.put(record)

    def flush(self) -> None:
        """Wait until every queued line has been written (up to 5 s)."""
        if self._thread.is_alive():
            self._idle.wait(5.0)

    def close(self) -> None:
        """Write what is queued, stop the writer thread, and detach."""
        if not self._closed:
            self._closed = True
            self._records.put(_STOP)
            if self._thread is not threading.current_thread():
                self._thread.join(5.0)
        super().close()

    def _write_forever(self) -> None:
        while True:
            batch = [self._records.get()]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            records = [record for record in batch if record is not None]
            self._write(records)
            with self._pending_lock:
                self._pending -= len(records)
                if self._pending <= 0:
                    self._idle.set()
            if len(records) < len(batch):
                return

    def _write(self, records: list[logging.LogRecord]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - logging's own error report
                self.handleError(record)
        if not lines:
            return
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:  # noqa: BLE001 - logging's own error report
            self.handleError(records[-1])


LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How the server's default set-up lays out a line."""


def log_to(stream: TextIO) -> bool:
    """Send INFO lines and above to ``stream``, unless logging is set up.

    What the server does when run from the command line: an application
    that configured logging itself (a handler on the root logger) keeps
    its own set-up.

    Returns:
        True if a :class:`BackgroundLogHandler` was installed.
    """
    root = logging.getLogger()
    if root.handlers:
        return False
    handler = BackgroundLogHandler(stream)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return True
