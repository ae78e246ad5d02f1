"""Append-only audit log with a keyed hash chain.

Each entry stores ``hash = HMAC-SHA256(key, prev_hash || canonical_json(entry))``. Editing any
field of a row breaks its hash; deleting or inserting a row breaks the sequence and the next
row's ``prev_hash``; and because the hash is keyed, someone who can write the database but does
not hold the key cannot edit a row and recompute every later hash (with a plain SHA-256 chain
that passes). The key lives outside the database: ``VERACITY_AUDIT_KEY`` or
``VERACITY_AUDIT_KEY_FILE`` (required outside development; in development a random key is kept
in ``data_dir/audit_key``, mode 0600: move it elsewhere to separate it from the database).

Chains written before keying (plain ``sha256(prev_hash || entry)``) still verify: the first
keyed append writes an ``audit.keyed`` entry, and from there on every row must be keyed. A
chain with no keyed row at all, or a plain row after a keyed one, fails verification.
Truncating the tail leaves a valid shorter chain: compare the head that :func:`verify` returns
with one recorded elsewhere (``veracity audit verify --expect-head``).
Writers are serialised (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction advisory lock),
and ``seq`` is the primary key so a lost race fails instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from veracity.config import Settings
from veracity.errors import ConfigError
from veracity.service.models import AuditEntry, utcnow

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x56455241  # "VERA"
KEY_INFO = "audit_key"  # where sessions carry the key (``sessionmaker(info=...)``)
KEYED_ACTION = "audit.keyed"


def resolve_key(settings: Settings) -> bytes:
    """The chain's HMAC key: from the environment or a key file; generated in development."""
    if settings.audit_key:
        if len(settings.audit_key) < 32:
            raise ConfigError("VERACITY_AUDIT_KEY must be at least 32 characters")
        return settings.audit_key.encode()
    if settings.audit_key_file is not None:
        try:
            value = settings.audit_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read VERACITY_AUDIT_KEY_FILE: {exc.strerror}") from exc
        if len(value) < 32:
            raise ConfigError("the audit key file must hold at least 32 characters")
        return value.encode()
    if not settings.is_development:
        raise ConfigError("VERACITY_AUDIT_KEY or VERACITY_AUDIT_KEY_FILE must be set outside development")
    path: Path = settings.data_dir / "audit_key"
    if not path.is_file():
        # Several processes (API, workers) may start at once: write aside, then link into place,
        # which fails if another got there first; every process then reads the one winner.
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        tmp = path.with_name(f".audit_key.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def _key(session: Session) -> bytes | None:
    key = session.info.get(KEY_INFO)
    return key if isinstance(key, bytes) and key else None


def canonical(seq: int, at: datetime, actor: str, action: str, obj: str, detail: str) -> str:
    return json.dumps(
        {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "object": obj, "detail": detail},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def entry_hash(prev_hash: str, body: str, key: bytes | None = None) -> str:
    """Keyed (HMAC-SHA256) when ``key`` is given; the plain SHA-256 of unkeyed chains otherwise."""
    data = (prev_hash + body).encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _row_hashes(row: AuditEntry, key: bytes | None) -> tuple[bool, bool]:
    """(matches keyed, matches plain) for a stored row."""
    body = canonical(row.seq, row.at, row.actor, row.action, row.object, row.detail)
    keyed = key is not None and hmac.compare_digest(entry_hash(row.prev_hash, body, key), row.hash)
    plain = hmac.compare_digest(entry_hash(row.prev_hash, body), row.hash)
    return keyed, plain


def append(
    session: Session, *, actor: str, action: str, obj: str, detail: dict[str, object] | None = None
) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with the change it records)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    key = _key(session)
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    if key is not None and last is not None and action != KEYED_ACTION and not _row_hashes(last, key)[0]:
        # An unkeyed chain gets its key: mark the switch, keyed, so the old part is sealed too.
        _write(session, last.seq + 1, last.hash, "system", KEYED_ACTION, "audit", {"unkeyed_head": last.seq}, key)
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    seq, prev = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
    return _write(session, seq, prev, actor, action, obj, detail, key)


def _write(
    session: Session,
    seq: int,
    prev: str,
    actor: str,
    action: str,
    obj: str,
    detail: dict[str, object] | None,
    key: bytes | None,
) -> AuditEntry:
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
        hash=entry_hash(prev, canonical(seq, at, actor[:64], action, obj[:200], detail_text), key),
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
    key = _key(session)
    prev_hash, prev_seq, count = GENESIS, 0, 0
    keyed_seen = False
    for row in _rows(session):
        count += 1
        if row.seq != prev_seq + 1:
            problems.append(Problem(row.seq, "gap", f"entries {prev_seq + 1}..{row.seq - 1} are missing"))
        if row.prev_hash != prev_hash:
            problems.append(Problem(row.seq, "broken_link", "prev_hash does not match the previous entry"))
        keyed, plain = _row_hashes(row, key)
        if not keyed and not plain:
            problems.append(Problem(row.seq, "edited", "content does not match its hash"))
        elif key is not None and not keyed and keyed_seen:
            problems.append(
                Problem(row.seq, "unkeyed", "hashed without the audit key after keyed entries (rewritten?)")
            )
        keyed_seen = keyed_seen or keyed
        prev_hash, prev_seq = row.hash, row.seq
    if key is not None and count and not keyed_seen:
        problems.append(
            Problem(prev_seq, "unkeyed", "no entry carries the audit key: the chain may have been rewritten")
        )
    if expect_head is not None and expect_head != prev_hash:
        problems.append(Problem(prev_seq, "head_mismatch", "the chain's head is not the expected one (truncated?)"))
    return Verification(not problems, count, prev_seq, prev_hash, problems)
