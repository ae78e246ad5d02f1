"""The UI routes against an in-memory backend: sign-in, cookies, CSRF, roles, pages, uploads."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.web.synthetic import FakeBackend, image_report, video_report

from veracity.report.model import Provenance
from veracity.web.routes import build_router
from veracity.web.security import CSP, SESSION_COOKIE, csrf_token

BASE = "http://testserver"


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def client(backend: FakeBackend) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(lambda _request: backend))
    return TestClient(app, base_url=BASE, follow_redirects=False)


def _pre_token(client: TestClient) -> str:
    page = client.get("/ui/signin")
    assert page.status_code == 200
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m
    return m.group(1)


def sign_in(client: TestClient, key: str) -> str:
    token = _pre_token(client)
    resp = client.post("/ui/signin", data={"csrf_token": token, "api_key": key, "next": ""})
    assert resp.status_code == 303, resp.text
    return csrf_token(key)


def test_signin_sets_a_strict_httponly_cookie(client: TestClient, backend: FakeBackend) -> None:
    key = backend.add_key("ana", "analyst")
    token = _pre_token(client)
    resp = client.post("/ui/signin", data={"csrf_token": token, "api_key": key, "next": "/ui/history"})
    assert resp.status_code == 303
    assert resp.headers["location"] == "/ui/history"
    cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie


def test_signin_refuses_bad_key_missing_token_and_open_redirect(client: TestClient, backend: FakeBackend) -> None:
    token = _pre_token(client)
    bad = client.post("/ui/signin", data={"csrf_token": token, "api_key": "nope"})
    assert bad.status_code == 401
    assert "not valid" in bad.text
    assert SESSION_COOKIE not in bad.headers.get("set-cookie", "")
    key = backend.add_key("ana", "analyst")
    assert client.post("/ui/signin", data={"csrf_token": "forged", "api_key": key}).status_code == 403
    token = _pre_token(client)
    resp = client.post("/ui/signin", data={"csrf_token": token, "api_key": key, "next": "//evil.example/x"})
    assert resp.headers["location"] == "/ui/"


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/ui/analyze", "/ui/history", "/ui/audit", "/ui/keys", "/ui/review", "/ui/consent"):
        resp = client.get(path)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/ui/signin?next=")
    assert client.get("/ui/jobs/x/status").status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("analyst", {"analyze", "history"}),
        ("reviewer", {"analyze", "history", "review"}),
        ("admin", {"analyze", "history", "review", "audit", "keys", "consent"}),
    ],
)
def test_role_matrix(client: TestClient, backend: FakeBackend, role: str, allowed: set[str]) -> None:
    sign_in(client, backend.add_key("u", role))
    for page in ("analyze", "history", "review", "audit", "keys", "consent"):
        resp = client.get(f"/ui/{page}")
        assert resp.status_code == (200 if page in allowed else 403), (role, page)
        if page in allowed:
            assert resp.headers["content-security-policy"] == CSP
    nav = client.get("/ui/history").text
    assert ('href="/ui/audit"' in nav) == ("audit" in allowed)


def test_forms_need_the_csrf_token(client: TestClient, backend: FakeBackend) -> None:
    token = sign_in(client, backend.add_key("ana", "analyst"))
    files = {"file": ("clip.mp4", io.BytesIO(b"\x00\x00\x00\x18ftypmp42"), "video/mp4")}
    assert client.post("/ui/analyze", files=files, data={"csrf_token": "wrong"}).status_code == 403
    files = {"file": ("clip.mp4", io.BytesIO(b"\x00\x00\x00\x18ftypmp42"), "video/mp4")}
    cross = client.post(
        "/ui/analyze", files=files, data={"csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert not backend.jobs_by_id


def test_upload_to_result_flow(client: TestClient, backend: FakeBackend) -> None:
    token = sign_in(client, backend.add_key("rev", "reviewer"))
    files = {"file": ("clip <b>.mp4", io.BytesIO(b"\x00\x00\x00\x18ftypmp42 data"), "video/mp4")}
    resp = client.post("/ui/analyze", files=files, data={"csrf_token": token})
    assert resp.status_code == 303
    job_url = resp.headers["location"]
    job_id = job_url.rsplit("/", 1)[1]
    running = client.get(job_url)
    assert running.status_code == 200
    assert 'id="job-progress"' in running.text
    status = client.get(f"{job_url}/status").json()
    assert status["finished"] is True  # the fake finishes on its second look
    page = client.get(job_url)
    assert 'id="gauge"' in page.text
    assert "clip &lt;b&gt;.mp4" in page.text
    assert client.get(f"{job_url}/report.json").json()["label"] == "manipulated"
    html = client.get(f"{job_url}/report.html")
    assert html.text.startswith("<!DOCTYPE html>")
    review = client.post(
        f"{job_url}/review", data={"csrf_token": token, "ground_truth": "manipulated", "comment": "mouth drifts"}
    )
    assert review.status_code == 303
    assert backend.jobs_by_id[job_id].view.review is not None
    assert "mouth drifts" in client.get(job_url).text
    bad = client.post(f"{job_url}/review", data={"csrf_token": token, "ground_truth": "maybe"})
    assert bad.status_code == 400


def test_analyst_cannot_review(client: TestClient, backend: FakeBackend) -> None:
    job = backend.add_job(video_report())
    token = sign_in(client, backend.add_key("ana", "analyst"))
    page = client.get(f"/ui/jobs/{job}")
    assert 'name="ground_truth"' not in page.text
    resp = client.post(f"/ui/jobs/{job}/review", data={"csrf_token": token, "ground_truth": "authentic"})
    assert resp.status_code == 403
    assert backend.jobs_by_id[job].view.review is None


def test_url_submission_and_refusal_shown(client: TestClient, backend: FakeBackend) -> None:
    token = sign_in(client, backend.add_key("ana", "analyst"))
    no_file = {"file": ("", b"", "application/octet-stream")}  # what a browser sends with no file chosen
    ok = client.post("/ui/analyze", files=no_file, data={"csrf_token": token, "url": "https://example.org/a.mp4"})
    assert ok.status_code == 303
    refused = client.post("/ui/analyze", files=no_file, data={"csrf_token": token, "url": "http://127.0.0.1/a.mp4"})
    assert refused.status_code == 400
    assert "Only public https" in refused.text
    discarded = backend.discarded
    empty = client.post("/ui/analyze", files=no_file, data={"csrf_token": token})
    assert empty.status_code == 400
    assert backend.discarded == discarded + 1  # the empty upload is dropped, not left in storage
    assert client.post("/ui/analyze", data={"csrf_token": token, "url": "https://example.org/a.mp4"}).status_code == 415


def test_history_filters_and_review_queue(client: TestClient, backend: FakeBackend) -> None:
    backend.add_job(video_report())
    backend.add_job(image_report())
    sign_in(client, backend.add_key("rev", "reviewer"))
    all_rows = client.get("/ui/history").text
    assert "clip.mp4" in all_rows and "photo.jpg" in all_rows
    only_images = client.get("/ui/history", params={"kind": "image"}).text
    assert "photo.jpg" in only_images and "clip.mp4" not in only_images
    queue = client.get("/ui/review").text
    # photo (0.2) is nearer a coin toss than clip (0.82), so it comes first.
    assert queue.index("photo.jpg") < queue.index("clip.mp4")


def test_admin_pages_keys_and_audit(client: TestClient, backend: FakeBackend) -> None:
    token = sign_in(client, backend.add_key("root", "admin"))
    created = client.post("/ui/keys", data={"csrf_token": token, "name": "bob", "role": "analyst"})
    assert created.status_code == 200
    secret = re.search(r'id="new-key-secret">([^<]+)<', created.text)
    assert secret
    key_id = backend.keys_by_secret[secret.group(1)][0].id
    assert client.post(f"/ui/keys/{key_id}/revoke", data={"csrf_token": token}).status_code == 303
    assert backend.authenticate(secret.group(1)) is None
    audit = client.get("/ui/audit").text
    assert "key.created" in audit and "key.revoked" in audit


def test_revoked_key_ends_the_session(client: TestClient, backend: FakeBackend) -> None:
    key = backend.add_key("ana", "analyst")
    sign_in(client, key)
    assert client.get("/ui/history").status_code == 200
    row, who = backend.keys_by_secret[key]
    backend.keys_by_secret[key] = (replace(row, revoked=True), who)
    assert client.get("/ui/history").status_code == 303


def test_signout_clears_the_cookie(client: TestClient, backend: FakeBackend) -> None:
    token = sign_in(client, backend.add_key("ana", "analyst"))
    resp = client.post("/ui/signout", data={"csrf_token": token})
    assert resp.status_code == 303
    assert 'veracity_session=""' in resp.headers["set-cookie"] or "Max-Age=0" in resp.headers["set-cookie"]


def test_static_assets_are_local_and_names_checked(client: TestClient) -> None:
    css = client.get("/ui/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/ui/static/app.js")
    assert "fetch(" in js.text and "http://" not in js.text and "https://" not in js.text
    assert client.get("/ui/static/..%2Froutes.py").status_code == 404
    assert client.get("/ui/static/nope.css").status_code == 404


def test_frame_endpoint_serves_a_jpeg_of_kept_media(
    client: TestClient, backend: FakeBackend, sample_video: Path
) -> None:
    job = backend.add_job(video_report(), media=sample_video)
    no_media = backend.add_job(video_report())
    sign_in(client, backend.add_key("ana", "analyst"))
    page = client.get(f"/ui/jobs/{job}").text
    assert f'data-frames-url="/ui/jobs/{job}/frame"' in page
    frame = client.get(f"/ui/jobs/{job}/frame", params={"t": 0.5})
    assert frame.status_code == 200
    assert frame.content[:2] == b"\xff\xd8"
    assert client.get(f"/ui/jobs/{no_media}/frame", params={"t": 0.5}).status_code == 404
    assert "data-frames-url" not in client.get(f"/ui/jobs/{no_media}").text


def test_result_page_shows_the_full_credential_of_kept_media(
    client: TestClient, backend: FakeBackend, sample_video: Path
) -> None:
    prov = Provenance(checked=True, credential_present=True, validation_state="Valid")
    job = backend.add_job(image_report(provenance=prov), media=sample_video)
    backend.credentials[job] = {"manifest": {"ingredients": [{"title": "parent <i>.jpg"}]}, "status": []}
    sign_in(client, backend.add_key("ana", "analyst"))
    page = client.get(f"/ui/jobs/{job}").text
    assert "parent &lt;i&gt;.jpg" in page
    assert "Signed, signer not on your trust list." in page


def test_failed_job_shows_its_error(client: TestClient, backend: FakeBackend) -> None:
    job = backend.add_job(None, status="failed")
    backend.jobs_by_id[job].view = replace(backend.jobs_by_id[job].view, error="cannot decode <clip> (corrupt_media)")
    sign_in(client, backend.add_key("ana", "analyst"))
    page = client.get(f"/ui/jobs/{job}")
    assert page.status_code == 200
    assert "Analysis failed: cannot decode &lt;clip&gt; (corrupt_media)" in page.text
    assert 'id="job-progress"' not in page.text
    assert client.get(f"/ui/jobs/{job}/report.json").status_code == 404
    assert client.get("/ui/jobs/nope").status_code == 404


class _Controls(HTMLParser):
    """Form controls and the labels that name them (for=, wrapping <label>, or aria-label)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.in_label += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append({**a, "wrapped": "yes" if self.in_label else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1


def test_every_form_control_has_a_label(client: TestClient, backend: FakeBackend) -> None:
    backend.add_job(video_report())
    job = backend.add_job(image_report())
    sign_in(client, backend.add_key("root", "admin"))
    for path in ("/ui/analyze", "/ui/history", "/ui/review", "/ui/keys", f"/ui/jobs/{job}", "/ui/audit"):
        parser = _Controls()
        parser.feed(client.get(path).text)
        for c in parser.controls:
            named = c["wrapped"] or c.get("aria-label") or (c.get("id") in parser.label_for)
            assert named, (path, c)
    parser = _Controls()
    parser.feed(client.get("/ui/signin").text)
    assert parser.controls and all(c.get("id") in parser.label_for for c in parser.controls)
