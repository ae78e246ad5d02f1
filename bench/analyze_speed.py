"""Analyze speed and memory: 60 s of 720p and 1080p H.264 + AAC, and a 1 MP still photo.

Builds each clip by looping a real talking-head clip from ../shared/data scaled to the frame
height (a moving synthetic pattern when the data set is absent), keyframe every 2 s, then
measures, every figure in fresh processes and as the median of ``--repeat`` runs:

  * floor:   decoding exactly the frames and audio analyze uses (the same plan through
             ``veracity.media.decode``), nothing else;
  * analyze: the whole pipeline (decode, faces, every detector, provenance, fusion, report) with
             the models warm (a first analysis loads them and is reported apart), per-stage
             split from the report's ``timings_ms``, peak RSS of that process;
  * cold:    ``python -m veracity.cli analyze FILE --json``: process start to JSON on stdout;
  * still:   warm analyze of a 1 MP JPEG (median) and its cold CLI run.

The machine is shared: the 1-minute load average (``/proc/loadavg``) is recorded beside every
measurement, and so is the CPU time (user + system) of each run, which other jobs inflate far
less than the wall time. Compare two code versions back to back in one session by running this script
twice with ``PYTHONPATH`` pointing at each version's ``src`` (the children inherit it).

Targets (issue #16, 2 cores): 720p analyze <= 3.0 s, <= 2x floor, peak RSS <= 1 GB; 1080p
<= 2x floor; still warm <= 0.3 s, still cold <= 2.5 s.

    .venv/bin/python bench/analyze_speed.py [--seconds 60] [--repeat 3] [--json] [--out F] [--clips DIR]
        [--keyframe-sampling] [--skip-1080p] [--skip-still] [--still-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"
SOURCE = DATA / "video" / "sadtalker_hdtf_RD_Radio34_000.mp4"
PHOTO = DATA / "image" / "real" / "ffhq_real_0.jpg"  # 1024x1024

CHILD = r"""
import json, resource, statistics, sys, time
from pathlib import Path
from typing import Any
from veracity.config import Options, Settings
from veracity.media import decode, plan_sampling, probe
mode, path, repeat = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
settings = Settings.from_env()
options = Options(keyframe_sampling=True) if "kf" in sys.argv[4:] else Options()
if mode == "floor":
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        info = probe(path, settings.limits)
        media = decode(info, plan_sampling(info, options), settings.limits)
        runs.append(time.perf_counter() - t)
        frames = len(media.frames)
        del media
    out = {"runs": runs, "frames": frames}
