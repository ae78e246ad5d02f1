"""ROC curves as a PNG, drawn with Pillow (no plotting library needed): one curve per detector
and the fused score, with the AUC in the legend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from veracity.evaluation.runner import Record
from veracity.evaluation.summary import FUSED, _scores, roc_points
from veracity.models.metrics import roc_auc

COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")


def roc_png(records: Sequence[Record], names: Sequence[str], path: Path, *, title: str = "ROC",
            size: int = 640) -> Path:
    """Write the ROC plot of every name (detector or ``fused``) that has both classes scored."""
    margin_l, margin_b, margin_t, margin_r = 60, 50, 36, 16
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    plot = (margin_l, margin_t, size - margin_r, size - margin_b)
    x0, y0, x1, y1 = plot
    draw.rectangle(plot, outline="#9ca3af")
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
    draw.text((x0 + (x1 - x0) / 2 - 60, size - 22), "false positive rate", fill="#111827", font=font)
    draw.text((8, margin_t - 22), "true positive rate", fill="#111827", font=font)
    draw.text((x0, 8), title, fill="#111827", font=font)
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
