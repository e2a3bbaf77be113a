"""The vault from the attacker's side: tampering, swapping, wrong keys, erased keys, files at rest."""

from __future__ import annotations

import os
import stat

import pytest

from earshot.config import load_settings
from earshot.deployment import Deployment
from earshot.privacy.services import get_or_create_customer
from earshot.vault.keys import KeyError_, LocalKeyFileProvider
from earshot.vault.services import KeyDestroyed, MissingBlob, TamperedData

SECRET = b"RIFF-pretend-this-is-customer-speech" * 100


@pytest.fixture
def customer_ids(deployment: Deployment) -> tuple[str, str]:
    with deployment.db.session() as s:
        a = get_or_create_customer(s, deployment, "alice").id
        b = get_or_create_customer(s, deployment, "bob").id
    return a, b


def test_blob_round_trip_and_ciphertext_only_on_disk(deployment: Deployment, customer_ids) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s:
        blob = deployment.vault.put_blob(s, a, SECRET)
    with deployment.db.session() as s:
        assert deployment.vault.get_blob(s, a, blob) == SECRET
    for path in deployment.settings.data_dir.rglob("*"):
        if path.is_file():
            assert b"pretend-this-is-customer-speech" not in path.read_bytes(), path


def test_tampered_blob_is_refused_not_garbage(deployment: Deployment, customer_ids) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s:
        blob = deployment.vault.put_blob(s, a, SECRET)
    raw = bytearray(deployment.blobs.get(blob))
    raw[40] ^= 0x01
    deployment.blobs.put(blob, bytes(raw))
    with deployment.db.session() as s, pytest.raises(TamperedData):
        deployment.vault.get_blob(s, a, blob)


def test_swapped_blobs_fail_authentication(deployment: Deployment, customer_ids) -> None:
    a, b = customer_ids
    with deployment.db.session() as s:
        blob1 = deployment.vault.put_blob(s, a, b"first")
        blob2 = deployment.vault.put_blob(s, a, b"second")
        blob_b = deployment.vault.put_blob(s, b, b"bob's")
    deployment.blobs.put(blob1, deployment.blobs.get(blob2))  # same customer, other blob
    with deployment.db.session() as s:
        with pytest.raises(TamperedData):
            deployment.vault.get_blob(s, a, blob1)
        with pytest.raises(TamperedData):  # another customer's blob under this customer
            deployment.vault.open(s, a, f"blob:{blob_b}", deployment.blobs.get(blob_b))


def test_field_bound_to_its_label(deployment: Deployment, customer_ids) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s:
        sealed = deployment.vault.seal_text(s, a, "snippet:1:text", "hello")
        assert deployment.vault.open_text(s, a, "snippet:1:text", sealed) == "hello"
        with pytest.raises(TamperedData):
            deployment.vault.open_text(s, a, "snippet:2:text", sealed)


def test_wrong_kek_gives_clear_error(deployment: Deployment, customer_ids, tmp_path) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s:
        blob = deployment.vault.put_blob(s, a, SECRET)
    other = LocalKeyFileProvider(tmp_path / "other-secrets")
    deployment.vault.keys = other
    with deployment.db.session() as s, pytest.raises(TamperedData):
        deployment.vault.get_blob(s, a, blob)


def test_shredded_key_makes_data_unreadable(deployment: Deployment, customer_ids) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s:
        blob = deployment.vault.put_blob(s, a, SECRET)
    with deployment.db.session() as s:
        assert deployment.vault.shred(s, a)
    with deployment.db.session() as s, pytest.raises(KeyDestroyed):
        deployment.vault.get_blob(s, a, blob)


def test_missing_blob(deployment: Deployment, customer_ids) -> None:
    a, _ = customer_ids
    with deployment.db.session() as s, pytest.raises(MissingBlob):
        deployment.vault.get_blob(s, a, "0" * 32)


def test_key_files_are_private(tmp_path) -> None:
    dep = Deployment.open(load_settings(tmp_path / "d"))
    for name in ("kek.key", "server.key"):
        mode = stat.S_IMODE(os.stat(dep.settings.secrets_dir / name).st_mode)
        assert mode == 0o600
    assert stat.S_IMODE(os.stat(dep.settings.secrets_dir).st_mode) == 0o700
    dep.close()


def test_corrupt_key_file_is_refused(tmp_path) -> None:
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "kek.key").write_bytes(b"short")
    with pytest.raises(KeyError_):
        LocalKeyFileProvider(d)


def test_blob_ids_cannot_escape_the_store(deployment: Deployment) -> None:
    with pytest.raises(ValueError):
        deployment.blobs.get("../../etc/passwd")


def test_no_new_key_for_an_erased_customer(deployment: Deployment, customer_ids) -> None:
    from earshot.privacy.erasure import erase_customer

    with deployment.db.session() as s:
        erase_customer(s, deployment, "alice", actor="test")
    a, _ = customer_ids
    with deployment.db.session() as s, pytest.raises(KeyDestroyed):
        deployment.vault.put_blob(s, a, b"late pipeline output")
