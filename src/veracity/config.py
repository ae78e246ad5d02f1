"""Settings and per-call options: the one place environment variables are read.

Nothing here is global mutable state: :func:`Settings.from_env` builds a fresh object and callers
pass it down (c2pa-python's ``Context`` habit).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from veracity.errors import ConfigError

_ENV_PREFIX = "VERACITY_"


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits on input, checked from headers before any heavy decoding."""

    max_bytes: int = 2 * 1024**3
    max_pixels: int = 80_000_000  # per image or frame: 8K video is 33 MP
    max_duration_s: float = 4 * 3600.0
    max_frames: int = 2_000  # frames decoded for one analysis
    max_image_side: int = 20_000
    # Wall-clock cap on decoding one input: a file that makes a decoder spin is cut here.
    max_decode_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_duration_s", "max_frames", "max_image_side", "max_decode_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"limit {name} must be positive")


@dataclass(frozen=True, slots=True)
class Options:
    """What one analysis should do. Defaults are the ones measured in the README."""

    frames: int = 16  # sparse frames across the whole video
    dense_fps: float = 15.0  # frame rate inside dense windows (temporal, blink, lip sync)
    window_s: float = 4.0  # length of one dense window
    max_windows: int = 3
    whole_clip_s: float = 12.0  # clips up to this long are one dense window end to end
    max_faces: int = 4
    detectors: tuple[str, ...] | None = None  # None: every registered detector
    keep_crops: bool = True  # face crops in the report (the HTML shows them)
    mode: Literal["full", "fast"] = "full"  # "fast": triage, a few frames and cheap detectors (pipeline)
    keyframe_sampling: bool = False  # sparse frames at keyframes, windows from one (media.video.snap_targets)

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 512:
            raise ConfigError("frames must be between 1 and 512")
        if not 1.0 <= self.dense_fps <= 60.0:
            raise ConfigError("dense_fps must be between 1 and 60")
        if self.window_s <= 0.5 or self.max_windows < 0 or self.whole_clip_s < 0:
            raise ConfigError("window_s must exceed 0.5 s and counts must be non-negative")
        if not 1 <= self.max_faces <= 16:
            raise ConfigError("max_faces must be between 1 and 16")
        if self.mode not in ("full", "fast"):
            raise ConfigError(f"mode must be 'full' or 'fast', got {self.mode!r}")

    def with_(self, **changes: object) -> Options:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration, built once from the environment and passed down."""

    limits: Limits = field(default_factory=Limits)
    onnx_threads: int = 1
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "veracity")
    # Where the embedded deployment keeps its database, keys and stored media.
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "veracity")
    # SQLAlchemy URL; None means the embedded SQLite file ``data_dir / "veracity.db"``.
    database_url: str | None = None
    # PEM bundle of trust anchors for C2PA; None means no trust list (good signatures are Valid).
    trust_anchors: Path | None = None
    # --- service (veracity serve / worker) ---
    # "development" accepts generated secrets; any other value refuses to start without them.
    environment: str = "development"
    # Celery broker (redis://...); None means the embedded in-process worker pool.
    broker_url: str | None = None
    queue_name: str = "veracity"  # Celery queue (tests use their own to share a broker safely)
    # Media shared by API and workers; None means ``data_dir / "media"``.
    storage_dir: Path | None = None
    sync_wait_s: float = 10.0  # how long POST /analyze_video waits before answering 202
    workers: int = 1  # embedded worker threads (one Analyzer each)
    rate_limit_per_min: int = 600  # requests per API key per minute
    # Hosts or CIDRs that URL ingestion and webhooks may reach even when private (tests, intranets).
    url_allowlist: tuple[str, ...] = ()
    fetch_timeout_s: float = 60.0
    fetch_max_redirects: int = 5
    webhook_secret: str | None = None
    # HMAC key of the audit chain, kept out of the database (see service.audit.resolve_key).
    audit_key: str | None = None
    audit_key_file: Path | None = None
    webhook_retries: int = 5
    webhook_backoff_s: float = 1.0
    keep_media: bool = False  # keep uploaded/fetched media after analysis (per job it can be asked)
    job_stale_s: float = 120.0  # a running job whose heartbeat is older than this is re-queued
    # Watchdog: a job's wall-clock budget is job_budget_s plus job_budget_per_media_s for each
    # second of media; past it the job fails with analysis_timeout. A job that stopped its worker
    # (killed it, or hung past its budget) job_max_attempts times is failed for good.
    job_budget_s: float = 300.0
    job_budget_per_media_s: float = 2.0
    job_max_attempts: int = 3
    # Slow clients (see service.guard): headers complete within this, body gaps and rate.
    http_header_timeout_s: float = 10.0
    http_body_idle_s: float = 30.0
    http_body_grace_s: float = 30.0
    http_body_min_rate: float = 1024.0  # bytes/s on average once the grace is over
    # Stored media older than this that no job refers to is deleted at start-up (killed uploads).
    orphan_age_s: float = 600.0
    # A fast-mode analysis whose label is not authentic is run again in full (batch, API, eval).
    escalate_fast: bool = False

    @property
    def effective_storage_dir(self) -> Path:
        """Where uploaded and fetched media waits for its analysis."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "media"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'veracity.db'}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def num(name: str, default: float) -> float:
            raw = env.get(_ENV_PREFIX + name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError as exc:
                raise ConfigError(f"{_ENV_PREFIX}{name} must be a number, got {raw!r}") from exc

        base = Limits()
        limits = Limits(
            max_bytes=int(num("MAX_BYTES", base.max_bytes)),
            max_pixels=int(num("MAX_PIXELS", base.max_pixels)),
            max_duration_s=num("MAX_DURATION_S", base.max_duration_s),
            max_frames=int(num("MAX_FRAMES", base.max_frames)),
            max_image_side=int(num("MAX_IMAGE_SIDE", base.max_image_side)),
            max_decode_s=num("MAX_DECODE_S", base.max_decode_s),
        )
        cache = env.get(_ENV_PREFIX + "CACHE_DIR")
        data = env.get(_ENV_PREFIX + "DATA_DIR")
        anchors = env.get(_ENV_PREFIX + "TRUST_ANCHORS")
        storage = env.get(_ENV_PREFIX + "STORAGE_DIR")
        allow = env.get(_ENV_PREFIX + "URL_ALLOWLIST", "")
        base_settings = cls()
        return cls(
            limits=limits,
            onnx_threads=max(1, int(num("ONNX_THREADS", 1))),
            cache_dir=Path(cache) if cache else Path.home() / ".cache" / "veracity",
            data_dir=Path(data) if data else Path.home() / ".local" / "share" / "veracity",
            database_url=env.get(_ENV_PREFIX + "DATABASE_URL") or None,
            trust_anchors=Path(anchors) if anchors else None,
            environment=env.get(_ENV_PREFIX + "ENV") or "development",
            broker_url=env.get(_ENV_PREFIX + "BROKER_URL") or None,
            queue_name=env.get(_ENV_PREFIX + "QUEUE") or "veracity",
            storage_dir=Path(storage) if storage else None,
            sync_wait_s=max(0.0, num("SYNC_WAIT_S", base_settings.sync_wait_s)),
            workers=max(1, int(num("WORKERS", base_settings.workers))),
            rate_limit_per_min=max(1, int(num("RATE_LIMIT_PER_MIN", base_settings.rate_limit_per_min))),
            url_allowlist=tuple(x.strip() for x in allow.split(",") if x.strip()),
            fetch_timeout_s=num("FETCH_TIMEOUT_S", base_settings.fetch_timeout_s),
            fetch_max_redirects=max(0, int(num("FETCH_MAX_REDIRECTS", base_settings.fetch_max_redirects))),
            webhook_secret=env.get(_ENV_PREFIX + "WEBHOOK_SECRET") or None,
            audit_key=env.get(_ENV_PREFIX + "AUDIT_KEY") or None,
            audit_key_file=Path(env[_ENV_PREFIX + "AUDIT_KEY_FILE"])
            if env.get(_ENV_PREFIX + "AUDIT_KEY_FILE")
            else None,
            webhook_retries=max(1, int(num("WEBHOOK_RETRIES", base_settings.webhook_retries))),
            webhook_backoff_s=max(0.0, num("WEBHOOK_BACKOFF_S", base_settings.webhook_backoff_s)),
            keep_media=env.get(_ENV_PREFIX + "KEEP_MEDIA", "").lower() in ("1", "true", "yes"),
            escalate_fast=env.get(_ENV_PREFIX + "ESCALATE_FAST", "").lower() in ("1", "true", "yes"),
            job_stale_s=max(1.0, num("JOB_STALE_S", base_settings.job_stale_s)),
            orphan_age_s=max(0.0, num("ORPHAN_AGE_S", base_settings.orphan_age_s)),
            job_budget_s=max(0.1, num("JOB_BUDGET_S", base_settings.job_budget_s)),
            http_header_timeout_s=max(0.1, num("HTTP_HEADER_TIMEOUT_S", base_settings.http_header_timeout_s)),
            http_body_idle_s=max(0.1, num("HTTP_BODY_IDLE_S", base_settings.http_body_idle_s)),
            http_body_grace_s=max(0.0, num("HTTP_BODY_GRACE_S", base_settings.http_body_grace_s)),
            http_body_min_rate=max(0.0, num("HTTP_BODY_MIN_RATE", base_settings.http_body_min_rate)),
            job_budget_per_media_s=max(0.0, num("JOB_BUDGET_PER_MEDIA_S", base_settings.job_budget_per_media_s)),
            job_max_attempts=max(1, int(num("JOB_MAX_ATTEMPTS", base_settings.job_max_attempts))),
        )
