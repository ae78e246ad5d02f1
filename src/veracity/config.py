"""Settings and per-call options: the one place environment variables are read.

Nothing here is global mutable state: :meth:`Settings.from_env` builds a fresh object and callers
pass it down (c2pa-python's ``Context`` habit). The settings are pydantic-settings models, declared
once: each field's type, default and floor are written on the field, and its variable is
``VERACITY_`` + its name in capitals unless an alias names another (``VERACITY_ENV``,
``VERACITY_QUEUE``; :class:`Limits` is read from its flat ``VERACITY_MAX_*`` names). Three parts:
:class:`AnalysisSettings`, all that an analysis may read (limits, model threads, caches, trust
anchors, the consent registry), which is what detectors get; :class:`ServiceSettings`, the
service's (secrets, queues, timeouts); and :class:`Settings`, both at once, which the service and
the CLI hold, with ``.analysis`` and ``.service`` views. It stays flat (``settings.workers``, not
``settings.service.workers``) so the many call sites and tests that build it by keyword keep working.

The environment is read only by :meth:`~AnalysisSettings.from_env`; keyword construction reads
nothing, so ``Settings(data_dir=...)`` is the same object on every machine, and no ``.env`` file is
ever read. A bad value, from either, is a :class:`~veracity.errors.ConfigError` (CLI exit code 2)
with one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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


def _whole(value: object) -> object:
    """``"3.7"`` -> 3: an integer variable is read as a number and truncated, as it always was.
    Anything that is not a number is left for pydantic to refuse (naming the variable)."""
    if isinstance(value, str):
        try:
            return int(float(value))
        except (ValueError, OverflowError):
            return value
    return value


def _at_least(floor: float) -> AfterValidator:
    """A floor that a smaller value is raised to (``VERACITY_WORKERS=0`` runs one worker): the
    behaviour deployments already rely on, so it is kept rather than turned into a refusal."""
    return AfterValidator(lambda v: max(v, type(v)(floor)))


def _split(value: object) -> object:
    """``"a, ,b"`` -> ``("a", "b")``: lists are comma-separated in the environment, not JSON."""
    if isinstance(value, str):
        return tuple(x.strip() for x in value.split(",") if x.strip())
    return value


_WHOLE = BeforeValidator(_whole)


class _Base(BaseSettings):
    """What every settings part shares: the prefix, immutability, no ``.env`` file, and errors
    as :class:`ConfigError`."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        env_file=None,  # no surprise config: only the process environment, and only via from_env
        env_ignore_empty=True,  # VERACITY_X= means unset, as it always has
        frozen=True,
        extra="forbid",
        populate_by_name=True,  # Settings(environment=...) as well as the VERACITY_ENV alias
        allow_inf_nan=False,
    )

    if not TYPE_CHECKING:  # keep the typed keyword signature that mypy derives from the fields

        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise ConfigError(_one_line(exc, type(self))) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: the environment comes in through :meth:`from_env`."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Every field from its ``VERACITY_*`` variable (``os.environ`` unless ``env`` is given);
        an unset or empty one keeps the default."""
        return cls(**_Environment(cls, os.environ if env is None else env)())

    def with_(self, **changes: Any) -> Self:
        """A copy with some fields changed, validated like the original (``dataclasses.replace``
        for these models)."""
        return type(self)(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})


class AnalysisSettings(_Base):
    """What an analysis reads: all that detectors, the pipeline and the provenance checks get
    (never the service's secrets)."""

    limits: Limits = Field(default_factory=Limits)
    onnx_threads: Annotated[int, _WHOLE, _at_least(1)] = 1
    # Batch-1 ONNX runs over a still's crops (synthetic_image's CLIP view) that go side by side:
    # the same numbers as one after the other, in less wall time on a free second core.
    crop_threads: Annotated[int, _WHOLE, _at_least(1)] = 2
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "veracity")
    # Where the embedded deployment keeps its database, keys and stored media.
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "veracity")
    # SQLAlchemy URL; None means the embedded SQLite file ``data_dir / "veracity.db"``.
    database_url: str | None = None
    # PEM bundle of trust anchors for C2PA; None means no trust list (good signatures are Valid).
    trust_anchors: Path | None = None
    # A fast-mode analysis whose label is not authentic is run again in full (batch, API, eval).
    escalate_fast: bool = False
    # Fix glibc's mmap threshold (veracity.allocator): 60 s 720p peak RSS ~790 MB instead of ~900,
    # for ~20 % more CPU (every freed frame and tensor is unmapped and faulted in again).
    low_memory: bool = False

    @property
    def analysis(self) -> AnalysisSettings:
        """Only the analysis part (what a detector is handed), without any service field."""
        if type(self) is AnalysisSettings:
            return self
        return AnalysisSettings(**{name: getattr(self, name) for name in AnalysisSettings.model_fields})

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'veracity.db'}"


