"""Audit keys: the Ed25519 checkpoint signing key and the per-record MAC key, both from the key provider.

The Ed25519 private key is the 32-byte secret `audit-signing` used as the RFC 8032 seed, so every
process of a deployment derives the same key and no key file is added. The checkpoint text follows
the C2SP "tlog-checkpoint" shape: origin, tree size, base64 root hash, then a timestamp line.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from earshot.audit.scan import MAC_PERSON, MAC_SIZE, TIME_FORMAT
from earshot.vault.keys import KeyProvider

ORIGIN = "earshot.audit/v1"


def format_time(at: datetime) -> str:
    """Canonical UTC timestamp text (always microseconds, always 'Z')."""
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def checkpoint_message(tree_size: int, root: bytes, at: datetime) -> bytes:
    """The exact bytes an Ed25519 checkpoint signature covers."""
    return f"{ORIGIN}\n{tree_size}\n{base64.b64encode(root).decode()}\n{format_time(at)}\n".encode()


def public_key_id(public: Ed25519PublicKey) -> str:
    """First 8 bytes of SHA-256 of the raw public key, hex."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8].hex()


@dataclass(frozen=True)
class AuditKeys:
    """Keys of one deployment's audit log."""

    signing: Ed25519PrivateKey
    mac_key: bytes

    @property
    def public(self) -> Ed25519PublicKey:
        return self.signing.public_key()

    @property
    def key_id(self) -> str:
        return public_key_id(self.public)

    def public_raw(self) -> bytes:
        return self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign_checkpoint(self, tree_size: int, root: bytes, at: datetime) -> bytes:
        return self.signing.sign(checkpoint_message(tree_size, root, at))

    def check_signature(self, tree_size: int, root: bytes, at: datetime, signature: bytes) -> bool:
        try:
            self.public.verify(signature, checkpoint_message(tree_size, root, at))
        except InvalidSignature:
            return False
        return True

    def mac(self, leaf: bytes) -> bytes:
        """Per-record MAC over the leaf hash: keyed BLAKE2s (RFC 7693), 16 bytes."""
        return hashlib.blake2s(leaf, key=self.mac_key, digest_size=MAC_SIZE, person=MAC_PERSON).digest()


def audit_keys(provider: KeyProvider) -> AuditKeys:
    """Derive the audit keys deterministically from the deployment's key provider."""
    seed = provider.secret("audit-signing")
    return AuditKeys(Ed25519PrivateKey.from_private_bytes(seed), provider.secret("audit-mac"))
