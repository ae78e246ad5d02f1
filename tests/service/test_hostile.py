"""Hostile input and hostile clients against a real server (issue 15).

One embedded server of its own (short slow-client and fetch limits) takes the bad-input corpus
(tests/corpus.py) one job at a time and as one batch, slow clients, slow URLs, a bomb by URL,
absurd ids; then it is restarted over a planted orphan upload.
"""

from __future__ import annotations

import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.corpus import CASES, SECONDS, build_all, png_declaring
from tests.service.helpers import MEDIA_HOST, MediaServer, Server, make_keys, png_bytes, server_env, wait_job

from veracity.config import Settings
from veracity.service.context import open_context
from veracity.service.models import AuditEntry

FETCH_TIMEOUT_S = 3.0
HEADER_TIMEOUT_S = 2.0


class DripServer:
    """Answers every request with headers, then one body byte every ``every`` seconds."""

    def __init__(self, every: float = 0.5) -> None:
        self.sock = socket.socket()
        self.sock.bind((MEDIA_HOST, 0))
        self.sock.listen(32)
        self.every = every
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{MEDIA_HOST}:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                for _ in range(100_000):
                    conn.sendall(b"\x00")
                    time.sleep(self.every)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@dataclass
class Hostile:
    server: Server
    keys: dict[str, str]
    corpus: dict[str, Path]
    drip: DripServer
    media: MediaServer

    @property
    def storage(self) -> Path:
        return self.server.data_dir / "media"

    def client(self, role: str = "analyst") -> httpx.Client:
        return self.server.client(self.keys[role])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer) -> Iterator[Hostile]:
    data = tmp_path_factory.mktemp("hostile-data")
    env = server_env(
        data,
        VERACITY_FETCH_TIMEOUT_S=str(FETCH_TIMEOUT_S),
        VERACITY_HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        VERACITY_HTTP_BODY_IDLE_S="2",
        VERACITY_HTTP_BODY_GRACE_S="2",
        VERACITY_ORPHAN_AGE_S="60",
    )
    keys = make_keys(data, env)
    server = Server(data, env).start()
    drip = DripServer()
    try:
        yield Hostile(server, keys, build_all(tmp_path_factory.mktemp("hostile-corpus")), drip, media_server)
    finally:
        drip.close()
        server.stop()


def _leftovers(h: Hostile) -> set[str]:
    return {p.name for p in h.storage.iterdir()} if h.storage.exists() else set()


def _wait_empty(h: Hostile, timeout: float = 10.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while (left := _leftovers(h)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_file_as_a_job(hostile: Hostile, case: object) -> None:
    from tests.corpus import Case

    assert isinstance(case, Case)
    started = time.monotonic()
    with hostile.client() as c:
        r = c.post("/api/v1/jobs", files={"file": (case.name, hostile.corpus[case.name].read_bytes())})
        assert r.status_code == case.http, r.text
        assert str(hostile.server.data_dir) not in r.text  # no server paths in any answer
        if case.http != 202:
            assert r.json()["error"]["code"] == case.code
        else:
            job = wait_job(c, r.json()["job_id"], timeout=SECONDS)
            if case.code is None:
                assert job["status"] == "succeeded", job
                result = job["result"]
                assert isinstance(result, dict)
                assert case.warning in {w.split(":", 1)[0] for w in result["warnings"]}
                assert result["label"] != "authentic"
            else:
                assert job["status"] == "failed" and job["error"]["code"] == case.code, job  # type: ignore[index]
                assert str(hostile.server.data_dir) not in str(job["error"])
    assert time.monotonic() - started < SECONDS
    assert not _wait_empty(hostile)  # nothing left in storage, whatever happened


def test_batch_analyses_the_good_files_and_names_the_bad(hostile: Hostile) -> None:
    files = [("files", (name, path.read_bytes())) for name, path in hostile.corpus.items()]
    files.append(("files", ("good.png", png_bytes(9, size=64))))
    with hostile.client() as c:
        r = c.post("/api/v1/batches", files=files)
        assert r.status_code == 202, r.text  # one bad file no longer refuses the batch (was 415)
        accepted = {j["source_name"]: j for j in r.json()["jobs"]}
        assert set(accepted) == {*hostile.corpus, "good.png"}
        for case in CASES:
            if case.http != 202:  # refused on arrival: a failed job that names the file
                assert accepted[case.name]["status"] == "failed"
                assert accepted[case.name]["error"]["code"] == case.code
                assert case.name in accepted[case.name]["error"]["message"]
        deadline = time.monotonic() + SECONDS * 3
        while not (status := c.get(f"/api/v1/batches/{r.json()['batch_id']}").json())["done"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        final = {j["source_name"]: j for j in status["jobs"]}
    assert final["good.png"]["status"] == "succeeded"
    for case in CASES:
        want = "succeeded" if case.code is None else "failed"
        assert final[case.name]["status"] == want, final[case.name]
    assert not _wait_empty(hostile)


def test_batch_of_urls_refuses_only_the_bad_url(hostile: Hostile) -> None:
    hostile.media.files["/h/ok.png"] = png_bytes(10)
    with hostile.client() as c:
        r = c.post("/api/v1/batches", json={"urls": [hostile.media.url("/h/ok.png"), "http://127.0.0.1/x.png"]})
        assert r.status_code == 202, r.text
        by_name = {j["source_name"]: j for j in r.json()["jobs"]}
        assert by_name["http://127.0.0.1/x.png"]["error"]["code"] == "url_not_allowed"


@pytest.mark.parametrize(
    ("name", "data"),
    [("bomb.png", png_declaring(30_000, 30_000)), ("big.png", png_declaring(12_000, 12_000))],
)
def test_verify_bomb_by_url_and_upload_is_413(hostile: Hostile, name: str, data: bytes) -> None:
    hostile.media.files[f"/h/{name}"] = data
    with hostile.client() as c:
        by_url = c.post("/api/v1/verify", json={"url": hostile.media.url(f"/h/{name}")})
        by_upload = c.post("/api/v1/verify", files={"file": (name, data)})
    for r in (by_url, by_upload):
        assert r.status_code == 413, r.text  # by URL it was a 500
        assert r.json()["error"]["code"] == "media_too_large"
    assert not _wait_empty(hostile)


def test_verify_writes_an_audit_entry(hostile: Hostile) -> None:
    with hostile.client() as c:
        assert c.post("/api/v1/verify", files={"file": ("v.png", png_bytes(12))}).status_code == 200
    ctx = open_context(Settings.from_env(hostile.server.env), secrets=False)
    try:
        with ctx.read() as s:
            rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "verify")))
    finally:
        ctx.engine.dispose()
    assert any(r.object == "file:v.png" for r in rows)


