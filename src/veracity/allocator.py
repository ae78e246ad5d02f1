"""Keep glibc's heap from holding on to the memory of decoded frames.

A 720p RGB frame is 2.7 MB. glibc serves allocations above its mmap threshold (128 KiB) with
``mmap`` and returns them to the system on ``free`` -- but each such free raises the threshold to
the freed size (up to 32 MiB), so after the first few frames every later frame, crop batch and
tensor comes from the heap arenas, which the worker threads fragment and seldom give back. On
the 60 s 720p bench clip that pushed the peak RSS of an analysis from ~760 MB to ~1,000 MB
(bench/analyze_speed.py). Two remedies, measured on that clip beside a training job:

* :func:`trim` after every analysis (always on): the heap's free pages go back before the next
  analysis, so one analysis's leftovers do not stack under the next one's peak. Peak ~900 MB,
  no measurable CPU cost (~10 ms).
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
from functools import cache
from typing import Any

MMAP_THRESHOLD = 1 << 20  # bytes: frames, crops and tensors above it are mmap-ed
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
