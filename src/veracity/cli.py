"""The `veracity` command line: analyze, models, schema, train, serve, worker, apikey, audit, migrate.

Exit codes: 0 every input analysed, 2 bad input (at least one), 1 internal error. A bad file in
a batch never stops the batch: it is reported and the rest are analysed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from veracity import __version__
from veracity.config import Options, Settings
from veracity.errors import ConfigError, InputError, VeracityError
from veracity.report.model import ErrorReport, Report

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Offline deepfake forensics: analyse video, images and audio on your own machine.",
)
err = Console(stderr=True)

MEDIA_SUFFIXES = frozenset(
    {
        ".mp4",
        ".mov",
        ".m4v",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".flv",
        ".3gp",
        ".gif",
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".avif",
        ".wav",
        ".mp3",
        ".m4a",
        ".aac",
        ".flac",
        ".ogg",
        ".opus",
    }
)

LABEL_STYLE = {
    "authentic": "green",
    "suspicious": "yellow",
    "manipulated": "red",
    "synthetic": "magenta",
    "inconclusive": "grey50",
}


def _err(message: str) -> None:
    """One plain line on stderr: no markup, so names with [brackets] print as they are."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"veracity {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Veracity command line."""


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given (any extension: media is detected by content); folders recursively, keeping
    files with a media extension so READMEs and manifests beside the media are not 'analysed'."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and f.suffix.lower() in MEDIA_SUFFIXES
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)
                )
            )
        else:
            out.append(p)
    return out


def _summary_line(report: Report) -> str:
    score = "n/a" if report.deepfake_score is None else f"{report.deepfake_score:.2f}"
    reasons = ", ".join(report.reasons) or "-"
    return f"{report.source.name}: {report.label} (score {score}; reasons: {reasons})"


def _print_report(report: Report, console: Console) -> None:
    style = LABEL_STYLE.get(report.label, "white")
    score = "n/a" if report.deepfake_score is None else f"{report.deepfake_score:.3f}"
    console.print(
        f"[bold]{escape(report.source.name)}[/bold]  [{style}]{report.label.upper()}[/{style}]  "
        f"deepfake_score={score}  reasons={escape(', '.join(report.reasons)) or '-'}"
    )
    m = report.media
    dims = f"{m.width}x{m.height}" if m.width else ""
    dur = f"{m.duration_s:.1f}s" if m.duration_s else ""
    console.print(
        f"  {m.kind} {m.container} {dims} {dur}  frames analysed: {m.frames_analysed}  "
        f"faces: {len(report.faces)} track(s)  time: {report.elapsed_ms / 1000:.2f}s"
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("detector", "score", "conf", "weight", "reasons / why not applied"):
        table.add_column(col)
    for d in report.detectors:
        table.add_row(
            d.name,
            "-" if d.score is None else f"{d.score:.3f}",
            f"{d.confidence:.2f}",
            f"{d.weight:.2f}",
            ", ".join(d.reasons) if d.applied else f"n/a: {d.not_applicable}",
        )
    console.print(table)
    if not report.provenance.checked:
        console.print(f"  provenance: not checked ({escape(report.provenance.note or '')})")
    for w in report.warnings:
        console.print(f"  [yellow]warning:[/yellow] {escape(w)}")


def _error_payload(path: Path, exc: BaseException) -> ErrorReport:
    code = exc.code if isinstance(exc, VeracityError) else "internal_error"
    message = exc.message if isinstance(exc, VeracityError) else f"{type(exc).__name__}: {exc}"
    return ErrorReport(source=str(path), error={"code": code, "message": message})


@app.command()
def analyze(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (folders are searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report(s) as JSON on stdout.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report: a file for one input, a folder for several.")
    ] = None,
    frames: Annotated[
        int, typer.Option("--frames", min=1, max=512, help="Sparse frames sampled across a video.")
    ] = Options().frames,
    detectors: Annotated[
        str | None, typer.Option("--detectors", help="Comma-separated detector names (default: all).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Print tracebacks of internal errors.")] = False,
) -> None:
    """Analyse media and print a verdict with per-detector evidence."""
    from veracity.pipeline import Analyzer
    from veracity.report.html import write_html

    try:
        options = Options(
            frames=frames, detectors=tuple(d.strip() for d in detectors.split(",") if d.strip()) if detectors else None
        )
        if options.detectors is not None:
            from veracity.detectors import registry

            for name in options.detectors:
                registry.spec(name)
        settings = Settings.from_env()
    except ConfigError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from exc
    inputs = expand_inputs(paths)
    if not inputs:
        _err("error: no media files found in the given paths")
        raise typer.Exit(2)
    batch = len(inputs) > 1 or any(p.is_dir() for p in paths)
    if report is not None and batch:
        report.mkdir(parents=True, exist_ok=True)
    reports: list[Report] = []
    errors: list[ErrorReport] = []
    input_errors = internal_errors = 0
    analyzer = Analyzer(settings)
    out = Console()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task("analysing", total=len(inputs))
        for path in inputs:

            def stage(name: str, _path: Path = path) -> None:
                progress.update(task, description=f"{_path.name[:40]} · {name}")

            try:
                rep = analyzer.analyze(path, options, progress=stage)
            except InputError as exc:
                errors.append(_error_payload(path, exc))
                _err(f"error: {exc} [{exc.code}]")
                input_errors += 1
            except Exception as exc:  # a bug must not lose the rest of the batch
                errors.append(_error_payload(path, exc))
                _err(f"internal error: {path}: {type(exc).__name__}: {exc}")
                if debug:
                    err.print(traceback.format_exc())
                internal_errors += 1
            else:
                reports.append(rep)
                if report is not None:
                    target = report / f"{path.name}.html" if batch else report
                    write_html(rep, target)
                if not as_json:
                    _print_report(rep, out)
            progress.advance(task)
    analyzer.close()
    if as_json:
        if batch:
            payload = {
                "reports": [r.model_dump(mode="json") for r in reports],
                "errors": [e.model_dump(mode="json") for e in errors],
            }
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        elif reports:
            sys.stdout.write(reports[0].model_dump_json(indent=2) + "\n")
        else:
            sys.stdout.write(errors[0].model_dump_json(indent=2) + "\n")
    elif batch:
        _err(f"{len(reports)} analysed, {len(errors)} failed")
    # A bug outranks bad input: 1 tells the operator to look at Veracity, 2 at the files.
    raise typer.Exit(1 if internal_errors else 2 if input_errors else 0)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List detectors, their versions and model cards."""
    from veracity.detectors import registry
    from veracity.errors import ModelUnavailable
    from veracity.models.cards import load_card

    rows: list[dict[str, object]] = []
    for spec in registry.SPECS:
        row: dict[str, object] = {"name": spec.name, "summary": spec.summary, "model": spec.card}
        row["version"] = registry.create(spec.name).version
        if spec.card:
            try:
                card = load_card(spec.card)
            except ModelUnavailable as exc:
                row["card_error"] = str(exc)
            else:
                row["version"] = card.version
                row["card"] = card.model_dump(mode="json", exclude={"params"})
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("detector", "version", "model", "summary")
    for row in rows:
        table.add_row(str(row["name"]), str(row["version"]), str(row.get("model") or "-"), str(row["summary"]))
    Console().print(table)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Print the JSON schema of the report."""
    text = json.dumps(Report.model_json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="What to train: av_sync or spectral.")],
    data: Annotated[Path, typer.Option("--data", help="The shared data folder.")] = Path("../shared/data"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the model card (default: the package's).")
    ] = None,
) -> None:
    """Train a model on ../shared/data/train and write it with its card."""
    if not (data / "MANIFEST.tsv").is_file():
        _err(f"error: {data} has no MANIFEST.tsv")
        raise typer.Exit(2)
    pkg_data = Path(__file__).resolve().parent / "models" / "data"
    if name == "av_sync":
        from veracity.models.train import av_sync as trainer_av

        trainer_av.train(data, out or pkg_data / "av_sync-v1.json", log=_err)
    elif name == "spectral":
        from veracity.models.train import spectral as trainer_sp

        trainer_sp.train_spectral(data, out or pkg_data / "spectral-v1.json")
    else:
        _err(f"error: nothing to train named {name!r} (av_sync, spectral)")
        raise typer.Exit(2)


# --- service: serve, worker, apikey, audit, migrate (logic in veracity.service.commands) -----------

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


def _service_call(fn: object, *args: object) -> object:
    """Run a service command with one-line errors: 2 for bad input/config, 1 for anything else."""
    try:
        return fn(*args)  # type: ignore[operator]
    except (InputError, ConfigError) as exc:
        _err(f"error: {exc} [{exc.code}]")
        raise typer.Exit(2) from exc
    except VeracityError as exc:
        _err(f"error: {exc} [{exc.code}]")
        raise typer.Exit(1) from exc
    except Exception as exc:
        _err(f"internal error: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=64, help="Embedded worker threads.")] = None,
    bootstrap_admin: Annotated[
        bool, typer.Option("--bootstrap-admin/--no-bootstrap-admin", help="Print an admin key on first start.")
    ] = True,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    as_json: Annotated[bool, typer.Option("--json", help="Print the start-up facts as one JSON line.")] = False,
) -> None:
    """Start the HTTP API (embedded: SQLite + in-process workers unless a broker is configured)."""
    from veracity.service import commands

    settings = _service_settings()
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
    _service_call(commands.serve, settings, host, port, workers, log_level)


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


def _silence_native_stderr() -> None:
    """MediaPipe's C++ (glog/absl/TFLite) writes INFO and W-lines straight to file descriptor 2,
    drowning the one-line errors. Python keeps the real stderr on a duplicate descriptor; native
    code gets /dev/null. VERACITY_NATIVE_LOGS=1 keeps them."""
    if os.environ.get("VERACITY_NATIVE_LOGS") == "1":
        return
    try:
        sys.stderr.flush()
        kept = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(kept, "w", buffering=1)
    except OSError:
        return


def main() -> None:
    _silence_native_stderr()
    app()


if __name__ == "__main__":
    main()
