"""Envelope encryption: AES-256-GCM with one data key per customer, wrapped by the KEK.

Every ciphertext is bound (associated data) to what it is — a blob id or a field label — and
to its customer, so swapping blobs or fields between rows or customers fails authentication.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from earshot.database import new_id
from earshot.vault.blobstore import BlobNotFound, BlobStore
from earshot.vault.keys import KeyProvider
from earshot.vault.models import CustomerKey

BLOB_VERSION = b"ES1"


class VaultError(Exception):
    """Base of every vault failure; messages never contain plaintext."""


class KeyDestroyed(VaultError):
    """The customer's data key is gone (erased): their data can no longer be read."""


class TamperedData(VaultError):
    """Authentication failed: the ciphertext was altered, swapped, or the key is wrong."""


class MissingBlob(VaultError):
    """The blob does not exist (deleted, or never stored)."""


class Vault:
    """Encrypts and decrypts customers' data; the only code that ever sees a data key."""

    def __init__(self, keys: KeyProvider, blobs: BlobStore) -> None:
        self.keys = keys
        self.blobs = blobs

    # -- data keys --------------------------------------------------------------------------
    def _data_key(self, session: Session, customer_id: str, *, create: bool) -> bytes:
        row = session.get(CustomerKey, customer_id)
        if row is None:
            if not create:
                raise KeyDestroyed("no data key for this customer (erased or never created)")
            from earshot.privacy.models import Customer

            customer = session.get(Customer, customer_id)
            if customer is None or customer.erased_at is not None:
                # Never mint a fresh key for an erased customer: a late pipeline step must fail.
                raise KeyDestroyed("this customer was erased; nothing new can be stored for them")
            dek = AESGCM.generate_key(bit_length=256)
            row = CustomerKey(
                customer_id=customer_id,
                wrapped_key=self.keys.wrap(dek, context=customer_id.encode()),
                kek_id=self.keys.kek_id,
            )
            session.add(row)
            session.flush()
            return dek
        try:
            return self.keys.unwrap(row.wrapped_key, context=customer_id.encode())
        except Exception as exc:
            raise TamperedData("customer data key could not be unwrapped") from exc

    def shred(self, session: Session, customer_id: str) -> bool:
        """Destroy the customer's data key; all their ciphertext becomes unreadable at once."""
        row = session.get(CustomerKey, customer_id)
        if row is None:
            return False
        session.delete(row)
        session.flush()
        return True

    # -- raw sealing ------------------------------------------------------------------------
    @staticmethod
    def _aad(label: str, customer_id: str) -> bytes:
        return f"earshot|{label}|{customer_id}".encode()

    def seal(self, session: Session, customer_id: str, label: str, plaintext: bytes) -> bytes:
        """Encrypt `plaintext` for a database field identified by `label` (e.g. `snippet:ID:text`)."""
        dek = self._data_key(session, customer_id, create=True)
        nonce = secrets.token_bytes(12)
        return BLOB_VERSION + nonce + AESGCM(dek).encrypt(nonce, plaintext, self._aad(label, customer_id))

    def open(self, session: Session, customer_id: str, label: str, sealed: bytes) -> bytes:
        """Decrypt what `seal` produced for the same customer and label, or raise."""
        dek = self._data_key(session, customer_id, create=False)
        if not sealed.startswith(BLOB_VERSION) or len(sealed) < 3 + 12 + 16:
            raise TamperedData("ciphertext has an unknown format")
        try:
            return AESGCM(dek).decrypt(sealed[3:15], sealed[15:], self._aad(label, customer_id))
        except InvalidTag as exc:
            raise TamperedData("ciphertext failed authentication") from exc

    def seal_text(self, session: Session, customer_id: str, label: str, text: str) -> bytes:
        return self.seal(session, customer_id, label, text.encode("utf-8"))

    def open_text(self, session: Session, customer_id: str, label: str, sealed: bytes) -> str:
        return self.open(session, customer_id, label, sealed).decode("utf-8")

    # -- blobs ------------------------------------------------------------------------------
    def put_blob(self, session: Session, customer_id: str, plaintext: bytes) -> str:
        """Encrypt and store; returns the new random blob id (bound into the ciphertext)."""
        blob_id = new_id()
        self.blobs.put(blob_id, self.seal(session, customer_id, f"blob:{blob_id}", plaintext))
        return blob_id

    def get_blob(self, session: Session, customer_id: str, blob_id: str) -> bytes:
        try:
            sealed = self.blobs.get(blob_id)
        except BlobNotFound as exc:
            raise MissingBlob("blob not found") from exc
        return self.open(session, customer_id, f"blob:{blob_id}", sealed)

    def delete_blob(self, blob_id: str) -> None:
        self.blobs.delete(blob_id)