class ServiceSettings(_Base):
    """The service's part (``veracity serve`` / ``worker``): secrets, queues, timeouts. Never
    handed to an analysis."""

    # "development" accepts generated secrets; any other value refuses to start without them.
    environment: str = Field(default="development", validation_alias=_ENV_PREFIX + "ENV")
    # Celery broker (redis://...); None means the embedded in-process worker pool.
    broker_url: str | None = None
    # Celery queue (tests use their own to share a broker safely).
    queue_name: str = Field(default="veracity", validation_alias=_ENV_PREFIX + "QUEUE")
    # Media shared by API and workers; None means ``data_dir / "media"``.
    storage_dir: Path | None = None
    sync_wait_s: Annotated[float, _at_least(0.0)] = 10.0  # POST /analyze_video waits, then 202
    # Embedded worker threads, one Analyzer each; None: ``embedded_workers`` picks min(2, CPUs).
    workers: Annotated[int, _WHOLE, _at_least(1)] | None = None
    rate_limit_per_min: Annotated[int, _WHOLE, _at_least(1)] = 600  # requests per API key per minute
    # Hosts or CIDRs that URL ingestion and webhooks may reach even when private (tests, intranets).
    url_allowlist: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)] = ()
    fetch_timeout_s: float = 60.0
    fetch_max_redirects: Annotated[int, _WHOLE, _at_least(0)] = 5
    webhook_secret: str | None = Field(default=None, repr=False)  # secrets stay out of logs
    # HMAC key of the audit chain, kept out of the database (see service.audit.resolve_key).
    audit_key: str | None = Field(default=None, repr=False)
    audit_key_file: Path | None = None
    webhook_retries: Annotated[int, _WHOLE, _at_least(1)] = 5
    webhook_backoff_s: Annotated[float, _at_least(0.0)] = 1.0
    keep_media: bool = False  # keep uploaded/fetched media after analysis (per job it can be asked)
    # A running job whose heartbeat is older than this is re-queued.
    job_stale_s: Annotated[float, _at_least(1.0)] = 120.0
    # Watchdog: a job's wall-clock budget is job_budget_s plus job_budget_per_media_s for each
    # second of media; past it the job fails with analysis_timeout. A job that stopped its worker
    # (killed it, or hung past its budget) job_max_attempts times is failed for good.
    job_budget_s: Annotated[float, _at_least(0.1)] = 300.0
    job_budget_per_media_s: Annotated[float, _at_least(0.0)] = 2.0
    job_max_attempts: Annotated[int, _WHOLE, _at_least(1)] = 3
    # Slow clients (see service.guard): headers complete within this, body gaps and rate.
    http_header_timeout_s: Annotated[float, _at_least(0.1)] = 10.0
    http_body_idle_s: Annotated[float, _at_least(0.1)] = 30.0
    http_body_grace_s: Annotated[float, _at_least(0.0)] = 30.0
    http_body_min_rate: Annotated[float, _at_least(0.0)] = 1024.0  # bytes/s once the grace is over
    # Stored media older than this that no job refers to is deleted at start-up (killed uploads).
    orphan_age_s: Annotated[float, _at_least(0.0)] = 600.0

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def embedded_workers(self) -> int:
        """Worker threads the embedded pool runs: ``workers`` when set, else min(2, CPUs). One
        worker cannot keep two cores busy (small images, bench/load.py, 8 clients, load ~2:
        6.8 req/s, p95 1.2 s; two: 10.8 req/s, p95 0.82 s), but a third analysis on two cores only
        adds its memory (~125 MB per worker on stills, far more on video). Read when the pool
        starts, so the settings object itself stays the same on every machine."""
        return self.workers if self.workers is not None else min(2, os.cpu_count() or 1)


