"""``python -m veracity.train.face_prep``: the crop cache built where the trainer looks for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veracity.train import face_prep


def test_main_builds_the_cache_in_the_trainers_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VERACITY_CACHE_DIR", str(tmp_path / "cache"))
    seen: dict[str, Any] = {}

    def fake_build(roots: list[Path], folder: Path, **_kw: Any) -> face_prep.FaceSet:
        seen["roots"], seen["folder"] = roots, folder
        empty = np.zeros((0, face_prep.CROP, face_prep.CROP, 3), np.uint8)
        return face_prep.FaceSet(empty, np.zeros((0, face_prep.N_POINTS, 2), np.float32), [], [],
                                 np.zeros(0, np.int64), np.zeros(0, np.int64), [])

    monkeypatch.setattr(face_prep, "load_or_build", fake_build)
    assert face_prep.main(["--data", str(tmp_path / "a"), "--data", str(tmp_path / "b")]) == 0
    assert seen["roots"] == [tmp_path / "a", tmp_path / "b"]
    assert seen["folder"] == tmp_path / "cache" / "train" / "face_artifacts" / "crops"
    assert "0 face crops" in capsys.readouterr().out
