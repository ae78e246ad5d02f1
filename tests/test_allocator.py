"""glibc's mmap threshold is fixed so freed frames go back to the system (peak RSS of a video
analysis), unless the deployment set its own through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from veracity import allocator

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, sys
import numpy as np
from veracity import allocator

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

fixed = allocator.fix_mmap_threshold() if sys.argv[1] == "fix" else False
base = rss_mb()
kept, results = [], []
for i in range(120):  # 720p RGB frames, a few alive at a time, as the decode queue holds them
    kept.append(np.full((720, 1280, 3), i % 255, np.uint8))
    if len(kept) > 8:
        kept.pop(0)
    results.append(np.ones(512))  # a small result kept per frame (landmarks): pins the heap
kept.clear()
print(json.dumps({"fixed": fixed, "held_mb": rss_mb() - base}))
"""


def _probe(mode: str, **env: str) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(SRC), **env}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


needs_glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc only")


@needs_glibc
def test_freed_frames_go_back_to_the_system() -> None:
    out = _probe("fix")
    assert out["fixed"] is True
    # Without the fix this glibc keeps ~21 MB (the last frames, pinned under the small results).
    assert float(out["held_mb"]) < 8  # type: ignore[arg-type]


@needs_glibc
def test_a_threshold_from_the_environment_wins() -> None:
    assert _probe("fix", MALLOC_MMAP_THRESHOLD_="4194304")["fixed"] is False


def test_trim_is_safe_to_call_anywhere() -> None:
    assert isinstance(allocator.trim(), bool)


def test_the_analyzer_fixes_the_threshold_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from veracity.config import AnalysisSettings
    from veracity.pipeline import Analyzer

    calls: list[int] = []

    def fix() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(allocator, "fix_mmap_threshold", fix)
    Analyzer(AnalysisSettings())
    assert calls == []
    Analyzer(AnalysisSettings(low_memory=True))
    assert calls == [1]


def _recorder(released: list[int]) -> Callable[[], bool]:
    def release() -> bool:
        released.append(1)
        return True

    return release


def test_heap_trimmer_trims_only_after_growth() -> None:
    """Trims when the process grew by ``min_growth`` since the last trim, and then only."""
    sizes = iter([100, 110, 100, 150, 120, 125, 160, 130])  # RSS reads, in order
    released: list[int] = []
    trimmer = allocator.HeapTrimmer(30, rss=lambda: next(sizes), release=_recorder(released))
    # start 100; 110 (+10) no; 100 (+0) no; 150 (+50) yes -> 120 after; 125 (+5) no; 160 (+40) yes -> 130
    assert [trimmer() for _ in range(5)] == [False, False, True, False, True]
    assert len(released) == 2


def test_heap_trimmer_trims_every_time_when_rss_is_unknown() -> None:
    released: list[int] = []
    trimmer = allocator.HeapTrimmer(30, rss=lambda: None, release=_recorder(released))
    assert [trimmer(), trimmer()] == [True, True] and len(released) == 2


def test_rss_is_read_on_linux() -> None:
    rss = allocator.rss_bytes()
    assert rss is None or rss > 1 << 20