class Settings(ServiceSettings, AnalysisSettings):
    """Process-wide configuration, built once from the environment and passed down: the
    analysis part plus the service's."""

    @property
    def service(self) -> ServiceSettings:
        """Only the service part."""
        return ServiceSettings(**{name: getattr(self, name) for name in ServiceSettings.model_fields})

    @property
    def effective_storage_dir(self) -> Path:
        """Where uploaded and fetched media waits for its analysis."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "media"


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (``from_env(env)``), which also
    reads :class:`Limits` from its flat ``VERACITY_MAX_*`` variables (never a JSON ``VERACITY_LIMITS``)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._env.items() if v}  # case-insensitive, empty = unset

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        values.pop("limits", None)
        if "limits" in self.settings_cls.model_fields:
            kinds = typing.get_type_hints(Limits)
            raw = {f.name: self.env_vars.get((_ENV_PREFIX + f.name).lower()) for f in dataclasses.fields(Limits)}
            if found := {k: _whole(v) if kinds[k] is int else v for k, v in raw.items() if v}:
                values["limits"] = found
        return values


def _variable(name: str, cls: type[BaseSettings] = Settings) -> str | None:
    """The variable a field (or a ``limits.`` part) is read from."""
    if name in cls.model_fields:
        alias = cls.model_fields[name].validation_alias
        return alias if isinstance(alias, str) else _ENV_PREFIX + name.upper()
    if name.startswith(_ENV_PREFIX):  # already an alias
        return name
    return None


def env_names() -> list[str]:
    """Every variable :meth:`Settings.from_env` reads (for docs and tests)."""
    limits = [_ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Limits)]
    return limits + [v for n in Settings.model_fields if n != "limits" and (v := _variable(n)) is not None]


_NUMBER_ERRORS = {"int_parsing", "int_from_float", "int_type", "float_parsing", "float_type", "finite_number"}


def _one_line(exc: ValidationError, cls: type[BaseSettings]) -> str:
    """A pydantic error as one line per problem naming the variable, e.g.
    ``VERACITY_WORKERS must be a number, got 'many'``; inputs are echoed only for numbers and
    booleans, never for a string that may be a secret."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["limits"] and len(loc) > 1:
            var = _ENV_PREFIX + loc[1].upper()
        else:
            var = (_variable(loc[0], cls) or loc[0]) if loc else cls.__name__
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in _NUMBER_ERRORS:
            out.append(f"{var} must be a number, got {err['input']!r}")
        elif err["type"] == "bool_parsing":
            out.append(f"{var} must be true or false, got {err['input']!r}")
        elif loc == ["limits"]:  # Limits' own check ("limit max_frames must be ...") names the limit
            name = next((f.name for f in dataclasses.fields(Limits) if f" {f.name} " in f" {msg} "), None)
            out.append(f"{_ENV_PREFIX}{name.upper()}: {msg}" if name else msg)
        else:
            out.append(f"{var}: {msg}")
    return "; ".join(out)


def shown_path(path: str | Path) -> str:
    """A path as written into files we commit or show (fusion files, plot titles): the home
    folder as ``~``, so no personal path leaks."""
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if text.startswith(home + "/") else text
