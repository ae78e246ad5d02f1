"""Materialise ``SOURCES.tsv``: the media listed there live in public repositories, not in
../shared/data. Each repository is mirrored once as a bare git directory (the search tool's
``fetch``); this module reads every listed blob out of its mirror, checks it against the blob id
recorded in ``notes``, writes it under ``DIR/<path>`` and writes ``DIR/MANIFEST.tsv`` in the
columns of ../shared/data/MANIFEST.tsv, so that the eval harness and every trainer read it
unchanged.

Why blob ids: a git blob id is the SHA-1 of the file's bytes (with a short header), so checking
it proves the file is the one the row describes, whichever commit the mirror's snapshot holds.

Side-by-side composites (DeepFaceLive: original | swapped; AniPortrait: reference | generated,
sometimes with the driving video) are also cut into panels written as clips of their own, each
with a manifest row of its own, so a trainer can use the real and fake halves as a pair. Both
halves are re-encoded the same way (H.264 CRF 17), so compression cannot tell them apart.

Re-running is incremental: a file present with the right blob id is not written again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from veracity.errors import ConfigError

COLUMNS = ("path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path", "license", "notes")
BLOB_RE = re.compile(r"git-blob ([0-9a-f]{40})")
HALF_CRF = 17
PANEL_MARK = "__panel"
Tick = Callable[[int, int, str], None]


def default_mirrors() -> Path:
    """Where the search tool's ``fetch`` leaves repository mirrors (``$VERACITY_MIRRORS`` wins)."""
    return Path(os.environ.get("VERACITY_MIRRORS", "/work/.mirror"))


