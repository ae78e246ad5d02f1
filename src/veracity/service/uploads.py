"""Streamed multipart uploads: parts go straight to storage under random names with a size cap.

Starlette's form parser spools a whole upload before the route runs; this one writes each chunk
as it arrives and stops at the cap, so an oversized body costs at most ``max_bytes`` of disk and
no more than one chunk of memory. Then the content is sniffed (:func:`veracity.media.probe.probe`):
the file's extension and declared type are never trusted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import PurePath

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from veracity.config import Settings
from veracity.errors import CorruptMedia, MediaTooLarge, VeracityError
from veracity.media.probe import probe
from veracity.service.errors import BadRequest
from veracity.service.jobs import StoredMedia
from veracity.service.schemas import JobOptions
from veracity.service.storage import Storage, StoredWriter

log = logging.getLogger("veracity.service")

MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 100
_OVERHEAD = 1 << 20  # multipart boundaries and fields on top of the media


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[StoredWriter, str]] = field(default_factory=list)  # writer, client file name

    def discard(self) -> None:
        for w, _ in self.files:
            w.discard()

    def flag(self, name: str) -> bool:
        return self.fields.get(name, "").strip().lower() in ("1", "true", "yes", "on")

    def options(self) -> JobOptions:
        raw = self.fields.get("options")
        if not raw:
            return JobOptions()
        try:
            return JobOptions.model_validate(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"options must be a JSON object of job options: {exc}") from exc


class _Parser:
    def __init__(self, storage: Storage, max_bytes: int) -> None:
        self.storage = storage
        self.max_bytes = max_bytes
        self.form = UploadForm()
        self._headers: dict[str, str] = {}
        self._hname = b""
        self._hvalue = b""
        self._writer: StoredWriter | None = None
        self._field: str | None = None
        self._buf = bytearray()
        self.error: VeracityError | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: setattr(self, "_hname", self._hname + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_hvalue", self._hvalue + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._writer, self._field, self._buf = {}, None, None, bytearray()

    def _header_end(self) -> None:
        self._headers[self._hname.decode("latin-1").lower()] = self._hvalue.decode("latin-1")
        self._hname, self._hvalue = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name")
        if name is None:
            raise BadRequest("multipart part without a name")
        filename = params.get(b"filename")
        if filename is not None:
            if name not in (b"file", b"files"):
                raise BadRequest(f"unexpected file part {name.decode('utf-8', 'replace')!r}: send it as 'file'")
            if len(self.form.files) >= MAX_FILES:
                raise BadRequest(f"at most {MAX_FILES} files in one request")
            self._writer = self.storage.writer(self.max_bytes)
            client_name = PurePath(filename.decode("utf-8", "replace").replace("\\", "/")).name[:300]
            self.form.files.append((self._writer, client_name or "upload"))
        else:
            self._field = name.decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writer is not None:
            self._writer.write(data[start:end])
        elif self._field is not None:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                raise BadRequest(f"form field {self._field!r} is over {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif self._field is not None:
            self.form.fields[self._field] = self._buf.decode("utf-8", "replace")


async def read_multipart(request: Request, settings: Settings, storage: Storage) -> UploadForm:
    """Parse a multipart/form-data body into stored files and small text fields."""
    max_bytes = settings.limits.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes * MAX_FILES + _OVERHEAD:
        raise MediaTooLarge(f"request body of {declared} bytes is over the limit")
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    state = _Parser(storage, max_bytes)
    parser = MultipartParser(boundary, state.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except VeracityError:
        state.form.discard()
        raise
    except ClientDisconnect as exc:
        state.form.discard()
        raise BadRequest("client disconnected during the upload") from exc
    except Exception as exc:  # python-multipart's own parse errors
        state.form.discard()
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    for w, _ in state.form.files:
        w.close()
    return state.form


@dataclass(frozen=True, slots=True)
class RejectedFile:
    """An uploaded file that is not media we read; already deleted from storage."""

    original_name: str
    code: str
    message: str


def _check(w: StoredWriter, client_name: str, settings: Settings) -> StoredMedia:
    if w.size == 0:
        raise CorruptMedia("empty file (0 bytes)")
    try:
        probe(w.path, settings.limits, sha256=w.sha256)
    except VeracityError as exc:
        exc.path = None  # the stored path is ours: never shown to the client
        raise
    return StoredMedia(name=w.name, sha256=w.sha256, size=w.size, original_name=client_name)


def sniff(form: UploadForm, settings: Settings) -> list[StoredMedia]:
    """Check each stored file is media we can read (by content); delete all on the first failure
    of any kind (a bug in a probe must not leave uploads behind either)."""
    out = []
    try:
        for w, client_name in form.files:
            out.append(_check(w, client_name, settings))
    except VeracityError as exc:
        form.discard()
        if len(form.files) > 1:
            exc.message = f"{client_name}: {exc.message}"
        raise
    except BaseException:
        form.discard()
        raise
    return out


def sniff_each(form: UploadForm, settings: Settings) -> tuple[list[StoredMedia], list[RejectedFile]]:
    """Batches: each file on its own. A file we cannot read is deleted and named in the second
    list; the others go on (one bad file must not refuse, or hide, the rest)."""
    good: list[StoredMedia] = []
    bad: list[RejectedFile] = []
    try:
        for w, client_name in form.files:
            try:
                good.append(_check(w, client_name, settings))
            except VeracityError as exc:
                w.discard()
                bad.append(RejectedFile(client_name, exc.code, exc.message))
            except Exception:
                w.discard()
                log.exception("probing upload %s failed", client_name)
                bad.append(RejectedFile(client_name, "internal_error", "this file could not be read"))
    except BaseException:
        form.discard()
        raise
    return good, bad
