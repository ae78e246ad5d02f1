"""The UI's Jinja2 environment: its own templates first, then the report's shared partials
(``report/templates``), with the report's filters and a few of the UI's own."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from jinja2 import ChoiceLoader, Environment, PackageLoader

from veracity.report.templating import new_environment
from veracity.web.text import stage_text

__all__ = ["environment"]


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Built once per process on first use (not at import): templates are read lazily."""
    env = new_environment(
        ChoiceLoader([PackageLoader("veracity.web", "templates"), PackageLoader("veracity.report", "templates")])
    )
    env.filters["when"] = _when
    env.filters["stage"] = stage_text
    return env
