"""The consent registry on SQLAlchemy: add, list, show, revoke, check; the tables are reusable."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from veracity.config import Settings
from veracity.errors import ConfigError, ConsentNotFound, ConsentRefused, SourceNotFound
from veracity.provenance.consent import ConsentStore, metadata


def test_lifecycle(settings: Settings, evidence: Path) -> None:
    store = ConsentStore.open(settings)
    try:
        later = dt.datetime(2099, 1, 1)  # naive: taken as UTC
        rec = store.add(
            subject=" Alice ", scopes="Voice, likeness", granted_by="Alice", evidence=evidence, expires_at=later
        )
        assert rec.subject == "Alice" and rec.scopes == ("voice", "likeness")
        assert rec.evidence_sha256 == hashlib.sha256(evidence.read_bytes()).hexdigest()
        assert rec.expires_at == later.replace(tzinfo=dt.UTC) and rec.status() == "active"
        assert store.check(rec.id, "voice") == rec
        assert store.get(rec.id) == rec and [r.id for r in store.list()] == [rec.id]
        gone = store.revoke(rec.id, "withdrawn by email")
        assert gone.status() == "revoked" and gone.revoked_reason == "withdrawn by email"
        assert store.revoke(rec.id).revoked_at == gone.revoked_at  # idempotent
        assert store.list(include_revoked=False) == []
        with pytest.raises(ConsentRefused, match="revoked"):
            store.check(rec.id, "voice")
        assert rec.status(at=dt.datetime(2100, 1, 1, tzinfo=dt.UTC)) == "expired"
    finally:
        store.close()
    # Persisted in the embedded SQLite file under data_dir.
    assert (settings.data_dir / "veracity.db").is_file()
    again = ConsentStore.open(settings)
    assert again.get(rec.id).status() == "revoked"
    again.close()


def test_bad_input(settings: Settings, evidence: Path, tmp_path: Path) -> None:
    store = ConsentStore.open(settings)
    try:
        with pytest.raises(ConfigError, match="scope"):
            store.add(subject="A", scopes="everything", granted_by="A", evidence=evidence)
        with pytest.raises(SourceNotFound):
            store.add(subject="A", scopes="voice", granted_by="A", evidence=tmp_path / "missing.pdf")
        with pytest.raises(ConsentNotFound):
            store.get("0000")
    finally:
        store.close()


def test_tables_are_plain_sqlalchemy_metadata(tmp_path: Path) -> None:
    """The service's Alembic env can target ``metadata``; any engine works (here a second file)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    store = ConsentStore(engine)
    store.create_schema()
    assert {"consents", "provenance_signings"} <= set(inspect(engine).get_table_names())
    assert set(metadata.tables) == {"consents", "provenance_signings"}
    sid = store.new_signing_id()
    assert len(sid) == 8 and int(sid, 16) >= 0
    engine.dispose()
