"""ROC curves and reliability diagrams as PNGs, drawn with Pillow (no plotting library needed):
one ROC curve per detector and the fused score with the AUC in the legend; one calibration curve
per media kind (mean predicted probability vs observed share of fakes per bin) with its ECE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from veracity.evaluation.runner import Record
from veracity.evaluation.summary import FUSED, _scores, roc_points
from veracity.models.metrics import roc_auc

COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")


def _axes(draw: ImageDraw.ImageDraw, size: int, title: str, xlabel: str, ylabel: str
          ) -> tuple[float, float, float, float]:
    margin_l, margin_b, margin_t, margin_r = 60, 50, 36, 16
    font = ImageFont.load_default()
    x0, y0, x1, y1 = margin_l, margin_t, size - margin_r, size - margin_b
    draw.rectangle((x0, y0, x1, y1), outline="#9ca3af")
    for k in range(1, 5):
        gx = x0 + (x1 - x0) * k / 5
        gy = y1 - (y1 - y0) * k / 5
        draw.line([(gx, y0), (gx, y1)], fill="#eeeeee")
        draw.line([(x0, gy), (x1, gy)], fill="#eeeeee")
    for k in range(6):
        v = k / 5
        draw.text((x0 + (x1 - x0) * v - 8, y1 + 6), f"{v:.1f}", fill="#374151", font=font)
        draw.text((x0 - 30, y1 - (y1 - y0) * v - 6), f"{v:.1f}", fill="#374151", font=font)
    draw.line([(x0, y1), (x1, y0)], fill="#d1d5db", width=1)
    draw.text((x0 + (x1 - x0) / 2 - 60, size - 22), xlabel, fill="#111827", font=font)
    draw.text((8, margin_t - 22), ylabel, fill="#111827", font=font)
    draw.text((x0, 8), title, fill="#111827", font=font)
    return x0, y0, x1, y1


def reliability_png(kinds: Mapping[str, tuple[Sequence[Mapping[str, Any]], float | None]], path: Path, *,
                    title: str = "Reliability", size: int = 640) -> Path:
    """One calibration curve per kind from its bins (``p_mean``, ``fake_share``, ``n``); a
    perfectly calibrated score lies on the diagonal. Marker area grows with the bin's count."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x0, y0, x1, y1 = _axes(draw, size, title, "mean predicted probability (fused score)", "observed share of fakes")
    legend_y = y0 + 6
    for i, (kind, (bins, ece_value)) in enumerate(sorted(kinds.items())):
        colour = COLOURS[i % len(COLOURS)]
        if not bins:
            draw.text((x0 + 26, legend_y), f"{kind}: no fused score (nothing to calibrate)", fill="#6b7280", font=font)
            legend_y += 16
            continue
        pts = [(x0 + (x1 - x0) * float(b["p_mean"]), y1 - (y1 - y0) * float(b["fake_share"])) for b in bins]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for (px, py), b in zip(pts, bins, strict=True):
            r = 2 + min(6.0, float(b["n"]) ** 0.5)
            draw.ellipse((px - r, py - r, px + r, py + r), outline=colour, width=2)
        n = sum(int(b["n"]) for b in bins)
        ece_text = "-" if ece_value is None else f"{ece_value:.3f}"
        draw.rectangle((x0 + 8, legend_y + 2, x0 + 20, legend_y + 10), fill=colour)
        draw.text((x0 + 26, legend_y), f"{kind}: ECE {ece_text} (n={n})", fill="#111827", font=font)
        legend_y += 16
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def roc_png(records: Sequence[Record], names: Sequence[str], path: Path, *, title: str = "ROC",
            size: int = 640) -> Path:
    """Write the ROC plot of every name (detector or ``fused``) that has both classes scored."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x0, y0, x1, y1 = _axes(draw, size, title, "false positive rate", "true positive rate")
    legend_y = y1 - 16
    for i, name in enumerate(list(names)):
        pairs = _scores(records, name)
        y = [r.label for r, _ in pairs]
        s = [v for _, v in pairs]
        if not (0 < sum(y) < len(y)):
            continue
        fpr, tpr = roc_points(y, s)
        colour = COLOURS[i % len(COLOURS)]
        pts = [(x0 + (x1 - x0) * f, y1 - (y1 - y0) * t) for f, t in zip(fpr, tpr, strict=True)]
        draw.line(pts, fill=colour, width=3 if name == FUSED else 2)
        label = f"{name}: AUC {roc_auc(y, s):.3f} (n={len(y)})"
        draw.rectangle((x1 - 230, legend_y + 2, x1 - 218, legend_y + 10), fill=colour)
        draw.text((x1 - 212, legend_y), label, fill="#111827", font=font)
        legend_y -= 16
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
