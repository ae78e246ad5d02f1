"""Every registered detector is fully declared by its spec: words for each reason and
not-applicable code it can emit, a default fusion weight, a trainer that resolves. The codes a
detector can emit are read from its module's source (string literals given to
``Applicability.no``, ``DetectorResult.skipped`` and ``reasons``), plus the ones
``run_detector`` adds for it, so a new code without words fails here, not in a user's report."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
from pathlib import Path

import pytest

from veracity.detectors import registry
from veracity.detectors.base import MODEL_UNAVAILABLE, wrong_kind
from veracity.fusion import FusionParams
from veracity.report.wording import DETECTOR_INFO, NOT_APPLICABLE_TEXT, REASON_TEXT, reason_text

SPECS = {s.name: s for s in registry.SPECS}


def _strings(node: ast.AST, constants: dict[str, str]) -> set[str]:
    """String literals in an expression, names of module-level string constants resolved."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.add(n.value)
        elif isinstance(n, ast.Name) and n.id in constants:
            out.add(constants[n.id])
    return out


def emitted(name: str) -> tuple[set[str], set[str]]:
    """(reason codes, not-applicable codes) that the detector's module can produce."""
    module = importlib.import_module(SPECS[name].target.partition(":")[0])
    tree = ast.parse(inspect.getsource(module))
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}
    local: dict[str, set[str]] = {}  # `reason = "a" if ... else "b"` before a skipped(..., reason)
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            local.setdefault(n.targets[0].id, set()).update(_strings(n.value, constants))
    reasons: set[str] = set()
    skipped: set[str] = set()
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call) or not isinstance(n.func, ast.Attribute):
            continue
        owner = n.func.value.id if isinstance(n.func.value, ast.Name) else ""
        if (owner, n.func.attr) == ("Applicability", "no"):
            skipped |= _strings(n.args[0], constants)
        elif (owner, n.func.attr) == ("DetectorResult", "skipped"):
            arg = n.args[2]
            skipped |= local.get(arg.id, set()) if isinstance(arg, ast.Name) and arg.id not in constants \
                else _strings(arg, constants)
        elif (owner, n.func.attr) == ("reasons", "append"):
            reasons |= _strings(n.args[0], constants)
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "DetectorResult":
            for kw in n.keywords:
                if kw.arg == "reasons":
                    reasons |= _strings(kw.value, constants)
    det = registry.create(name)
    skipped.add(wrong_kind(det.modalities))
    if SPECS[name].card or SPECS[name].assets:
        skipped.add(getattr(det, "unavailable", MODEL_UNAVAILABLE))
    return reasons, skipped


def test_the_source_scan_finds_codes() -> None:
    reasons, skipped = emitted("av_sync")
    assert reasons == {"lip_audio_mismatch"}
    assert {"no_speech", "no_face_in_speech", "not_video", "model_unavailable"} <= skipped


@pytest.mark.parametrize("name", registry.names())
def test_every_emitted_code_is_declared_and_worded(name: str) -> None:
    spec = SPECS[name]
    reasons, skipped = emitted(name)
    assert reasons == set(spec.reasons), "reason codes emitted vs declared"
    declared = set(spec.not_applicable)
    assert skipped <= declared, f"not-applicable codes without words: {skipped - declared}"
    assert declared <= skipped, f"declared codes the detector never emits: {declared - skipped}"
    for code in reasons:
        assert REASON_TEXT[code] == spec.reasons[code] == reason_text(code)
    for code, why in spec.not_applicable.items():
        assert why.text and why.short
        assert NOT_APPLICABLE_TEXT[code] == why.text, f"{code} is worded differently by another detector"
    assert spec.looks_at and DETECTOR_INFO[name] == spec.looks_at
    assert spec.words


@pytest.mark.parametrize("name", registry.names())
def test_every_detector_has_a_fusion_weight(name: str) -> None:
    spec = SPECS[name]
    assert math.isfinite(spec.fusion_weight) and spec.fusion_weight >= 0
    for version in ("fusion-v1", "fusion-v2", "fusion-v3"):
        params = FusionParams.load(version)
        assert params.weight(name) == params.weights.get(name, spec.fusion_weight)


@pytest.mark.parametrize("name", [s.name for s in registry.SPECS if s.trainer])
def test_trainer_entry_points_name_training_modules(name: str) -> None:
    """Named, not imported: resolving one may need torch (the [train] extra)."""
    module, _, function = (SPECS[name].trainer or "").partition(":")
    assert module.startswith("veracity.train.") and function
    source = importlib.util.find_spec(module)
    assert source is not None and source.origin is not None
    tree = ast.parse(Path(source.origin).read_text(encoding="utf-8"))
    assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_the_runtime_does_not_import_training_code() -> None:
    import subprocess
    import sys

    code = ("import sys, veracity.pipeline, veracity.report.present, veracity.fusion\n"
            "import veracity.detectors.registry as r\n"
            "[r.create(n) for n in r.names()]\n"
            "print(sorted(m for m in sys.modules if m.startswith('veracity.train') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_detector_is_a_config_error() -> None:
    from veracity.errors import ConfigError

    with pytest.raises(ConfigError):
        registry.spec("no_such_detector")
    assert registry.find("c2pa") is None
    with pytest.raises(ConfigError):
        registry.spec("physiology").load_trainer()


def test_every_trainer_has_a_train_command() -> None:
    from veracity.cli.train import train_app

    commands = {c.name for c in train_app.registered_commands}
    assert {s.name for s in registry.SPECS if s.trainer} <= commands
