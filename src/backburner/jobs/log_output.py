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
(:func:`logging.shutdown` closes the handler). A process forked from
one that set the handler up has no writer thread: there, each line is
written at once by the thread that logs it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import TextIO

from backburner._text import one_line

__all__ = ["BackgroundLogHandler"]

_STOP = None  # put on the queue by close(): the writer thread ends
_Item = logging.LogRecord | threading.Event | None
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
        # Records, and the events flush() waits on, in order.
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closed = False
        # Set in a process forked from this one, which has no writer
        # thread: there each line is written by the thread that logs it.
        self._inline = False
        self._thread = threading.Thread(
            target=self._write_forever,
            name="backburner-log-writer",
            daemon=True,
        )
        self._thread.start()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._inline = True
        self._queue = queue.SimpleQueue()  # the parent's lines are its own

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; its message is fixed now, the rest later."""
        try:
            record.msg = record.getMessage()
            record.args = None
        except Exception:  # noqa: BLE001 - logging's own error report
            self.handleError(record)
            return
        if self._inline:
            self._write([record])
        elif not self._closed:
            self._queue.put(record)

    def flush(self) -> None:
        """Wait until the lines queued so far are written (up to 5 s)."""
        if self._closed or self._inline:
            return
        if self._thread is threading.current_thread():
            return
        written = threading.Event()
        self._queue.put(written)
        written.wait(5.0)

    def close(self) -> None:
        """Write what is queued, stop the writer thread, and detach."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            writer = self._thread
            # After a fork the writer is the parent's: not alive here.
            if writer.is_alive() and writer is not threading.current_thread():
                writer.join(5.0)
        super().close()

    def _write_forever(self) -> None:
        while True:
            records = []
            item = self._queue.get()
            while True:
                if isinstance(item, logging.LogRecord):
                    records.append(item)
                else:
                    # Everything queued before it goes out first.
                    self._write(records)
                    records = []
                    if item is _STOP:
                        return
                    item.set()
                if len(records) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(records)

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


class _LineFormatter(logging.Formatter):
    """:data:`LINE_FORMAT`, its date and time of day made once a second.

    Used by one writer thread only: the cache needs no lock.
    """

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        # A job's failure message is the application's text: a newline in
        # it would forge a line of its own, and terminal escapes would
        # reach whoever reads the log. Tracebacks keep their lines.
        if not record.message.isprintable():
            record.message = one_line(record.message)
        return super().formatMessage(record)

    def formatTime(  # noqa: N802 - logging's name
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            when = self.converter(record.created)
            self._stamp = time.strftime(self.default_time_format, when)
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


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
    handler.setFormatter(_LineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return True
