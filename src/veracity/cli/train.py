"""``veracity train ...``: one sub-command per trainer, plus ``train data`` for the training and
measuring data itself.

Every trainer takes several data roots (``--data`` repeated): ../shared/data and the folder
``veracity train data materialize`` writes (``~/.cache/veracity/data``). Only rows whose split
is ``train`` are learned from; eval rows are measured, never fitted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from veracity.cli.common import _bar, _err, _fail
from veracity.config import Settings
from veracity.detectors import registry
from veracity.errors import ConfigError, VeracityError

train_app = typer.Typer(no_args_is_help=True, help="Train a model (or fit the fusion) on the train split and write it "
                                                   "with its card; `train data` builds the data.")
data_app = typer.Typer(no_args_is_help=True, help="The training and measuring data: materialise SOURCES.tsv.")
train_app.add_typer(data_app, name="data")

PKG_DATA = Path(__file__).resolve().parent.parent / "models" / "data"

DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="A data root holding MANIFEST.tsv (repeat for several). Default: ../shared/data "
                                "and ~/.cache/veracity/data when present."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Where to write the card (default: the package's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the card / summary as JSON.")]


def default_data_dir() -> Path:
    """Where ``train data materialize`` writes by default: a cache folder outside the repo."""
    return Settings.from_env().cache_dir / "data"


def data_roots(given: Sequence[Path] | None) -> list[Path]:
    """The data roots to read: the ones given, or ../shared/data plus the materialised cache
    when each has a MANIFEST.tsv. A given root without MANIFEST.tsv is an error (exit 2)."""
    from veracity.train.common import SHARED_DATA, default_roots  # training code: not at CLI start

    if given:
        bad = [p for p in given if not (p / "MANIFEST.tsv").is_file()]
        if bad:
            _err(f"error: {bad[0]} has no MANIFEST.tsv")
            raise typer.Exit(2)
        return list(given)
    roots = default_roots(Settings.from_env().cache_dir)
    if not roots:
        _err(f"error: no data root found ({SHARED_DATA} and {default_data_dir()} have no MANIFEST.tsv); pass --data")
        raise typer.Exit(2)
    return roots


def _emit(summary: dict[str, object], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")


def _trainer(detector: str) -> Callable[..., Any]:
    """A detector's trainer: its spec's entry point, imported now."""
    try:
        return registry.spec(detector).load_trainer()
    except ModuleNotFoundError as exc:
        raise _needs_torch(exc) from exc


def _card_path(detector: str, kind: str | None = None) -> Path:
    """The packaged card a detector's trainer writes by default (for ``kind``: the card of that
    media kind, e.g. synthetic_speech's audio head)."""
    spec = registry.spec(detector)
    return PKG_DATA / f"{spec.card if kind is None else spec.card_for(kind)}.json"


def _train(detector: str, roots: object, out: Path | None, as_json: bool, *, exclude: set[str] | None = None,
           **options: object) -> None:
    """Run ``detector``'s trainer on ``roots`` and print the card it wrote."""
    train = _trainer(detector)
    try:
        card = train(roots, out or _card_path(detector), **options)
    except VeracityError as exc:
        raise _fail(exc) from exc
    _emit({"trained": detector, "card": card.model_dump(mode="json", exclude=exclude)}, as_json)


def _needs_torch(exc: ModuleNotFoundError) -> typer.Exit:
    _err(f"error: training needs the [train] extra (torch, onnx): {exc}")
    return typer.Exit(2)


@train_app.command("av_sync")
def train_av_sync(data: DataOpt = None, out: OutOpt = None, as_json: JsonOpt = False) -> None:
    """The audio-visual sync model (ridge on mouth features vs speech envelope)."""
    _train("av_sync", data_roots(data)[0], out, as_json, log=_err)


@train_app.command("spectral")
def train_spectral(data: DataOpt = None, out: OutOpt = None, as_json: JsonOpt = False) -> None:
    """The spectral (up-sampling fingerprint) head."""
    _train("spectral", data_roots(data)[0], out, as_json, progress=_err)


