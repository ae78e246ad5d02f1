"""Plain sentences for "what was checked, and with which power" (one per detector), shared by the
HTML report and the web UI so both say the same thing."""

from __future__ import annotations

from veracity.report.model import CheckedDetector

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
