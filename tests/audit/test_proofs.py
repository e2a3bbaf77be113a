"""Leaves, roots, proofs and signatures checked by an independent implementation written here from
RFC 9162 and docs/audit.md (nothing from earshot.audit.merkle or the product's verifiers is used)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import text

from earshot.audit import proofs
from earshot.audit.checkpoints import create_checkpoint

from .conftest import audit_app_for, fill, run_cli


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, recursively over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return H(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """Rebuild the root from PATH(m, D[n]) by following its recursive definition."""
    if size == 1:
        assert not proof, "proof too long"
        return leaf
    assert proof, "proof too short"
    k = 1
    while k * 2 < size:
        k *= 2
    *rest, sibling = proof
    if index < k:
        return H(b"\x01" + root_from_inclusion(index, k, leaf, rest) + sibling)
    return H(b"\x01" + sibling + root_from_inclusion(index - k, size - k, leaf, rest))


def roots_from_consistency(m: int, n: int, old_root: bytes, proof: list[bytes]) -> tuple[bytes, bytes]:
    """Rebuild (old root, new root) from PROOF(m, D[n]) by following SUBPROOF's definition."""
    remaining = list(proof)

    def sub(m: int, n: int, complete: bool) -> tuple[bytes, bytes]:
        if m == n:
            if complete:
                return old_root, old_root
            node = remaining.pop()
            return node, node
        k = 1
        while k * 2 < n:
            k *= 2
        last = remaining.pop()
        if m <= k:
            old, new = sub(m, k, complete)
            return old, H(b"\x01" + new + last)
        old, new = sub(m - k, n - k, False)
        return H(b"\x01" + last + old), H(b"\x01" + last + new)

    result = sub(m, n, True)
    assert not remaining, "proof too long"
    return result


def entry_leaf(row) -> bytes:
    """docs/audit.md: leaf = SHA-256(0x00 || JSON array of the record's columns)."""
    at = row.at
    if isinstance(at, str):  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
        at_text = at.replace(" ", "T") + "Z"
    else:
        at_text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry = [
        "earshot.audit/1",
        row.seq,
        at_text,
        row.actor,
        row.action,
        row.target,
        row.ip,
        row.outcome,
        row.details,
    ]
    return H(b"\x00" + json.dumps(entry, separators=(",", ":")).encode())


def all_leaves(dep) -> list[bytes]:
    with dep.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, at, actor, action, target, ip, outcome, details FROM audit_records ORDER BY seq"
            )
        ).all()
    return [entry_leaf(r) for r in rows]


def test_leaf_hashes_follow_the_documented_entry_format(dep):
    fill(dep, 5)
    leaves = all_leaves(dep)
    with dep.db.engine.connect() as conn:
        stored = [
            bytes(h) for h in conn.execute(text("SELECT leaf_hash FROM audit_records ORDER BY seq")).scalars()
        ]
    assert leaves == stored


def test_roots_match_the_rfc_definition_for_every_size(dep):
    fill(dep, 70)
    leaves = all_leaves(dep)
    with dep.db.session() as session:
        for n in range(1, 71):
            assert proofs.root_at(session, n) == mth(leaves[:n]), n
        assert proofs.root_at(session, 0) == H(b"")


def test_inclusion_proofs_verify_independently(dep):
    fill(dep, 37)
    leaves = all_leaves(dep)
    with dep.db.session() as session:
        for size in (1, 2, 3, 4, 5, 8, 16, 17, 31, 32, 33, 37):
            for seq in range(1, size + 1):
                proof = proofs.inclusion_proof(session, seq, size)
                path = proof.path
                assert proof.leaf_hash == leaves[seq - 1]
                assert root_from_inclusion(seq - 1, size, leaves[seq - 1], path) == mth(leaves[:size])
                # a proof for one leaf does not prove another
                if size > 1:
                    other = leaves[seq % size]
                    with pytest.raises(AssertionError):
                        assert root_from_inclusion(seq - 1, size, other, path) == mth(leaves[:size])


