"""The service commands through a subprocess: apikey create/list/revoke, migrate, serve's first start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.service.helpers import free_port

from veracity.config import Settings
from veracity.service.commands import list_keys, migrate
from veracity.service.db import head_revision


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veracity.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERACITY_")}
    env["VERACITY_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_apikey_commands(tmp_path: Path) -> None:
    env = _env(tmp_path)
    made = run(env, "apikey", "create", "--role", "reviewer", "--name", "alice", "--json")
    assert made.returncode == 0, made.stderr
    row = json.loads(made.stdout)
    assert row["role"] == "reviewer" and row["api_key"].startswith(f"vk_{row['key_id']}_")
    listed = json.loads(run(env, "apikey", "list", "--json").stdout)
    assert [r["key_id"] for r in listed] == [row["key_id"]]
    assert "api_key" not in listed[0]
    db = (tmp_path / "data" / "veracity.db").read_bytes()
    assert row["api_key"].split("_", 2)[2].encode() not in db  # only the hash is stored
    assert run(env, "apikey", "revoke", row["key_id"], "--json").returncode == 0
    settings = Settings.from_env(env)
    assert list_keys(settings)[0]["revoked_at"]
    bad = run(env, "apikey", "create", "--role", "superuser")
    assert bad.returncode == 2 and "unknown role" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert migrate(settings) == head_revision()  # the newest migration (0002 since jobs.media_kind)


def test_serve_zero_config_first_start(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "veracity.cli", "serve", "--port", str(port), "--json", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        facts = json.loads(proc.stdout.readline())
        assert facts["url"] == f"http://127.0.0.1:{port}" and facts["mode"] == "embedded"
        key = facts["admin_key"]
        assert key and key.startswith("vk_")
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"{facts['url']}/api/v1/keys", headers={"Authorization": f"Bearer {key}"}, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()[0]["role"] == "admin"
        assert (tmp_path / "data" / "veracity.db").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    # Second start: the database has a key, so none is printed.
    again = run(env, "apikey", "list", "--json")
    assert len(json.loads(again.stdout)) == 1


def test_serve_refuses_default_secrets_outside_development(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "VERACITY_ENV": "production", "VERACITY_WEBHOOK_SECRET": "changeme"}
    out = run(env, "serve", "--port", str(free_port()))
    assert out.returncode == 2
    assert "VERACITY_WEBHOOK_SECRET" in out.stderr and len(out.stderr.strip().splitlines()) == 1
