"""Fusion: versioned weights and thresholds turn detector results into one verdict."""

from veracity.fusion.fuse import Calibration, FusionParams, Verdict, fuse

__all__ = ["Calibration", "FusionParams", "Verdict", "fuse"]
