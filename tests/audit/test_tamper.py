"""An attacker edits the database (and the checkpoint file) directly; `earshot audit verify` must notice
and name the first bad record. Each attack works with plain SQL, as a DBA or an injection would."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import text

from earshot.audit.checkpoints import create_checkpoint
from earshot.audit.signing import audit_keys
from earshot.audit.verify import verify_deployment

from .conftest import fill, run_cli


def sql(dep, statement: str, **params):
    with dep.db.engine.begin() as conn:
        return conn.execute(text(statement), params)


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entry(seq, at, actor, action, target, ip, outcome, details) -> bytes:
    """The documented entry format, as an attacker would re-encode it."""
    if isinstance(at, str):
        at_text = at.replace(" ", "T") + "Z"
    else:
        from datetime import UTC

        at_text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(
        ["earshot.audit/1", seq, at_text, actor, action, target, ip, outcome, details], separators=(",", ":")
    ).encode()


def rewrite_leaf(dep, seq: int, *, with_mac_key: bool = False) -> None:
    """Recompute a record's (public) leaf hash after editing it, optionally its MAC too (an insider)."""
    row = sql(
        dep,
        "SELECT seq, at, actor, action, target, ip, outcome, details FROM audit_records WHERE seq = :s",
        s=seq,
    ).one()
    leaf = H(b"\x00" + entry(*row))
    sql(dep, "UPDATE audit_records SET leaf_hash = :h WHERE seq = :s", h=leaf, s=seq)
    if with_mac_key:
        sql(dep, "UPDATE audit_records SET mac = :m WHERE seq = :s", m=audit_keys(dep.keys).mac(leaf), s=seq)


def rewrite_head(dep) -> None:
    """Recompute the tree head row from the (tampered) records, so it agrees with them."""
    leaves = [bytes(h) for h in sql(dep, "SELECT leaf_hash FROM audit_records ORDER BY seq").scalars()]
    stack: list[tuple[int, bytes]] = []
    for leaf in leaves:
        node, size = leaf, 1
        while stack and stack[-1][0] == size:
            node = H(b"\x01" + stack.pop()[1] + node)
            size *= 2
        stack.append((size, node))
    root = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        root = H(b"\x01" + h + root)
    sql(
        dep,
        "UPDATE audit_head SET size = :n, frontier = :f, root = :r",
        n=len(leaves),
        f=b"".join(h for _, h in stack),
        r=root,
    )


def assert_caught(dep, seq: int | None = None, *, range_: tuple[int, int] | None = None) -> None:
    report = verify_deployment(dep)
    assert not report.ok
    if seq is not None:
        assert report.first_bad_seq == seq, report.problems
    if range_ is not None:
        assert report.first_bad_range == range_, report.problems
    result = run_cli(dep, "verify")
    assert result.exit_code == 1
    if seq is not None:
        assert f"first bad record: seq {seq}" in result.output


def logged(dep, n: int = 30) -> None:
    """n records with checkpoints at 10 and 20 (and the last 10 after the newest checkpoint)."""
    fill(dep, 10)
    create_checkpoint(dep)
    fill(dep, 10)
    create_checkpoint(dep)
    fill(dep, n - 20)


def test_an_untouched_log_verifies(dep):
    logged(dep)
    report = verify_deployment(dep)
    assert report.ok, report.problems
    assert (report.records, report.checkpoints_db, report.checkpoints_file) == (30, 2, 2)
    result = run_cli(dep, "verify")
    assert result.exit_code == 0 and "OK: 30 records" in result.output


