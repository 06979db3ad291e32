"""Settings, migrations and log masks: the parts around the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from catalogue.database import Database
from catalogue.models import Base
from catalogue.privacy import mask_email, mask_phone
from catalogue.settings import Settings, SettingsError


def test_the_environment_configures_everything(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {
            "CATALOGUE_DATA_DIR": str(tmp_path),
            "CATALOGUE_DATABASE_URL": "postgresql+asyncpg://db/catalogue",
            "BACKBURNER_STORAGE": "postgresql://db/jobs",
            "CATALOGUE_RUN_WORKER": "0",
            "CATALOGUE_PORT": "8080",
            "CATALOGUE_SECRET_KEY": "s3cret",
        }
    )
    assert settings.development
    assert settings.database_url == "postgresql+asyncpg://db/catalogue"
    assert settings.storage_url == "postgresql://db/jobs"
    assert settings.run_worker is False
    assert settings.twilio_base_url == "http://127.0.0.1:8080/dev/twilio"
    assert settings.otp_host == "127.0.0.1"


def test_development_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    first = Settings.from_environment({"CATALOGUE_DATA_DIR": str(tmp_path)})
    again = Settings.from_environment({"CATALOGUE_DATA_DIR": str(tmp_path)})
    assert first.secret_key == again.secret_key  # kept across restarts
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert str(tmp_path / "catalogue.db") in first.database_url
    assert first.storage_url == f"sqlite:///{tmp_path / 'jobs.db'}"


def test_production_needs_a_secret_and_talks_to_twilio(
    tmp_path: Path,
) -> None:
    env = {"CATALOGUE_ENV": "production", "CATALOGUE_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="CATALOGUE_SECRET_KEY"):
        Settings.from_environment(env)
    settings = Settings.from_environment({**env, "CATALOGUE_SECRET_KEY": "k"})
    assert settings.twilio_base_url is None  # the real api.twilio.com
    assert settings.export_pace == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CATALOGUE_ENV", "staging"),
        ("CATALOGUE_RUN_WORKER", "maybe"),
        ("CATALOGUE_PORT", "eighty"),
        ("CATALOGUE_EXPORT_PACE", "-1"),
    ],
)
def test_unusable_values_are_refused_by_name(
    tmp_path: Path, name: str, value: str
) -> None:
    env = {"CATALOGUE_DATA_DIR": str(tmp_path), name: value}
    with pytest.raises(SettingsError, match=name):
        Settings.from_environment(env)


async def test_the_migrations_build_exactly_the_models(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        await db.migrate()
        await db.migrate()  # a second start changes nothing

        def differences(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, Base.metadata))

        async with db.engine.connect() as connection:
            found = await connection.run_sync(differences)
    finally:
        await db.close()
    assert found == []


def test_logs_see_masked_phone_numbers_and_addresses() -> None:
    assert mask_phone("+4915112345678") == "+49*********78"
    assert mask_phone("+1") == "**"
    assert mask_email("ann.lee@example.com") == "a******@example.com"
    assert mask_email("a@example.com") == "a*@example.com"
    assert mask_email("broken") == "******"
