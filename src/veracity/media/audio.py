"""Audio extraction: any audio stream to 16 kHz mono float32."""

from __future__ import annotations

import time

import av
import av.error
import numpy as np
import numpy.typing as npt

from veracity.errors import AnalysisTimeout, CorruptMedia
from veracity.media.types import AUDIO_RATE, AUDIO_UNDECODABLE, MEDIA_TRUNCATED, Audio, MediaInfo, ffmpeg_reason


def load_audio(
    info: MediaInfo, *, max_seconds: float = 900.0, max_decode_s: float = 300.0
) -> tuple[Audio | None, list[str]]:
    """Decode the first audio stream, resampled to 16 kHz mono. Returns (audio, warnings).

    No audio stream is ``(None, [])``: a result, not an error. A stream that breaks part-way keeps
    what decoded and warns; one that yields nothing raises CorruptMedia.
    """
    if not info.has_audio:
        return None, []
    warnings: list[str] = []
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    limit = int(max_seconds * AUDIO_RATE)
    path = str(info.path)
    deadline = time.monotonic() + max_decode_s
    try:
        with av.open(path, format=info.demuxer, metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            for n, frame in enumerate(container.decode(stream)):
                if n % 64 == 0 and time.monotonic() > deadline:
                    raise AnalysisTimeout(f"audio decoding took longer than {max_decode_s:.0f} s", path=path)
                for out in resampler.resample(frame):
                    data = np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)
                    chunks.append(data)
                    total += data.shape[0]
                if total >= limit:
                    warnings.append(f"audio_truncated_to_{max_seconds:.0f}s")
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1))
    except av.error.FFmpegError as exc:
        if not chunks:
            raise CorruptMedia(f"audio stream cannot be decoded: {ffmpeg_reason(exc)}", path=path) from exc
        warnings.append(f"{AUDIO_UNDECODABLE}: audio_decode_stopped_at_{total / AUDIO_RATE:.2f}s")
    if not chunks:
        raise CorruptMedia("audio stream yielded no samples", path=path)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)[:limit]
    declared = info.duration_s or 0.0
    got = samples.shape[0] / AUDIO_RATE
    if declared > 2.0 and got < min(declared, max_seconds) * 0.8 - 1.0:
        warnings.append(f"{MEDIA_TRUNCATED}: audio ends at {got:.2f}s of {declared:.2f}s")
    samples = np.nan_to_num(np.clip(samples, -1.0, 1.0), nan=0.0).astype(np.float32, copy=False)
    return Audio(samples=samples), warnings
