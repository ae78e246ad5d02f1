"""Media stage: probe, plan and decode video, images and audio (PyAV and Pillow)."""

from veracity.media.load import decode, plan_sampling
from veracity.media.probe import probe
from veracity.media.types import Audio, DecodedMedia, Frame, MediaInfo, SamplePlan

__all__ = ["Audio", "DecodedMedia", "Frame", "MediaInfo", "SamplePlan", "decode", "plan_sampling", "probe"]
