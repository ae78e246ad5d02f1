"""One exception root with typed children.

Children also subclass a builtin (PyAV's habit: ``InvalidDataError(FFmpegError, ValueError)``) so
callers can catch either. "No face", "no audio" and "no manifest" are results, never errors.
Each error carries a stable ``code`` that the CLI prints and the API returns.
"""

from __future__ import annotations


class VeracityError(Exception):
    """Root of every error Veracity raises on purpose."""

    code = "internal_error"
    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(VeracityError):
    """The input is at fault, not Veracity: exit code 2, HTTP 4xx."""

    code = "bad_input"
    exit_code = 2


class UnsupportedMedia(InputError, ValueError):
    """Not a kind of media we can read (a text file, an unknown container, no streams)."""

    code = "unsupported_media"


class CorruptMedia(InputError, ValueError):
    """Recognised media that cannot be decoded (zero bytes, truncated, broken stream)."""

    code = "corrupt_media"


class MediaTooLarge(InputError, ValueError):
    """Over a configured limit: bytes, pixels, duration or frame count."""

    code = "media_too_large"


class AnalysisTimeout(InputError, TimeoutError):
    """Decoding or analysing the input ran past its wall-clock budget (a hostile or broken file)."""

    code = "analysis_timeout"


class SourceNotFound(InputError, FileNotFoundError):
    """The path does not exist or is not a readable file."""

    code = "not_found"


class ModelUnavailable(VeracityError, RuntimeError):
    """A model file or asset is missing or fails its checksum."""

    code = "model_unavailable"


class ProvenanceError(VeracityError, RuntimeError):
    """Reading or writing content credentials failed for a reason other than absence."""

    code = "provenance_error"


class ConfigError(VeracityError, ValueError):
    """Settings or options that make no sense (negative limits, unknown detector names)."""

    code = "config_error"
    exit_code = 2


class ConsentRefused(InputError, PermissionError):
    """Signing refused: the consent is missing, expired, revoked or does not cover the scope."""

    code = "consent_refused"


class ConsentNotFound(InputError, LookupError):
    """No consent (or signing) record with that id."""

    code = "consent_not_found"


class SigningKeyError(InputError, ValueError):
    """Signing keys missing, unreadable or not matching (the user can fix it: run `keys init`)."""

    code = "signing_key"
