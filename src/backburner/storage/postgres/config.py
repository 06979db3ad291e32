"""Reading a ``postgresql://`` storage URL into connection settings."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from backburner.storage.base import InvalidStorageURLError

_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_DEFAULT_SCHEMA = "jobs"
# Seconds libpq waits for a connection when the URL does not say: its
# own default is forever, so an unreachable host would hang every call
# (and every CLI command) until the operating system gives up.
DEFAULT_CONNECT_TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """Where and how a :class:`PostgresStorage` connects.

    ``conninfo`` is what libpq gets (the URL without the options that
    backburner reads itself); ``schema`` holds every table;
    ``pool_timeout`` is how many seconds a call waits for a connection
    (while the database is unreachable, say) before it fails;
    ``connect_timeout`` (libpq's option, in ``conninfo``: 5 seconds unless
    the URL says otherwise) bounds one connection attempt; the first use
    of a storage that cannot connect fails after one attempt. ``upkeep``
    lets servers analyze the schema's tables (and vacuum its small busy
    ones) when autovacuum has not; see :mod:`.upkeep`. ``url`` is the
    storage URL as given, for messages (shown with
    :func:`redact`): ``conninfo`` holds options the user did not write.
    """

    conninfo: str
    schema: str = _DEFAULT_SCHEMA
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 10.0
    upkeep: bool = True
    url: str = ""

    @property
    def shown(self) -> str:
        """Where this storage connects, as the user wrote it, without
        passwords: for messages."""
        return redact(self.url or self.conninfo)

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this schema."""
        return f"backburner_{self.schema}"


def redact(url: str) -> str:
    """Return ``url`` with any password (user info or option) as ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{host}")
    options = query_options(parts.query)
    if any(key == "password" for key, _ in options):
        hidden = [
            (key, "***" if key == "password" else value)
            for key, value in options
        ]
        parts = parts._replace(query=query_string(hidden, safe="*"))
    return join_url(parts)


def join_url(parts: urllib.parse.SplitResult) -> str:
    """``parts`` as a URL that keeps its ``//`` when the host is empty.

    ``urlunsplit`` writes ``postgresql:///db?host=/run/postgresql`` (a
    Unix socket, named in the query) as ``postgresql:/db?...``, which
    libpq does not read as a URL at all.
    """
    url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.query:
        url += f"?{parts.query}"
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


def query_options(query: str) -> list[tuple[str, str]]:
    """Split a URL query the way libpq does.

    libpq decodes ``%XX`` escapes only: a ``+`` stays a ``+`` (Python's
    form decoding would make it a space), so ``options=-c%20a%3Db``
    and ``options=-c+a`` mean to backburner what they mean to libpq.
    """
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append(
                (urllib.parse.unquote(key), urllib.parse.unquote(value))
            )
    return pairs


def query_string(pairs: list[tuple[str, str]], safe: str = "") -> str:
    # Spaces as %20, never "+": libpq would pass a "+" on as it is.
    return urllib.parse.urlencode(
        pairs, safe=safe, quote_via=urllib.parse.quote
    )


def _positive_int(key: str, value: str, url: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidStorageURLError(
            f"{key} must be a positive whole number, got {value!r} in "
            f"{redact(url)!r}"
        )
    return number


def _positive_seconds(key: str, value: str, url: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InvalidStorageURLError(
            f"{key} must be a positive number of seconds, got {value!r} "
            f"in {redact(url)!r}"
        )
    return seconds


def _flag(key: str, value: str, url: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InvalidStorageURLError(
        f"{key} must be true or false, got {value!r} in {redact(url)!r}"
    )


def _check_ports(hosts: str, url: str) -> None:
    """Refuse a port that is not a number from 1 to 65535.

    libpq would take it only when it connects, so a command given such a
    URL failed as an unreachable database instead of a bad URL. Several
    hosts (``h1:5432,h2:5433``) are checked one by one.
    """
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":")
        if not colon or name.endswith(":") or port.endswith("]"):
            continue  # no port, or the colons of an IPv6 address
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidStorageURLError(
                f"port {port!r} is not a number from 1 to 65535 in "
                f"{redact(url)!r}"
            )


def _check_with_libpq(conninfo: str, url: str) -> None:
    """Refuse what libpq's own parser refuses (an unknown option).

    Parsing costs no connection; without it the mistake showed only
    when the first call failed to connect.
    """
    import psycopg
    from psycopg import pq

    try:
        pq.Conninfo.parse(conninfo.encode())
    except psycopg.Error as error:
        reason = str(error).strip() or type(error).__name__
        raise InvalidStorageURLError(f"{reason} in {redact(url)!r}") from None


def parse_url(url: str) -> PostgresSettings:
    """Read ``postgresql://user@host:port/db?schema=jobs&pool_max_size=10``.

    backburner reads ``schema`` (default ``jobs``: lower-case letters,
    digits and ``_``, at most 40), ``pool_min_size``, ``pool_max_size``,
    ``pool_timeout`` (seconds) and ``upkeep`` (``true`` or ``false``);
    every other query option (``sslmode``, ``connect_timeout``,
    ``application_name``...) goes to libpq as is. ``connect_timeout`` is
    set to 5 seconds when absent.

    Raises:
        InvalidStorageURLError: the scheme is not ``postgresql`` or
            ``postgres``, the user name or password holds an unescaped
            ``@``, the schema name is not allowed, or a pool size
            or timeout is not a positive number, or ``upkeep`` is not
            a truth value, a port is not a number from 1 to 65535, or
            libpq refuses an option (an unknown one, say).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise InvalidStorageURLError(f"not a PostgreSQL URL: {redact(url)!r}")
    if parts.netloc.count("@") > 1:
        # Python splits the user information at the last "@", libpq at the
        # first: the rest of the password would become the host name
        # (shown in libpq's error, and looked up in DNS).
        host = parts.netloc.rpartition("@")[2]
        raise InvalidStorageURLError(
            "the user name or password of the storage URL for "
            f"{host!r} contains '@': write it as %40"
        )
    options = query_options(parts.query)
    kept: list[tuple[str, str]] = []
    schema = _DEFAULT_SCHEMA
    pool_min, pool_max = 1, 10
    pool_timeout = 10.0
    tend = True
    for key, value in options:
        if key == "schema":
            schema = value
        elif key == "pool_min_size":
            pool_min = _positive_int(key, value, url)
        elif key == "pool_max_size":
            pool_max = _positive_int(key, value, url)
        elif key == "pool_timeout":
            pool_timeout = _positive_seconds(key, value, url)
        elif key == "upkeep":
            tend = _flag(key, value, url)
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidStorageURLError(
            f"schema name {schema!r} is not allowed: use lower-case "
            "letters, digits and '_' (at most 40, not starting with a "
            "digit)"
        )
    if pool_min > pool_max:
        raise InvalidStorageURLError(
            f"pool_min_size ({pool_min}) is larger than pool_max_size "
            f"({pool_max})"
        )
    if not any(key == "connect_timeout" for key, _ in kept):
        kept.append(("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT)))
    _check_ports(parts.netloc.rpartition("@")[2], url)
    conninfo = join_url(
        parts._replace(scheme="postgresql", query=query_string(kept))
    )
    _check_with_libpq(conninfo, url)
    return PostgresSettings(
        conninfo=conninfo,
        schema=schema,
        pool_min_size=pool_min,
        pool_max_size=pool_max,
        pool_timeout=pool_timeout,
        upkeep=tend,
        url=url,
    )
