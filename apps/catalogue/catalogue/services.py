"""What request handlers and job runners share: one bundle per process.

The web process builds one :class:`Services` in its lifespan; a job
server started with ``backburner worker --import catalogue.jobs`` builds
its own from the same environment the first time a runner needs it
(see :mod:`catalogue.jobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from backburner.jobs import Client
from backburner.storage import Storage, open_storage
from catalogue.database import Database
from catalogue.settings import Settings

__all__ = ["Services"]


@dataclass(eq=False)
class Services:
    """Settings, the catalogue database and the job client.

    Attributes:
        settings: the configuration.
        db: the catalogue's database.
        storage: the job storage.
        client: creates and reads jobs.
    """

    settings: Settings
    db: Database
    storage: Storage
    client: Client

    @classmethod
    async def open(
        cls, settings: Settings, storage: Storage | None = None
    ) -> Services:
        """Open both databases and bring both schemas up to date.

        Args:
            settings: the configuration.
            storage: the job storage, if already open (it is then still
                migrated, and closed by :meth:`close`).

        Raises:
            StorageError: the job storage is unreachable.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        await db.migrate()
        if storage is None:
            storage = open_storage(settings.storage_url)
        await storage.migrate()
        return cls(settings, db, storage, Client(storage))

    async def close(self) -> None:
        """Close both databases."""
        await self.storage.close()
        await self.db.close()
