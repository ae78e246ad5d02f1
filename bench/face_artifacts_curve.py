"""The face_artifacts validation curve (samples seen vs train-side held-out AUC) as a PNG.

Reads the run's history from the checkpoint (``~/.cache/veracity/train/face_artifacts/last.pt``)
or, without one, from the committed card's ``metrics.validation``; the warm start's own figures
on the same validation set (``metrics.baseline`` / the checkpoint's ``baseline``: v2 for v3) are
drawn as dashed lines, and ``--baseline`` draws another model's (bench/face_artifacts_trainval.py
JSON) the same way.

    PYTHONPATH=src .venv/bin/python bench/face_artifacts_curve.py [--baseline v1.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from veracity.train.face_artifacts import CARD_NAME, PREVIOUS

ROOT = Path(__file__).resolve().parent.parent
CKPT = Path.home() / ".cache" / "veracity" / "train" / "face_artifacts" / "last.pt"
OUT = ROOT / "docs" / "img" / "face_artifacts_curve.png"


def history() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(validation history, the warm start's figures on the same set or {})."""
    if CKPT.is_file():
        import torch

        saved = torch.load(CKPT, map_location="cpu", weights_only=False)
        return list(saved["state"]["history"]), dict(saved["state"].get("baseline") or {})
    from veracity.models.cards import load_card

    metrics = load_card(CARD_NAME).metrics
    return list(metrics.get("validation", [])), dict(metrics.get("baseline") or {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=None, help="trainval JSON of v1")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist, warm = history()
    xs = [h["samples"] for h in hist]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    styles = {"auc_dfl": ("held-out DeepFaceLive identities: real vs swap", "tab:red"),
              "auc_sbi": ("held-out reals vs self-blends", "tab:blue"),
              "auc_lip": ("held-out reals vs lip-sync-like blends", "tab:green"),
              "auc_made": ("made fakes of held-out clips vs their twin frames", "tab:purple"),
              "score": ("mean (selection)", "black")}
    for key, (label, colour) in styles.items():
        if any(key in h for h in hist):
            ax.plot(xs, [float(h.get(key, "nan")) for h in hist], marker="o", color=colour, label=label)
    others: list[tuple[dict[str, Any], str, str]] = []
    if warm:
        others.append((warm, "--", f"{warm.get('model', PREVIOUS)} on the same held-out set"))
    if args.baseline is not None and args.baseline.is_file():
        others.append((json.loads(args.baseline.read_text(encoding="utf-8"))["validation"], ":",
                       f"{args.baseline.stem} on the same held-out set"))
    for base, style, label in others:
        for key, (_label, colour) in styles.items():
            if key in base:
                ax.axhline(base[key], color=colour, linestyle=style, linewidth=1)
        ax.plot([], [], color="grey", linestyle=style, label=label)
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("ROC AUC (train side, held out)")
    ax.set_ylim(0.3, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{CARD_NAME}: validation curve")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
