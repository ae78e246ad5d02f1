"""The UI mounted in the real service app (in process, no workers): the adapter's calls reach the
service's keys, jobs, reviews and audit log, with the service's permissions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.web.synthetic import audio_report, image_report, video_report

from veracity.config import Settings
from veracity.server import create_app
from veracity.service import audit, auth, jobs
from veracity.service.context import open_context
from veracity.service.models import AuditEntry, Job, utcnow


@dataclass
class Svc:
    client: TestClient
    settings: Settings
    keys: dict[str, str]
    jobs: dict[str, str]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Svc]:
    settings = Settings(data_dir=tmp_path / "data")
    ctx = open_context(settings)
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    try:
        with ctx.tx() as s:
            for role in ("analyst", "reviewer", "admin"):
                _, keys[role] = auth.create_key(s, role=role, name=f"{role} one")
            owner = auth.parse_token(keys["analyst"])[0]
            for name, report in (("clip", video_report()), ("photo", image_report()), ("voice", audio_report())):
                job = Job(
                    id=jobs.new_job_id(),
                    status="succeeded",
                    progress=1.0,
                    owner_key_id=owner,
                    source_name=f"{name}.bin",
                    options={},
                    attempts=0,
                    webhook_attempts=0,
                    keep_media=False,
                    created_at=utcnow(),
                    result=report.model_dump_json(),
                    label=report.label,
                    deepfake_score=report.deepfake_score,
                )
                s.add(job)
                ids[name] = job.id
    finally:
        ctx.engine.dispose()
    with TestClient(create_app(settings, start_workers=False), base_url="http://testserver") as client:
        client.follow_redirects = False
        yield Svc(client, settings, keys, ids)


def _sign_in(c: TestClient, key: str) -> str:
    c.cookies.clear()
    page = c.get("/ui/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    assert c.post("/ui/signin", data={"csrf_token": token.group(1), "api_key": key}).status_code == 303
    form = c.get("/ui/history").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    return csrf.group(1)


def test_root_leads_to_the_ui_and_bad_keys_are_refused(svc: Svc) -> None:
    assert svc.client.get("/").headers["location"] == "/ui/"
    page = svc.client.get("/ui/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    bad = svc.client.post("/ui/signin", data={"csrf_token": token.group(1), "api_key": "vk_nope_nope"})
    assert bad.status_code == 401


def test_history_respects_ownership_and_filters(svc: Svc) -> None:
    _sign_in(svc.client, svc.keys["analyst"])
    own = svc.client.get("/ui/history").text
    assert "clip.bin" in own and "photo.bin" in own
    assert "photo.bin" not in svc.client.get("/ui/history", params={"kind": "video"}).text
    assert "clip.bin" not in svc.client.get("/ui/history", params={"label": "authentic"}).text
    assert "voice.bin" in svc.client.get("/ui/history", params={"q": "voi"}).text
    _sign_in(svc.client, svc.keys["reviewer"])  # reviewers read every key's jobs
    assert "clip.bin" in svc.client.get("/ui/history").text


def test_review_through_the_ui_reaches_the_job_and_the_audit_chain(svc: Svc) -> None:
    csrf = _sign_in(svc.client, svc.keys["reviewer"])
    queue = svc.client.get("/ui/review").text
    assert queue.index("photo.bin") < queue.index("clip.bin")  # 0.2 is nearer a coin toss than 0.82
    job = svc.jobs["clip"]
    resp = svc.client.post(
        f"/ui/jobs/{job}/review", data={"csrf_token": csrf, "ground_truth": "synthetic", "comment": "GAN skin"}
    )
    assert resp.status_code == 303
    assert "clip.bin" not in svc.client.get("/ui/review").text
    page = svc.client.get(f"/ui/jobs/{job}").text
    assert 'id="gauge"' in page and "GAN skin" in page
    ctx = open_context(svc.settings)
    try:
        with ctx.tx() as s:
            row = s.get(Job, job)
            assert row is not None
            assert (row.review_label, row.review_comment) == ("synthetic", "GAN skin")
            actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
            assert audit.verify(s).ok
    finally:
        ctx.engine.dispose()
    assert "job.reviewed" in actions
    assert "job.result_read" in actions  # opening the result page is a read of the result


def test_service_permissions_hold_behind_the_pages(svc: Svc) -> None:
    csrf = _sign_in(svc.client, svc.keys["analyst"])
    job = svc.jobs["clip"]
    assert svc.client.get("/ui/audit").status_code == 403
    refused = svc.client.post(f"/ui/jobs/{job}/review", data={"csrf_token": csrf, "ground_truth": "authentic"})
    assert refused.status_code == 403
    csrf = _sign_in(svc.client, svc.keys["admin"])
    created = svc.client.post("/ui/keys", data={"csrf_token": csrf, "name": "temp", "role": "analyst"})
    secret = re.search(r'id="new-key-secret">([^<]+)<', created.text)
    assert secret
    key_id = auth.parse_token(secret.group(1))[0]
    assert svc.client.post(f"/ui/keys/{key_id}/revoke", data={"csrf_token": csrf}).status_code == 303
    audit_page = svc.client.get("/ui/audit").text
    assert "key.created" in audit_page and "key.revoked" in audit_page
    assert svc.client.get("/ui/consent").status_code == 200
    svc.client.cookies.clear()
    page = svc.client.get("/ui/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    revoked = svc.client.post("/ui/signin", data={"csrf_token": token.group(1), "api_key": secret.group(1)})
    assert revoked.status_code == 401


def test_upload_through_the_service_parser_creates_a_queued_job(svc: Svc, sample_video: Path) -> None:
    csrf = _sign_in(svc.client, svc.keys["analyst"])
    with sample_video.open("rb") as fh:
        resp = svc.client.post(
            "/ui/analyze", data={"csrf_token": csrf, "keep_media": "1"}, files={"file": ("clip.mp4", fh, "video/mp4")}
        )
    assert resp.status_code == 303
    job_id = resp.headers["location"].rsplit("/", 1)[1]
    status = svc.client.get(f"/ui/jobs/{job_id}/status").json()
    assert status["status"] == "queued" and status["finished"] is False
    assert 'id="job-progress"' in svc.client.get(f"/ui/jobs/{job_id}").text
    junk = svc.client.post(
        "/ui/analyze", data={"csrf_token": csrf}, files={"file": ("x.mp4", b"not media at all", "video/mp4")}
    )
    assert junk.status_code in (400, 415)
    forged = svc.client.post(
        "/ui/analyze", data={"csrf_token": "forged"}, files={"file": ("clip.mp4", b"\x00" * 10, "video/mp4")}
    )
    assert forged.status_code == 403
    stored = list((svc.settings.data_dir / "media").iterdir())
    assert len(stored) == 1  # the queued upload only: refused ones were deleted


def test_consent_records_come_from_the_provenance_store(svc: Svc, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the provenance package installed, the page lists its consent store (a stand-in here)."""
    import datetime as dt
    import sys
    import types

    @dataclass
    class Record:
        id: str
        subject: str
        scopes: tuple[str, ...]
        granted_by: str
        evidence_sha256: str
        expires_at: dt.datetime | None

        def status(self) -> str:
            return "expired"

    class Store:
        @classmethod
        def open(cls, settings: Settings) -> Store:
            assert settings.data_dir == svc.settings.data_dir
            return cls()

        def list(self) -> list[Record]:
            return [Record("c1", "Ada <b>", ("likeness", "voice"), "Ada", "ef" * 32, dt.datetime(2026, 1, 2))]

        def close(self) -> None:
            pass

    package = types.ModuleType("veracity.provenance")
    module = types.ModuleType("veracity.provenance.consent")
    module.ConsentStore = Store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "veracity.provenance", package)
    monkeypatch.setitem(sys.modules, "veracity.provenance.consent", module)
    _sign_in(svc.client, svc.keys["admin"])
    page = svc.client.get("/ui/consent").text
    assert "Ada &lt;b&gt;" in page and "likeness, voice" in page and "expired" in page
    _sign_in(svc.client, svc.keys["analyst"])
    assert svc.client.get("/ui/consent").status_code == 403
