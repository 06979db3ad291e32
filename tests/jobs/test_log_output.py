"""Log lines written off the event loop by a thread of their own."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from backburner.jobs import log_output
from backburner.jobs.log_output import BackgroundLogHandler, log_to

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, BackgroundLogHandler]]:
    stream = io.StringIO()
    handler = BackgroundLogHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("backburner.test-log-output")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)
    handler.close()


def text_of(handler: BackgroundLogHandler) -> str:
    handler.flush()
    stream = handler.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_lines_come_out_in_order_once_flushed(
    logged: tuple[logging.Logger, BackgroundLogHandler],
) -> None:
    logger, handler = logged

    for number in range(500):
        logger.info("job %d started", number)

    lines = text_of(handler).splitlines()
    assert lines == [f"INFO job {n} started" for n in range(500)]


def test_the_message_is_fixed_when_logged_not_when_written(
    logged: tuple[logging.Logger, BackgroundLogHandler],
) -> None:
    logger, handler = logged
    facts = ["before"]

    logger.info("facts: %s", facts)
    facts[0] = "after"

    assert text_of(handler) == "INFO facts: ['before']\n"


def test_an_exception_is_written_with_its_traceback(
    logged: tuple[logging.Logger, BackgroundLogHandler],
) -> None:
    logger, handler = logged

    try:
        raise ValueError("never works")
    except ValueError:
        logger.exception("job 7 failed for good")

    text = text_of(handler)
    assert text.startswith("ERROR job 7 failed for good\nTraceback")
    assert "ValueError: never works" in text


def test_closing_writes_what_is_queued_and_later_lines_are_dropped() -> None:
    stream = io.StringIO()
    handler = BackgroundLogHandler(stream)
    record = logging.LogRecord("x", logging.INFO, "", 0, "one", None, None)

    handler.handle(record)
    handler.close()
    handler.handle(record)

    assert stream.getvalue() == "one\n"


def test_lines_logged_just_before_exit_are_written() -> None:
    code = (
        "import logging, sys\n"
        "from backburner.jobs.log_output import log_to\n"
        "log_to(sys.stderr)\n"
        "for n in range(200):\n"
        "    logging.getLogger('backburner.server').info('job %d', n)\n"
        "sys.exit(3)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 200
    assert lines[-1].endswith("INFO backburner.server: job 199")


def test_an_application_that_set_up_logging_keeps_its_own() -> None:
    root = logging.getLogger()
    mine = logging.NullHandler()
    root.addHandler(mine)
    try:
        before = list(root.handlers)

        assert log_to(io.StringIO()) is False

        assert root.handlers == before
    finally:
        root.removeHandler(mine)


def test_the_default_lines_read_as_logging_would_write_them() -> None:
    ours = log_output._LineFormatter()
    standard = logging.Formatter(log_output.LINE_FORMAT)
    for created in (1_700_000_000.5, 1_700_000_000.9995, 1_700_000_001.0):
        record = logging.LogRecord(
            "backburner.server", logging.INFO, "", 0, "job 1", None, None
        )
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0

        assert ours.format(record) == standard.format(record)


def test_a_forked_process_writes_its_lines_itself() -> None:
    code = (
        "import logging, os, sys\n"
        "from backburner.jobs.log_output import log_to\n"
        "log_to(sys.stderr)\n"
        "log = logging.getLogger('backburner.server')\n"
        "log.info('parent')\n"
        "logging.getLogger().handlers[0].flush()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    log.info('child')\n"
        "    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "log.info('parent again')\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=4,  # a child waiting for a writer it lacks takes 5 s
        check=False,
    )

    assert done.returncode == 0
    endings = [line.rsplit(": ", 1)[-1] for line in done.stderr.splitlines()]
    assert endings == ["parent", "child", "parent again"]


def test_control_characters_in_a_message_stay_on_its_line() -> None:
    stream = io.StringIO()
    handler = BackgroundLogHandler(stream)
    handler.setFormatter(log_output._LineFormatter())
    record = logging.LogRecord(
        "backburner.server",
        logging.ERROR,
        "",
        0,
        "job 7 failed: %s",
        ("ValueError: one\nFAKE LINE \x1b[31mred\r",),
        None,
    )

    handler.handle(record)
    handler.close()

    (line,) = stream.getvalue().splitlines()
    assert line.endswith(
        "job 7 failed: ValueError: one\\nFAKE LINE \\x1b[31mred\\r"
    )
