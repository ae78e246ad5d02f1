"""Report stage: the pydantic API contract and its HTML rendering."""

from veracity.report.model import DetectorReport, ErrorReport, Report

__all__ = ["DetectorReport", "ErrorReport", "Report"]
