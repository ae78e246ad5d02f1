"""Property-based run of schemathesis against /openapi.json: no 5xx, responses match the spec.

Bounded by ``--max-time`` so the suite stays fast; a fixed seed keeps it repeatable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.service.helpers import Server, make_keys, server_env

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    env = server_env(tmp_path, VERACITY_RATE_LIMIT_PER_MIN="1000000", VERACITY_SYNC_WAIT_S="5")
    keys = make_keys(tmp_path, env)
    server = Server(tmp_path, env).start()
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{server.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {keys['admin']}",
                "--checks",
                CHECKS,
                "--max-time",
                "20",
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--seed",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-6000:]
    assert " passed" in run.stdout
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-4000:]
