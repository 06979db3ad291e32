"""Configuration, read from the environment.

- ``CATALOGUE_ENV``: ``development`` (default) or ``production``, which
  turns off the outbox, the local SMS and SMTP stand-ins, the
  slow-search knob and the demo admin, and requires a secret key.
- ``CATALOGUE_DATA_DIR``: databases, exports and the development
  secret (default ``apps/catalogue/var``).
- ``CATALOGUE_DATABASE_URL``: the catalogue's SQLAlchemy async URL
  (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``...); default a
  SQLite file in the data dir.
- ``BACKBURNER_STORAGE``: the job storage URL (``sqlite:///...``,
  ``postgresql://...``); default a SQLite file in the data dir.
- ``CATALOGUE_RUN_WORKER``: ``1`` (default) runs the job server inside
  the web process; ``0`` leaves it to ``backburner worker``.
- ``CATALOGUE_HOST``, ``CATALOGUE_PORT``: where ``python -m catalogue``
  listens (``127.0.0.1:8000``).
- ``CATALOGUE_SECRET_KEY``: signs session tokens (generated and kept in
  the data dir in development).
- ``CATALOGUE_OTP_HOST``: the ``@host`` of the SMS Web OTP line.
- ``CATALOGUE_TWILIO_ACCOUNT_SID``, ``_AUTH_TOKEN``, ``_FROM``,
  ``_BASE_URL``: Twilio credentials, sender, and the origin requests go
  to (in development the app's own stand-in at ``/dev/twilio``).
- ``CATALOGUE_SMTP_HOST``, ``_PORT``, ``_FROM``: the SMTP server (in
  development a sink on ``127.0.0.1:8025`` that the app runs).
- ``CATALOGUE_EXPORT_PACE``: pause per export batch in seconds (0.2 in
  development, so that progress can be watched on a small catalogue).

A worker started with ``backburner worker --import catalogue.jobs``
reads the same variables, so both processes agree on the databases,
the SMTP server and the Twilio endpoint.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]

_DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "var"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """The environment holds a value the app cannot use."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name)
    if text is None or text == "":
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be 0 or 1, not {text!r}")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {text!r}") from None
    if value < 0:
        raise SettingsError(f"{name} cannot be negative")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the app and its jobs need to know about their place.

    Attributes:
        development: local stand-ins instead of Twilio and SMTP servers,
            an outbox page, a demo admin, a slow-search knob.
        data_dir: where the SQLite files, exports and secret live.
        database_url: the catalogue's own database (SQLAlchemy async).
        storage_url: the job storage.
        run_worker: run the job server inside the web process.
        host, port: where ``python -m catalogue`` listens.
        secret_key: signs session tokens.
        otp_host: the origin host named in the SMS Web OTP line.
        twilio_account_sid, twilio_auth_token, twilio_from: Twilio
            credentials and the sending number.
        twilio_base_url: replaces ``https://api.twilio.com`` in Twilio
            requests (the local stand-in in development), or ``None``.
        smtp_host, smtp_port, smtp_from: the SMTP server and sender.
        export_pace: pause per export batch, in seconds.
        code_lifetime: seconds a confirmation code stays valid.
        code_interval: seconds a user waits between two codes.
    """

    development: bool = True
    data_dir: Path = _DEFAULT_DATA_DIR
    database_url: str = ""
    storage_url: str = ""
    run_worker: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    otp_host: str = ""
    twilio_account_sid: str = "ACdevelopment"
    twilio_auth_token: str = "development"
    twilio_from: str = "+15005550006"
    twilio_base_url: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "catalogue@localhost"
    export_pace: float = 0.2
    code_lifetime: float = 120.0
    code_interval: float = 30.0

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.data_dir / 'catalogue.db'}"
            object.__setattr__(self, "database_url", url)
        if not self.storage_url:
            url = f"sqlite:///{self.data_dir / 'jobs.db'}"
            object.__setattr__(self, "storage_url", url)
        if not self.otp_host:
            object.__setattr__(self, "otp_host", self.host)
        if self.twilio_base_url is None and self.development:
            url = f"http://{self.host}:{self.port}/dev/twilio"
            object.__setattr__(self, "twilio_base_url", url)

    @property
    def exports_dir(self) -> Path:
        """Where finished exports are kept."""
        return self.data_dir / "exports"

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the settings from ``env`` (default ``os.environ``).

        In development without ``CATALOGUE_SECRET_KEY`` a key is made
        once and kept in the data dir, so sessions survive restarts.

        Raises:
            SettingsError: a value cannot be used, or production runs
                without a secret key.
        """
        env = os.environ if env is None else env
        kind = env.get("CATALOGUE_ENV", "development")
        if kind not in ("development", "production"):
            raise SettingsError(
                f"CATALOGUE_ENV must be development or production, "
                f"not {kind!r}"
            )
        development = kind == "development"
        data_dir = Path(env.get("CATALOGUE_DATA_DIR") or _DEFAULT_DATA_DIR)
        secret = env.get("CATALOGUE_SECRET_KEY", "")
        if not secret:
            if not development:
                raise SettingsError("production needs CATALOGUE_SECRET_KEY")
            secret = _development_secret(data_dir)
        host = env.get("CATALOGUE_HOST", "127.0.0.1")
        return cls(
            development=development,
            data_dir=data_dir,
            database_url=env.get("CATALOGUE_DATABASE_URL", ""),
            storage_url=env.get("BACKBURNER_STORAGE", ""),
            run_worker=_flag(env, "CATALOGUE_RUN_WORKER", True),
            host=host,
            port=int(_number(env, "CATALOGUE_PORT", 8000)),
            secret_key=secret,
            otp_host=env.get("CATALOGUE_OTP_HOST", ""),
            twilio_account_sid=env.get(
                "CATALOGUE_TWILIO_ACCOUNT_SID", cls.twilio_account_sid
            ),
            twilio_auth_token=env.get(
                "CATALOGUE_TWILIO_AUTH_TOKEN", cls.twilio_auth_token
            ),
            twilio_from=env.get("CATALOGUE_TWILIO_FROM", cls.twilio_from),
            twilio_base_url=env.get("CATALOGUE_TWILIO_BASE_URL") or None,
            smtp_host=env.get("CATALOGUE_SMTP_HOST", cls.smtp_host),
            smtp_port=int(_number(env, "CATALOGUE_SMTP_PORT", 8025)),
            smtp_from=env.get("CATALOGUE_SMTP_FROM", cls.smtp_from),
            export_pace=_number(
                env, "CATALOGUE_EXPORT_PACE", 0.2 if development else 0.0
            ),
        )


def _development_secret(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting together agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret
