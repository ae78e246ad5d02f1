"""Test helpers for the service: a real uvicorn server in a subprocess, a loopback media/webhook
server on 127.0.0.2, tiny media files."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from veracity.service import jobs
from veracity.service.auth import Principal
from veracity.service.context import ServiceContext
from veracity.service.jobs import StoredMedia
from veracity.service.models import Job

WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
MEDIA_HOST = "127.0.0.2"  # allow-listed; 127.0.0.1 stays refused, so both sides are testable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def png_bytes(seed: int = 0, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERACITY_")}
    env.update(
        {
            "VERACITY_DATA_DIR": str(data_dir),
            "VERACITY_URL_ALLOWLIST": f"{MEDIA_HOST}/32",
            "VERACITY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VERACITY_WEBHOOK_BACKOFF_S": "0.05",
            "VERACITY_SYNC_WAIT_S": "30",
            "VERACITY_MAX_BYTES": "3000000",
            "OMP_NUM_THREADS": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Server:
    """``veracity serve`` in a subprocess on a free loopback port."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:
            self.proc = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def _spawn(self, log: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "veracity.cli",
                "serve",
                "--port",
                str(self.port),
                "--no-bootstrap-admin",
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=log,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def make_keys(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """One key per role, made as ``veracity apikey create`` makes them (in-process: faster)."""
    from veracity.config import Settings
    from veracity.service.commands import create_key

    settings = Settings.from_env(env)
    return {
        role: str(create_key(settings, role, f"test {role}")["api_key"])
        for role in ("analyst", "reviewer", "signer", "admin")
    }


def wait_job(client: httpx.Client, job_id: str, timeout: float = 90.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        if body["status"] in ("succeeded", "failed"):
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


class MediaServer:
    """Serves files, redirects and records POSTs on 127.0.0.2; ``fail_next`` POSTs answer 500."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.posts: list[Recorded] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.end_headers()
                    return
                data = outer.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    failing = outer.fail_next > 0
                    if failing:
                        outer.fail_next -= 1
                    outer.posts.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer((MEDIA_HOST, 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{MEDIA_HOST}:{self.port}{path}"

    def __enter__(self) -> MediaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_posts(
        self, n: int, timeout: float = 30.0, where: Callable[[Recorded], bool] = lambda r: True
    ) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [p for p in self.posts if where(p)]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {n} POSTs, got {len(got)}")


def queued_job(ctx: ServiceContext, owner: Principal) -> Job:
    """A queued job of ``owner`` on a 1-pixel PNG, created straight in the service's storage and
    database (no HTTP), for tests of the worker pool, the watchdog and the sync-wait signals."""
    with ctx.storage.writer(10**6) as w:
        w.write(png_bytes(1))
    media = StoredMedia(name=w.name, sha256=w.sha256, size=w.size, original_name="p.png")
    with ctx.tx() as s:
        job, _ = jobs.create_job(s, owner, ctx.settings, media=media)
    return job

