"""POST /api/v1/sign and /api/v1/verify against the running server: a consented PNG is signed,
comes back Valid with our watermark, a URL is verified under the SSRF rules, and a refused
consent or an analyst key signs nothing and leaves nothing in storage."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tests.service.conftest import Api


def photo_png(size: int = 320) -> bytes:
    """A smooth textured picture big enough to carry the watermark (>= 192 px a side)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    rgb = np.stack([128 + 60 * np.sin(x / 17), 128 + 60 * np.cos(y / 23), 128 + 40 * np.sin((x + y) / 31)], -1)
    rng = np.random.default_rng(3)
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def cli(api: Api, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "veracity.cli", *args, "--json"],
        env=api.server.env, capture_output=True, text=True, timeout=120, check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def cid(api: Api) -> str:
    """Signing keys and one consent (likeness, image) in the server's data dir."""
    evidence = api.server.data_dir / "release.txt"
    evidence.write_text("I agree to synthetic images of my likeness.\n")
    cli(api, "keys", "init")
    rec = cli(api, "consent", "add", "--subject", "Test Person", "--scope", "likeness,image",
              "--granted-by", "Test Person", "--evidence", str(evidence))
    return str(rec["id"])


def stored(api: Api) -> set[str]:
    return {p.name for p in api.storage.glob("*")} if api.storage.exists() else set()


def test_sign_then_verify_round_trip(api: Api, cid: str) -> None:
    before = stored(api)
    with api.server.client(api.keys["signer"]) as c:
        r = c.post("/api/v1/sign", files={"file": ("portrait.png", photo_png())},
                   data={"consent_id": cid, "generator": "test-diffusion 1.0"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-veracity-consent-id"] == cid
    assert r.headers["x-veracity-watermarked"] == "true"
    assert "portrait-signed.png" in r.headers["content-disposition"]
    signed = r.content
    assert signed[:8] == b"\x89PNG\r\n\x1a\n"

    with api.server.client(api.keys["analyst"]) as c:
        v = c.post("/api/v1/verify", files={"file": ("signed.png", signed)})
    assert v.status_code == 200, v.text
    body = v.json()
    assert body["name"] == "signed.png"
    assert body["c2pa"]["present"] is True
    assert body["c2pa"]["validation_state"] == "Valid"  # no trust anchors configured on this server
    assert "declared_ai_generated" in body["reasons"]
    assert any(w["name"] == "veracity_v1" and w["found"] for w in body["watermarks"]), body["watermarks"]
    assert body["signing_record"]["consent_id"] == cid
    assert stored(api) == before  # neither the upload nor the signed output was kept

    # The same file through a URL (allow-listed test host), and one flipped byte is Invalid.
    api.media.files["/p/signed.png"] = signed
    tampered = bytearray(signed)
    tampered[len(tampered) // 2] ^= 0x01
    api.media.files["/p/tampered.png"] = bytes(tampered)
    with api.server.client(api.keys["analyst"]) as c:
        by_url = c.post("/api/v1/verify", json={"url": api.media.url("/p/signed.png")}).json()
        bad = c.post("/api/v1/verify", json={"url": api.media.url("/p/tampered.png")}).json()
    assert by_url["c2pa"]["validation_state"] == "Valid"
    assert bad["c2pa"]["validation_state"] == "Invalid"
    assert "credential_invalid" in bad["reasons"]


def test_sign_refuses_unknown_or_out_of_scope_consent(api: Api, cid: str) -> None:
    before = stored(api)
    with api.server.client(api.keys["admin"]) as c:
        missing = c.post("/api/v1/sign", files={"file": ("a.png", photo_png())}, data={"consent_id": "nope"})
        voice = c.post("/api/v1/sign", files={"file": ("a.png", photo_png())},
                       data={"consent_id": cid, "scope": "voice"})
        none = c.post("/api/v1/sign", files={"file": ("a.png", photo_png())})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "consent_refused"
    assert voice.status_code == 400 and voice.json()["error"]["code"] == "consent_refused"
    assert none.status_code == 400 and "consent_id" in none.json()["error"]["message"]
    assert stored(api) == before
    with api.server.client(api.keys["admin"]) as c:
        audit = c.get("/api/v1/audit/verify").json()
    assert audit["ok"] is True


def test_verify_refuses_private_addresses(api: Api) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/verify", json={"url": "http://169.254.169.254/latest/meta-data"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "url_not_allowed"
