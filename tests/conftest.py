"""Shared fixtures: synthetic media made on the fly, and the real data set in ../shared/data.

Real-data tests skip when ../shared/data is absent, except under CI=true, where its absence is a
failure (a green CI must not hide skipped evidence).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.synth import make_video

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VERACITY_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.tsv").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared data set is missing at {SHARED_DATA}")
        pytest.skip(f"shared data set not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4")


SOURCES_DATA = Path(os.environ.get("VERACITY_SOURCES_DATA", Path.home() / ".cache" / "veracity" / "data"))


@pytest.fixture(scope="session")
def sources_data() -> Path:
    """The SOURCES.tsv media materialised by ``veracity train data materialize``. CI has
    ../shared but not the fetched repositories, so this skips when absent, CI or not."""
    if not (SOURCES_DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"materialised SOURCES data not found at {SOURCES_DATA} (veracity train data materialize)")
    return SOURCES_DATA
