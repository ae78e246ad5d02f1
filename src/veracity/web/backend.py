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
from typing import Any, Protocol

from starlette.requests import Request

from veracity.report.model import Report
from veracity.service.auth import Permission, Principal
from veracity.web.view import JobView

__all__ = [
    "PAGE_PERMISSIONS",
    "AuditRow",
    "ConsentRow",
    "JobQuery",
    "KeyRow",
    "PostedForm",
    "Principal",
    "UiBackend",
    "UiError",
    "can_open",
]

# Which of the service's permissions opens which page (any one of them). The service checks
# every call again; this only decides what the navigation shows and which pages answer 403
# before calling it. Signed-in users are the service's own principals (``auth.Principal``).
PAGE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "analyze": frozenset({"jobs:create"}),
    "history": frozenset({"jobs:create", "jobs:read_all"}),
    "review": frozenset({"jobs:review"}),
    "audit": frozenset({"audit:read"}),
    "keys": frozenset({"keys:manage"}),
    "consent": frozenset({"keys:manage", "sign"}),
}


def can_open(who: Principal, page: str) -> bool:
    return any(who.can(p) for p in PAGE_PERMISSIONS.get(page, frozenset()))


class UiError(Exception):
    """A refusal or failure the UI shows to the user (status code + one-line message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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
    state: str = "active"  # active | expired | revoked
    evidence_sha256: str = ""


@dataclass(frozen=True, slots=True)
class PostedForm:
    """The analyze form as the backend received it: text fields, the file's client-side name (if a
    file was sent), and the backend's own handle on the stored upload."""

    fields: dict[str, str]
    file_name: str | None = None
    payload: object = None


class UiBackend(Protocol):
    """The service seen from the pages. Every call gets the signed-in principal and may raise
    :class:`UiError` (refusals keep the service's stable code)."""

    def authenticate(self, api_key: str) -> Principal | None: ...

    async def read_upload(self, request: Request) -> PostedForm:
        """Receive the multipart analyze form (the service streams the file to storage, capped)."""
        ...

    def discard(self, form: PostedForm) -> None:
        """Drop a received upload that will not become a job (bad CSRF token, empty form)."""
        ...

    def submit_upload(self, who: Principal, form: PostedForm, keep_media: bool) -> str: ...

    def submit_url(self, who: Principal, url: str, keep_media: bool) -> str: ...

    def job(self, who: Principal, job_id: str) -> JobView | None: ...

    def report(self, who: Principal, job_id: str) -> Report | None: ...

    def media_path(self, who: Principal, job_id: str) -> Path | None: ...

    def credential(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        """The full content credential of a job's kept media (manifest with actions and ingredients,
        status codes with explanations), or None when it cannot be read again."""
        ...

    def jobs(self, who: Principal, query: JobQuery) -> list[JobView]: ...

    def review_queue(self, who: Principal, limit: int) -> list[JobView]: ...

    def submit_review(self, who: Principal, job_id: str, ground_truth: str, comment: str) -> None: ...

    def audit(self, who: Principal, limit: int, offset: int) -> list[AuditRow]: ...

    def keys(self, who: Principal) -> list[KeyRow]: ...

    def create_key(self, who: Principal, name: str, role: str) -> tuple[KeyRow, str]: ...

    def revoke_key(self, who: Principal, key_id: str) -> None: ...

    def consents(self, who: Principal) -> list[ConsentRow]: ...
