"""What was checked and with which power: in the Report, the HTML report and the web partial."""

from __future__ import annotations

from tests.reports import video_report

from veracity.report.checked import check_text, with_text
from veracity.report.html import render_html
from veracity.report.model import CheckedDetector, Explanation, LabelThresholds
from veracity.web.templating import environment


def _report() -> object:
    checked = [
        with_text(CheckedDetector(detector="face_artifacts", applied=True, fused=True, weight=1.2, proven=True,
                                  auc_train_cv=0.9, auc_eval=0.93, n_eval=61, contribution=4.1), "video"),
        with_text(CheckedDetector(detector="av_sync", applied=False, fused=False, weight=0.0, proven=False,
                                  not_applicable="no_audio"), "video"),
    ]
    return video_report(
        checked=checked, not_checked="no audio track (lip sync did not run); only face artifacts checks ran",
        explanations=[Explanation(detector="face_artifacts", text="face artifacts scored 0.99 (face #0, strongest at "
                                  "2.5 s)", reasons=["blending_boundary"], contribution=4.1, t=2.5, region="face #0")],
        thresholds=LabelThresholds(suspicious=0.4, manipulated=0.7, target_fpr_suspicious=0.15,
                                   target_fpr_manipulated=0.05),
    )


def test_check_text_names_power_and_unfused_detectors() -> None:
    c = CheckedDetector(detector="face_artifacts", applied=True, fused=True, weight=1.0, proven=True, auc_eval=0.93,
                        n_eval=61)
    assert "face artifacts: applied; AUC 0.93 on our eval videos (n=61)" in check_text(c, "video")
    skipped = CheckedDetector(detector="spectral", applied=True, fused=False, weight=0.0, proven=False)
    assert "reported, not fused" in check_text(skipped, "image")


def test_html_report_shows_checks_thresholds_and_evidence() -> None:
    html = render_html(_report())  # type: ignore[arg-type]
    assert "What was checked" in html
    assert "AUC 0.93 on our eval videos" in html
    assert "Limits of this verdict:</b> no audio track" in html
    assert "strongest at 2.5 s" in html
    assert "manipulated / synthetic from 0.70" in html and "5%" in html
    assert "authentic below" not in html  # a file without the threshold: nothing claimed


def test_the_authentic_threshold_is_shown_when_the_file_has_one() -> None:
    base = _report()
    th = LabelThresholds(suspicious=0.4, manipulated=0.7, target_fpr_suspicious=0.15, target_fpr_manipulated=0.05,
                         authentic=0.12, target_fnr_authentic=0.05)
    html = render_html(base.model_copy(update={"thresholds": th}))  # type: ignore[attr-defined]
    assert "authentic below 0.12 (at most 5% of train-side fakes score that low)" in html


def test_web_partial_renders_the_same_data() -> None:
    page = environment().get_template("_checked.html").render(report=_report())
    assert 'id="checked-list"' in page and "AUC 0.93 on our eval videos" in page
    assert 'data-detector="av_sync"' in page and "did not apply (no audio)" in page
    assert "strongest at 2.5 s" in page and 'id="label-thresholds"' in page


def test_reports_without_checks_render_nothing_extra() -> None:
    assert "What was checked" not in render_html(video_report())
    assert 'id="checked"' not in environment().get_template("_checked.html").render(report=video_report())
