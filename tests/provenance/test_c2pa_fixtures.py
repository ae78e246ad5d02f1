"""Every C2PA fixture in ../shared/data/eval/c2pa against the result its MANIFEST row expects.

The table below states, per file, what ``verify_file`` must return; the ``detail`` column of
MANIFEST.tsv is checked against it (a row saying "invalid: X" must expect Invalid with code X, a
"no manifest" row must expect absence, ...), and a fixture added to the manifest without an entry
here fails the coverage test.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from veracity.config import Settings
from veracity.errors import CorruptMedia, UnsupportedMedia
from veracity.provenance.c2pa import UNTRUSTED, trust_message
from veracity.provenance.verify import verify_file

pytestmark = pytest.mark.realdata


@dataclass(frozen=True)
class Expect:
    kind: str  # absent | state | remote | error | sidecar | fragment
    state: str | None = None
    codes: tuple[str, ...] = ()  # failure codes that must be reported (any scope)
    error: type[Exception] | None = None
    declares_ai: bool = False
    extra: dict[str, str] = field(default_factory=dict)


V, INV = "Valid", "Invalid"
TABLE: dict[str, Expect] = {
    "py_C.dng": Expect("state", V, (UNTRUSTED,)),
    "py_CIE-sig-CA.jpg": Expect("state", INV, ("claimSignature.mismatch",)),
    "py_file_with_wrong_extension.xyz.jpg": Expect("state", V, (UNTRUSTED,)),
    "py_sample1_signed.wav": Expect("state", V, (UNTRUSTED,)),
    "rs_C.jpg": Expect("state", V, (UNTRUSTED,)),
    "rs_CA.jpg": Expect("state", V),
    "rs_CACA.jpg": Expect("state", V),
    "rs_CACAE-uri-CA.jpg": Expect("state", V, ("assertion.hashedURI.mismatch",)),
    "rs_CA_ct.jpg": Expect("state", V),
    "rs_CIE-sig-CA.jpg": Expect("state", V, ("claimSignature.mismatch",)),
    "rs_C_with_CAWG_data.jpg": Expect("state", V, ("cawg.x509.credential.untrusted",)),
    "rs_E-sig-CA.jpg": Expect("state", INV, ("claimSignature.mismatch",)),
    "rs_XCA.jpg": Expect("state", INV, ("assertion.dataHash.mismatch",)),
    "rs_boxhash.jpg": Expect("state", V),
    "rs_c.mov": Expect("absent"),
    "rs_cawg_ica_invalid_cose_sign1.jpg": Expect("state", INV, ("cawg.ica.invalid_cose_sign1",)),
    "rs_cawg_ica_invalid_vc.jpg": Expect("state", INV, ("cawg.ica.invalid_verifiable_credential",)),
    "rs_cawg_ica_signature_mismatch.jpg": Expect("state", INV, ("cawg.ica.signature_mismatch",)),
    "rs_cawg_ica_signer_payload_mismatch.jpg": Expect("state", INV, ("cawg.ica.signer_payload.mismatch",)),
    "rs_cawg_ica_success.jpg": Expect("state", V),
    "rs_cawg_ica_valid_time_stamp.jpg": Expect("state", V),
    "rs_cawg_ica_valid_until_in_past.jpg": Expect("state", INV, ("cawg.ica.valid_until.invalid",)),
    "rs_cawg_vm_duplicate_assertion_reference.jpg": Expect("state", V, ("cawg.identity.assertion.duplicate",)),
    "rs_cawg_vm_malformed_cbor.jpg": Expect("state", INV, ("assertion.required.missing",)),
    "rs_cawg_vm_no_hard_binding.jpg": Expect("state", V, ("cawg.identity.hard_binding_missing",)),
    "rs_cawg_vm_pad1_invalid.jpg": Expect("state", V, ("cawg.identity.pad.invalid",)),
    "rs_cloud.jpg": Expect("remote"),
    "rs_cloud_manifest.c2pa": Expect("sidecar", V, extra={"asset": "rs_cloud.jpg"}),
    "rs_cloudx.jpg": Expect("remote"),
    "rs_dash1.m4s": Expect("fragment", V, extra={"init": "rs_dashinit.mp4"}),
    "rs_dashinit.mp4": Expect("state", INV, ("assertion.bmffHash.mismatch",)),
    "rs_legacy.mp4": Expect("state", V),
    "rs_legacy_ingredient_hash.jpg": Expect("state", V),
    "rs_libpng-test_with_url.png": Expect("remote"),
    "rs_no_alg.jpg": Expect("state", INV, ("algorithm.unsupported",)),
    "rs_no_manifest.jpg": Expect("absent"),
    "rs_ocsp.jpg": Expect("state", V, declares_ai=True),  # Photoshop generative fill
    "rs_ocsp_with_assertion.jpg": Expect("state", V),
    "rs_prerelease.jpg": Expect("state", INV, ("general.error",)),
    "rs_sample1.avif": Expect("absent"),
    "rs_sample1.gif": Expect("absent"),
    "rs_sample1.png": Expect("absent"),
    "rs_sample1.wav": Expect("absent"),
    "rs_sample1.webp": Expect("absent"),
    "rs_sample3.invalid.wav": Expect("error", error=CorruptMedia),
    "rs_sample3.svg": Expect("state", INV, ("general.error",)),
    "rs_test.avi": Expect("absent"),
    "rs_update_manifest.jpg": Expect("state", V),
    "rs_video1.mp4": Expect("state", V),
    "rs_video1_no_manifest.mp4": Expect("absent"),
    "trustmark_c2pa_example_wm_signed.jpg": Expect("state", V),
}


def _rows(shared: Path) -> dict[str, str]:
    with (shared / "MANIFEST.tsv").open(newline="") as fh:
        return {
            Path(r["path"]).name: r["detail"]
            for r in csv.DictReader(fh, delimiter="\t")
            if r["path"].startswith("eval/c2pa/")
        }


def test_every_fixture_has_an_expectation(shared_data: Path) -> None:
    assert set(_rows(shared_data)) == set(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_table_agrees_with_manifest_detail(shared_data: Path, name: str) -> None:
    detail = _rows(shared_data)[name].lower()
    exp = TABLE[name]
    if "no manifest" in detail or "without manifest" in detail:
        assert exp.kind == "absent"
    m = re.match(r"(invalid|error): ([a-z][\w.]+)", detail)
    if m and "." in m.group(2):
        assert exp.state == INV and m.group(2) in {c.lower() for c in exp.codes}
    if detail.startswith("valid"):
        assert exp.state == V
    if "manifest.inaccessible" in detail or "needs network" in detail:
        assert exp.kind == "remote"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_fixture(shared_data: Path, name: str) -> None:
    folder = shared_data / "eval" / "c2pa"
    exp = TABLE[name]
    settings = Settings(data_dir=folder / "_unused")
    if exp.kind == "error":
        assert exp.error is not None
        with pytest.raises(exp.error):
            verify_file(folder / name, settings, watermarks=False)
        return
    if exp.kind == "sidecar":
        res = verify_file(folder / exp.extra["asset"], settings, sidecar=folder / name, watermarks=False)
    elif exp.kind == "fragment":
        with pytest.raises(UnsupportedMedia):  # a fragment alone means nothing
            verify_file(folder / name, settings, watermarks=False)
        res = verify_file(folder / exp.extra["init"], settings, fragments=[folder / name], watermarks=False)
    else:
        res = verify_file(folder / name, settings, watermarks=False)
    cred = res.c2pa
    if exp.kind == "absent":
        assert not cred.present
        assert cred.validation_state is None
        assert res.trust == "no content credentials"
        return
    assert cred.present
    if exp.kind == "remote":
        assert cred.validation_state is None
        assert cred.remote_url and cred.remote_url.startswith("http")
        assert cred.failure_codes == ["manifest.inaccessible"]
        return
    assert cred.validation_state == exp.state
    codes = {s.code for s in cred.status if s.kind == "failure"}
    assert set(exp.codes) <= codes, codes
    assert all(s.explanation for s in cred.status)  # every code comes with an explanation
    if exp.state == V:
        # No trust list configured: a good signature is Valid + untrusted, worded as such.
        assert res.trust.startswith("signed, signer not on your trust list")
        assert cred.manifest is not None and cred.manifest.signer
    else:
        assert res.trust.startswith("invalid")
        assert "credential_invalid" in res.reasons
    assert cred.declares_ai == exp.declares_ai
    assert ("declared_ai_generated" in res.reasons) == exp.declares_ai


def test_summary_of_a_two_level_ingredient_tree(shared_data: Path) -> None:
    res = verify_file(shared_data / "eval/c2pa/rs_CIE-sig-CA.jpg", Settings(), watermarks=False)
    m = res.c2pa.manifest
    assert m is not None
    assert m.claim_generator == "make_test_images/0.55.0"
    assert m.issuer == "C2PA Test Signing Cert"
    assert m.signing_time and m.signing_time.startswith("2025-")
    assert [a.action for a in m.actions] == ["c2pa.created", "c2pa.placed", "c2pa.resized"]
    assert m.digital_source_type and m.digital_source_type.endswith("/algorithmicMedia")
    (ing,) = m.ingredients
    assert ing.title == "E-sig-CA.jpg" and ing.validation_codes == ["claimSignature.mismatch"]
    assert [i.title for i in ing.ingredients] == ["A.jpg"]
    assert "ingredient problems: claimSignature.mismatch" in trust_message(res.c2pa)


def test_soft_binding_is_reported(shared_data: Path) -> None:
    res = verify_file(shared_data / "eval/c2pa/trustmark_c2pa_example_wm_signed.jpg", Settings(), watermarks=False)
    assert res.c2pa.manifest is not None
    assert res.c2pa.manifest.soft_bindings, res.c2pa.manifest.assertions
