"""Blob stores hold ciphertext only, addressed by random blob ids. Local directory by default."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from earshot.config import Settings

_BLOB_ID = re.compile(r"^[0-9a-f]{32}$")


class BlobNotFound(Exception):
    """No blob with that id (never existed, or deleted)."""


class BlobStore(Protocol):
    def put(self, blob_id: str, data: bytes) -> None: ...

    def get(self, blob_id: str) -> bytes: ...

    def delete(self, blob_id: str) -> None: ...

    def exists(self, blob_id: str) -> bool: ...


def check_blob_id(blob_id: str) -> str:
    if not _BLOB_ID.match(blob_id):
        raise ValueError("malformed blob id")
    return blob_id


class LocalBlobStore:
    """One file per blob under `root/ab/abcdef…`, written atomically (temp file holds ciphertext only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    def put(self, blob_id: str, data: bytes) -> None:
        path = self._path(blob_id)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{blob_id}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, blob_id: str) -> bytes:
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc

    def delete(self, blob_id: str) -> None:
        try:
            self._path(blob_id).unlink()
        except FileNotFoundError:
            pass

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).exists()


def blob_store_for(settings: Settings) -> BlobStore:
    """The blob store the deployment is configured with."""
    if settings.blob_store == "local":
        return LocalBlobStore(settings.blob_dir)
    raise ValueError(f"unknown blob store {settings.blob_store!r}")
