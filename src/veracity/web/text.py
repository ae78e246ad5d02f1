"""Wording only the UI needs (job stages). Report wording (labels, reasons, detectors,
not-applicable codes) is one table, :mod:`veracity.report.wording`, shared with the HTML export;
two of its names are re-exported here for the UI's older callers."""

from __future__ import annotations

from veracity.report.wording import NOT_APPLICABLE_TEXT, reason_text

__all__ = ["NOT_APPLICABLE_TEXT", "reason_text", "stage_text"]

_STAGES: dict[str, str] = {
    "queued": "Waiting in the queue",
    "claimed": "Starting",
    "fetch": "Downloading the media",
    "probe": "Reading the file",
    "decode": "Decoding frames and audio",
    "faces": "Finding and tracking faces",
    "fusion": "Combining the detectors' scores",
    "running": "Analysing",
}


def stage_text(stage: str | None, status: str) -> str:
    """A pipeline stage in words; detector names read as "Running the <name> detector"."""
    if stage in _STAGES:
        return _STAGES[stage]
    if stage:
        return f"Running the {stage.replace('_', ' ')} detector"
    return _STAGES.get(status, status.capitalize())
