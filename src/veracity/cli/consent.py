"""``veracity keys`` (signing keys) and ``veracity consent`` (the records ``sign`` requires)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from veracity.cli.common import _fail, app
from veracity.config import Settings
from veracity.errors import ConfigError

if TYPE_CHECKING:
    from veracity.provenance.consent import ConsentRecord

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
