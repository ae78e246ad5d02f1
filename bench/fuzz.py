"""Fuzz the media and provenance entry points with atheris, seeded from the bad-input corpus.

Targets: ``media.probe`` + ``media.decode`` (the path a hostile upload takes) and
``provenance.verify_file``. A crash is any exception that is not a :class:`VeracityError`
(an untyped error is a 500 in the API and exit 1 in the CLI); a hang is one input taking longer
than ``--hang-s`` (a watchdog thread aborts the run and saves the input). Not run in CI.

    nice -n 10 .venv/bin/python bench/fuzz.py --seconds 600 [--target media|verify|both] [--json]

Inputs are written to a temporary file per execution (probe and verify take paths), so the
rate is hundreds, not millions, of executions a second; crashing inputs go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.corpus builds the seeds


def seeds(folder: Path) -> list[Path]:
    from tests.corpus import build_all
    from tests.synth import make_video

    files = list(build_all(folder / "corpus").values())
    files.append(make_video(folder / "good.mp4", seconds=1.0, size=(64, 48)))
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "good.png")
    Image.new("RGB", (32, 32), (200, 10, 30)).save(folder / "good.jpg", quality=80)
    files += [folder / "good.png", folder / "good.jpg"]
    return [f for f in files if f.stat().st_size <= 200_000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--target", choices=("media", "verify", "both"), default="both")
    ap.add_argument("--hang-s", type=float, default=10.0)
    ap.add_argument("--max-len", type=int, default=65536)
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "veracity" / "fuzz")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args()

    import atheris

    with atheris.instrument_imports():
        from veracity.config import Limits, Options, Settings
        from veracity.errors import VeracityError
        from veracity.media import decode, plan_sampling, probe
        from veracity.provenance.verify import verify_file

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="veracity-fuzz-"))
    corpus_dir = args.out / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    for i, seed in enumerate(seeds(work / "seeds")):
        (corpus_dir / f"seed-{i:02d}-{seed.name}").write_bytes(seed.read_bytes())
    # Small limits: the fuzzer must not spend its time decoding a legitimately long clip.
    limits = Limits(max_frames=400, max_decode_s=args.hang_s / 2, max_duration_s=600)
    settings = Settings(data_dir=work / "data", limits=limits)
    options = Options(frames=4, max_windows=1, window_s=1.0, whole_clip_s=1.0)
    stats = {"executions": 0, "crashes": 0, "hangs": 0, "typed_errors": 0, "ok": 0, "slowest_s": 0.0}
    current: dict[str, object] = {"data": b"", "since": None}
    target_file = work / "input"

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            since = current["since"]
            if isinstance(since, float) and time.monotonic() - since > args.hang_s:
                stats["hangs"] += 1
                data = current["data"]
                assert isinstance(data, bytes)
                (args.out / f"hang-{int(time.time())}.bin").write_bytes(data)
                report(stats, args, aborted="hang")
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    def one(data: bytes) -> None:
        target_file.write_bytes(data)
        current["data"], current["since"] = data, time.monotonic()
        stats["executions"] += 1
        t = time.monotonic()
        try:
            if args.target in ("media", "both"):
                try:
                    info = probe(target_file, limits)
                    decode(info, plan_sampling(info, options), limits)
                except VeracityError:
                    stats["typed_errors"] += 1
            if args.target in ("verify", "both"):
                try:
                    verify_file(target_file, settings, watermarks=len(data) < 20_000)
                except VeracityError:
                    stats["typed_errors"] += 1
            stats["ok"] += 1
        except Exception:
            stats["crashes"] += 1
            name = args.out / f"crash-{stats['crashes']:03d}.bin"
            name.write_bytes(data)
            name.with_suffix(".txt").write_text(traceback.format_exc())
        finally:
            current["since"] = None
            stats["slowest_s"] = max(float(stats["slowest_s"]), time.monotonic() - t)

    started = time.monotonic()

    def test_one(data: bytes) -> None:
        if time.monotonic() - started > args.seconds:
            report(stats, args, elapsed=time.monotonic() - started)
            os._exit(0)
        one(data)

    atheris.Setup(
        [sys.argv[0], *rest, f"-max_len={args.max_len}", "-rss_limit_mb=4096", str(corpus_dir)],
        test_one,
    )
    atheris.Fuzz()


def report(stats: dict[str, object], args: argparse.Namespace, **extra: object) -> None:
    out = {**stats, "target": args.target, "seconds": args.seconds, **extra}
    line = json.dumps(out) if args.json else "  ".join(f"{k}={v}" for k, v in out.items())
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
