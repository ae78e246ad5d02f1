"""Append-only audit log with a hash chain.

Each entry stores ``hash = sha256(prev_hash || canonical_json(entry))``. Editing any field of a
row breaks its hash; deleting or inserting a row breaks the sequence and the next row's
``prev_hash``. Truncating the tail leaves a valid shorter chain: compare the head that
:func:`verify` returns with one recorded elsewhere (``veracity audit verify --expect-head``).
Writers are serialised (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction advisory lock),
and ``seq`` is the primary key so a lost race fails instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from veracity.service.models import AuditEntry, utcnow

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x56455241  # "VERA"


def canonical(seq: int, at: datetime, actor: str, action: str, obj: str, detail: str) -> str:
    return json.dumps(
        {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "object": obj, "detail": detail},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def entry_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append(
    session: Session, *, actor: str, action: str, obj: str, detail: dict[str, object] | None = None
) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with the change it records)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = utcnow()
    detail_text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor[:64],
        action=action,
        object=obj[:200],
        detail=detail_text,
        prev_hash=prev,
        hash=entry_hash(prev, canonical(seq, at, actor[:64], action, obj[:200], detail_text)),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str  # edited | broken_link | gap
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[Problem]


def _rows(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch))
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(session: Session, *, expect_head: str | None = None) -> Verification:
    """Walk the whole chain; report every edited row, broken link and missing sequence number."""
    problems: list[Problem] = []
    prev_hash, prev_seq, count = GENESIS, 0, 0
    for row in _rows(session):
        count += 1
        if row.seq != prev_seq + 1:
            problems.append(Problem(row.seq, "gap", f"entries {prev_seq + 1}..{row.seq - 1} are missing"))
        if row.prev_hash != prev_hash:
            problems.append(Problem(row.seq, "broken_link", "prev_hash does not match the previous entry"))
        body = canonical(row.seq, row.at, row.actor, row.action, row.object, row.detail)
        if entry_hash(row.prev_hash, body) != row.hash:
            problems.append(Problem(row.seq, "edited", "content does not match its hash"))
        prev_hash, prev_seq = row.hash, row.seq
    if expect_head is not None and expect_head != prev_hash:
        problems.append(Problem(prev_seq, "head_mismatch", "the chain's head is not the expected one (truncated?)"))
    return Verification(not problems, count, prev_seq, prev_hash, problems)