def test_absurd_ids_are_not_echoed_whole(hostile: Hostile) -> None:
    with hostile.client() as c:
        for path in ("/api/v1/jobs/", "/api/v1/batches/"):
            r = c.get(path + "x" * 10_000)
            assert r.status_code == 404
            assert len(r.json()["error"]["message"]) < 200


def test_database_and_media_are_private(hostile: Hostile) -> None:
    with hostile.client() as c:
        r = c.post("/api/v1/jobs", files={"file": ("k.png", png_bytes(13))}, data={"keep_media": "true"})
        wait_job(c, r.json()["job_id"])
    data = hostile.server.data_dir
    assert stat.S_IMODE((data / "veracity.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(hostile.storage.stat().st_mode) == 0o700
    kept = list(hostile.storage.iterdir())
    assert kept and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
    for p in kept:
        p.unlink()


def test_slowloris_connections_are_closed(hostile: Hostile) -> None:
    """20 clients dripping header bytes (and one dripping a body): all cut near the deadline,
    while the server keeps answering everyone else."""
    socks = []
    for i in range(21):
        s = socket.create_connection(("127.0.0.1", hostile.server.port))
        if i == 20:
            s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n")
            s.sendall(b"Content-Length: 100000\r\n\r\n")
        else:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks.append(s)
    started = time.monotonic()
    open_ = set(range(len(socks)))
    while open_ and time.monotonic() - started < 15:
        for i in list(open_):
            try:
                socks[i].send(b"X" if i == 20 else b"a")
                if socks[i].recv(1024) == b"":
                    open_.discard(i)
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(i)
        assert httpx.get(f"{hostile.server.url}/healthz", timeout=5).status_code == 200
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    for s in socks:
        s.close()
    assert not open_, f"{len(open_)} slow connections still open after {elapsed:.0f} s"
    assert elapsed < 10  # deadlines of 2 s (+ 2 s grace for the body), checked every second


def test_slow_url_is_cut_at_the_fetch_cap(hostile: Hostile) -> None:
    with hostile.client() as c:
        started = time.monotonic()
        r = c.post("/api/v1/jobs", json={"url": hostile.drip.url("/slow.mp4")})
        job = wait_job(c, r.json()["job_id"], timeout=30)
        elapsed = time.monotonic() - started
    assert job["status"] == "failed" and job["error"]["code"] == "fetch_failed", job  # type: ignore[index]
    assert elapsed < FETCH_TIMEOUT_S + 5  # was 609 s with a 10 s cap
    assert not _wait_empty(hostile)


def test_cancel_endpoint(hostile: Hostile) -> None:
    with hostile.client() as c:
        job_id = c.post("/api/v1/jobs", json={"url": hostile.drip.url("/slow2.mp4")}).json()["job_id"]
        with hostile.client("signer") as other:
            assert other.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
        r = c.post(f"/api/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed" and r.json()["error"]["code"] == "cancelled"
        again = c.post(f"/api/v1/jobs/{job_id}/cancel")
        assert again.status_code == 409
        assert c.get(f"/api/v1/jobs/{job_id}").json()["error"]["code"] == "cancelled"


def test_orphans_are_swept_at_start_up(hostile: Hostile) -> None:
    """Runs last: restarts the server over a partial upload left by a killed process."""
    hostile.server.stop()
    hostile.storage.mkdir(exist_ok=True)
    orphan = hostile.storage / "0123456789abcdef0123456789abcdef"
    orphan.write_bytes(b"partial upload")
    fresh = hostile.storage / "fedcba9876543210fedcba9876543210"
    fresh.write_bytes(b"an upload in progress elsewhere")
    old = time.time() - 3600
    import os

    os.utime(orphan, (old, old))
    hostile.server.start()
    assert not orphan.exists()
    assert fresh.exists()  # younger than VERACITY_ORPHAN_AGE_S: may still be written
    fresh.unlink()
