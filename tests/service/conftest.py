"""Service fixtures: one embedded server (uvicorn subprocess) shared by the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.service.helpers import MediaServer, Server, make_keys, server_env
from tests.synth import make_video


@dataclass
class Api:
    server: Server
    keys: dict[str, str]
    media: MediaServer
    video: bytes

    @property
    def storage(self) -> Path:
        return self.server.data_dir / "media"


@pytest.fixture(scope="session")
def media_server() -> Iterator[MediaServer]:
    with MediaServer() as ms:
        yield ms


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_video(tmp_path_factory.mktemp("svc-media") / "tiny.mp4", seconds=1.0, size=(96, 72))
    return path.read_bytes()


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer, tiny_video: bytes) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("svc-data")
    env = server_env(data)
    keys = make_keys(data, env)
    server = Server(data, env).start()
    try:
        yield Api(server, keys, media_server, tiny_video)
    finally:
        server.stop()