else:
    from veracity.pipeline import Analyzer
    a = Analyzer(settings)
    t0 = time.perf_counter()
    a.analyze(path, options)  # first run loads the face graphs and models
    first = time.perf_counter() - t0
    runs, reps, cpu = [], [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        reps.append(a.analyze(path, options))
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    mid = sorted(range(repeat), key=lambda k: runs[k])[repeat // 2]
    rep = reps[mid]
    out = {"runs": runs, "cpu_runs": cpu, "first_run_seconds": first, "timings_ms": rep.timings_ms,
           "label": rep.label, "score": rep.deepfake_score, "frames": rep.media.frames_analysed}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def load1() -> float:
    """The 1-minute load average: how busy the shared machine was around a measurement."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def build_clip(path: Path, seconds: float, width: int, height: int) -> str:
    fps = 25
    frames: list[np.ndarray[Any, Any]] = []
    audio = np.zeros(0, np.float32)
    origin = "synthetic pattern"
    if SOURCE.is_file():
        origin = f"{SOURCE.name} looped"
        with av.open(str(SOURCE)) as src:
            for f in src.decode(video=0):
                frames.append(f.reformat(width=height, height=height, format="rgb24").to_ndarray())
        with av.open(str(SOURCE)) as src:
            res = av.AudioResampler(format="flt", layout="mono", rate=16000)
            chunks = [c.to_ndarray().reshape(-1) for fr in src.decode(audio=0) for c in res.resample(fr)]
            audio = np.concatenate(chunks).astype(np.float32)
    else:
        yy, xx = np.mgrid[0:height, 0:height]
        frames = [
            np.stack([(xx + i) % 256, (yy + 2 * i) % 256, np.full_like(xx, i % 256)], -1).astype(np.uint8)
            for i in range(50)
        ]
        audio = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "g": str(2 * fps), "crf": "23"}
        as_ = out.add_stream("aac", rate=16000)
        canvas = np.zeros((height, width, 3), np.uint8)
        x0 = (width - height) // 2
        n = int(seconds * fps)
        for i in range(n):
            canvas[:, x0 : x0 + height] = frames[i % len(frames)]
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
        for k in range(0, total - chunk + 1, chunk):
            af = av.AudioFrame.from_ndarray(track[None, k : k + chunk], format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, k, Fraction(1, 16000)
            for pkt in as_.encode(af):
                out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)
    return origin


def child(mode: str, path: Path, repeat: int, *, keyframes: bool = False) -> dict[str, object]:
    before = load1()
    t = time.perf_counter()
    argv = [sys.executable, "-c", CHILD, mode, str(path), str(repeat)] + (["kf"] if keyframes else [])
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"{mode} child failed:\n{res.stderr[-3000:]}")
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t
    out["load1"] = [before, load1()]
    return out


def cold_cli(path: Path, repeat: int) -> dict[str, object]:
    """``python -m veracity.cli analyze FILE --json``, process start to exit, median of ``repeat``."""
    runs, loads, cpu = [], [], []
    for _ in range(repeat):
        loads.append(load1())
        t, c = time.perf_counter(), _children_cpu()
        res = subprocess.run(
            [sys.executable, "-m", "veracity.cli", "analyze", str(path), "--json"],
            check=False, capture_output=True, text=True,
        )
        runs.append(time.perf_counter() - t)
        cpu.append(_children_cpu() - c)
        if res.returncode not in (0, 1):  # 1: a suspicious/manipulated verdict, still a report
            raise SystemExit(f"cold analyze failed ({res.returncode}):\n{res.stderr[-3000:]}")
        json.loads(res.stdout)
    return {"median_s": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs],
            "cpu_median_s": round(statistics.median(cpu), 3), "load1": loads}


def _children_cpu() -> float:
    """User + system CPU seconds of the ended children: the work a run did, which a busy shared
    machine does not inflate the way it inflates wall time."""
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(use.ru_utime + use.ru_stime)


def median(runs: object) -> float:
    return float(statistics.median(runs))  # type: ignore[arg-type]


def video_case(clip: Path, repeat: int, *, cold: bool, keyframes: bool = False) -> dict[str, object]:
    floor = child("floor", clip, repeat, keyframes=keyframes)
    run = child("analyze", clip, repeat, keyframes=keyframes)
    analyze_s, floor_s = median(run["runs"]), median(floor["runs"])
    out: dict[str, object] = {
        "analyze_s": round(analyze_s, 3),
        "analyze_runs": [round(float(r), 3) for r in run["runs"]],  # type: ignore[attr-defined]
        "analyze_cpu_s": round(median(run["cpu_runs"]), 3),
        "floor_decode_s": round(floor_s, 3),
        "floor_runs": [round(float(r), 3) for r in floor["runs"]],  # type: ignore[attr-defined]
        "ratio_to_floor": round(analyze_s / floor_s, 2),
        "first_run_s": round(float(run["first_run_seconds"]), 3),  # type: ignore[arg-type]
        "peak_rss_mb": round(float(run["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "floor_peak_rss_mb": round(float(floor["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "frames_analysed": run["frames"],
        "label": run["label"],
        "score": run["score"],
        "stage_ms": run["timings_ms"],
        "load1": {"floor": floor["load1"], "analyze": run["load1"]},
    }
    if cold:
        out["cold_cli"] = cold_cli(clip, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Analyze speed benchmark (60 s 720p/1080p H.264 + AAC, 1 MP still).")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-1080p", action="store_true")
    ap.add_argument("--skip-still", action="store_true")
    ap.add_argument("--still-only", action="store_true", help="only the 1 MP still (warm and cold)")
    ap.add_argument("--keyframe-sampling", action="store_true",
                    help="Options(keyframe_sampling=True) for the clips: sparse frames at keyframes, windows from one")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON result here")
    ap.add_argument("--clips", type=Path, help="folder to keep the built clips in and reuse them from")
    args = ap.parse_args()
    result: dict[str, object] = {
        "code": os.environ.get("PYTHONPATH", ""),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load1_start": load1(),
        "keyframe_sampling": args.keyframe_sampling,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.clips or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = [] if args.still_only else [(1280, 720)] + ([] if args.skip_1080p else [(1920, 1080)])
        for w, h in sizes:
            clip = folder / f"bench_{h}p_{args.seconds:.0f}s.mp4"
            t = time.perf_counter()
            origin = f"{SOURCE.name} looped" if SOURCE.is_file() else "synthetic pattern"
            if not clip.is_file():
                origin = build_clip(clip, args.seconds, w, h)
            print(f"built {args.seconds:.0f} s {w}x{h} clip ({origin}) in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
            case = video_case(clip, args.repeat, cold=h == 720 and not args.keyframe_sampling,
                              keyframes=args.keyframe_sampling)
            case["clip"] = {"seconds": args.seconds, "size": f"{w}x{h}", "codec": "h264+aac",
                            "keyframe_every_s": 2, "origin": origin}
            result[f"{h}p"] = case
            print(f"{h}p: analyze {case['analyze_s']} s, floor {case['floor_decode_s']} s", file=sys.stderr)
        if PHOTO.is_file() and not args.skip_still:
            still = child("analyze", PHOTO, max(args.repeat, 3))
            result["still_1mp"] = {
                "file": PHOTO.name,
                "warm_s": round(median(still["runs"]), 3),
                "warm_runs": [round(float(r), 3) for r in still["runs"]],  # type: ignore[attr-defined]
                "warm_cpu_s": round(median(still["cpu_runs"]), 3),
                "stage_ms": still["timings_ms"],
                "cold_cli": cold_cli(PHOTO, args.repeat),
                "load1": still["load1"],
            }
    result["load1_end"] = load1()
    result["targets"] = {"720p_analyze_s": 3.0, "ratio_to_floor": 2.0, "peak_rss_mb": 1024,
                         "still_warm_s": 0.3, "still_cold_s": 2.5}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for k, v in result.items():
            print(f"{k:16s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
