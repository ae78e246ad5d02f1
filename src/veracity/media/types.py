"""Result types of the media stage: what was probed and what was decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

MediaKind = Literal["video", "image", "audio"]
FrameRole = Literal["sparse", "dense", "still"]

AUDIO_RATE = 16_000

# Warning codes (a warning is ``"code"`` or ``"code: detail"``). These two mean evidence that the
# file promised is missing: fusion must not read their absence as a sign of authenticity.
MEDIA_TRUNCATED = "media_truncated"
AUDIO_UNDECODABLE = "audio_undecodable"


def warning_code(warning: str) -> str:
    """The stable code at the start of a warning string."""
    return warning.split(":", 1)[0].strip()


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's reason without the file name it embeds (server paths must not reach clients)."""
    reason = getattr(exc, "strerror", None)
    if isinstance(reason, str) and reason:
        return reason
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What the headers say about a file, read without decoding the payload."""

    path: Path
    kind: MediaKind
    container: str
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_audio: bool = False
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    rotation: int = 0
    animated: bool = False
    # FFmpeg demuxer chosen by content at probe time; decoders reopen the file with it.
    demuxer: str | None = None
    # Degraded-but-usable facts found while probing (e.g. an audio stream with no decoder).
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.size_bytes < 0:
            raise ValueError("size_bytes must be non-negative")
        if self.kind in ("video", "image") and (not self.width or not self.height):
            raise ValueError(f"{self.kind} needs positive width and height")
        if self.duration_s is not None and not (self.duration_s >= 0 and np.isfinite(self.duration_s)):
            raise ValueError("duration_s must be finite and non-negative")
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ValueError("fps must be positive")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded RGB frame at timestamp ``t`` seconds.

    ``rgb`` may be downscaled for analysis; landmarks are kept in normalised coordinates so
    they map back to any resolution. ``window`` is the dense-window index, or None.
    """

    t: float
    rgb: npt.NDArray[np.uint8]
    role: FrameRole
    window: int | None = None

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be HxWx3 uint8, got {self.rgb.shape} {self.rgb.dtype}")
        if not (np.isfinite(self.t) and self.t >= 0):
            raise ValueError(f"timestamp must be finite and non-negative, got {self.t}")

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def without_pixels(self) -> Frame:
        """The same frame (time, role, window, size) with its pixels let go: ``rgb`` becomes a
        read-only zero-stride view of one black pixel. The streamed pipeline keeps dense frames
        this way once the face stage has meshed them: later stages read only their times."""
        stub = np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), self.rgb.shape)
        return Frame(t=self.t, rgb=stub, role=self.role, window=self.window)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(frozen=True, slots=True)
class Audio:
    """Mono float32 samples in [-1, 1] at 16 kHz."""

    samples: npt.NDArray[np.float32]
    sample_rate: int = AUDIO_RATE

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError("samples must be a 1-D float32 array")
        if self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")

    @property
    def duration_s(self) -> float:
        return float(self.samples.shape[0]) / self.sample_rate


@dataclass(frozen=True, slots=True)
class SamplePlan:
    """Which timestamps to decode: sparse frames across the clip, dense windows for motion."""

    sparse: tuple[float, ...]
    windows: tuple[tuple[float, float], ...]
    dense_fps: float
    sparse_max_side: int = 1920
    dense_max_side: int = 1280
    # Sparse frames at the keyframe nearest each time instead of the exact frame, and each dense
    # window moved back to start at a keyframe (fast mode; Options.keyframe_sampling): on a
    # long-GOP file an exact frame costs decoding the GOP up to it, a keyframe one frame.
    snap_to_keyframes: bool = False

    def __post_init__(self) -> None:
        if any(t < 0 for t in self.sparse) or list(self.sparse) != sorted(self.sparse):
            raise ValueError("sparse timestamps must be sorted and non-negative")
        for start, end in self.windows:
            if not 0 <= start < end:
                raise ValueError(f"bad window {start}..{end}")
        if self.dense_fps <= 0:
            raise ValueError("dense_fps must be positive")

    def dense_times(self, window: int) -> list[float]:
        start, end = self.windows[window]
        n = max(1, int(np.floor((end - start) * self.dense_fps + 1e-6)))
        return [start + k / self.dense_fps for k in range(n)]


@dataclass(slots=True)
class DecodedMedia:
    """Everything decoded for one analysis. ``warnings`` collects degraded-but-usable cases."""

    info: MediaInfo
    frames: list[Frame] = field(default_factory=list)
    audio: Audio | None = None
    warnings: list[str] = field(default_factory=list)
    decode_ms: float = 0.0

    @property
    def sparse(self) -> list[Frame]:
        return [f for f in self.frames if f.role in ("sparse", "still")]

    def window(self, index: int) -> list[Frame]:
        return [f for f in self.frames if f.role == "dense" and f.window == index]

    @property
    def window_ids(self) -> list[int]:
        return sorted({f.window for f in self.frames if f.window is not None})
