"""Every detector declared once, as a :class:`DetectorSpec`; listing them imports no detector.

A spec says all that the rest of the system needs to know about a detector, so that adding one
is a module plus a spec: where the class is, what it looks at and what its reason and
not-applicable codes mean in plain words (read by the report and the web UI through
:mod:`veracity.report.wording`), its short name in verdict sentences and its default fusion
weight (read by :mod:`veracity.fusion`), its model card and fetched assets (``veracity models``),
and its trainer as a ``"module:function"`` string that only ``veracity train`` resolves, so the
runtime never imports training code. ``tests/detectors/test_registry.py`` fails when a
detector emits a code its spec does not word.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from veracity.detectors.base import MODEL_UNAVAILABLE, MODEL_UNAVAILABLE_FETCH, Detector
from veracity.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Why:
    """A not-applicable code in words: a sentence for the report, a phrase for the verdict's
    "what was not checked" sentence."""

    text: str
    short: str


# The shared vocabulary of not-applicable codes: a spec picks its codes from here (one code,
# one meaning, one wording across detectors) and adds its own only for a case no other has.
WHY: dict[str, Why] = {
    "not_video": Why("Only applies to video; this input is not one.", "not a video"),
    "not_image": Why("Looks at still images only (whole-picture AI generation); this input is not one.",
                     "not a still image"),
    "no_frames": Why("No picture to look at: the input has no frames, or none could be decoded.",
                     "no frames decoded"),
    "no_face": Why("No face was found, so there was nothing for it to look at.", "no face found"),
    "no_face_crop": Why("No face crop could be cut out to look at.", "no face found"),
    "face_too_small": Why("The faces are too small to analyse.", "faces too small"),
    "too_few_frames": Why("Too few frames with a face to measure movement over time.", "too few frames with a face"),
    "no_dense_window": Why("No stretch of consecutive frames was decoded to follow motion.",
                           "no run of consecutive frames"),
    "no_audio": Why("The input has no audio track.", "no audio track"),
    "no_speech": Why("The audio track holds too little speech.", "too little speech"),
    MODEL_UNAVAILABLE: Why("Its model is not installed on this server.", "model not installed"),
    MODEL_UNAVAILABLE_FETCH: Why("Its model is not installed on this server (`veracity models fetch` brings it).",
                                 "model not installed"),
}


def why(*codes: str, **own: Why) -> dict[str, Why]:
    """A spec's not-applicable codes: shared ones by name, its own as keywords."""
    return {**{c: WHY[c] for c in codes}, **own}


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """One detector, declared. ``reasons`` and ``not_applicable`` list every code it can emit."""

    name: str
    target: str  # "module:Class"
    summary: str  # the method, for people who know the field (`veracity models list`)
    looks_at: str  # what it looks at, in plain words (report and web UI)
    words: str  # its short name in verdict sentences ("lip sync")
    reasons: Mapping[str, str]  # reason code -> the sentence the report prints
    not_applicable: Mapping[str, Why]  # not-applicable code -> its words
    fusion_weight: float  # legacy-rule weight when a fusion file does not list the detector
    trainer: str | None = None  # "module:function" under veracity.train; None: nothing to train
    card: str | None = None  # model card in veracity/models/data, when the detector has weights
    # A media kind served by a card of its own (synthetic_speech: audio files get a head on another
    # encoder block than the sound of videos); every other kind gets ``card``.
    kind_cards: Mapping[str, str] = field(default_factory=dict)
    assets: tuple[str, ...] = field(default=())  # fetched model cards it also needs (`veracity models fetch`)
    # Weights with capacity to remember their training files: the fusion fit must not take its
    # train-side scores at face value, only its trainer's held-out ones (train/heldout.py).
    held_out_scores: bool = False

    def card_for(self, kind: str) -> str | None:
        """The card that scores media of ``kind``."""
        return self.kind_cards.get(kind, self.card)

    def cards(self) -> tuple[str, ...]:
        """Every card the detector loads: ``card`` first, then the kind cards by kind."""
        named = (self.card, *(self.kind_cards[k] for k in sorted(self.kind_cards)))
        return tuple(dict.fromkeys(c for c in named if c))

    def load_trainer(self) -> Callable[..., Any]:
        """Import the trainer (needs the ``[train]`` extra for some); only ``veracity train`` calls this."""
        if self.trainer is None:
            raise ConfigError(f"detector {self.name!r} has nothing to train")
        return _resolve(self.trainer)  # type: ignore[no-any-return]


