"""API keys with roles, stored hashed; role permissions; a per-key rate limiter.

A key is ``vk_<id>_<secret>``. Only ``sha256(secret)`` is stored: the secret is 256 random bits,
so a fast hash is enough (no password stretching needed) and lookups stay one primary-key read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from veracity.service import audit
from veracity.service.errors import BadRequest, NotFound, RateLimited, Unauthorized, echo
from veracity.service.models import ApiKey, utcnow

Role = Literal["analyst", "reviewer", "signer", "admin"]
ROLES: tuple[Role, ...] = ("analyst", "reviewer", "signer", "admin")

Permission = Literal[
    "jobs:create",  # submit media, read own jobs
    "jobs:read_all",  # read every key's jobs
    "jobs:review",  # add a ground-truth label
    "sign",  # sign media (provenance)
    "keys:manage",
    "audit:read",
    "metrics:read",
]

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "analyst": frozenset({"jobs:create"}),
    "reviewer": frozenset({"jobs:create", "jobs:read_all", "jobs:review"}),
    "signer": frozenset({"jobs:create", "sign"}),
    "admin": frozenset(
        {"jobs:create", "jobs:read_all", "jobs:review", "sign", "keys:manage", "audit:read", "metrics:read"}
    ),
}

_PREFIX = "vk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key id (never the secret), its role, and the key's name for people."""

    key_id: str
    role: Role
    name: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str]:
    if not token.startswith(_PREFIX):
        raise Unauthorized("malformed API key")
    key_id, sep, secret = token[len(_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        raise Unauthorized("malformed API key")
    return key_id, secret


def create_key(session: Session, *, role: str, name: str = "", actor: str = "cli") -> tuple[ApiKey, str]:
    """Make a key; the plaintext is returned once and never stored."""
    if role not in ROLES:
        raise BadRequest(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, name=name[:200], role=role, secret_hash=hash_secret(secret), created_at=utcnow())
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action="key.created", obj=f"key:{key_id}", detail={"role": role, "name": name})
    return row, f"{_PREFIX}{key_id}_{secret}"


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id: str, *, actor: str = "cli") -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {echo(key_id)}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.append(session, actor=actor, action="key.revoked", obj=f"key:{key_id}")
    return row


def authenticate(session: Session, token: str) -> Principal:
    key_id, secret = parse_token(token)
    row = session.get(ApiKey, key_id)
    # Compare even when the key is unknown so timing says nothing about which ids exist.
    expected = row.secret_hash if row is not None else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(secret)) or row is None:
        raise Unauthorized("invalid API key")
    if row.revoked_at is not None:
        raise Unauthorized("API key revoked")
    return Principal(key_id=row.id, role=row.role, name=row.name or f"key {row.id}")  # type: ignore[arg-type]


class RateLimiter:
    """Token bucket per key, in this process: ``per_min`` requests a minute, bursts up to that."""

    def __init__(self, per_min: int) -> None:
        self.rate = per_min / 60.0
        self.capacity = float(per_min)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited("too many requests for this API key", retry_after=(1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)
