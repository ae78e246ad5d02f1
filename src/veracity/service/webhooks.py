"""Webhook delivery: the job's JSON POSTed to ``callback_url``, signed, retried with backoff.

One sender (:class:`WebhookSender`: one try, status recorded); the retry policy
(:class:`RetryPolicy`) is carried out by whichever dispatcher runs the jobs: Celery's autoretry in
scale-out, :class:`WebhookPool` (a few threads and a timer heap) in embedded mode.

Headers: ``X-Veracity-Timestamp`` (Unix seconds) and ``X-Veracity-Signature:
sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``. Receivers recompute the HMAC and
reject stale timestamps (replay). The target passes the same SSRF checks as URL ingestion.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.errors import ConfigError
from veracity.service import fetch, jobs
from veracity.service.errors import FetchFailed, UrlNotAllowed

SIGNATURE_HEADER = "X-Veracity-Signature"
TIMESTAMP_HEADER = "X-Veracity-Timestamp"
log = logging.getLogger("veracity.service")
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


Outcome = Literal["delivered", "retry", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many tries a webhook gets and how long to wait before each retry (doubling).

    The policy is data; who waits is the dispatcher's choice: Celery's autoretry in scale-out
    (:mod:`veracity.service.tasks`), :class:`WebhookPool` in embedded mode.
    """

    attempts: int
    backoff_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max(1, settings.webhook_retries), max(0.0, settings.webhook_backoff_s))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th try (from 1) failed."""
        return self.backoff_s * float(2 ** (attempt - 1))


@dataclass
class WebhookSender:
    """The one webhook sender: one signed POST of the job's public JSON, and the job's webhook
    status recorded after it. It never sleeps and never loops; retrying is the caller's policy."""

    sessions: sessionmaker[Session]
    settings: Settings
    secret: str
    resolver: fetch.Resolver = fetch.system_resolver

    def attempt(self, job_id: str, attempt: int, policy: RetryPolicy) -> Outcome:
        """Try once (``attempt`` counts from 1). A refused address is final (retrying cannot make
        it allowed); 2xx is success; anything else (5xx, 4xx, network errors) asks for a retry
        until the policy's attempts are spent."""
        job = jobs.load(self.sessions, job_id)
        if job is None or not job.callback_url:
            return "skipped"
        body = jobs.to_public(job).model_dump_json().encode()
        refused = False
        try:
            status = deliver_once(job.callback_url, body, self.secret, self.settings, self.resolver)
        except UrlNotAllowed:
            status, refused = 0, True
        except FetchFailed:
            status = 0
        if 200 <= status < 300:
            jobs.set_webhook_status(self.sessions, job_id, "delivered", attempt)
            return "delivered"
        if refused or attempt >= policy.attempts:
            jobs.set_webhook_status(self.sessions, job_id, "failed", attempt)
            return "failed"
        jobs.set_webhook_status(self.sessions, job_id, "pending", attempt)
        return "retry"


class WebhookPool:
    """Embedded mode's delivery: a few threads, so a slow receiver never blocks analysis or the
    other webhooks, and retries scheduled after their backoff without holding a thread."""

    def __init__(self, sender: WebhookSender, policy: RetryPolicy, workers: int = 2) -> None:
        self._sender = sender
        self._policy = policy
        self._workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = None
        self._due: list[tuple[float, int, str, int]] = []  # (when, tie-break, job id, attempt)
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="veracity-webhook")
        self._thread = threading.Thread(target=self._schedule, name="veracity-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; deliveries in flight finish, retries not yet due stay ``pending``."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job_id: str, attempt: int = 1) -> None:
        """Deliver now; ``attempt`` > 1 continues a delivery whose earlier tries were made."""
        self._later(0.0, job_id, attempt)

    def _later(self, delay: float, job_id: str, attempt: int) -> None:
        with self._cond:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), job_id, attempt))
            self._cond.notify()

    def _schedule(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._due else self._due[0][0] - time.monotonic())
                if self._stopped:
                    return
                _, _, job_id, attempt = heapq.heappop(self._due)
            assert self._executor is not None
            self._executor.submit(self._try, job_id, attempt)

    def _try(self, job_id: str, attempt: int) -> None:
        try:
            outcome = self._sender.attempt(job_id, attempt, self._policy)
        except Exception:  # the database went away: the status stays pending
            log.exception("webhook for job %s failed", job_id)
            return
        if outcome == "retry":
            self._later(self._policy.delay(attempt), job_id, attempt + 1)
