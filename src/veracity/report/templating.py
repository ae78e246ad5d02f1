"""The Jinja2 environment of the report templates: autoescape always on, the shared filters.

The web UI builds its own environment over its templates and these (see
:mod:`veracity.web.templating`) with the same filters, via :func:`configure`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined

from veracity.report.present import fmt_bytes, fmt_score, fmt_seconds, score_colour

__all__ = ["configure", "environment", "new_environment", "stylesheet"]


def configure(env: Environment) -> Environment:
    """Install the filters every report partial uses."""
    env.filters["score"] = fmt_score
    env.filters["bytes"] = fmt_bytes
    env.filters["seconds"] = fmt_seconds
    env.filters["score_colour"] = score_colour
    return env


def new_environment(loader: BaseLoader) -> Environment:
    """An environment over ``loader`` with the settings both renderings need."""
    env = Environment(
        loader=loader,
        autoescape=True,  # every template, whatever its extension: report strings are untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return configure(env)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Built once per process on first use (not at import): templates are read lazily."""
    return new_environment(PackageLoader("veracity.report", "templates"))


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The one stylesheet of the report and the web UI (``report/static/app.css``)."""
    return resources.files("veracity.report").joinpath("static", "app.css").read_text(encoding="utf-8")
