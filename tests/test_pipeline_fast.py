"""Fast (triage) mode: same report shape, says so, skips what it skips; escalation to full."""

from __future__ import annotations

from pathlib import Path

import pytest

from veracity.config import Options, Settings
from veracity.errors import ConfigError
from veracity.pipeline import FAST_DETECTORS, FAST_FRAMES, FAST_SKIPPED_REASON, Analyzer
from veracity.report.model import Report
from veracity.service.schemas import JobOptions


def test_fast_report_has_the_full_shape_and_names_what_it_skipped(sample_video: Path) -> None:
    analyzer = Analyzer()
    try:
        fast = analyzer.analyze(sample_video, Options(mode="fast"))
        full = analyzer.analyze(sample_video)
    finally:
        analyzer.close()
    assert (fast.mode, full.mode) == ("fast", "full")
    assert full.skipped == [] and not full.escalated
    assert [d.name for d in fast.detectors] == [d.name for d in full.detectors]
    not_fast = {d.name for d in full.detectors} - FAST_DETECTORS
    assert set(fast.skipped) == not_fast | {"dense_windows"}
    for d in fast.detectors:
        if d.name in not_fast:
            assert d.score is None and d.not_applicable == FAST_SKIPPED_REASON
    assert fast.media.dense_windows == [] and full.media.dense_windows
    assert 1 <= fast.media.frames_analysed <= FAST_FRAMES
    Report.model_validate(fast.model_dump())


def _report(label: str, mode: str) -> Report:
    from tests.reports import video_report

    return video_report(label=label, mode=mode)


@pytest.mark.parametrize(("label", "escalate", "want_escalated"), [
    ("suspicious", True, True), ("authentic", True, False), ("suspicious", False, False),
])
def test_fast_result_escalates_to_full_only_when_set_and_not_authentic(
    label: str, escalate: bool, want_escalated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake(self: Analyzer, source: object, options: Options, progress: object) -> Report:
        calls.append(options.mode)
        return _report(label if options.mode == "fast" else "manipulated", options.mode)

    monkeypatch.setattr(Analyzer, "_analyze", fake)
    analyzer = Analyzer(Settings().with_(escalate_fast=escalate))
    rep = analyzer.analyze("x.mp4", Options(mode="fast"))
    assert rep.escalated is want_escalated
    assert calls == (["fast", "full"] if want_escalated else ["fast"])
    assert rep.mode == ("full" if want_escalated else "fast")
    if want_escalated:
        assert "fast_pass" in rep.timings_ms


def test_mode_is_validated_and_reaches_options_from_a_job() -> None:
    with pytest.raises(ConfigError):
        Options().with_(mode="quick")
    assert JobOptions(mode="fast").to_options().mode == "fast"
    assert JobOptions().to_options().mode == "full"
    assert Settings.from_env({"VERACITY_ESCALATE_FAST": "true"}).escalate_fast
    assert not Settings.from_env({}).escalate_fast
