"""Detectors found by name and imported lazily: listing them imports no detector module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from veracity.detectors.base import Detector
from veracity.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    name: str
    target: str  # "module:Class"
    summary: str
    card: str | None = None  # model card in veracity/models/data, when the detector has weights
    assets: tuple[str, ...] = ()  # fetched model cards it also needs (`veracity models fetch`)


SPECS: tuple[DetectorSpec, ...] = (
    DetectorSpec(
        "av_sync",
        "veracity.detectors.av_sync:AVSyncDetector",
        "learned audio-to-mouth prediction against mouth opening (lip_audio_mismatch)",
        "av_sync-v1",
    ),
    DetectorSpec(
        "physiology",
        "veracity.detectors.physiology:PhysiologyDetector",
        "blink rate and shape; head pose whole face vs central region (Yang et al. 2019)",
    ),
    DetectorSpec(
        "temporal",
        "veracity.detectors.temporal:TemporalDetector",
        "landmark jitter and face-box flicker between consecutive frames",
    ),
    DetectorSpec(
        "spectral",
        "veracity.detectors.spectral:SpectralDetector",
        "azimuthally averaged power spectrum, logistic model (GAN up-sampling peaks)",
        "spectral-v1",
    ),
    DetectorSpec(
        "face_artifacts",
        "veracity.detectors.face_artifacts:FaceArtifactsDetector",
        "EfficientNet-Lite0 on aligned faces, self-blends + face swaps (blending_boundary, texture_artifacts)",
        "face_artifacts-v3",
    ),
    DetectorSpec(
        "synthetic_image",
        "veracity.detectors.synthetic_image:SyntheticImageDetector",
        "native-resolution crops: CLIP ViT-B/16 probe and/or patch CNN, calibrated (GAN/diffusion images; "
        "ai_generated_image)",
        "synthetic_image-v2",
        ("clip-vit-b16-int8",),
    ),
    DetectorSpec(
        "synthetic_speech",
        "veracity.detectors.synthetic_speech:SyntheticSpeechDetector",
        "frozen Whisper tiny.en encoder pooled over 4 s speech windows + logistic head (synthetic_voice)",
        "synthetic_speech-v2",
        ("whisper-tiny-en-ct2", "whisper-tiny-en-ct2-vocabulary"),
    ),
)


def names() -> list[str]:
    return [s.name for s in SPECS]


def spec(name: str) -> DetectorSpec:
    for s in SPECS:
        if s.name == name:
            return s
    raise ConfigError(f"unknown detector {name!r}; known: {', '.join(names())}")


def create(name: str) -> Detector:
    """Import the detector's module and build it; check it honours the protocol."""
    module_name, _, cls_name = spec(name).target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    det = cls()
    if not isinstance(det, Detector) or det.name != name:
        raise ConfigError(f"{spec(name).target} does not implement the Detector protocol as {name!r}")
    return det


def create_all(selected: tuple[str, ...] | None = None) -> list[Detector]:
    return [create(n) for n in (selected if selected is not None else tuple(names()))]
