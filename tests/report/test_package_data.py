"""Every template and static file of the report and the UI is shipped: each matches a
package-data pattern in pyproject.toml, and every such pattern matches a file (no stale glob)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "src" / "veracity"


def test_templates_and_assets_are_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["veracity"]
    files = [
        p.relative_to(PKG).as_posix()
        for folder in ("report/templates", "report/static", "web/templates", "web/static")
        for p in (PKG / folder).iterdir()
        if p.is_file()
    ]
    assert files
    for f in files:
        assert any(fnmatch(f, pat) for pat in patterns), f
    ours = [pat for pat in patterns if pat.startswith(("report/", "web/"))]
    for pat in ours:
        assert any(fnmatch(f, pat) for f in files), f"package-data pattern {pat} matches nothing"
