"""Role matrix: every endpoint x every role x no key, against the running server."""

from __future__ import annotations

import httpx
import pytest
from tests.service.conftest import Api
from tests.service.helpers import png_bytes

from veracity.service.auth import PERMISSIONS, ROLES

MISSING = "00000000-0000-0000-0000-000000000000"
BAD_URL = "http://127.0.0.1:9/x.mp4"  # refused by the SSRF rules: answers fast, starts no job

# (method, path template, request kwargs, permission or None for public)
ENDPOINTS: list[tuple[str, str, dict[str, object], str | None]] = [
    ("GET", "/healthz", {}, None),
    ("GET", "/readyz", {}, None),
    ("GET", "/metrics", {}, "metrics:read"),
    ("POST", "/api/v1/analyze_video", {"json": {"video_url": BAD_URL}}, "jobs:create"),
    ("POST", "/api/v1/jobs", {"json": {"url": BAD_URL}}, "jobs:create"),
    ("GET", "/api/v1/jobs", {}, "jobs:create"),
    ("GET", "/api/v1/jobs/{job_id}", {}, "jobs:create"),
    ("GET", "/api/v1/jobs/{job_id}/report", {}, "jobs:create"),
    ("POST", "/api/v1/jobs/{job_id}/review", {"json": {"label": "authentic"}}, "jobs:review"),
    ("POST", "/api/v1/jobs/{job_id}/cancel", {}, "jobs:create"),
    ("POST", "/api/v1/batches", {"json": {"urls": [BAD_URL]}}, "jobs:create"),
    ("GET", "/api/v1/batches/{batch_id}", {}, "jobs:create"),
    ("GET", "/api/v1/keys", {}, "keys:manage"),
    ("POST", "/api/v1/keys", {"json": {"role": "analyst", "name": "matrix"}}, "keys:manage"),
    ("DELETE", "/api/v1/keys/{key_id}", {}, "keys:manage"),
    ("GET", "/api/v1/audit/verify", {}, "audit:read"),
    ("POST", "/api/v1/verify", {"json": {"url": BAD_URL}}, "jobs:create"),
    ("POST", "/api/v1/sign", {"files": {"file": ("x.png", png_bytes(1))}, "data": {"consent_id": "nope"}}, "sign"),
]


def test_matrix_covers_every_operation(api: Api) -> None:
    spec = httpx.get(f"{api.server.url}/openapi.json").json()
    published = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert published == {(m, p) for m, p, _, _ in ENDPOINTS}


@pytest.mark.parametrize("who", [None, *ROLES])
@pytest.mark.parametrize(
    ("method", "template", "kwargs", "permission"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_role_matrix(
    api: Api, who: str | None, method: str, template: str, kwargs: dict[str, object], permission: str | None
) -> None:
    path = template.format(job_id=MISSING, batch_id=MISSING, key_id="nosuchkey")
    with api.server.client(api.keys[who] if who else None) as c:
        r = c.request(method, path, **kwargs)  # type: ignore[arg-type]
    if permission is None:
        assert r.status_code == 200, r.text
    elif who is None:
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
    elif permission not in PERMISSIONS[who]:  # type: ignore[index]
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    else:
        assert r.status_code not in (401, 403, 500), r.text
        # 202: a batch whose one URL is refused is accepted, the URL named as a failed job.
        assert r.status_code in (200, 201, 202, 400, 404), r.text
