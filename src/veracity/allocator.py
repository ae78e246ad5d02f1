"""Keep glibc's heap from holding on to the memory of decoded frames.

A 720p RGB frame is 2.7 MB. glibc serves allocations above its mmap threshold (128 KiB) with
``mmap`` and returns them to the system on ``free`` -- but each such free raises the threshold to
the freed size (up to 32 MiB), so after the first few frames every later frame, crop batch and
tensor comes from the heap arenas, which the worker threads fragment and seldom give back. On
the 60 s 720p bench clip that pushed the peak RSS of an analysis from ~760 MB to ~1,000 MB
(bench/analyze_speed.py). Two remedies, measured on that clip beside a training job:

* :func:`trim` after an analysis (always on, through :class:`HeapTrimmer`): the heap's free pages
  go back before the next analysis, so one analysis's leftovers do not stack under the next
  one's peak. Peak ~900 MB, no measurable CPU cost on video (~10 ms). After a small still it is
  skipped: trimming there gave back ~15 MB that the next analysis faulted in again, ~6 ms CPU of
  a ~140 ms analysis (the service's small-image load), so it runs only once the process grew by
  :data:`TRIM_MIN_GROWTH` since the last trim.
* :func:`fix_mmap_threshold` (``AnalysisSettings.low_memory``): a fixed threshold turns the
  adjustment off, large buffers stay ``mmap``-ed and go back to the system as soon as they are
  freed. Peak ~790 MB, but ~20 % more CPU (each buffer is faulted in afresh), so not the default.

Process-wide and idempotent (``mallopt`` sets a value, it does not stack); a no-op where the C
library is not glibc, and when the deployment set ``MALLOC_MMAP_THRESHOLD_`` itself (glibc
read it at start-up: that choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

MMAP_THRESHOLD = 1 << 20  # bytes: frames, crops and tensors above it are mmap-ed
TRIM_MIN_GROWTH = 32 << 20  # bytes of RSS growth since the last trim before trimming again
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
_ENV = "MALLOC_MMAP_THRESHOLD_"


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True when it was set."""
    libc = _libc()
    if libc is None or os.environ.get(_ENV):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def trim() -> bool:
    """Hand the heap's free pages back to the system (after an analysis); True if any went."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux ``/proc/self/statm``), None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class HeapTrimmer:
    """:func:`trim` after an analysis only when the process grew by ``min_growth`` bytes since the
    last trim (or its own start): the RSS held between analyses stays within ``min_growth`` of
    what a trim every time would leave, without paying for a trim (and the page faults after it)
    that had little to give back. Where the RSS cannot be read it trims every time, as before.
    One per Analyzer; the heap is process-wide, so several only make the trims more frequent."""

    def __init__(
        self,
        min_growth: int = TRIM_MIN_GROWTH,
        *,
        rss: Callable[[], int | None] = rss_bytes,
        release: Callable[[], bool] | None = None,
    ) -> None:
        self.min_growth = min_growth
        self._rss = rss
        self._release = release or trim
        self._after_last: int | None = rss()

    def __call__(self) -> bool:
        """True when it trimmed."""
        now = self._rss()
        if now is not None and self._after_last is not None and now - self._after_last < self.min_growth:
            return False
        self._release()
        self._after_last = self._rss()
        return True
