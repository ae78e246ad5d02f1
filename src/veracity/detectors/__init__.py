"""Detectors behind one protocol, found by name and loaded lazily (no I/O at import)."""

from veracity.detectors.base import AnalysisContext, Applicability, Detector, DetectorResult

__all__ = ["AnalysisContext", "Applicability", "Detector", "DetectorResult"]
