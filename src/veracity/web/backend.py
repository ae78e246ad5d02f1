"""What the web UI needs from the service, as one small protocol.

The UI holds no business logic: jobs, keys, reviews, audit and consent live in the service, and
an adapter turns the service's functions into these calls (``veracity.web.service_backend``).
Keeping the seam this narrow lets the pages be tested against a fake without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from veracity.report.model import Report
from veracity.web.view import JobView

__all__ = [
    "PAGE_ROLES",
    "AuditRow",
    "ConsentRow",
    "JobQuery",
    "KeyRow",
    "Principal",
    "UiBackend",
    "UiError",
]

# Which roles open which page. The service checks every call again; this only decides what the
# navigation shows and which pages answer 403 before calling it.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "analyze": frozenset({"analyst", "reviewer", "admin"}),
    "history": frozenset({"analyst", "reviewer", "admin"}),
    "review": frozenset({"reviewer", "admin"}),
    "audit": frozenset({"admin"}),
    "keys": frozenset({"admin"}),
    "consent": frozenset({"admin", "signer"}),
}


class UiError(Exception):
    """A refusal or failure the UI shows to the user (status code + one-line message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    roles: frozenset[str]

    def can(self, page: str) -> bool:
        return bool(self.roles & PAGE_ROLES.get(page, frozenset()))

    @property
    def role(self) -> str:
        return ", ".join(sorted(self.roles))


@dataclass(frozen=True, slots=True)
class JobQuery:
    text: str = ""
    status: str = ""
    label: str = ""
    kind: str = ""
    reviewed: str = ""  # "" | "yes" | "no"
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: datetime | None
    actor: str
    action: str
    object: str
    detail: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    name: str
    role: str
    created_at: datetime | None = None
    revoked: bool = False
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class ConsentRow:
    id: str
    subject: str
    scope: Sequence[str] = field(default_factory=tuple)
    granted_by: str = ""
    expires: datetime | None = None
    revoked: bool = False
    evidence_sha256: str = ""


class UiBackend(Protocol):
    """The service seen from the pages. Every call gets the signed-in principal and may raise
    :class:`UiError` (refusals keep the service's stable code)."""

    def authenticate(self, api_key: str) -> Principal | None: ...

    def submit_upload(self, who: Principal, filename: str, stream: BinaryIO, content_type: str | None) -> str: ...

    def submit_url(self, who: Principal, url: str) -> str: ...

    def job(self, who: Principal, job_id: str) -> JobView | None: ...

    def report(self, who: Principal, job_id: str) -> Report | None: ...

    def media_path(self, who: Principal, job_id: str) -> Path | None: ...

    def jobs(self, who: Principal, query: JobQuery) -> list[JobView]: ...

    def review_queue(self, who: Principal, limit: int) -> list[JobView]: ...

    def submit_review(self, who: Principal, job_id: str, ground_truth: str, comment: str) -> None: ...

    def audit(self, who: Principal, limit: int, offset: int) -> list[AuditRow]: ...

    def keys(self, who: Principal) -> list[KeyRow]: ...

    def create_key(self, who: Principal, name: str, role: str) -> tuple[KeyRow, str]: ...

    def revoke_key(self, who: Principal, key_id: str) -> None: ...

    def consents(self, who: Principal) -> list[ConsentRow]: ...
