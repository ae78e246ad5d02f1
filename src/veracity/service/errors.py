"""Service errors: each has a stable ``code`` and an HTTP status, rendered as ``{"error": {code, message}}``."""

from __future__ import annotations

import re

from veracity.errors import (
    ConfigError,
    CorruptMedia,
    InputError,
    MediaTooLarge,
    ModelUnavailable,
    SourceNotFound,
    UnsupportedMedia,
    VeracityError,
)


class ServiceError(VeracityError):
    """An error answered over HTTP with ``status`` and ``code``."""

    code = "internal_error"
    status = 500


class BadRequest(ServiceError, InputError):
    code = "bad_request"
    status = 400


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UrlNotAllowed(ServiceError, InputError):
    """URL ingestion or a webhook target refused by the SSRF rules."""

    code = "url_not_allowed"
    status = 400


class FetchFailed(ServiceError, InputError):
    """The remote server did not give us the media (HTTP error, timeout, too many redirects)."""

    code = "fetch_failed"
    status = 400


class Unavailable(ServiceError):
    code = "unavailable"
    status = 503


_ECHO_MAX = 80
_MESSAGE_MAX = 500
# Absolute POSIX paths of two components or more (``/srv/data/media/ab12``); Windows drive paths.
_PATH = re.compile(r"(?:(?<=[\s'\"(=])|^)(?:/[^\s'\"/:]+){2,}/?|[A-Za-z]:\\[^\s'\"]+")


def echo(value: str, limit: int = _ECHO_MAX) -> str:
    """A client-supplied value quoted back in a message, bounded (a 10,000-char id is not echoed)."""
    text = value if len(value) <= limit else value[:limit] + f"... ({len(value)} chars)"
    return repr(text)


def public_message(message: str, limit: int = _MESSAGE_MAX) -> str:
    """A message fit for clients: server paths cut to their last component, length bounded.

    Errors name paths for the CLI user who gave them; over HTTP the path is the server's storage
    layout, which is nobody else's business."""
    text = _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1].rsplit("\\", 1)[-1], message)
    return text if len(text) <= limit else text[:limit] + "..."


# Pipeline errors -> HTTP status; the code is the error's own.
_STATUS: list[tuple[type[VeracityError], int]] = [
    (ServiceError, 500),  # placeholder: ServiceError carries its own status
    (MediaTooLarge, 413),
    (UnsupportedMedia, 415),
    (CorruptMedia, 422),
    (SourceNotFound, 404),
    (ConfigError, 422),
    (InputError, 400),
    (ModelUnavailable, 503),
]


def http_status(exc: VeracityError) -> int:
    if isinstance(exc, ServiceError):
        return exc.status
    for kind, status in _STATUS[1:]:
        if isinstance(exc, kind):
            return status
    return 500
