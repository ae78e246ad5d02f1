"""FaceMesher imports mediapipe without its drawing helpers, so matplotlib (~0.7 s of a cold
start) is never loaded, and a later import of those helpers still gets the real module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import json, sys
import numpy as np
from veracity.faces.mesh import FaceMesher
from veracity.media.types import Frame
m = FaceMesher(max_faces=1)
faces = m.still(Frame(t=0.0, rgb=np.zeros((64, 64, 3), np.uint8), role="sparse"))
out = {"faces": len(faces), "matplotlib": "matplotlib" in sys.modules,
       "stubs_left": [n for n in sys.modules if n.endswith(("drawing_utils", "drawing_styles"))]}
import mediapipe.python.solutions.drawing_utils as du
out["real_drawing_utils"] = hasattr(du, "draw_landmarks")
m.close()
print(json.dumps(out))
"""


def test_mediapipe_loads_without_matplotlib() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=False,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"faces": 0, "matplotlib": False, "stubs_left": [], "real_drawing_utils": True}


RACE = """
import json, threading
import numpy as np
from veracity.faces.mesh import FaceMesher
from veracity.media.types import Frame
start, errors = threading.Barrier(4), []
def first_analysis():  # what each embedded worker thread does with its own mesher
    start.wait()
    try:
        m = FaceMesher(max_faces=1)
        m.still(Frame(t=0.0, rgb=np.zeros((64, 64, 3), np.uint8), role="sparse"))
        m.close()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
threads = [threading.Thread(target=first_analysis) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(errors))
"""


def test_worker_threads_may_import_mediapipe_at_once() -> None:
    """Two embedded workers start their first analyses together: neither may see the package
    half-initialised (``partially initialized module 'mediapipe' has no attribute 'solutions'``)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, env=env, check=False,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
