"""Render a :class:`Report` as one self-contained HTML file.

The page is ``report/templates/export.html`` over the presentation model of
:mod:`veracity.report.present`: the same partials and wording as the web result page. Everything
is inline: the stylesheet in a ``<style>`` block, the timeline as SVG, face crops as ``data:``
URIs. No script runs and nothing is fetched, and a Content-Security-Policy says so, so the file
can be mailed, archived or opened offline. Jinja's autoescape escapes every string taken from
the report (file names, reasons, evidence keys are untrusted input).
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from veracity.report.model import Report
from veracity.report.present import present
from veracity.report.templating import environment, stylesheet
from veracity.report.wording import REASON_TEXT

__all__ = ["CSP", "REASON_TEXT", "render_html", "write_html"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_html(report: Report) -> str:
    """Return the report as one self-contained HTML document (no scripts, no external loads)."""
    template = environment().get_template("export.html")
    return template.render(v=present(report), csp=CSP, css=Markup(stylesheet()))  # our own file, not report data


def write_html(report: Report, path: Path) -> Path:
    """Write :func:`render_html` output to ``path`` (UTF-8), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