SPECS: tuple[DetectorSpec, ...] = (
    DetectorSpec(
        "av_sync",
        "veracity.detectors.av_sync:AVSyncDetector",
        "learned audio-to-mouth prediction against mouth opening (lip_audio_mismatch)",
        looks_at="How well the mouth opening follows the speech in the audio track, frame by frame.",
        words="lip sync",
        reasons={"lip_audio_mismatch": "Lip movements do not follow the speech in the audio track."},
        not_applicable=why("not_video", "no_audio", "no_dense_window", "no_face", "no_speech", MODEL_UNAVAILABLE,
                           no_face_in_speech=Why("No face was visible while someone was speaking.",
                                                 "no face while speaking")),
        fusion_weight=1.0,
        trainer="veracity.train.av_sync:train",
        card="av_sync-v1",
    ),
    DetectorSpec(
        "physiology",
        "veracity.detectors.physiology:PhysiologyDetector",
        "blink rate and shape; head pose whole face vs central region (Yang et al. 2019)",
        looks_at="Blinking (rate, rhythm, shape) and whether face and head point the same way.",
        words="blink and head pose",
        reasons={
            "abnormal_blinking": "Blinking is unusually rare, regular or misshapen for a real person.",
            "head_pose_inconsistency": "The central face and the whole head point in different directions.",
        },
        not_applicable=why("not_video", "no_face",
                           degenerate_landmarks=Why("Facial landmarks could not be placed reliably.",
                                                    "degenerate landmarks")),
        fusion_weight=0.25,
    ),
    DetectorSpec(
        "temporal",
        "veracity.detectors.temporal:TemporalDetector",
        "landmark jitter and face-box flicker between consecutive frames",
        looks_at="How much facial landmarks and the face box jitter from one frame to the next.",
        words="motion jitter",
        reasons={
            "landmark_jitter": "Facial landmarks jitter between frames more than a real face moves.",
            "box_flicker": "The face region flickers in size or position from frame to frame.",
        },
        not_applicable=why("not_video", "no_face", "face_too_small", "too_few_frames"),
        fusion_weight=0.25,
    ),
    DetectorSpec(
        "spectral",
        "veracity.detectors.spectral:SpectralDetector",
        "azimuthally averaged power spectrum, logistic model (GAN up-sampling peaks)",
        looks_at="The frequency spectrum of face regions, looking for periodic up-sampling peaks.",
        words="spectral",
        reasons={"spectral_artifacts": "The image spectrum shows periodic peaks left by generative up-sampling."},
        not_applicable=why("no_frames", MODEL_UNAVAILABLE,
                           region_too_small=Why("The face regions are too small to analyse.",
                                                "face regions too small")),
        fusion_weight=0.2,
        trainer="veracity.train.spectral:train_spectral",
        card="spectral-v1",
    ),
    DetectorSpec(
        "face_artifacts",
        "veracity.detectors.face_artifacts:FaceArtifactsDetector",
        "EfficientNet-Lite0 on aligned faces, self-blends + face swaps (blending_boundary, texture_artifacts)",
        looks_at="Aligned face crops, for blending seams and texture left by face swapping.",
        words="face artifacts",
        reasons={
            "blending_boundary": "A seam was found where a face appears blended into the original frame.",
            "texture_artifacts": "Face texture shows artefacts typical of generated or re-rendered faces.",
        },
        not_applicable=why("no_frames", "no_face", "no_face_crop", MODEL_UNAVAILABLE),
        fusion_weight=0.0,
        trainer="veracity.train.face_artifacts:train_face_artifacts",
        card="face_artifacts-v4",
        held_out_scores=True,
    ),
    DetectorSpec(
        "synthetic_image",
        "veracity.detectors.synthetic_image:SyntheticImageDetector",
        "native-resolution crops: CLIP ViT-B/16 probe and/or patch CNN, calibrated (GAN/diffusion images; "
        "ai_generated_image)",
        looks_at="The whole image, for traits of GAN or diffusion generators.",
        words="AI-image traits",
        reasons={"ai_generated_image": "The image has traits of fully generated (GAN or diffusion) images."},
        not_applicable=why("not_image", "no_frames", MODEL_UNAVAILABLE_FETCH,
                           image_too_small=Why("The image is too small to analyse.", "image too small")),
        fusion_weight=0.0,
        trainer="veracity.train.synthetic_image:train_synthetic_image",
        card="synthetic_image-v2",
        held_out_scores=True,
        assets=("clip-vit-b16-int8",),
    ),
    DetectorSpec(
        "synthetic_speech",
        "veracity.detectors.synthetic_speech:SyntheticSpeechDetector",
        "frozen Whisper encoders pooled over 4 s speech windows + logistic heads: Whisper base's block 1 for audio "
        "files, tiny.en's last block for the sound of videos (synthetic_voice)",
        looks_at="The voice, for traits of text-to-speech and voice cloning vocoders.",
        words="synthetic voice",
        reasons={"synthetic_voice": "The voice has traits of text-to-speech or voice cloning."},
        not_applicable=why("no_audio", "no_speech", MODEL_UNAVAILABLE),
        fusion_weight=0.0,
        trainer="veracity.train.synthetic_speech:train_synthetic_speech",
        card="synthetic_speech-v2",
        kind_cards={"audio": "synthetic_speech-audio-v2"},
        held_out_scores=True,
        assets=("whisper-tiny-en-ct2", "whisper-tiny-en-ct2-vocabulary", "whisper-base-ct2",
                "whisper-base-ct2-vocabulary"),
    ),
)


def names() -> list[str]:
    return [s.name for s in SPECS]


def spec(name: str) -> DetectorSpec:
    for s in SPECS:
        if s.name == name:
            return s
    raise ConfigError(f"unknown detector {name!r}; known: {', '.join(names())}")


def find(name: str) -> DetectorSpec | None:
    """The spec of ``name``, or None for a name no detector has (old reports, provenance checks)."""
    return next((s for s in SPECS if s.name == name), None)


def why_short(code: str) -> str:
    """A not-applicable code as the phrase verdict sentences use; the code in words when unknown."""
    for w in (WHY.get(code), *(s.not_applicable.get(code) for s in SPECS)):
        if w is not None:
            return w.short
    return code.replace("_", " ")


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create(name: str) -> Detector:
    """Import the detector's module and build it; check it honours the protocol."""
    det = _resolve(spec(name).target)()
    if not isinstance(det, Detector) or det.name != name:
        raise ConfigError(f"{spec(name).target} does not implement the Detector protocol as {name!r}")
    return det


def create_all(selected: tuple[str, ...] | None = None) -> list[Detector]:
    return [create(n) for n in (selected if selected is not None else tuple(names()))]
