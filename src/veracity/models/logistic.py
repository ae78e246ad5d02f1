"""Standardised logistic models stored inline in a model card: p = sigmoid(w·((x - mean) / std) + b).

Three detectors (spectral, synthetic_speech, synthetic_image) use this same small model on
different features. The arithmetic, the validation and the card round trip live here once; each
detector subclasses :class:`StandardLogistic` and says only how many features it takes and which
feature (or preprocessing) configuration its card must carry, so a card trained on other
features is refused instead of scoring nonsense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from veracity.errors import ModelUnavailable
from veracity.models.cards import ModelCard

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StandardLogistic:
    """Standardise the features, then logistic regression. Subclasses set the class variables."""

    version: str
    mean: FloatArray
    std: FloatArray
    coef: FloatArray
    intercept: float

    n_features: ClassVar[int]
    config_key: ClassVar[str] = "features"  # the params key holding the feature configuration
    noun: ClassVar[str] = "model"  # in messages: "head" or "model"
    mismatch: ClassVar[str] = "was trained on other features"  # may use {found!r}

    @classmethod
    def config(cls) -> dict[str, object]:
        """The feature configuration the model must have been trained with."""
        raise NotImplementedError

    def width(self) -> int:
        """How many features this model takes (the class's ``n_features`` unless a subclass's
        instances differ, as the speech head does with its encoder layers)."""
        return self.n_features

    def feature_config(self) -> dict[str, object]:
        """This model's feature configuration (the class's ``config()`` unless instances differ)."""
        return self.config()

    def __post_init__(self) -> None:
        n = self.width()
        for arr in (self.mean, self.std, self.coef):
            if arr.shape != (n,) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{self.noun} arrays must be {n} finite numbers")
        if np.any(self.std <= 0) or not math.isfinite(self.intercept):
            raise ValueError("std must be positive and the intercept finite")

    def logit(self, features: FloatArray) -> float:
        """The logit of one feature vector."""
        return float(((features - self.mean) / self.std) @ self.coef) + self.intercept

    def logits(self, features: npt.NDArray[np.floating[Any]]) -> FloatArray:
        """The logits of a batch of feature vectors (one row each; a single vector is one row)."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if x.shape[1] != self.width():
            raise ValueError(f"expected {self.width()} features per row, got {x.shape}")
        return np.asarray(((x - self.mean) / self.std) @ self.coef + self.intercept, dtype=np.float64)

    def params(self) -> dict[str, object]:
        """The card's inline payload (hashed by the card)."""
        return {self.config_key: self.feature_config(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_card(cls, card: ModelCard) -> Self:
        found = cls.card_features(card)
        if found != cls.config():
            raise ModelUnavailable(f"model {card.name!r} " + cls.mismatch.format(found=found))
        return cls.from_arrays(card)

    @classmethod
    def card_features(cls, card: ModelCard) -> object:
        """The feature configuration ``card`` carries; ModelUnavailable when it is not an inline
        logistic model."""
        if card.kind != "logistic" or card.params is None:
            raise ModelUnavailable(f"model {card.name!r} is not an inline logistic {cls.noun}")
        return card.params.get(cls.config_key)

    @classmethod
    def from_arrays(cls, card: ModelCard, **extra: Any) -> Self:
        """The model stored in ``card`` (its feature configuration already checked), with
        ``extra`` constructor arguments of a subclass; ModelUnavailable when malformed."""
        return cls._from_dict(card.params or {}, version=card.version, name=card.name, **extra)

    @classmethod
    def from_params(cls, p: object, *, version: str, name: str) -> Self:
        """The model stored as ``p``, a dict nested in a card's params (a view's probe kept inside
        its detector's card), checked against :meth:`config`."""
        if not isinstance(p, dict):
            raise ModelUnavailable(f"model {name!r} has no {cls.noun} parameters")
        if p.get(cls.config_key) != cls.config():
            raise ModelUnavailable(f"model {name!r} " + cls.mismatch.format(found=p.get(cls.config_key)))
        return cls._from_dict(p, version=version, name=name)

    @classmethod
    def _from_dict(cls, p: dict[str, Any], *, version: str, name: str, **extra: Any) -> Self:
        try:
            return cls(version=version, mean=np.asarray(p["mean"], dtype=np.float64),
                       std=np.asarray(p["std"], dtype=np.float64), coef=np.asarray(p["coef"], dtype=np.float64),
                       intercept=float(p["intercept"]), **extra)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(f"model {name!r} has malformed parameters: {exc}") from exc
