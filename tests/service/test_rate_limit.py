"""Per-key rate limits: a token bucket per API key, 429 with Retry-After and the error shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.service.helpers import Server, make_keys, server_env

from veracity.service.auth import RateLimiter
from veracity.service.errors import RateLimited


def test_bucket_refills() -> None:
    limiter = RateLimiter(per_min=120)  # 2 per second, burst of 120
    for _ in range(120):
        limiter.check("k")
    with pytest.raises(RateLimited) as info:
        limiter.check("k")
    assert 0 < info.value.retry_after <= 0.5 + 1e-6
    limiter.check("other")  # per key
    limiter._buckets["k"] = (0.0, limiter._buckets["k"][1] - 1.0)  # one second later: two more tokens
    limiter.check("k")
    limiter.check("k")


def test_api_answers_429_per_key(tmp_path: Path) -> None:
    env = server_env(tmp_path, VERACITY_RATE_LIMIT_PER_MIN="3")
    keys = make_keys(tmp_path, env)
    server = Server(tmp_path, env).start()
    try:
        with server.client(keys["analyst"]) as a, server.client(keys["reviewer"]) as b:
            for _ in range(3):
                assert a.get("/api/v1/jobs").status_code == 200
            r = a.get("/api/v1/jobs")
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
            assert b.get("/api/v1/jobs").status_code == 200  # another key has its own bucket
    finally:
        server.stop()