@train_app.command("face_artifacts")
def train_face_artifacts(
    data: DataOpt = None,
    out: OutOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint (or warm-start from "
                                                          "the committed ONNX when the cache is gone).")] = False,
    samples: Annotated[int | None, typer.Option("--samples", min=32, help="Schedule length in images.")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", min=0.1, help="Stop (checkpointed) after this "
                                                                             "many minutes.")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, max=8, help="torch threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """The face-manipulation network (EfficientNet-Lite0, self-blended images + DeepFaceLive swaps)."""
    import os
    import time as _time

    # OpenMP threads that sleep instead of spinning while they wait: on a shared, oversubscribed
    # CPU this measured 0.7 -> 8-10 img/s. Must be set before torch loads libgomp.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from veracity.cli.common import err as console

    train = _trainer("face_artifacts")
    from veracity.train.face_artifacts import CARD_NAME, TrainConfig

    changes: dict[str, object] = {"threads": threads}
    if samples:
        changes["samples"] = samples
    if minutes:
        changes["minutes"] = minutes
    config = TrainConfig(**changes)  # type: ignore[arg-type]
    columns = [TextColumn("face_artifacts"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:.1f} img/s  val {task.fields[val]}  loss {task.fields[loss]:.3f}"),
               TimeRemainingColumn()]
    bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
    last_line = [0.0]

    def hook(info: dict[str, object]) -> None:
        rate = float(info["rate"])  # type: ignore[arg-type]
        val = info.get("score", "-")
        bar.update(task, completed=int(info["samples"]), rate=rate, val=val,  # type: ignore[call-overload]
                   loss=float(info["loss"]))  # type: ignore[arg-type]
        now = _time.monotonic()
        if not console.is_terminal and now - last_line[0] > 60:
            last_line[0] = now
            left = (config.samples - int(info["samples"])) / max(rate, 1e-6)  # type: ignore[call-overload]
            _err(f"{info['samples']}/{config.samples} samples, {rate:.1f} img/s, val score {val}, "
                 f"loss {float(info['loss']):.3f}, ETA {left / 3600:.1f} h")  # type: ignore[arg-type]

    try:
        with bar:
            task = bar.add_task("train", total=config.samples, rate=0.0, val="-", loss=0.0)
            card = train(
                data_roots(data),
                # The trainer's own card (it trains the next version, warm-started from the one in use).
                out or PKG_DATA / f"{CARD_NAME}.json",
                work=Settings.from_env().cache_dir / "train" / "face_artifacts",
                config=config, resume=resume, log=_err, on_step=hook,
            )
    except VeracityError as exc:
        raise _fail(exc) from exc
    _emit({"trained": "face_artifacts", "card": None if card is None else card.model_dump(mode="json")}, as_json)


@train_app.command("synthetic_image")
def train_synthetic_image(
    data: DataOpt = None,
    out: OutOpt = None,
    views: Annotated[list[str] | None, typer.Option(
        "--view", help="A view to train and fuse: clip (CLIP probe), cnn (pooled EfficientNet-Lite0 features of native "
                       "crops + probe; exporting the extractor, when its ONNX is not there yet, needs "
                       "torch), spectrum (residual-spectrum fingerprint features of native crops + probe, "
                       "numpy only). Repeat for several. Default: clip and cnn (the packaged model).")] = None,
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Skip measuring on eval/image.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The AI-generated-image detector: CLIP probe and/or patch CNN on native crops, calibrated."""
    chosen = tuple(sorted(set(views or ["clip", "cnn"])))
    if not set(chosen) <= {"clip", "cnn", "spectrum"}:
        _err(f"error: unknown view in {list(chosen)} (clip, cnn, spectrum)")
        raise typer.Exit(2)
    card_path = out or _card_path("synthetic_image")
    if "cnn" in chosen and not (card_path.parent / "effnet_lite0_pooled-v1.onnx").is_file():
        try:
            import torch  # noqa: F401
        except ModuleNotFoundError as exc:
            raise _needs_torch(exc) from exc
    _train("synthetic_image", data_roots(data), card_path, as_json, progress=_err, measure=not no_eval, views=chosen)


