"""The service commands: ``serve``, ``worker``, ``migrate``, ``apikey``, ``audit``, ``review``
(their logic lives in :mod:`veracity.service.commands` and :mod:`veracity.server`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from veracity.cli.common import _err, _fail, app
from veracity.config import Settings
from veracity.errors import ConfigError

# --- service: serve, worker, apikey, audit, migrate (logic in veracity.service.commands) -----------

P = ParamSpec("P")
T = TypeVar("T")

apikey_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
app.add_typer(apikey_app, name="apikey")
app.add_typer(audit_app, name="audit")


def _service_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from exc


def _service_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a service command with one-line errors: 2 for bad input/config, 1 for anything else."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise _fail(exc) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=64, help="Embedded worker threads (default: min(2, CPUs)).")
    ] = None,
    bootstrap_admin: Annotated[
        bool, typer.Option("--bootstrap-admin/--no-bootstrap-admin", help="Print an admin key on first start.")
    ] = True,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    as_json: Annotated[bool, typer.Option("--json", help="Print the start-up facts as one JSON line.")] = False,
) -> None:
    """Start the HTTP API (embedded: SQLite + in-process workers unless a broker is configured)."""
    from veracity.service import commands

    settings = _service_settings()
    from veracity.service.webhooks import resolve_secret

    _service_call(resolve_secret, settings)  # outside development: refuse default or missing secrets
    first_key = _service_call(commands.bootstrap_admin, settings) if bootstrap_admin else None
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    facts = {
        "url": url,
        "docs": f"{url}/docs",
        "ui": f"{url}/ui/",
        "database": settings.effective_database_url,
        "mode": "scaled-out (Celery)" if settings.broker_url else "embedded",
        "admin_key": first_key,
    }
    if as_json:
        sys.stdout.write(json.dumps(facts) + "\n")
    else:
        _err(f"Veracity API on {url}  (docs: {url}/docs, web UI: {url}/ui/)  mode: {facts['mode']}")
        _err(f"database: {settings.effective_database_url}")
        if first_key:
            _err(f"first start: an admin API key was created; it is shown only now:\n  {first_key}")
        _err("create keys with: veracity apikey create --role analyst|reviewer|admin")
    sys.stdout.flush()
    from veracity import server

    _service_call(server.serve, settings, host, port, workers, log_level)


@app.command()
def worker(
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    pool: Annotated[str, typer.Option("--pool", help="Celery pool: solo (one job at a time) or prefork.")] = "solo",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the start-up facts as one JSON line.")] = False,
) -> None:
    """Run a Celery worker for the scaled-out mode (needs VERACITY_BROKER_URL and VERACITY_DATABASE_URL)."""
    from veracity.service import commands

    settings = _service_settings()
    if not settings.broker_url:
        _err("error: veracity worker needs VERACITY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
        raise typer.Exit(2)
    if as_json:
        sys.stdout.write(json.dumps({"broker": settings.broker_url, "queue": settings.queue_name}) + "\n")
        sys.stdout.flush()
    _service_call(commands.worker, settings, log_level, pool, concurrency)


@app.command()
def migrate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Upgrade the service database to the newest schema."""
    from veracity.service import commands

    rev = _service_call(commands.migrate, _service_settings())
    sys.stdout.write((json.dumps({"revision": rev}) if as_json else f"database at revision {rev}") + "\n")


@apikey_app.command("create")
def apikey_create(
    role: Annotated[str, typer.Option("--role", help="analyst, reviewer, signer or admin.")],
    name: Annotated[str, typer.Option("--name", help="A note to tell keys apart.")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key; the secret is printed once and stored only hashed."""
    from veracity.service import commands

    row = _service_call(commands.create_key, _service_settings(), role, name)
    assert isinstance(row, dict)
    if as_json:
        sys.stdout.write(json.dumps(row) + "\n")
    else:
        sys.stdout.write(f"{row['api_key']}\n")
        _err(f"created {row['role']} key {row['key_id']} (shown once; send as Authorization: Bearer <key>)")


@apikey_app.command("list")
def apikey_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List API keys (never their secrets)."""
    from veracity.service import commands

    rows = _service_call(commands.list_keys, _service_settings())
    assert isinstance(rows, list)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("key id", "role", "name", "created", "revoked")
    for r in rows:
        table.add_row(r["key_id"], r["role"], r["name"], r["created_at"], r["revoked_at"] or "-")
    Console().print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the part after vk_, before the next _).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke an API key: it stops working at once."""
    from veracity.service import commands

    row = _service_call(commands.revoke_key, _service_settings(), key_id)
    assert isinstance(row, dict)
    sys.stdout.write((json.dumps(row) if as_json else f"revoked {row['key_id']}") + "\n")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None, typer.Option("--expect-head", help="Head hash recorded earlier (detects a cut tail).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the audit log's hash chain; exit 1 when any row was edited or deleted."""
    from veracity.service import commands

    v = _service_call(commands.verify_audit, _service_settings(), expect_head)
    from veracity.service.audit import Verification

    assert isinstance(v, Verification)
    if as_json:
        payload = {
            "ok": v.ok,
            "entries": v.entries,
            "head_seq": v.head_seq,
            "head_hash": v.head_hash,
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in v.problems],
        }
        sys.stdout.write(json.dumps(payload) + "\n")
    elif v.ok:
        sys.stdout.write(f"audit log intact: {v.entries} entries, head {v.head_seq} {v.head_hash}\n")
    else:
        for p in v.problems:
            _err(f"audit entry {p.seq}: {p.kind}: {p.message}")
    raise typer.Exit(0 if v.ok else 1)


# --- web UI reviews: calibration export (logic in veracity.service.review_export) ----------------

review_app = typer.Typer(no_args_is_help=True, help="Reviewers' ground-truth labels (set in the web UI or the API).")
app.add_typer(review_app, name="review")


@review_app.command("export")
def review_export(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write (one reviewed job per line).")],
    include_unsure: Annotated[
        bool, typer.Option("--include-unsure", help="Also export jobs labelled unsure (target null).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Export reviewed jobs (model verdict, detector scores, ground truth) as calibration data."""
    from veracity.service import review_export as rx

    settings = _service_settings()
    actor = f"cli:{os.getenv('USER', 'local')}"
    n = _service_call(lambda: rx.export_reviews(settings, out, include_unsure=include_unsure, actor=actor))
    facts = {"rows": n, "out": str(out)}
    sys.stdout.write((json.dumps(facts) if as_json else f"wrote {n} reviewed job(s) to {out}") + "\n")
