"""Media storage shared by the API and the workers: random names, streamed writes with a size cap.

Names are random (never the client's file name), the SHA-256 is computed while writing, and a
file over the cap is deleted as soon as the cap is crossed: a 10 GB body never lands whole.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from types import TracebackType

from veracity.errors import MediaTooLarge


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """The media folder, 0700: uploads are other people's files."""
        self.root.mkdir(parents=True, mode=0o700, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)

    def sweep_orphans(self, referenced: set[str], older_than_s: float) -> list[str]:
        """Delete stored files no job refers to and older than ``older_than_s`` (partial uploads
        of a killed process, files of a crash between write and insert); return their names.

        The age guard keeps uploads that another API process is writing right now."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = []
        for entry in self.root.iterdir():
            name = entry.name
            if name in referenced or not entry.is_file() or name.startswith("."):
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed.append(name)
            except FileNotFoundError:
                continue
        return removed

    def path(self, name: str) -> Path:
        """The file for a stored name; names are ours, but check anyway that they stay inside."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"bad storage name {name!r}")
        return self.root / name

    def writer(self, max_bytes: int) -> StoredWriter:
        self.ensure()
        return StoredWriter(self.root / secrets.token_hex(16), max_bytes)

    def delete(self, name: str | None) -> None:
        if name:
            self.path(name).unlink(missing_ok=True)


class StoredWriter:
    """Write chunks to a fresh random file; raise :class:`MediaTooLarge` past ``max_bytes``.

    On any exception inside the ``with`` block the partial file is removed.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        self._fh = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    @property
    def name(self) -> str:
        return self.path.name

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise MediaTooLarge(f"upload is over the {self.max_bytes} byte limit")
        self._digest.update(chunk)
        self._fh.write(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StoredWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()
