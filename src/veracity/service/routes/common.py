"""Error responses declared on every route, so the OpenAPI document matches what is sent."""

from __future__ import annotations

from typing import Any

from veracity.service.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "Bad request (bad_request, url_not_allowed, fetch_failed)",
    401: "Missing or invalid API key (unauthorized)",
    403: "The key's role may not do this (forbidden)",
    404: "No such object (not_found)",
    409: "Conflict",
    413: "Over a size limit (media_too_large)",
    415: "Not media we can read (unsupported_media)",
    422: "Invalid request body or media (validation_error, corrupt_media)",
    429: "Rate limited (rate_limited)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    wanted = codes or (400, 401, 403, 404, 422, 429)
    return {c: {"model": ErrorBody, "description": _DESCRIPTIONS.get(c, "Error")} for c in wanted}


AUTH_ERRORS = (401, 403, 422, 429)
