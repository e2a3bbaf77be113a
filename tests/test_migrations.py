"""The Alembic migrations build exactly the schema the models describe, on each database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from earshot.database import Base, import_all_models


def test_migrations_match_models(deployment) -> None:
    import_all_models()
    with deployment.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; run scripts/regen_migration.sh: {diff[:5]}"


def test_migrate_is_idempotent(deployment) -> None:
    deployment.db.migrate()
    deployment.db.migrate()