@train_app.command("synthetic_speech")
def train_synthetic_speech(
    data: DataOpt = None,
    out: OutOpt = None,
    threads: Annotated[int, typer.Option("--threads", min=1, max=8, help="Encoder threads.")] = 2,
    skip_eval: Annotated[bool, typer.Option("--skip-eval", help="Do not score the eval rows.")] = False,
    noise: Annotated[bool, typer.Option("--noise", help="Pink noise (5-25 dB SNR) on half the files' codec "
                                                       "variant, both classes.")] = False,
    video_reals: Annotated[bool, typer.Option("--video-reals", help="Also take the sound of the real train videos "
                                                                   "as real speech.")] = False,
    codec_copies: Annotated[int, typer.Option("--codec-copies", min=1, max=4,
                                              help="Random codec round trips per train file, beside the clean "
                                                   "copy.")] = 1,
    head: Annotated[str, typer.Option("--head", help="Which packaged head to make: video (synthetic_speech-v2, "
                                                    "the sound of videos, tiny.en last block) or audio "
                                                    "(synthetic_speech-audio-v2, audio files, Whisper base block 1).")
                    ] = "video",
    layers: Annotated[str | None, typer.Option("--layers", help="Encoder layers (1-4) whose pooled outputs are "
                                                               "joined, comma-separated; default: the head's "
                                                               "(video 4, audio 1).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The synthetic-speech heads on Whisper features (needs `veracity models fetch`)."""
    try:
        chosen = None if layers is None else tuple(int(k) for k in layers.split(","))
    except ValueError as exc:
        raise _fail(ConfigError(f"--layers wants numbers like 2,4, not {layers!r}")) from exc
    # An unknown --head is refused by the trainer (ConfigError) before anything is written.
    _train("synthetic_speech", data_roots(data), out or _card_path("synthetic_speech", head), as_json,
           exclude={"params"}, progress=_err, threads=threads, measure_eval=not skip_eval, noise=noise,
           video_reals=video_reals, layers=chosen, head_kind=head, codec_copies=codec_copies)


@train_app.command("fusion")
def train_fusion(
    data: DataOpt = None,
    records: Annotated[
        Path | None, typer.Option("--records", help="Train analysis records (JSONL cache, incremental; default "
                                                    "~/.cache/veracity/fusion/train.jsonl).")
    ] = None,
    reuse: Annotated[bool, typer.Option("--reuse", help="Fit from --records / --eval-records only, analysing "
                                                        "nothing.")] = False,
    eval_roots: Annotated[
        list[Path] | None, typer.Option("--eval", help="A data root whose eval split measures the fit (repeat). "
                                                       "Default: the --data roots.")
    ] = None,
    eval_records: Annotated[
        Path | None, typer.Option("--eval-records", help="Eval analysis records (JSONL cache; default "
                                                         "~/.cache/veracity/fusion/eval.jsonl).")
    ] = None,
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Skip the eval comparison (the file never becomes "
                                                            "the default then).")] = False,
    reviews: Annotated[
        Path | None, typer.Option("--reviews", help="Reviewed jobs (`veracity review export`) added to the fit.")
    ] = None,
    version: Annotated[str, typer.Option("--version", help="Name of the fusion file.")] = "fusion-v3",
    calibration: Annotated[str, typer.Option("--calibration", help="platt or isotonic.")] = "platt",
    per_group: Annotated[
        int | None, typer.Option("--per-group", min=1, help="At most this many train files per group, every kind "
                                                            "(default: video 60, image 30, audio 60).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the fusion file here instead of the package "
                                                           "(it never becomes the default then).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the per-kind calibrated fusion on train files (CV by source), measure it on eval."""
    from veracity.train import fusion as trainer

    if calibration not in ("platt", "isotonic"):
        _err("error: --calibration must be platt or isotonic")
        raise typer.Exit(2)
    roots = data_roots(data)
    cache = Settings.from_env().cache_dir / "fusion"
    caps = dict.fromkeys(trainer.KINDS, per_group) if per_group else None
    try:
        with _bar() as progress:
            task = progress.add_task("analysing", total=None)

            def tick(done: int, total: int, rel: str) -> None:
                progress.update(task, completed=done, total=total, description=Path(rel).name[:40] or "done")

            params = trainer.train_fusion(
                roots, version=version, records_path=records or cache / "train.jsonl", reuse_records=reuse,
                eval_roots=[] if no_eval else (eval_roots or roots),
                eval_records=None if no_eval else (eval_records or cache / "eval.jsonl"),
                reviews=reviews, per_group=caps, calibration=calibration, out=out, progress=tick,
                held_out=trainer.held_out_tables(roots, None, _err), log=_err)
    except VeracityError as exc:
        raise _fail(exc) from exc
    _emit({"trained": "fusion", "fusion": params.model_dump(mode="json")}, as_json)


@data_app.command("materialize")
def data_materialize(
    sources: Annotated[Path, typer.Argument(help="The SOURCES.tsv to materialise (../shared/data/SOURCES.tsv).")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write (default ~/.cache/veracity/data).")] = None,
    mirrors: Annotated[
        Path | None, typer.Option("--mirrors", help="Folder of repository mirrors (default /work/.mirror or "
                                                    "$VERACITY_MIRRORS).")
    ] = None,
    halves: Annotated[
        bool, typer.Option("--halves/--no-halves", help="Also write the panels of side-by-side composites as clips.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Write every SOURCES.tsv row from its repository mirror (blob id checked) and a MANIFEST.tsv.

    Incremental: a file already present with the right blob id is not written again. Rows whose
    mirror or blob is missing are listed at the end and skipped.
    """
    from veracity.train import data as materializer

    if not sources.is_file():
        _err(f"error: {sources} does not exist")
        raise typer.Exit(2)
    target = out or default_data_dir()
    try:
        with _bar() as progress:
            task = progress.add_task("materialising", total=None)

            def tick(done: int, total: int, rel: str) -> None:
                progress.update(task, completed=done, total=total, description=Path(rel).name[:40])

            result = materializer.materialize(sources, target, mirrors=mirrors or materializer.default_mirrors(),
                                              halves=halves, progress=tick)
    except VeracityError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit(result.summary(), True)
        return
    console = Console()
    console.print(result.text())
