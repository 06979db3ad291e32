"""A private PostgreSQL cluster that a test may stop and start at will.

The machine's PostgreSQL is shared with every other test run, so a test
that restarts the database gets a cluster of its own instead:
``initdb`` into a temporary directory, ``pg_ctl start`` on a free port
of 127.0.0.1 with its unix socket in that directory, trust
authentication, and everything removed at the end.

PostgreSQL refuses to run as root: as root, every command runs as the
``postgres`` user (``runuser``), in a directory that user owns. The
binaries are found through ``BACKBURNER_TEST_PG_BIN``, ``pg_config
--bindir`` or ``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_BIN_ENV = "BACKBURNER_TEST_PG_BIN"


def find_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, if any."""
    candidates = []
    if os.environ.get(_BIN_ENV):
        candidates.append(os.environ[_BIN_ENV])
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True
        )
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """One PostgreSQL cluster in a temporary directory.

    Args:
        bin_dir: where ``initdb`` and ``pg_ctl`` live.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="backburner-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """A libpq URL of the cluster's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self._as_postgres, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{argv[0]} failed ({done.returncode}): {done.stderr}\n"
                f"{log[-2000:]}"
            )

    def init(self) -> None:
        """Create the cluster: trust authentication, no fsync at init."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} "
            "-c listen_addresses=127.0.0.1 -c max_connections=100"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back, disconnect everyone)."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "stop",
        )

    def remove(self) -> None:
        """Stop the server if it runs, and delete every file."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A started cluster of this test's own, removed afterwards.

    Skipped when PostgreSQL's server binaries are not installed, except
    in CI (``CI`` set), where that fails the test.
    """
    bin_dir = find_bin()
    if bin_dir is None:
        message = (
            f"PostgreSQL server binaries not found; set {_BIN_ENV} to "
            "the directory holding initdb and pg_ctl"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = PrivateCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
