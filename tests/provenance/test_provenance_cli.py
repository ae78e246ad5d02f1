"""keys / consent / sign / verify / analyze end to end, through a subprocess, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from veracity.report.model import Report


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", "VERACITY_DATA_DIR": str(data_dir), **env}
    if "VERACITY_TRUST_ANCHORS" not in env:  # a developer's own trust list must not leak in
        full_env.pop("VERACITY_TRUST_ANCHORS", None)
    return subprocess.run(
        [sys.executable, "-m", "veracity.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
        check=False,
    )


def _one_line_error(res: subprocess.CompletedProcess[str], code: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and f"[{code}]" in lines[0], res.stderr


@pytest.mark.slow
def test_keys_consent_sign_verify_analyze(tmp_path: Path, media: dict[str, Path], evidence: Path) -> None:
    data = tmp_path / "home"
    res = run(data, "keys", "init", "--json")
    assert res.returncode == 0, res.stderr
    keys = json.loads(res.stdout)
    assert "PRIVATE" not in res.stdout + res.stderr  # paths only, never key material
    assert oct(Path(keys["key"]).stat().st_mode & 0o777) == "0o600"
    _one_line_error(run(data, "keys", "init"), "signing_key")

    res = run(
        data,
        "consent",
        "add",
        "--subject",
        "Alice",
        "--scope",
        "likeness",
        "--granted-by",
        "Alice",
        "--evidence",
        str(evidence),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    cid = json.loads(res.stdout)["id"]
    listed = json.loads(run(data, "consent", "list", "--json").stdout)
    assert [c["id"] for c in listed] == [cid] and listed[0]["status"] == "active"

    out = tmp_path / "signed.png"
    res = run(data, "sign", str(media["png"]), "--out", str(out), "--consent", cid, "--generator", "Gen X", "--json")
    assert res.returncode == 0, res.stderr
    signed = json.loads(res.stdout)
    assert signed["validation_state"] == "Valid" and signed["watermarked"] is True

    res = run(data, "verify", str(out))
    assert res.returncode == 0, res.stderr
    assert "signed, signer not on your trust list" in res.stdout and "invalid" not in res.stdout.lower()
    assert f"payload {signed['signing_id']}" in res.stdout
    res = run(data, "verify", str(out), "--json", VERACITY_TRUST_ANCHORS=keys["ca"])
    payload = json.loads(res.stdout)
    assert payload["c2pa"]["validation_state"] == "Trusted"
    assert payload["reasons"] == ["declared_ai_generated", "watermark_detected"]

    # Voice-only audio signing with a likeness consent: refused, one line, exit 2, no file.
    wav_out = tmp_path / "signed.wav"
    res = run(data, "sign", str(media["wav"]), "--out", str(wav_out), "--consent", cid)
    assert res.returncode == 2 and not wav_out.exists()
    _one_line_error(res, "consent_refused")

    revoked = json.loads(run(data, "consent", "revoke", cid, "--reason", "asked", "--json").stdout)
    assert revoked["status"] == "revoked"
    assert json.loads(run(data, "consent", "show", cid, "--json").stdout)["revoked_reason"] == "asked"
    res = run(data, "sign", str(media["png"]), "--out", str(tmp_path / "again.png"), "--consent", cid)
    assert res.returncode == 2 and not (tmp_path / "again.png").exists()
    _one_line_error(res, "consent_refused")
    _one_line_error(run(data, "consent", "show", "nope"), "consent_not_found")

    # analyze: the credential and the watermark make the verdict synthetic, with both reasons.
    res = run(data, "analyze", str(out), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    jsonschema.validate(report, Report.model_json_schema())
    prov = report["provenance"]
    assert prov["checked"] and prov["credential_present"] and prov["validation_state"] == "Valid"
    assert prov["watermarks"] == ["veracity_v1"] and prov["signer"] == "Veracity dev signer"
    assert prov["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert report["label"] == "synthetic"
    assert report["reasons"][:2] == ["declared_ai_generated", "watermark_detected"]


def test_verify_batch_json_and_bad_input(tmp_path: Path, media: dict[str, Path]) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_text("hello")
    res = run(tmp_path, "verify", str(media["jpg"]), str(junk), "--json", "--no-watermarks")
    assert res.returncode == 2
    payload = json.loads(res.stdout)
    assert [r["name"] for r in payload["results"]] == ["gen.jpg"]
    assert payload["results"][0]["c2pa"]["present"] is False
    assert payload["errors"][0]["error"]["code"] == "unsupported_media"
    _one_line_error(res, "unsupported_media")


@pytest.mark.realdata
def test_verify_tampered_fixture_and_analyze_reason(shared_data: Path, tmp_path: Path) -> None:
    bad = shared_data / "eval/c2pa/rs_XCA.jpg"
    res = run(tmp_path, "verify", str(bad))
    assert res.returncode == 0
    assert "invalid: assertion.dataHash.mismatch" in res.stdout
    res = run(tmp_path, "analyze", str(bad), "--json")
    report = json.loads(res.stdout)
    assert "credential_invalid" in report["reasons"] and report["label"] != "authentic"
    assert report["provenance"]["validation_state"] == "Invalid"
