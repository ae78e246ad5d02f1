"""``veracity analyze``, ``verify``, ``sign``, ``schema`` and ``eval``: the media commands. A bad
file in a batch never stops the batch: it is reported and the rest are analysed."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veracity.cli.common import (
    LABEL_STYLE,
    VERIFY_SUFFIXES,
    _bar,
    _batch_payload,
    _err,
    _error_payload,
    _fail,
    _require_inputs,
    app,
    err,
    expand_inputs,
)
from veracity.config import Options, Settings
from veracity.errors import ConfigError, InputError, VeracityError
from veracity.report.model import ErrorReport, Report

if TYPE_CHECKING:
    from veracity.provenance.c2pa import Ingredient
    from veracity.provenance.verify import ProvenanceResult


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
    mode: Annotated[
        str, typer.Option("--mode", help="full (default), or fast: triage on a few frames and the cheapest detectors.")
    ] = "full",
) -> None:
    """Analyse media and print a verdict with per-detector evidence."""
    from veracity.pipeline import Analyzer
    from veracity.report.html import write_html

    try:
        options = Options(
            frames=frames, detectors=tuple(d.strip() for d in detectors.split(",") if d.strip()) if detectors else None
        ).with_(mode=mode)
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
    mode: Annotated[str, typer.Option("--mode", help="full (default) or fast (triage).")] = "full",
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
                options=Options().with_(mode=mode),
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

    from veracity.provenance.verify import verify_file

    try:
        settings = Settings.from_env()
        if trust_anchors is not None:
            settings = settings.with_(trust_anchors=trust_anchors)
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
