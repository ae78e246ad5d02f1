"""Load on the embedded server: N concurrent clients posting small images on loopback.

Starts ``veracity serve`` (embedded: SQLite WAL + in-process workers) in a subprocess with a
fresh data folder, then each client posts ``--requests`` small PNG images (64x64 noise) to
``POST /api/v1/analyze_video`` (answers with the report) or ``POST /api/v1/jobs`` (answers 202;
the bench then polls every job to the end). Reports requests/s, p50/p95 latency, errors (must be
0) and that no job was lost: every submitted job is in the database and succeeded, once.

``--hostile K`` makes every K-th request of each client a file of the bad-input corpus
(tests/corpus.py: zero-frame AVI, unknown codecs, SVG, bombs, truncated and garbage-audio clips,
...). Each must get its expected answer, none a 5xx; at the end no job may be stuck and every
job must have ended within its budget (``VERACITY_JOB_BUDGET_S``).

    .venv/bin/python bench/load.py [--clients 8] [--requests 10] [--workers 1] [--endpoint analyze_video]
        [--hostile 3] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=10, help="requests per client")
    ap.add_argument("--workers", type=int, default=1, help="embedded worker threads")
    ap.add_argument("--endpoint", choices=("analyze_video", "jobs"), default="analyze_video")
    ap.add_argument("--hostile", type=int, default=0, help="every K-th request is a hostile corpus file")
    ap.add_argument("--stuck-after-s", type=float, default=600.0, help="jobs not final by then count as stuck")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    hostile = _hostile_cases(args.endpoint) if args.hostile else []

    from veracity.config import Settings
    from veracity.service.commands import create_key

    with tempfile.TemporaryDirectory(prefix="veracity-load-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERACITY_")}
        env.update(
            VERACITY_DATA_DIR=tmp,
            VERACITY_RATE_LIMIT_PER_MIN="1000000",
            VERACITY_SYNC_WAIT_S="600",
            VERACITY_WORKERS=str(args.workers),
            OMP_NUM_THREADS="1",
        )
        key = str(create_key(Settings.from_env(env), "admin", "load bench")["api_key"])
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "veracity.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--no-bootstrap-admin",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            headers = {"Authorization": f"Bearer {key}"}
            # Warm-up: the first analysis loads the face graphs and models.
            httpx.post(
                f"{url}/api/v1/analyze_video", files={"file": ("w.png", png(10**6))}, headers=headers, timeout=600
            )

            latencies: list[float] = []
            errors: list[str] = []
            server_errors: list[str] = []
            hostile_sent = [0]
            expected_failed = [0]  # hostile files accepted as jobs that must end failed
            job_ids: list[str] = []
            lock = threading.Lock()

            def client(n: int) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=600) as c:
                    for i in range(args.requests):
                        name, body = f"{n}-{i}.png", png(n * 10_000 + i)
                        want = 200 if args.endpoint == "analyze_video" else 202
                        bad = bool(hostile) and i % args.hostile == args.hostile - 1
                        fails = False
                        if bad:
                            name, body, want, fails = hostile[(n * args.requests + i) // args.hostile % len(hostile)]
                        t = time.perf_counter()
                        try:
                            r = c.post(f"/api/v1/{args.endpoint}", files={"file": (name, body)})
                            ok = r.status_code == want
                            job = r.json().get("job_id")  # also on a failed analyze_video (4xx with the job id)
                        except httpx.HTTPError as exc:
                            ok, job, r = False, None, None
                            with lock:
                                errors.append(type(exc).__name__)
                        dt = time.perf_counter() - t
                        with lock:
                            latencies.append(dt)
                            if r is not None and r.status_code >= 500:
                                server_errors.append(f"{name}: {r.status_code}: {r.text[:200]}")
                            if bad:
                                hostile_sent[0] += 1
                                expected_failed[0] += int(fails and job is not None)
                            if job:
                                job_ids.append(job)
                            if not ok and r is not None:
                                errors.append(f"{name}: {r.status_code} (wanted {want}): {r.text[:200]}")

            load_before, server_cpu0 = _load1(), _cpu_s(server.pid)
            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            submitted_s = time.perf_counter() - started
            server_cpu_s = _cpu_s(server.pid) - server_cpu0
            load_after = _load1()

            # Every job to the end, then count: nothing lost, nothing done twice.
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                stuck_deadline = time.monotonic() + args.stuck_after_s
                while True:
                    counts = {
                        s: c.get("/api/v1/jobs", params={"status": s, "limit": 1}).json()["total"]
                        for s in ("queued", "running", "succeeded", "failed")
                    }
                    if counts["queued"] == counts["running"] == 0 or time.monotonic() > stuck_deadline:
                        break
                    time.sleep(0.2)
            total_s = time.perf_counter() - started
            listed = set()
            longest_job_s = 0.0
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                offset = 0
                while True:
                    page = c.get("/api/v1/jobs", params={"limit": 200, "offset": offset}).json()
                    listed |= {j["job_id"] for j in page["items"] if j["status"] in ("succeeded", "failed")}
                    for j in page["items"]:
                        if j["finished_at"] and j["started_at"]:
                            took = _seconds(j["finished_at"]) - _seconds(j["started_at"])
                            longest_job_s = max(longest_job_s, took)
                    offset += 200
                    if offset >= page["total"]:
                        break
                audit = c.get("/api/v1/audit/verify").json()
        finally:
            server.terminate()
            server.wait(timeout=60)

    n = len(latencies)
    q = statistics.quantiles(latencies, n=100) if n >= 2 else latencies * 99
    lost = [j for j in job_ids if j not in listed]
    result = {
        "endpoint": args.endpoint,
        "clients": args.clients,
        "requests": n,
        "workers": args.workers,
        "requests_per_s": round(n / submitted_s, 2),
        "jobs_per_s_end_to_end": round(len(job_ids) / total_s, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "errors": len(errors),
        "jobs_submitted": len(job_ids),
        "jobs_succeeded": counts["succeeded"] - 1,  # minus the warm-up
        "jobs_failed": counts["failed"],
        "jobs_failed_expected": expected_failed[0],
        "jobs_lost": len(lost),
        "jobs_stuck": counts["queued"] + counts["running"],
        "hostile_requests": hostile_sent[0],
        "server_errors_5xx": len(server_errors),
        "longest_job_s": round(longest_job_s, 2),
        # CPU the server spent per request (all its threads): what bounds requests/s on 2 cores.
        "server_cpu_ms_per_request": round(server_cpu_s * 1000 / max(1, n), 1),
        "load1": [load_before, load_after],
        "job_budget_s": Settings.from_env(env).job_budget_s,
        "audit_chain_ok": audit["ok"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")
        for e in (server_errors + errors)[:5]:
            print("error:", e)
    over_budget = result["longest_job_s"] > result["job_budget_s"]  # type: ignore[operator]
    # Hostile files accepted as jobs end failed, exactly those; every other job must succeed.
    wrong_failures = result["jobs_failed"] != expected_failed[0]
    if errors or server_errors or lost or result["jobs_stuck"] or over_budget or wrong_failures:
        raise SystemExit(1)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc/PID/stat``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load1() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return 0.0


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _hostile_cases(endpoint: str) -> list[tuple[str, bytes, int, bool]]:
    """(name, bytes, expected status, its job ends failed) for each corpus file on ``endpoint``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.corpus import CASES, build_all

    from veracity.service.routes.jobs import _JOB_ERROR_STATUS

    folder = Path(tempfile.mkdtemp(prefix="veracity-hostile-"))
    files = build_all(folder)
    out = []
    for case in CASES:
        if endpoint == "jobs":
            want = case.http
        elif case.code is None:
            want = 200
        else:
            want = case.http if case.http != 202 else _JOB_ERROR_STATUS[case.code]
        out.append((case.name, files[case.name].read_bytes(), want, case.code is not None and case.http == 202))
    return out


if __name__ == "__main__":
    main()
