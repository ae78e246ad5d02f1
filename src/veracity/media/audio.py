"""Audio extraction: any audio stream to 16 kHz mono float32."""

from __future__ import annotations

import av
import av.error
import numpy as np
import numpy.typing as npt

from veracity.errors import CorruptMedia
from veracity.media.types import AUDIO_RATE, Audio, MediaInfo


def load_audio(info: MediaInfo, *, max_seconds: float = 900.0) -> tuple[Audio | None, list[str]]:
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
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            for frame in container.decode(stream):
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
            raise CorruptMedia(f"audio stream cannot be decoded: {exc}", path=path) from exc
        warnings.append(f"audio_decode_stopped_at_{total / AUDIO_RATE:.2f}s")
    if not chunks:
        raise CorruptMedia("audio stream yielded no samples", path=path)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)[:limit]
    samples = np.nan_to_num(np.clip(samples, -1.0, 1.0), nan=0.0).astype(np.float32, copy=False)
    return Audio(samples=samples), warnings
