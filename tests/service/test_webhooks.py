"""Webhooks: HMAC-SHA256 signature with a timestamp, retries with backoff, SSRF rules."""

from __future__ import annotations

import json
import time

import pytest
from tests.service.conftest import Api
from tests.service.helpers import WEBHOOK_SECRET, png_bytes, wait_job

from veracity.config import Settings
from veracity.errors import ConfigError
from veracity.service import webhooks


def test_sign_and_verify() -> None:
    now = int(time.time())
    sig = webhooks.sign("s3cret-s3cret-s3cret", now, b'{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert webhooks.verify_signature("s3cret-s3cret-s3cret", str(now), b'{"a":1}', sig)
    assert not webhooks.verify_signature("s3cret-s3cret-s3cret", str(now), b'{"a":2}', sig)  # body changed
    assert not webhooks.verify_signature("other-secret-value!", str(now), b'{"a":1}', sig)  # wrong secret
    old = now - 3600
    assert not webhooks.verify_signature(
        "s3cret-s3cret-s3cret", str(old), b'{"a":1}', webhooks.sign("s3cret-s3cret-s3cret", old, b'{"a":1}')
    )  # replay
    assert not webhooks.verify_signature("s3cret-s3cret-s3cret", "nan", b"", sig)


def test_default_secrets_refused_outside_development(tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path))
    with pytest.raises(ConfigError):
        webhooks.resolve_secret(Settings(environment="production", data_dir=data))
    with pytest.raises(ConfigError):
        webhooks.resolve_secret(Settings(environment="production", data_dir=data, webhook_secret="changeme"))
    assert webhooks.resolve_secret(Settings(environment="production", webhook_secret="x" * 32)) == "x" * 32
    dev = webhooks.resolve_secret(Settings(data_dir=data))
    assert len(dev) >= 32 and webhooks.resolve_secret(Settings(data_dir=data)) == dev  # generated once, kept


def test_settings_from_env_reads_service_settings() -> None:
    s = Settings.from_env(
        {
            "VERACITY_URL_ALLOWLIST": "10.0.0.0/8, media.local",
            "VERACITY_SYNC_WAIT_S": "3",
            "VERACITY_BROKER_URL": "redis://h:6379/1",
            "VERACITY_KEEP_MEDIA": "true",
            "VERACITY_ENV": "production",
            "VERACITY_STORAGE_DIR": "/srv/media",
        }
    )
    assert s.url_allowlist == ("10.0.0.0/8", "media.local")
    assert s.sync_wait_s == 3.0 and s.broker_url == "redis://h:6379/1" and s.keep_media
    assert not s.is_development and str(s.effective_storage_dir) == "/srv/media"


def test_callback_is_signed_and_retried(api: Api) -> None:
    api.media.fail_next = 2  # the receiver fails twice, then accepts
    hook = api.media.url("/hook/retry")
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/jobs", files={"file": ("w.png", png_bytes(11))}, data={"callback_url": hook})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        posts = api.media.wait_posts(3, where=lambda p: p.path == "/hook/retry")
        deadline = time.monotonic() + 20
        while (job := c.get(f"/api/v1/jobs/{job_id}").json())["webhook_status"] != "delivered":
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
    last = posts[-1]
    payload = json.loads(last.body)
    assert payload["job_id"] == job_id and payload["status"] == "succeeded"
    assert payload["result"]["media"]["kind"] == "image"
    ts, sig = last.headers["x-veracity-timestamp"], last.headers["x-veracity-signature"]
    assert webhooks.verify_signature(WEBHOOK_SECRET, ts, last.body, sig)
    assert not webhooks.verify_signature("wrong-secret-wrong-secret", ts, last.body, sig)
    assert len(posts) == 3


def test_failed_job_is_reported_too(api: Api) -> None:
    hook = api.media.url("/hook/failed")
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/jobs", json={"url": api.media.url("/nope.png"), "callback_url": hook})
        wait_job(c, r.json()["job_id"])
    post = api.media.wait_posts(1, where=lambda p: p.path == "/hook/failed")[0]
    body = json.loads(post.body)
    assert body["status"] == "failed" and body["error"]["code"] == "fetch_failed"
    assert webhooks.verify_signature(
        WEBHOOK_SECRET, post.headers["x-veracity-timestamp"], post.body, post.headers["x-veracity-signature"]
    )
