"""The Jinja2 environment: package templates, autoescape always on, a few formatting filters."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from veracity.web.text import stage_text
from veracity.web.view import fmt_bytes, fmt_seconds, score_colour

__all__ = ["environment"]


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _score(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Built once per process on first use (not at import): templates are read lazily."""
    env = Environment(
        loader=PackageLoader("veracity.web", "templates"),
        autoescape=True,  # every template, whatever its extension: report strings are untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["score"] = _score
    env.filters["bytes"] = fmt_bytes
    env.filters["seconds"] = fmt_seconds
    env.filters["score_colour"] = score_colour
    env.filters["stage"] = stage_text
    return env
