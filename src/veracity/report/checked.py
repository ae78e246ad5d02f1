"""Plain sentences for "what was checked, and with which power" (one per detector), shared by the
HTML report and the web UI so both say the same thing."""

from __future__ import annotations

from html import escape

from veracity.report.model import CheckedDetector, Report

KIND_PLURAL = {"video": "videos", "image": "images", "audio": "audio files"}


def check_text(c: CheckedDetector, kind: str) -> str:
    """``face artifacts: applied; AUC 0.93 on our eval videos (n=61)``."""
    name = c.detector.replace("_", " ")
    state = "applied" if c.applied else f"did not apply ({(c.not_applicable or 'not applicable').replace('_', ' ')})"
    power: list[str] = []
    if c.auc_eval is not None:
        power.append(f"AUC {c.auc_eval:.2f} on our eval {KIND_PLURAL.get(kind, kind)} (n={c.n_eval})")
    if c.auc_train_cv is not None:
        power.append(f"AUC {c.auc_train_cv:.2f} train side")
    if not c.fused:
        power.append("reported, not fused (no power measured on the train side, alone or added to the others)")
    elif c.proven:
        power.append("proven: can support 'authentic'")
    return f"{name}: {state}" + (f"; {'; '.join(power)}" if power else "")


def with_text(c: CheckedDetector, kind: str) -> CheckedDetector:
    return c.model_copy(update={"text": check_text(c, kind)})


def checked_section(report: Report) -> str:
    """The HTML report's "What was checked" card ('' when the fusion has no per-kind model)."""
    if not report.checked:
        return ""
    items = "".join(f"<li>{escape(c.text or check_text(c, report.media.kind))}</li>" for c in report.checked)
    missing = f"<p><b>Not checked:</b> {escape(report.not_checked)}.</p>" if report.not_checked else ""
    top = "".join(f"<li>{escape(e.text)}</li>" for e in report.explanations)
    top = f"<h3>Strongest evidence</h3><ol>{top}</ol>" if top else ""
    th = report.thresholds
    rule = (f'<p class="muted">Labels: suspicious from {th.suspicious:.2f}, manipulated / synthetic from '
            f"{th.manipulated:.2f} (chosen so at most {th.target_fpr_manipulated:.0%} of train-side real files "
            f"reach it).</p>") if th is not None else ""
    return f'<section class="card" id="checked"><h2>What was checked</h2>{missing}{top}<ul>{items}</ul>{rule}</section>'
