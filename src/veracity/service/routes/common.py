"""Shared by the routers: error responses declared on every route (so the OpenAPI document
matches what is sent), and reading request bodies that may carry media (JSON or multipart)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from veracity.service.errors import BadRequest, ServiceError
from veracity.service.schemas import ErrorBody

MAX_JSON_BYTES = 1 << 20

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


def media_body(schema: str, *, files: str = "file", many: bool = False, job_fields: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a body that is either the JSON ``schema`` or a multipart upload;
    ``job_fields`` adds the job form fields (options, callback_url, keep_media)."""
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    properties: dict[str, Any] = {files: {"type": "array", "items": file_schema} if many else file_schema}
    if job_fields:
        properties |= {
            "options": {"type": "string", "description": "JSON object of job options"},
            "callback_url": {"type": "string"},
            "keep_media": {"type": "boolean"},
        }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [files], "properties": properties}
                },
            },
        }
    }


async def read_json_body(request: Request, model: type[BaseModel]) -> Any:
    """Validate a JSON body of at most 1 MiB against ``model`` (read as a stream: the cap holds
    even when the client lies about Content-Length)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise BadRequest("JSON body over 1 MiB")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise BadRequest("JSON body over 1 MiB")
    try:
        return model.model_validate_json(bytes(raw))
    except ValidationError as exc:
        raise _validation(exc) from exc


class ValidationFailed(ServiceError):
    code = "validation_error"
    status = 422


def _validation(exc: ValidationError) -> ValidationFailed:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return ValidationFailed(f"{where}: {first.get('msg', 'invalid')}")


class _Unsupported(ServiceError):
    code = "unsupported_media_type"
    status = 415


def body_kind(request: Request) -> str:
    """``"json"`` or ``"multipart"`` from the Content-Type; anything else is a 415."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        return "json"
    if ctype == "multipart/form-data":
        return "multipart"
    raise _Unsupported(f"send application/json or multipart/form-data, not {ctype or 'no content type'!r}")
