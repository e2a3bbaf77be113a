"""A deployment: settings plus the services they select (database, keys, blob store, tasks).

This is the one place where configuration picks implementations; everything else receives
a `Deployment` and talks to the interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from earshot.config import Settings, load_settings
from earshot.database import Database
from earshot.vault.blobstore import BlobStore, blob_store_for
from earshot.vault.keys import KeyProvider, key_provider_for
from earshot.vault.services import Vault

if TYPE_CHECKING:
    from earshot.pipeline.tasks import TaskRunner


@dataclass
class Deployment:
    settings: Settings
    db: Database
    keys: KeyProvider
    blobs: BlobStore
    vault: Vault
    _runner: TaskRunner | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Deployment:
        """Create the data dir if needed, bring the schema up to date, wire the services."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        if migrate:
            db.migrate()
        keys = key_provider_for(settings)
        blobs = blob_store_for(settings)
        deployment = cls(settings=settings, db=db, keys=keys, blobs=blobs, vault=Vault(keys, blobs))
        from earshot.audit.context import install

        install(deployment)  # audit records written through this engine get MACs and checkpoints
        return deployment

    @classmethod
    def at(cls, data_dir: Path | str | None = None, **overrides: object) -> Deployment:
        return cls.open(load_settings(data_dir, **overrides))

    @property
    def runner(self) -> TaskRunner:
        """The task runner (in-process or Celery) chosen by `settings.task_runner`."""
        if self._runner is None:
            from earshot.pipeline.tasks import runner_for

            self._runner = runner_for(self)
        return self._runner

    @cached_property
    def pseudonym_key(self) -> bytes:
        return self.keys.secret("customer-pseudonym")

    def close(self) -> None:
        """Stop the audit sequencer thread (it holds the engine) and close every connection."""
        from earshot.audit.context import stop_sequencer

        stop_sequencer(self.db.engine)
        self.db.dispose()