def blob_id(data: bytes) -> str:
    """The git blob id of ``data``: SHA-1 over ``blob <size>\\0`` and the bytes."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def mirror_dir(mirrors: Path, repo: str) -> Path | None:
    """The bare git directory of ``owner/name`` under ``mirrors``: ``owner+name/repo`` as the
    fetch tool writes it, or ``owner+name`` itself when that is the git directory."""
    base = mirrors / repo.replace("/", "+")
    for cand in (base / "repo", base):
        if (cand / "objects").is_dir() and (cand / "HEAD").is_file():
            return cand
    return None


@dataclass(frozen=True, slots=True)
class Skip:
    path: str
    repo: str
    why: str


@dataclass
class Result:
    """What a run wrote, kept and skipped; ``summary()`` is the ``--json`` form."""

    out: Path
    written: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (split, kind, label)
    kept: int = 0
    new: int = 0
    halves: int = 0
    skipped: list[Skip] = field(default_factory=list)
    bytes_total: int = 0
    stale_removed: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "files": sum(self.written.values()),
            "new": self.new,
            "already_present": self.kept,
            "halves": self.halves,
            "stale_panels_removed": self.stale_removed,
            "bytes": self.bytes_total,
            "by_split_kind_label": {"/".join(k): n for k, n in sorted(self.written.items())},
            "skipped": [{"path": s.path, "repo": s.repo, "why": s.why} for s in self.skipped],
        }

    def text(self) -> str:
        lines = [f"{sum(self.written.values())} files in {self.out} ({self.bytes_total / 1e6:.1f} MB; {self.new} new, "
                 f"{self.kept} already present, {self.halves} composite panels)"]
        lines += [f"  {'/'.join(k)}: {n}" for k, n in sorted(self.written.items())]
        if self.skipped:
            lines.append(f"{len(self.skipped)} rows skipped:")
            lines += [f"  skipped {s.path} ({s.repo}): {s.why}" for s in self.skipped]
        return "\n".join(lines)


def read_sources(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if rows and set(COLUMNS) - set(rows[0]):
        raise ConfigError(f"{path} lacks columns {sorted(set(COLUMNS) - set(rows[0]))}")
    return rows


class _Batch:
    """One ``git cat-file --batch`` process per mirror: a blob per request, no process per file."""

    def __init__(self, git_dir: Path) -> None:
        self.proc = subprocess.Popen(["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def read(self, oid: str) -> bytes | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(oid.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            return None
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)  # the newline after the object
        return data

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _safe_target(out: Path, rel: str) -> Path:
    target = (out / rel).resolve()
    if out.resolve() not in target.parents:
        raise ConfigError(f"row path {rel!r} leaves the output folder")
    return target


def _present(target: Path, oid: str) -> bool:
    return target.is_file() and blob_id(target.read_bytes()) == oid


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)


def is_composite(row: dict[str, str]) -> bool:
    """A whole side-by-side composite: ``notes`` or ``detail`` says so. Trainers skip these and
    use the panel clips cut from them (``<stem>__panelKofN``), which are not composites."""
    if PANEL_MARK in Path(row.get("path", "")).stem:
        return False
    return "composite" in (row.get("notes", "") + " " + row.get("detail", "")).lower()


def composite_panels(row: dict[str, str], width: int, height: int) -> tuple[int, list[tuple[int, str, str]]]:
    """How a side-by-side composite splits: the number of equal panels and the ones to cut out,
    ``(index, label, what)``. DeepFaceLive: always two wide halves (each 16:9-ish, so the frame's
    aspect does not give the count), left original (real), right swapped (fake). AniPortrait:
    square panels, as many as the aspect says: reference still | generated (| driving video); the
    generated panel is the second, the driving clip of 3-panel demos is real footage of a person,
    the reference still is not cut (a still shown as video is neither a real nor a fake video)."""
    repo = row["source_repo"].lower()
    if "deepfacelive" in repo:
        return 2, [(0, "real", "left half: the original footage"), (1, "fake", "right half: the face swap")]
    if "aniportrait" in repo:
        n = max(2, round(width / max(1, height)))
        panels = [(1, "fake", f"panel 2 of {n}: the generated animation")]
        if n == 3:
            panels.append((2, "real", "panel 3 of 3: the real driving video"))
        return n, panels
    return 2, []


def cut_panel(src: Path, dst: Path, index: int, panels: int) -> None:
    """Write panel ``index`` of ``panels`` equal side-by-side panels of ``src`` as an H.264 clip
    (CRF 17, same frame timing), with the audio stream copied when there is one."""
    import av  # PyAV bundles ffmpeg (libx264 included)

    tmp = dst.with_name(f".{dst.stem}.part{dst.suffix}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        w = vin.codec_context.width // panels
        x0, w2, h2 = index * w, (w // 2) * 2, (vin.codec_context.height // 2) * 2
        rate = vin.average_rate or Fraction(25)
        with av.open(str(tmp), "w", format="mp4") as outp:
            vout = outp.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = w2, h2, "yuv420p"
            vout.time_base = vin.time_base
            vout.options = {"crf": str(HALF_CRF), "preset": "medium"}
            for frame in inp.decode(vin):
                rgb = frame.to_ndarray(format="rgb24")[:h2, x0:x0 + w2]
                nf = av.VideoFrame.from_ndarray(rgb.copy(), format="rgb24").reformat(format="yuv420p")
                nf.pts, nf.time_base = frame.pts, frame.time_base
                for packet in vout.encode(nf):
                    outp.mux(packet)
            for packet in vout.encode(None):
                outp.mux(packet)
        if inp.streams.audio:
            _add_audio(src, tmp)
    tmp.replace(dst)


def _add_audio(src: Path, video_only: Path) -> None:
    """Remux ``video_only`` with the audio packets of ``src`` (stream copy, no re-encode)."""
    import av

    both = video_only.with_name(video_only.name + ".av.mp4")
    with av.open(str(video_only)) as vid, av.open(str(src)) as aud, av.open(str(both), "w", format="mp4") as outp:
        vs = outp.add_stream_from_template(vid.streams.video[0])
        as_ = outp.add_stream_from_template(aud.streams.audio[0])
        for packet in vid.demux(vid.streams.video[0]):
            if packet.dts is not None:
                packet.stream = vs
                outp.mux(packet)
        for apacket in aud.demux(aud.streams.audio[0]):
            if apacket.dts is not None:
                apacket.stream = as_
                outp.mux(apacket)
    both.replace(video_only)


def panel_rel(composite: str, split: str, index: int, panels: int, label: str) -> str:
    """The manifest path of panel ``index`` (0-based) of a composite: ``train/video/fake/x.mp4``
    -> ``train/video/real/x__panel1of2.mp4`` (each panel filed under its own label)."""
    return f"{split}/video/{label}/{Path(composite).stem}{PANEL_MARK}{index + 1}of{panels}.mp4"


def _panel_rows(row: dict[str, str], out: Path, result: Result) -> list[dict[str, str]]:
    import av

    src = out / row["path"]
    try:
        with av.open(str(src)) as inp:
            cc = inp.streams.video[0].codec_context
            width, height = cc.width, cc.height
    except (av.error.FFmpegError, IndexError) as exc:
        result.skipped.append(Skip(row["path"], row["source_repo"], f"composite not readable: {exc}"))
        return []
    panels, cuts = composite_panels(row, width, height)
    rows = []
    for index, label, what in cuts:
        rel = panel_rel(row["path"], row["split"], index, panels, label)
        dst = _safe_target(out, rel)
        tag = dst.with_name(f".{dst.name}.from")
        src_id = BLOB_RE.search(row["notes"])
        want = f"{src_id.group(1) if src_id else ''}:{index}:{panels}:crf{HALF_CRF}"
        if not (dst.is_file() and tag.is_file() and tag.read_text() == want):
            try:
                cut_panel(src, dst, index, panels)
            except (av.error.FFmpegError, ValueError, OSError) as exc:
                result.skipped.append(Skip(rel, row["source_repo"], f"panel cut failed: {exc}"))
                continue
            tag.write_text(want)
        result.halves += 1
        rows.append({**row, "path": rel, "label": label,
                     "detail": f"{what}; cut from the composite {row['path']}",
                     "notes": f"panel {index + 1} of {panels} of {row['path']}, re-encoded H.264 CRF {HALF_CRF} by "
                              f"veracity train data materialize; composite notes: {row['notes']}"})
    return rows


def materialize(sources: Path, out: Path, *, mirrors: Path, halves: bool = True,
                progress: Tick | None = None) -> Result:
    """Write every row of ``sources`` under ``out`` and ``out/MANIFEST.tsv``; see the module doc."""
    rows = read_sources(sources)
    out.mkdir(parents=True, exist_ok=True)
    result = Result(out=out)
    manifest: list[dict[str, str]] = []
    batches: dict[str, _Batch | None] = {}
    try:
        for i, row in enumerate(rows):
            if progress:
                progress(i, len(rows), row["path"])
            repo, rel = row["source_repo"], row["path"]
            m = BLOB_RE.search(row.get("notes", ""))
            if not m:
                result.skipped.append(Skip(rel, repo, "no git-blob id in notes"))
                continue
            oid = m.group(1)
            try:
                target = _safe_target(out, rel)
            except ConfigError as exc:
                result.skipped.append(Skip(rel, repo, str(exc)))
                continue
            if _present(target, oid):
                result.kept += 1
            else:
                if repo not in batches:
                    git_dir = mirror_dir(mirrors, repo)
                    batches[repo] = _Batch(git_dir) if git_dir else None
                batch = batches[repo]
                if batch is None:
                    result.skipped.append(Skip(rel, repo, f"no mirror of {repo} under {mirrors}"))
                    continue
                data = batch.read(oid)
                if data is None:
                    result.skipped.append(Skip(rel, repo, f"blob {oid[:12]} not in the mirror"))
                    continue
                if blob_id(data) != oid:
                    result.skipped.append(Skip(rel, repo, f"blob {oid[:12]} content does not match its id"))
                    continue
                _write_atomic(target, data)
                result.new += 1
            manifest.append({k: row.get(k, "") for k in COLUMNS})
            if halves and row["kind"] == "video" and is_composite(row):
                manifest.extend(_panel_rows(row, out, result))
    finally:
        for b in batches.values():
            if b is not None:
                b.close()
    for r in manifest:
        result.written[(r["split"], r["kind"], r["label"])] += 1
        result.bytes_total += (out / r["path"]).stat().st_size
    _write_manifest(out / "MANIFEST.tsv", manifest)
    result.stale_removed = _remove_stale_panels(out, {r["path"] for r in manifest})
    if progress:
        progress(len(rows), len(rows), "")
    return result


def _remove_stale_panels(out: Path, listed: set[str]) -> int:
    """Panel clips an earlier run cut that this run does not list (a changed panel layout) are
    deleted, with their tags, so no unlisted clip with a wrong label stays beside the data."""
    removed = 0
    for f in out.rglob(f"*{PANEL_MARK}*of*.mp4"):
        rel = f.relative_to(out).as_posix()
        if rel not in listed and not f.name.startswith("."):
            f.unlink()
            f.with_name(f".{f.name}.from").unlink(missing_ok=True)
            removed += 1
    return removed


def _write_manifest(path: Path, rows: Iterable[dict[str, str]]) -> None:
    tmp = path.with_name(".MANIFEST.tsv.part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
