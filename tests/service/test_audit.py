"""The audit log's hash chain: intact chains verify; edited, deleted and cut rows are caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from veracity.config import Settings
from veracity.service import audit
from veracity.service.context import ServiceContext, open_context
from veracity.service.models import AuditEntry


@pytest.fixture
def ctx(tmp_path: Path) -> ServiceContext:
    c = open_context(Settings(data_dir=tmp_path))
    with c.tx() as s:
        for i in range(6):
            audit.append(s, actor=f"key:k{i}", action="job.created", obj=f"job:{i}", detail={"n": i})
    return c


def test_intact_chain_verifies(ctx: ServiceContext) -> None:
    with ctx.tx() as s:
        v = audit.verify(s)
    assert v.ok and v.entries == 6 and v.head_seq == 6 and not v.problems
    with ctx.tx() as s:
        assert audit.verify(s, expect_head=v.head_hash).ok


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"actor": "key:someone-else"}, "edited"),
        ({"action": "job.deleted"}, "edited"),
        ({"detail": '{"n":99}'}, "edited"),
        ({"object": "job:other"}, "edited"),
    ],
)
def test_edited_row_is_detected(ctx: ServiceContext, change: dict[str, str], kind: str) -> None:
    with ctx.tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(**change))
    with ctx.tx() as s:
        v = audit.verify(s)
    assert not v.ok
    assert (3, kind) in {(p.seq, p.kind) for p in v.problems}


def test_rehashed_row_still_breaks_the_next_link(ctx: ServiceContext) -> None:
    """An attacker who recomputes the edited row's hash breaks the next row's prev_hash."""
    with ctx.tx() as s:
        row = s.get(AuditEntry, 3)
        assert row is not None
        row.actor = "key:forged"
        row.hash = audit.entry_hash(
            row.prev_hash, audit.canonical(row.seq, row.at, row.actor, row.action, row.object, row.detail)
        )
    with ctx.tx() as s:
        v = audit.verify(s)
    assert (4, "broken_link") in {(p.seq, p.kind) for p in v.problems}


def test_deleted_row_is_detected(ctx: ServiceContext) -> None:
    with ctx.tx() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    with ctx.tx() as s:
        v = audit.verify(s)
    kinds = {(p.seq, p.kind) for p in v.problems}
    assert (3, "gap") in kinds and (3, "broken_link") in kinds


def test_cut_tail_needs_the_recorded_head(ctx: ServiceContext) -> None:
    with ctx.tx() as s:
        head = audit.verify(s).head_hash
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 6))
    with ctx.tx() as s:
        assert audit.verify(s).ok  # a shorter chain is self-consistent...
        assert not audit.verify(s, expect_head=head).ok  # ...but not the one recorded


def test_cli_audit_verify_exit_codes(ctx: ServiceContext, tmp_path: Path) -> None:
    env = {**os.environ, "VERACITY_DATA_DIR": str(tmp_path)}
    env.pop("VERACITY_DATABASE_URL", None)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "veracity.cli", "audit", "verify", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["entries"] == 6
    with ctx.tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 5).values(actor="key:tampered"))
    bad = run()
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["problems"][0] == {
        "seq": 5,
        "kind": "edited",
        "message": "content does not match its hash",
    }


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    import threading

    c = open_context(Settings(data_dir=tmp_path))

    def work(n: int) -> None:
        for i in range(10):
            with c.tx() as s:
                audit.append(s, actor=f"t{n}", action="x", obj=str(i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with c.tx() as s:
        v = audit.verify(s)
    assert v.ok and v.entries == 40


def _rewrite_from(s: Session, seq: int, key: bytes | None = None) -> None:
    """What an attacker with write access to the database does: edit row ``seq`` and recompute
    every later hash so each link matches again (without the key: plain SHA-256)."""
    prev = None
    for row in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        if row.seq == seq:
            row.actor = "key:forged"
        if row.seq >= seq:
            assert prev is not None
            row.prev_hash = prev
            row.hash = audit.entry_hash(
                row.prev_hash, audit.canonical(row.seq, row.at, row.actor, row.action, row.object, row.detail), key
            )
        prev = row.hash


def test_recomputing_every_later_hash_without_the_key_fails(ctx: ServiceContext) -> None:
    """Issue 15, item 11: with a plain hash chain this rewrite passed ``audit verify``."""
    with ctx.tx() as s:
        _rewrite_from(s, 3)
    with ctx.tx() as s:
        v = audit.verify(s)
    assert not v.ok
    assert {p.kind for p in v.problems} == {"unkeyed"}


def test_rewrite_with_the_key_is_the_only_way(ctx: ServiceContext) -> None:
    """The key is what protects the chain: with it a rewrite verifies (keep it out of the database)."""
    with ctx.tx() as s:
        key = s.info[audit.KEY_INFO]
        _rewrite_from(s, 3, key)
    with ctx.tx() as s:
        assert audit.verify(s).ok


def test_unkeyed_chain_is_sealed_by_the_first_keyed_entry(tmp_path: Path) -> None:
    c = open_context(Settings(data_dir=tmp_path))
    with c.tx() as s:
        s.info.pop(audit.KEY_INFO)  # rows from before keying
        for i in range(3):
            audit.append(s, actor="key:old", action="job.created", obj=f"job:{i}")
    with c.tx() as s:
        audit.append(s, actor="key:new", action="job.created", obj="job:new")
    with c.tx() as s:
        v = audit.verify(s)
        actions = [r.action for r in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert v.ok, v.problems
    assert actions == ["job.created"] * 3 + [audit.KEYED_ACTION, "job.created"]
    with c.tx() as s:  # editing an old (unkeyed) row and re-chaining breaks the keyed marker
        _rewrite_from(s, 2)
    with c.tx() as s:
        assert not audit.verify(s).ok


def test_audit_key_is_required_outside_development(tmp_path: Path) -> None:
    from veracity.errors import ConfigError

    with pytest.raises(ConfigError, match="VERACITY_AUDIT_KEY"):
        audit.resolve_key(Settings(environment="production", data_dir=tmp_path))
    with pytest.raises(ConfigError, match="32"):
        audit.resolve_key(Settings(environment="production", audit_key="short"))
    assert audit.resolve_key(Settings(environment="production", audit_key="k" * 32)) == b"k" * 32
    dev = audit.resolve_key(Settings(data_dir=tmp_path))
    assert len(dev) >= 32 and (tmp_path / "audit_key").stat().st_mode & 0o777 == 0o600
