"""The embedded API end to end: a real uvicorn subprocess on loopback, real analyses of tiny media."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest
from tests.service.conftest import Api
from tests.service.helpers import png_bytes, wait_job

from veracity.report.model import Report
from veracity.service.schemas import AnalyzeVideoPublic


def _error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_analyze_video_upload_returns_the_report(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/analyze_video", files={"file": ("clip.mp4", api.video, "video/mp4")})
    assert r.status_code == 200, r.text
    body = AnalyzeVideoPublic.model_validate(r.json())
    assert body.media.kind == "video"
    assert body.source.name == "clip.mp4"
    assert body.source.sha256 == hashlib.sha256(api.video).hexdigest()
    assert body.deepfake_score is None or 0 <= body.deepfake_score <= 1
    assert isinstance(body.reasons, list)
    assert body.provenance.credential_present is False
    assert body.job_id


def test_analyze_video_url_from_allowed_host(api: Api) -> None:
    api.media.files["/v/clip.mp4"] = api.video
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/analyze_video", json={"video_url": api.media.url("/v/clip.mp4")})
    assert r.status_code == 200, r.text
    assert r.json()["source"]["sha256"] == hashlib.sha256(api.video).hexdigest()
    assert r.json()["media"]["kind"] == "video"


def test_analyze_video_answers_202_when_the_wait_is_over(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/analyze_video?wait=0", files={"file": ("c.mp4", api.video)})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert r.json()["status_url"] == f"/api/v1/jobs/{job_id}"
        assert wait_job(c, job_id)["status"] == "succeeded"


def test_job_lifecycle_report_list_and_media_deleted(api: Api) -> None:
    image = png_bytes(1)
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post(
            "/api/v1/jobs",
            files={"file": ("still.png", image, "image/png")},
            data={"options": json.dumps({"frames": 4})},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = wait_job(c, job_id)
        assert job["status"] == "succeeded", job
        assert job["source"]["sha256"] == hashlib.sha256(image).hexdigest()  # kept after deletion
        report = Report.model_validate(job["result"])
        assert report.media.kind == "image"
        assert job["options"]["frames"] == 4
        assert job["report_url"] == f"/api/v1/jobs/{job_id}/report"
        html = c.get(job["report_url"])
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert "still.png" in html.text
        listed = c.get("/api/v1/jobs", params={"status": "succeeded", "limit": 200}).json()
        assert job_id in {j["job_id"] for j in listed["items"]}
        assert all(j["result"] is None for j in listed["items"])  # lists stay small
    # The uploaded media is gone (random names only; nothing kept without keep_media).
    leftover = {p.name for p in api.storage.iterdir()} if api.storage.exists() else set()
    assert not any(
        hashlib.sha256(p.read_bytes()).hexdigest() == hashlib.sha256(image).hexdigest()
        for p in api.storage.iterdir()
        if p.name in leftover
    )


def test_keep_media_keeps_the_file(api: Api) -> None:
    image = png_bytes(2)
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/jobs", files={"file": ("k.png", image)}, data={"keep_media": "true"})
        job = wait_job(c, r.json()["job_id"])
    assert job["status"] == "succeeded"
    kept = [p for p in api.storage.iterdir() if p.read_bytes() == image]
    assert len(kept) == 1
    assert "k.png" not in kept[0].name  # stored under a random name


def test_idempotency_key_returns_the_same_job(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        headers = {"Idempotency-Key": "abc-123"}
        a = c.post("/api/v1/jobs", files={"file": ("a.png", png_bytes(3))}, headers=headers)
        b = c.post("/api/v1/jobs", files={"file": ("a.png", png_bytes(3))}, headers=headers)
    assert a.status_code == b.status_code == 202
    assert a.json()["job_id"] == b.json()["job_id"]


def test_batches_of_files_and_urls(api: Api) -> None:
    api.media.files["/b/1.png"] = png_bytes(4)
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/batches", files=[("files", ("x.png", png_bytes(5))), ("files", ("y.png", png_bytes(6)))])
        assert r.status_code == 202, r.text
        assert r.json()["total"] == 2
        batch_id = r.json()["batch_id"]
        r2 = c.post("/api/v1/batches", json={"urls": [api.media.url("/b/1.png"), api.media.url("/missing.png")]})
        assert r2.status_code == 202, r2.text
        for bid in (batch_id, r2.json()["batch_id"]):
            deadline = time.monotonic() + 60
            while not (status := c.get(f"/api/v1/batches/{bid}").json())["done"]:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert sum(status["counts"].values()) == 2
        assert c.get(f"/api/v1/batches/{batch_id}").json()["counts"]["succeeded"] == 2
        url_batch = c.get(f"/api/v1/batches/{r2.json()['batch_id']}").json()
        assert url_batch["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 1}
        failed = [
            j
            for j in c.get("/api/v1/jobs", params={"batch_id": r2.json()["batch_id"]}).json()["items"]
            if j["status"] == "failed"
        ]
        assert failed[0]["error"]["code"] == "fetch_failed"


def test_review_keeps_model_verdict_and_label_side_by_side(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        job = wait_job(c, c.post("/api/v1/jobs", files={"file": ("r.png", png_bytes(7))}).json()["job_id"])
    with api.server.client(api.keys["reviewer"]) as c:
        r = c.post(f"/api/v1/jobs/{job['job_id']}/review", json={"label": "manipulated", "comment": "seam at jaw"})
        assert r.status_code == 200, r.text
        body = c.get(f"/api/v1/jobs/{job['job_id']}").json()
    assert body["review"]["label"] == "manipulated"
    assert body["review"]["comment"] == "seam at jaw"
    assert body["label"] == job["label"]  # the model's verdict is untouched


def test_analysts_see_only_their_own_jobs(api: Api) -> None:
    with api.server.client(api.keys["signer"]) as other:
        job_id = other.post("/api/v1/jobs", files={"file": ("o.png", png_bytes(8))}).json()["job_id"]
    with api.server.client(api.keys["analyst"]) as c:
        _error(c.get(f"/api/v1/jobs/{job_id}"), 404, "not_found")
        assert job_id not in {j["job_id"] for j in c.get("/api/v1/jobs?limit=200").json()["items"]}
    with api.server.client(api.keys["admin"]) as c:
        assert c.get(f"/api/v1/jobs/{job_id}").status_code == 200


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"just some text, not media at all", 415, "unsupported_media"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "corrupt_media"),
        (b"", 422, "corrupt_media"),
    ],
)
def test_malformed_uploads(api: Api, content: bytes, status: int, code: str) -> None:
    before = set(api.storage.iterdir()) if api.storage.exists() else set()
    with api.server.client(api.keys["analyst"]) as c:
        _error(c.post("/api/v1/jobs", files={"file": ("evil.mp4", content, "video/mp4")}), status, code)
    assert set(api.storage.iterdir()) <= before  # nothing left behind


def test_oversize_upload_is_refused_while_streaming(api: Api) -> None:
    big = b"\x00" * 3_500_000  # the test server's cap is 3 MB

    def chunks() -> object:
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()

    def body() -> object:
        yield head
        yield from chunks()  # type: ignore[misc]
        yield f"\r\n--{boundary}--\r\n".encode()

    before = set(api.storage.iterdir()) if api.storage.exists() else set()
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post(
            "/api/v1/jobs",
            content=body(),  # type: ignore[arg-type]
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        _error(r, 413, "media_too_large")
        # A declared length over the cap is refused before reading.
        r2 = c.post("/api/v1/jobs", files={"file": ("big.mp4", big)})
        _error(r2, 413, "media_too_large")
    assert set(api.storage.iterdir()) <= before


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"--x\r\nnot a real multipart", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
            400,
            "bad_request",
        ),
        ({"content": b"--x--\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "bad_request"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "validation_error"),
        ({"json": {"url": "http://x", "unknown": 1}}, 422, "validation_error"),
        ({"json": {"url": "http://x", "options": {"detectors": ["nope"]}}}, 422, "validation_error"),
        ({"content": b"abc", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"files": {"file": ("a.png", b"x")}, "data": {"options": "{bad"}}, 400, "bad_request"),
        ({"files": {"notfile": ("a.png", b"x")}, "data": {}}, 400, "bad_request"),
    ],
)
def test_malformed_requests(api: Api, kwargs: dict[str, object], status: int, code: str) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        _error(c.post("/api/v1/jobs", **kwargs), status, code)  # type: ignore[arg-type]


def test_error_shape_everywhere(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        _error(c.get("/api/v1/jobs/does-not-exist"), 404, "not_found")
        _error(c.get("/api/v1/nothing-here"), 404, "not_found")
        _error(c.get("/api/v1/jobs?limit=0"), 422, "validation_error")
        _error(c.put("/api/v1/jobs"), 405, "method_not_allowed")
    with api.server.client("vk_nope_nope") as c:
        r = c.get("/api/v1/jobs")
        _error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"


def test_report_of_unfinished_job_is_a_conflict(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/jobs", json={"url": api.media.url("/missing-media.mp4")})
        job = wait_job(c, r.json()["job_id"])
        assert job["status"] == "failed"
        _error(c.get(f"/api/v1/jobs/{job['job_id']}/report"), 409, "conflict")


def test_revoked_key_stops_working(api: Api) -> None:
    with api.server.client(api.keys["admin"]) as admin:
        made = admin.post("/api/v1/keys", json={"role": "analyst", "name": "temp"})
        assert made.status_code == 201
        key, key_id = made.json()["api_key"], made.json()["key_id"]
        with api.server.client(key) as c:
            assert c.get("/api/v1/jobs").status_code == 200
            assert admin.delete(f"/api/v1/keys/{key_id}").json()["revoked_at"]
            _error(c.get("/api/v1/jobs"), 401, "unauthorized")
        listed = {k["key_id"]: k for k in admin.get("/api/v1/keys").json()}
        assert listed[key_id]["revoked_at"] is not None
        assert all("api_key" not in k and "secret_hash" not in k for k in listed.values())


def test_health_ready_metrics(api: Api) -> None:
    with api.server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert set(ready.json()["checks"]) == {"database", "workers", "models"}
    with api.server.client(api.keys["admin"]) as c:
        wait_job(c, c.post("/api/v1/jobs", files={"file": ("m.png", png_bytes(9))}).json()["job_id"])
        text = c.get("/metrics").text
    assert 'veracity_http_requests_total{method="POST",route="/api/v1/jobs",status="202"}' in text
    assert "veracity_http_request_duration_seconds_bucket" in text
    assert 'veracity_jobs{status="succeeded"}' in text
    assert "veracity_queue_depth" in text
    assert 'veracity_detector_score_bucket{detector="spectral",le="+Inf"}' in text
    assert "veracity_job_analysis_seconds_count" in text


def test_openapi_has_stable_operation_ids(api: Api) -> None:
    spec = httpx.get(f"{api.server.url}/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "analyzeVideo",
        "createJob",
        "listJobs",
        "getJob",
        "getJobReport",
        "reviewJob",
        "createBatch",
        "getBatch",
        "healthz",
        "readyz",
        "metrics",
        "createKey",
        "listKeys",
        "revokeKey",
        "verifyAudit",
    } <= ids
    body = spec["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "JobCreate" in spec["components"]["schemas"]
    assert "bearer" in json.dumps(spec["components"]["securitySchemes"]).lower()


def test_docs_are_served_locally(api: Api) -> None:
    with api.server.client() as c:
        page = c.get("/docs")
        js = c.get("/static/swagger/swagger-ui-bundle.js")
        css = c.get("/static/swagger/swagger-ui.css")
    assert page.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    assert "https://" not in page.text  # nothing from a CDN
    assert js.status_code == 200 and len(js.content) > 100_000
    assert css.status_code == 200 and "swagger-ui" in css.text
