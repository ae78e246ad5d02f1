"""Fusion: versioned weights and thresholds turn detector results into one verdict."""

from veracity.fusion.fuse import Calibration, FusionParams, Verdict, fuse
from veracity.fusion.provenance import apply_provenance

__all__ = ["Calibration", "FusionParams", "Verdict", "apply_provenance", "fuse"]
