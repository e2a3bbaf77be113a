"""Key providers: where the key-encryption key (KEK) lives. Local file by default, a KMS in production.

Data keys never leave the process unwrapped; the KEK never leaves the provider.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from earshot.config import Settings

WRAP_VERSION = b"EK1"


class KeyError_(Exception):
    """A key could not be used (wrong KEK, corrupted wrapped key)."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys and hands out named server secrets."""

    kek_id: str

    def wrap(self, dek: bytes, *, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes: ...

    def secret(self, name: str) -> bytes:
        """A stable 32-byte secret for one purpose (HMAC peppers, signing seeds)."""
        ...


def _create_secret_file(path: Path, size: int = 32) -> bytes:
    """Create `path` with fresh random bytes, mode 0600, failing if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    value = secrets.token_bytes(size)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value


def _read_or_create(path: Path) -> bytes:
    try:
        value = path.read_bytes()
    except FileNotFoundError:
        try:
            return _create_secret_file(path)
        except FileExistsError:  # another process created it first
            value = path.read_bytes()
    if len(value) != 32:
        raise KeyError_(f"key file {path.name} is corrupt (expected 32 bytes)")
    return value


class LocalKeyFileProvider:
    """KEK in a 0600 file in the data dir's secrets folder; secrets derived from a second file by HKDF."""

    def __init__(self, secrets_dir: Path) -> None:
        self._kek = _read_or_create(secrets_dir / "kek.key")
        self._master = _read_or_create(secrets_dir / "server.key")
        self.kek_id = (
            "local:"
            + HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=b"earshot-kek-id")
            .derive(self._kek)
            .hex()
        )

    def wrap(self, dek: bytes, *, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return WRAP_VERSION + nonce + AESGCM(self._kek).encrypt(nonce, dek, b"wrap|" + context)

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not wrapped.startswith(WRAP_VERSION) or len(wrapped) < 3 + 12 + 16:
            raise KeyError_("wrapped key has an unknown format")
        nonce, body = wrapped[3:15], wrapped[15:]
        try:
            return AESGCM(self._kek).decrypt(nonce, body, b"wrap|" + context)
        except InvalidTag as exc:
            raise KeyError_("data key does not unwrap with this key-encryption key") from exc

    def secret(self, name: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"earshot-secret|" + name.encode()
        ).derive(self._master)


def key_provider_for(settings: Settings) -> KeyProvider:
    """The key provider the deployment is configured with."""
    if settings.key_provider == "local":
        return LocalKeyFileProvider(settings.secrets_dir)
    raise ValueError(f"unknown key provider {settings.key_provider!r}")
