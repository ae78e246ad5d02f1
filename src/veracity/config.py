"""Settings and per-call options: the one place environment variables are read.

Nothing here is global mutable state: :func:`Settings.from_env` builds a fresh object and callers
pass it down (c2pa-python's ``Context`` habit). Two parts: :class:`AnalysisSettings`, all that an
analysis may read (limits, model threads, caches, trust anchors, the consent registry), which is
what detectors get, and :class:`Settings`, which adds the service's (secrets, queues, timeouts)
and is what the service and the CLI hold. Each field is read from ``VERACITY_`` + its name in
capitals unless its metadata names another variable; its default is written once, on the field.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from veracity.errors import ConfigError

_ENV_PREFIX = "VERACITY_"


def _env(name: str | None = None, *, floor: float | None = None) -> dict[str, Any]:
    """Field metadata: the variable's name after ``VERACITY_`` (default: the field's name in
    capitals) and a floor that values read from the environment are raised to."""
    return {"env": name, "floor": floor}


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

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 512:
            raise ConfigError("frames must be between 1 and 512")
        if not 1.0 <= self.dense_fps <= 60.0:
            raise ConfigError("dense_fps must be between 1 and 60")
        if self.window_s <= 0.5 or self.max_windows < 0 or self.whole_clip_s < 0:
            raise ConfigError("window_s must exceed 0.5 s and counts must be non-negative")
        if not 1 <= self.max_faces <= 16:
            raise ConfigError("max_faces must be between 1 and 16")

    def with_(self, **changes: object) -> Options:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """What an analysis reads: all that detectors, the pipeline and the provenance checks get
    (never the service's secrets)."""

    limits: Limits = field(default_factory=Limits)
    onnx_threads: int = field(default=1, metadata=_env(floor=1))
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "veracity")
    # Where the embedded deployment keeps its database, keys and stored media.
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "veracity")
    # SQLAlchemy URL; None means the embedded SQLite file ``data_dir / "veracity.db"``.
    database_url: str | None = None
    # PEM bundle of trust anchors for C2PA; None means no trust list (good signatures are Valid).
    trust_anchors: Path | None = None

    @property
    def analysis(self) -> AnalysisSettings:
        """Only the analysis part (what a detector is handed), without any service field."""
        return AnalysisSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AnalysisSettings)})

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'veracity.db'}"


@dataclass(frozen=True, slots=True)
class Settings(AnalysisSettings):
    """Process-wide configuration, built once from the environment and passed down: the
    analysis part plus the service's (``veracity serve`` / ``worker``)."""

    # "development" accepts generated secrets; any other value refuses to start without them.
    environment: str = field(default="development", metadata=_env("ENV"))
    # Celery broker (redis://...); None means the embedded in-process worker pool.
    broker_url: str | None = None
    # Celery queue (tests use their own to share a broker safely).
    queue_name: str = field(default="veracity", metadata=_env("QUEUE"))
    # Media shared by API and workers; None means ``data_dir / "media"``.
    storage_dir: Path | None = None
    sync_wait_s: float = field(default=10.0, metadata=_env(floor=0.0))  # POST /analyze_video waits, then 202
    workers: int = field(default=1, metadata=_env(floor=1))  # embedded worker threads (one Analyzer each)
    rate_limit_per_min: int = field(default=600, metadata=_env(floor=1))  # requests per API key per minute
    # Hosts or CIDRs that URL ingestion and webhooks may reach even when private (tests, intranets).
    url_allowlist: tuple[str, ...] = ()
    fetch_timeout_s: float = 60.0
    fetch_max_redirects: int = field(default=5, metadata=_env(floor=0))
    webhook_secret: str | None = None
    # HMAC key of the audit chain, kept out of the database (see service.audit.resolve_key).
    audit_key: str | None = None
    audit_key_file: Path | None = None
    webhook_retries: int = field(default=5, metadata=_env(floor=1))
    webhook_backoff_s: float = field(default=1.0, metadata=_env(floor=0.0))
    keep_media: bool = False  # keep uploaded/fetched media after analysis (per job it can be asked)
    # A running job whose heartbeat is older than this is re-queued.
    job_stale_s: float = field(default=120.0, metadata=_env(floor=1.0))
    # Watchdog: a job's wall-clock budget is job_budget_s plus job_budget_per_media_s for each
    # second of media; past it the job fails with analysis_timeout. A job that stopped its worker
    # (killed it, or hung past its budget) job_max_attempts times is failed for good.
    job_budget_s: float = field(default=300.0, metadata=_env(floor=0.1))
    job_budget_per_media_s: float = field(default=2.0, metadata=_env(floor=0.0))
    job_max_attempts: int = field(default=3, metadata=_env(floor=1))
    # Slow clients (see service.guard): headers complete within this, body gaps and rate.
    http_header_timeout_s: float = field(default=10.0, metadata=_env(floor=0.1))
    http_body_idle_s: float = field(default=30.0, metadata=_env(floor=0.1))
    http_body_grace_s: float = field(default=30.0, metadata=_env(floor=0.0))
    http_body_min_rate: float = field(default=1024.0, metadata=_env(floor=0.0))  # bytes/s once the grace is over
    # Stored media older than this that no job refers to is deleted at start-up (killed uploads).
    orphan_age_s: float = field(default=600.0, metadata=_env(floor=0.0))

    @property
    def effective_storage_dir(self) -> Path:
        """Where uploaded and fetched media waits for its analysis."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "media"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every field from its ``VERACITY_*`` variable; an unset or empty one keeps the default."""
        return cls(**_read(cls, os.environ if env is None else env))


def env_names() -> list[str]:
    """Every variable :meth:`Settings.from_env` reads (for docs and tests)."""
    return [_ENV_PREFIX + name for name, _, _ in _fields(Settings)]


def _fields(cls: type) -> list[tuple[str, dataclasses.Field[Any], Any]]:
    """(variable name, field, type) of a settings class, nested dataclasses (``limits``) flattened."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out.extend(_fields(kind))  # type: ignore[arg-type]
        else:
            out.append(((f.metadata.get("env") or f.name).upper(), f, kind))
    return out


def _read(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            values[f.name] = kind(**_read(kind, env))  # type: ignore[operator, arg-type]
            continue
        name = _ENV_PREFIX + (f.metadata.get("env") or f.name).upper()
        raw = env.get(name)
        if raw:
            values[f.name] = _parse(name, raw, kind, f.metadata.get("floor"))
    return values


def _parse(name: str, raw: str, kind: Any, floor: float | None) -> Any:
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind)  # X | None -> X
    if base is bool:
        return raw.lower() in ("1", "true", "yes")
    if base in (int, float):
        try:
            number = float(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
        number = number if floor is None else max(floor, number)
        return int(number) if base is int else number
    if base is Path:
        return Path(raw)
    if typing.get_origin(kind) is tuple:
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    return raw
