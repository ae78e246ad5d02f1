"""Analyze speed and memory on 60 s of 1280x720 H.264 + AAC talking-head video.

Builds the clip by looping a real talking-head clip from ../shared/data scaled to 720p (a moving
synthetic pattern when the data set is absent), keyframe every 2 s, then measures in fresh
processes:
  * floor:   decoding only the frames and audio that analyze uses (same plan), nothing else;
  * analyze: the whole pipeline (decode, faces, every detector, fusion, report), models warm;
  * cold:    the same including process start-up and model loading;
and reports wall times, analyze / floor, x real time, and peak RSS of the analyze process.
Targets on a 2-core machine: analyze <= 6 s, ratio <= 3, peak RSS <= 1.5 GB.

    .venv/bin/python bench/analyze_speed.py [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

SOURCE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "video" / "sadtalker_hdtf_RD_Radio34_000.mp4"
)

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from veracity.config import Options, Settings
from veracity.media import decode, plan_sampling, probe
mode, path = sys.argv[1], Path(sys.argv[2])
settings, options = Settings.from_env(), Options()
if mode == "floor":
    t = time.perf_counter()
    info = probe(path, settings.limits)
    media = decode(info, plan_sampling(info, options), settings.limits)
    out = {"seconds": time.perf_counter() - t, "frames": len(media.frames)}
else:
    from veracity.pipeline import Analyzer
    a = Analyzer(settings)
    t0 = time.perf_counter()
    a.analyze(path, options)  # first run loads the face graphs and models
    first = time.perf_counter() - t0
    t = time.perf_counter()
    rep = a.analyze(path, options)
    out = {"seconds": time.perf_counter() - t, "first_run_seconds": first, "timings_ms": rep.timings_ms,
           "label": rep.label, "score": rep.deepfake_score, "frames": rep.media.frames_analysed}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def build_clip(path: Path, seconds: float) -> str:
    fps, w, h = 25, 1280, 720
    frames: list[np.ndarray] = []
    audio = np.zeros(0, np.float32)
    origin = "synthetic pattern"
    if SOURCE.is_file():
        origin = f"{SOURCE.name} looped"
        with av.open(str(SOURCE)) as src:
            for f in src.decode(video=0):
                frames.append(f.reformat(width=h, height=h, format="rgb24").to_ndarray())
        with av.open(str(SOURCE)) as src:
            res = av.AudioResampler(format="flt", layout="mono", rate=16000)
            chunks = [c.to_ndarray().reshape(-1) for fr in src.decode(audio=0) for c in res.resample(fr)]
            audio = np.concatenate(chunks).astype(np.float32)
    else:
        yy, xx = np.mgrid[0:h, 0:h]
        frames = [
            np.stack([(xx + i) % 256, (yy + 2 * i) % 256, np.full_like(xx, i % 256)], -1).astype(np.uint8)
            for i in range(50)
        ]
        audio = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "g": str(2 * fps), "crf": "23"}
        as_ = out.add_stream("aac", rate=16000)
        canvas = np.zeros((h, w, 3), np.uint8)
        x0 = (w - h) // 2
        n = int(seconds * fps)
        for i in range(n):
            canvas[:, x0 : x0 + h] = frames[i % len(frames)]
            for pkt in vs.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        total = int(seconds * 16000)
        track = (
            np.tile(audio, int(np.ceil(total / max(1, audio.shape[0]))))[:total]
            if audio.size
            else np.zeros(total, np.float32)
        )
        chunk = 1024
        from fractions import Fraction

        for k in range(0, total - chunk + 1, chunk):
            af = av.AudioFrame.from_ndarray(track[None, k : k + chunk], format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, k, Fraction(1, 16000)
            for pkt in as_.encode(af):
                out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)
    return origin


def child(mode: str, path: Path) -> dict[str, object]:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Analyze speed benchmark (60 s 720p H.264 + AAC).")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "bench_720p.mp4"
        t = time.perf_counter()
        origin = build_clip(clip, args.seconds)
        print(
            f"built {args.seconds:.0f} s 1280x720 clip ({origin}) in {time.perf_counter() - t:.1f} s", file=sys.stderr
        )
        floor = min((child("floor", clip) for _ in range(3)), key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
        run = child("analyze", clip)
    analyze_s, floor_s = float(run["seconds"]), float(floor["seconds"])  # type: ignore[arg-type]
    result = {
        "clip": {
            "seconds": args.seconds,
            "size": "1280x720",
            "codec": "h264+aac",
            "keyframe_every_s": 2,
            "origin": origin,
        },
        "analyze_s": round(analyze_s, 3),
        "floor_decode_s": round(floor_s, 3),
        "ratio_to_floor": round(analyze_s / floor_s, 2),
        "x_real_time": round(args.seconds / analyze_s, 1),
        "first_run_s": round(float(run["first_run_seconds"]), 3),  # type: ignore[arg-type]
        "cold_process_s": round(float(run["process_seconds"]), 3),  # type: ignore[arg-type]
        "peak_rss_mb": round(float(run["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "frames_analysed": run["frames"],
        "stage_ms": run["timings_ms"],
        "targets": {"analyze_s": 6.0, "ratio_to_floor": 3.0, "peak_rss_mb": 1536},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:16s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