def test_altering_a_record_is_caught(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET actor = 'user:someone-else' WHERE seq = 7")
    assert_caught(dep, 7)


def test_altering_a_record_and_its_leaf_hash_and_the_head_is_caught_by_the_mac(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET target = 'other-snippet' WHERE seq = 25")  # after the last checkpoint
    rewrite_leaf(dep, 25)
    rewrite_head(dep)
    assert_caught(dep, 25)


def test_an_insider_with_the_mac_key_is_caught_by_the_signed_checkpoint(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET outcome = 'denied' WHERE seq = 15")
    rewrite_leaf(dep, 15, with_mac_key=True)
    rewrite_head(dep)
    assert_caught(dep, range_=(11, 20))
    assert "lies in seq 11..20" in run_cli(dep, "verify").output


def test_deleting_a_record_is_caught(dep):
    logged(dep)
    sql(dep, "DELETE FROM audit_records WHERE seq = 12")
    rewrite_head(dep)
    assert_caught(dep, 12)


def test_deleting_the_newest_records_is_caught(dep):
    logged(dep, 20)
    sql(dep, "DELETE FROM audit_records WHERE seq > 17")
    rewrite_head(dep)
    assert_caught(dep, 18)  # the checkpoint at 20 vouches for them


def test_deleting_the_newest_record_after_the_last_checkpoint_is_caught_by_the_head(dep):
    logged(dep, 30)
    sql(dep, "DELETE FROM audit_records WHERE seq = 30")
    assert_caught(dep, 30)


def test_inserting_a_record_is_caught(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET seq = -seq WHERE seq >= 5")
    sql(dep, "UPDATE audit_records SET seq = 1 - seq WHERE seq < 0")
    row = sql(dep, "SELECT at FROM audit_records WHERE seq = 4").one()
    forged = ("user:r1", "task.graded", "snip4", "10.1.2.3", "ok", "{}")
    sql(
        dep,
        "INSERT INTO audit_records (seq, at, actor, action, target, ip, outcome, details, leaf_hash) "
        "VALUES (5, :at, :a, :b, :c, :d, :e, :f, :h)",
        at=row.at,
        a=forged[0],
        b=forged[1],
        c=forged[2],
        d=forged[3],
        e=forged[4],
        f=forged[5],
        h=H(b"\x00" + entry(5, row.at, *forged)),
    )
    rewrite_head(dep)
    assert_caught(dep, 5)


def test_appending_a_forged_record_is_caught(dep):
    logged(dep)
    row = sql(dep, "SELECT at FROM audit_records WHERE seq = 30").one()
    forged = ("user:r1", "task.graded", "snip99", "10.1.2.3", "ok", "{}")
    sql(
        dep,
        "INSERT INTO audit_records (seq, at, actor, action, target, ip, outcome, details, leaf_hash) "
        "VALUES (31, :at, :a, :b, :c, :d, :e, :f, :h)",
        at=row.at,
        a=forged[0],
        b=forged[1],
        c=forged[2],
        d=forged[3],
        e=forged[4],
        f=forged[5],
        h=H(b"\x00" + entry(31, row.at, *forged)),
    )
    rewrite_head(dep)
    assert_caught(dep, 31)


def test_reordering_records_is_caught(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET seq = -1 WHERE seq = 3")
    sql(dep, "UPDATE audit_records SET seq = 3 WHERE seq = 8")
    sql(dep, "UPDATE audit_records SET seq = 8 WHERE seq = -1")
    rewrite_head(dep)
    assert_caught(dep, 3)


def test_altering_a_checkpoint_in_the_database_is_caught(dep):
    logged(dep)
    sql(dep, "UPDATE audit_checkpoints SET root_hash = :r WHERE tree_size = 10", r=H(b"forged"))
    report = verify_deployment(dep)
    assert not report.ok
    assert any("size 10 (database) has a bad signature" in p.message for p in report.problems)
    assert run_cli(dep, "verify").exit_code == 1


def test_deleting_a_checkpoint_from_the_database_is_caught(dep):
    logged(dep)
    sql(dep, "DELETE FROM audit_checkpoints WHERE tree_size = 20")
    report = verify_deployment(dep)
    assert any("missing from the database" in p.message for p in report.problems)
    assert run_cli(dep, "verify").exit_code == 1


def checkpoint_file(dep):
    return dep.settings.data_dir / "audit" / "checkpoints.log"


def test_deleting_a_checkpoint_from_the_file_is_caught(dep):
    logged(dep)
    path = checkpoint_file(dep)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0])
    report = verify_deployment(dep)
    assert any("not in the checkpoint file" in p.message for p in report.problems)
    assert run_cli(dep, "verify").exit_code == 1


def test_altering_a_checkpoint_in_the_file_is_caught(dep):
    logged(dep)
    path = checkpoint_file(dep)
    lines = path.read_text().splitlines(keepends=True)
    data = json.loads(lines[1])
    data["tree_size"] = 19
    path.write_text(lines[0] + json.dumps(data) + "\n")
    report = verify_deployment(dep)
    assert any("(file) has a bad signature" in p.message for p in report.problems)
    path.write_text(lines[0] + "garbage\n")
    assert any("line 2" in p.message for p in verify_deployment(dep).problems)


def test_a_checkpoint_signed_with_another_key_is_refused(dep):
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    logged(dep)
    size, root = 30, bytes(sql(dep, "SELECT root FROM audit_head").scalar_one())
    at = datetime.now(UTC)
    message = f"earshot.audit/v1\n{size}\n".encode()
    import base64

    message += f"{base64.b64encode(root).decode()}\n{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}\n".encode()
    signature = Ed25519PrivateKey.generate().sign(message)
    sql(
        dep,
        "INSERT INTO audit_checkpoints (tree_size, root_hash, at, key_id, signature) "
        "VALUES (30, :r, :at, :k, :s)",
        r=root,
        at=at,
        k=audit_keys(dep.keys).key_id,
        s=signature,
    )
    report = verify_deployment(dep)
    assert any("bad signature" in p.message for p in report.problems)


def test_stripping_a_records_mac_is_caught(dep):
    logged(dep)
    sql(dep, "UPDATE audit_records SET mac = NULL WHERE seq = 4")
    assert_caught(dep, 4)


def test_the_parallel_scan_agrees_with_the_sequential_one(dep, monkeypatch):
    from earshot.audit import verify
    from earshot.audit.context import install

    if dep.db.engine.dialect.name != "sqlite":
        return  # the parallel scan reads SQLite files
    monkeypatch.setattr(verify, "PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(verify, "MIN_CHUNK_BITS", 3)
    for size in (10, 37, 64, 100):
        fill(dep, size - (verify_deployment(dep).records))
        create_checkpoint(dep)
    fill(dep, 5)
    keys, path = install(dep).keys, checkpoint_file(dep)

    def run(workers):
        with dep.db.session() as session:
            return verify.verify_log(session, keys, path, workers=workers)

    sequential, parallel = run(1), run(2)
    assert sequential.ok and parallel.ok and parallel.records == sequential.records == 105
    sql(dep, "UPDATE audit_records SET ip = '10.9.9.9' WHERE seq = 50")
    assert run(2).first_bad_seq == run(1).first_bad_seq == 50
    rewrite_leaf(dep, 50, with_mac_key=True)
    rewrite_head(dep)
    assert run(2).first_bad_range == run(1).first_bad_range == (38, 64)
