"""The root Typer app and what every sub-command module shares: the error path (:func:`_fail`,
one line and the exit code), input expansion, progress bars and batch payloads.

Exit codes: 0 every input analysed, 2 bad input (at least one), 1 internal error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from veracity import __version__
from veracity.errors import VeracityError
from veracity.report.model import ErrorReport

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


def _fail(exc: BaseException) -> typer.Exit:
    """One line on stderr and the exit code that goes with the error."""
    if isinstance(exc, VeracityError):
        _err(f"error: {exc} [{exc.code}]")
        return typer.Exit(exc.exit_code)
    _err(f"internal error: {type(exc).__name__}: {exc}")
    return typer.Exit(1)
