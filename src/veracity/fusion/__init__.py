"""Fusion: versioned weights and thresholds turn detector results into one verdict."""

from veracity.fusion.fuse import FusionParams, Verdict, fuse

__all__ = ["FusionParams", "Verdict", "fuse"]
