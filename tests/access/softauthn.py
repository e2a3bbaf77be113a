"""A software WebAuthn authenticator (ES256, 'none' attestation) for tests: what a browser and a security key
would send, including the origin the browser saw, so phishing (a wrong origin) can be simulated."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    origin: str
    rp_id: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sign_count: int = 0
    user_handle: bytes | None = None
    user_verified: bool = True

    def _flags(self, *, attested: bool) -> int:
        flags = 0x01 | (0x04 if self.user_verified else 0)
        return flags | (0x40 if attested else 0)

    def _cose_key(self) -> bytes:
        nums = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: nums.x.to_bytes(32, "big"), -3: nums.y.to_bytes(32, "big")}
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict, *, origin: str | None = None) -> dict:
        """Answer navigator.credentials.create() for `options` (the server's publicKey JSON)."""
        pk = options["publicKey"] if "publicKey" in options else options
        self.user_handle = unb64u(pk["user"]["id"])
        rp_hash = hashlib.sha256(pk["rp"]["id"].encode()).digest()
        cred = self.credential_id
        auth_data = (
            rp_hash
            + bytes([self._flags(attested=True)])
            + struct.pack(">I", self.sign_count)
            + b"\x00" * 16
            + struct.pack(">H", len(cred))
            + cred
            + self._cose_key()
        )
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cdj = self._client_data("webauthn.create", pk["challenge"], origin)
        return {
            "id": b64u(cred),
            "rawId": b64u(cred),
            "type": "public-key",
            "response": {"clientDataJSON": b64u(cdj), "attestationObject": b64u(att), "transports": ["usb"]},
            "clientExtensionResults": {},
        }

    def get(self, options: dict, *, origin: str | None = None, rp_id: str | None = None) -> dict:
        """Answer navigator.credentials.get(): sign the challenge (counter incremented)."""
        pk = options["publicKey"] if "publicKey" in options else options
        self.sign_count += 1
        rp_hash = hashlib.sha256((rp_id or pk.get("rpId") or self.rp_id).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(attested=False)]) + struct.pack(">I", self.sign_count)
        cdj = self._client_data("webauthn.get", pk["challenge"], origin)
        sig = self.key.sign(auth_data + hashlib.sha256(cdj).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(cdj),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(sig),
                "userHandle": b64u(self.user_handle) if self.user_handle else None,
            },
            "clientExtensionResults": {},
        }
