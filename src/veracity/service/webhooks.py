"""Webhook delivery: the job's JSON POSTed to ``callback_url``, signed, retried with backoff.

Headers: ``X-Veracity-Timestamp`` (Unix seconds) and ``X-Veracity-Signature:
sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``. Receivers recompute the HMAC and
reject stale timestamps (replay). The target passes the same SSRF checks as URL ingestion.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from veracity.config import Settings
from veracity.errors import ConfigError
from veracity.service import fetch
from veracity.service.errors import FetchFailed, UrlNotAllowed

SIGNATURE_HEADER = "X-Veracity-Signature"
TIMESTAMP_HEADER = "X-Veracity-Timestamp"
_WEAK = frozenset({"", "changeme", "change-me", "secret", "password", "veracity", "test"})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300) -> bool:
    """Receiver side (also used by our tests): constant-time compare, timestamp window."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def resolve_secret(settings: Settings) -> str:
    """The configured secret; in development a random one kept in ``data_dir``; else refuse."""
    if settings.webhook_secret:
        weak = settings.webhook_secret.lower() in _WEAK or len(settings.webhook_secret) < 16
        if weak and not settings.is_development:
            raise ConfigError("VERACITY_WEBHOOK_SECRET is a default or shorter than 16 characters")
        return settings.webhook_secret
    if not settings.is_development:
        raise ConfigError("VERACITY_WEBHOOK_SECRET must be set outside development (VERACITY_ENV)")
    path: Path = settings.data_dir / "webhook_secret"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def deliver_once(url: str, body: bytes, secret: str, settings: Settings, resolver: fetch.Resolver) -> int:
    ts = int(time.time())
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}
    with (
        fetch.client(settings) as http,
        fetch.request(http, "POST", url, settings, content=body, headers=headers, resolver=resolver) as resp,
    ):
        resp.read()
        return resp.status_code


def deliver(
    url: str,
    body: bytes,
    secret: str,
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    resolver: fetch.Resolver = fetch.system_resolver,
) -> tuple[bool, int]:
    """Try up to ``webhook_retries`` times with exponential backoff; return (delivered, attempts).

    A refused address is final (retrying cannot make it allowed); 2xx is success; anything else
    (5xx, 4xx, network errors) is retried.
    """
    attempts = 0
    for attempt in range(settings.webhook_retries):
        attempts = attempt + 1
        try:
            status = deliver_once(url, body, secret, settings, resolver)
        except UrlNotAllowed:
            return False, attempts
        except FetchFailed:
            status = 0
        if 200 <= status < 300:
            return True, attempts
        if attempt + 1 < settings.webhook_retries:
            sleep(settings.webhook_backoff_s * (2**attempt))
    return False, attempts