def test_consistency_proofs_verify_independently(dep):
    fill(dep, 37)
    leaves = all_leaves(dep)
    with dep.db.session() as session:
        for n in (1, 2, 3, 7, 8, 9, 16, 17, 32, 37):
            for m in range(1, n + 1):
                proof = proofs.consistency_proof(session, m, n)
                if m == n:
                    assert proof.path == []
                    continue
                old, new = roots_from_consistency(m, n, mth(leaves[:m]), list(proof.path))
                assert old == mth(leaves[:m]) and new == mth(leaves[:n]), (m, n)
                assert proof.first_root == old and proof.second_root == new


def test_proofs_for_impossible_sizes_are_refused(dep):
    fill(dep, 3)
    with dep.db.session() as session:
        with pytest.raises(proofs.ProofError):
            proofs.inclusion_proof(session, 4)
        with pytest.raises(proofs.ProofError):
            proofs.inclusion_proof(session, 1, 10)
        with pytest.raises(proofs.ProofError):
            proofs.consistency_proof(session, 4, 3)


def test_cli_proofs_and_signed_checkpoint_verify_with_only_the_public_key(dep):
    fill(dep, 21)
    cp = create_checkpoint(dep)
    assert cp is not None and cp.tree_size == 21
    key = json.loads(run_cli(dep, "public-key").output)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))

    # the checkpoint as written to the append-only file
    line = json.loads((dep.settings.data_dir / "audit" / "checkpoints.log").read_text().splitlines()[-1])
    message = (
        f"earshot.audit/v1\n{line['tree_size']}\n"
        f"{base64.b64encode(bytes.fromhex(line['root_hash'])).decode()}\n{line['timestamp']}\n"
    ).encode()
    public.verify(base64.b64decode(line["signature"]), message)  # raises if bad
    root = bytes.fromhex(line["root_hash"])
    assert root == mth(all_leaves(dep))

    result = run_cli(dep, "prove", "--seq", "13", "--tree-size", "21")
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output)
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    assert root_from_inclusion(12, 21, all_leaves(dep)[12], path) == root

    fill(dep, 10)
    result = run_cli(dep, "prove", "--first", "21")
    proof = json.loads(result.output)
    old, new = roots_from_consistency(21, 31, root, [bytes.fromhex(h) for h in proof["consistency_path"]])
    assert old == root and new == mth(all_leaves(dep))


def test_api_proofs_verify_independently(dep):
    from earshot.audit import views

    fill(dep, 12)
    create_checkpoint(dep)
    app = audit_app_for(dep)
    app.dependency_overrides[views.LOG_READERS] = lambda: None
    with TestClient(app, base_url="http://127.0.0.1") as client:
        cp = client.get("/api/v1/audit/checkpoints/latest").json()
        key = client.get("/api/v1/audit/public-key").json()
        proof = client.get(
            "/api/v1/audit/proofs/inclusion", params={"seq": 5, "tree_size": cp["tree_size"]}
        ).json()
        cons = client.get("/api/v1/audit/proofs/consistency", params={"first": 7, "second": 12}).json()
        bad = client.get("/api/v1/audit/proofs/inclusion", params={"seq": 50})
    assert bad.status_code == 400
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    root = bytes.fromhex(cp["root_hash"])
    message = (
        f"earshot.audit/v1\n{cp['tree_size']}\n{base64.b64encode(root).decode()}\n{cp['timestamp']}\n"
    ).encode()
    public.verify(base64.b64decode(cp["signature"]), message)
    leaves = all_leaves(dep)
    assert root_from_inclusion(4, 12, leaves[4], [bytes.fromhex(h) for h in proof["audit_path"]]) == root
    old, new = roots_from_consistency(
        7, 12, mth(leaves[:7]), [bytes.fromhex(h) for h in cons["consistency_path"]]
    )
    assert new == root and old == mth(leaves[:7])


def test_audit_api_needs_a_signed_in_lead_or_admin(dep):
    with TestClient(audit_app_for(dep), base_url="http://127.0.0.1") as client:
        for path in (
            "/api/v1/audit/checkpoints/latest",
            "/api/v1/audit/alerts",
            "/api/v1/audit/records",
            "/api/v1/audit/proofs/inclusion?seq=1",
        ):
            assert client.get(path).status_code in (401, 403), path
