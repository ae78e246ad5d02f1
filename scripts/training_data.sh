#!/usr/bin/env bash
# Rebuild the training caches of a fresh machine, in order, each step skipped when its output is
# already there (every step below is incremental or cached):
#   1. Debian packages the generators need (espeak-ng for Piper phonemes; flite and festival for
#      the tts dubs), when run as root and missing;
#   2. the SOURCES.tsv rows, materialised from the repository mirrors into ~/.cache/veracity/data
#      (the mirrors come first: the search tool's `fetch` of each source_repo, docs/data.md);
#   3. the made video fakes and their twins (~/.cache/veracity/video_fakes, ~25 min);
#   4. the face crop cache (~/.cache/veracity/train/face_artifacts/crops, ~5 min);
#   5. the generated speech fakes (~/.cache/veracity/speech/gen2: Piper and espeak-ng, ~5 min), which
#      the speech trainer takes as a third root;
#   6. the fusion records of every train and eval file (~/.cache/veracity/fusion, ~20 min), by a
#      refit written to a scratch file (the packaged fusion files are not touched).
# Not here: the speech heads' held-out tables, which a fusion refit needs; `veracity train
# synthetic_speech --head audio` writes the audio head's (and re-makes its card), see docs/data.md.
# Usage: scripts/training_data.sh   (after scripts/install.sh and `pip install -e '.[dev,train]'`)
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
CACHE=${VERACITY_CACHE_DIR:-$HOME/.cache/veracity}
SHARED=../shared/data
PKGS="espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "missing Debian packages:$missing (apt-get install them as root)" >&2
    exit 1
  fi
fi
echo "== materialise SOURCES.tsv"
$V/veracity train data materialize "$SHARED/SOURCES.tsv"
echo "== made video fakes"
$V/python -m veracity.train.video_fakes "$CACHE/video_fakes"
ROOTS=(--data "$SHARED" --data "$CACHE/data" --data "$CACHE/video_fakes")
echo "== face crop cache"
$V/python -m veracity.train.face_prep "${ROOTS[@]}"
echo "== speech fakes"
if [ ! -f "$CACHE/speech/gen2/MANIFEST.tsv" ]; then
  $V/python -m veracity.train.speech_fakes "$CACHE/speech/gen2" --piper 100 --espeak 60
fi
echo "== fusion records"
$V/veracity train fusion "${ROOTS[@]}" --version fusion-scratch --out "$(mktemp -d)/fusion-scratch.json"
echo "done: caches under $CACHE"
