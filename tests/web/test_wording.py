"""The HTML export and the web result page say the same thing: for every reason code, every
not-applicable code and every detector, the sentence each page prints comes from the one wording
table (report.wording), read back out of both rendered documents."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from tests.reports import detector, video_report

from veracity.report.html import render_html
from veracity.report.model import Report
from veracity.report.wording import (
    DETECTOR_INFO,
    NOT_APPLICABLE_TEXT,
    REASON_TEXT,
    detector_looks_at,
    not_applicable_text,
    reason_text,
)
from veracity.web.templating import environment
from veracity.web.view import GROUND_TRUTH, JobView, result_context

UNKNOWN = "brand_new_code"


class _Wording(HTMLParser):
    """Text of each ``reason-text`` (by the ``data-reason`` of its item) and of each detector
    card's ``why-text`` / ``looks-at`` (by the card's ``data-detector``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, str] = {}
        self.why: dict[str, str] = {}
        self.looks_at: dict[str, str] = {}
        self._reason: str | None = None
        self._detector: str | None = None
        self._into: tuple[dict[str, str], str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "li" and a.get("data-reason"):
            self._reason = a["data-reason"]
        if tag == "article" and a.get("data-detector"):
            self._detector = a["data-detector"]
        if self._into is not None:
            self._depth += 1
        elif "reason-text" in classes and self._reason:
            self._into, self._depth = (self.reasons, self._reason), 1
        elif "why-text" in classes and self._detector:
            self._into, self._depth = (self.why, self._detector), 1
        elif "looks-at" in classes and self._detector:
            self._into, self._depth = (self.looks_at, self._detector), 1

    def handle_endtag(self, tag: str) -> None:
        if self._into is not None:
            self._depth -= 1
            if self._depth == 0:
                table, key = self._into
                table[key] = " ".join(table.get(key, "").split())
                self._into = None
        if tag == "li":
            self._reason = None

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            table, key = self._into
            table[key] = table.get(key, "") + data


def _pages(report: Report) -> tuple[_Wording, _Wording]:
    export = _Wording()
    export.feed(render_html(report))
    ctx = result_context(report, JobView(id="j", status="succeeded", source_name="x"))
    page = environment().get_template("result.html").render(
        request_path="/ui/jobs/j", who=None, nav=[], prefix="/ui", csrf="", csrf_field="csrf_token",
        can_review=False, ground_truth=GROUND_TRUTH, **ctx,
    )
    web = _Wording()
    web.feed(page)
    return export, web


def test_every_reason_code_reads_the_same_in_both() -> None:
    codes = [*REASON_TEXT, UNKNOWN]
    report = video_report(reasons=codes, detectors=[detector("av_sync", 0.9, reasons=codes, weight=1.0)])
    export, web = _pages(report)
    for code in codes:
        assert export.reasons[code] == web.reasons[code] == reason_text(code), code
    assert UNKNOWN.replace("_", " ") in web.reasons[UNKNOWN]
    assert export.why["av_sync"] == web.why["av_sync"] == "Flagged: " + " ".join(reason_text(c) for c in codes)


@pytest.mark.parametrize("code", [*NOT_APPLICABLE_TEXT, UNKNOWN, None])
def test_every_not_applicable_code_reads_the_same_in_both(code: str | None) -> None:
    report = video_report(detectors=[detector("spectral", None, not_applicable=code)])
    export, web = _pages(report)
    assert export.why["spectral"] == web.why["spectral"] == not_applicable_text(code)


def test_every_detector_description_reads_the_same_in_both() -> None:
    names = [*DETECTOR_INFO, UNKNOWN]
    report = video_report(detectors=[detector(n, 0.3, weight=1.0 / len(names)) for n in names])
    export, web = _pages(report)
    for name in names:
        assert export.looks_at[name] == web.looks_at[name] == "Looks at: " + detector_looks_at(name), name
