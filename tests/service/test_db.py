"""The Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from veracity.service.db import current_revision, head_revision, make_engine, migrate
from veracity.service.models import Base


def test_migrations_match_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert diff == []
    assert mode == "wal"


def test_migrations_ship_inside_the_package() -> None:
    from veracity.service import db

    assert (db.MIGRATIONS / "env.py").is_file()
    assert any(p.name.startswith("0001_") for p in (db.MIGRATIONS / "versions").iterdir())
