"""Erasure benchmark: time to make a customer's data unreadable (step 1) and to purge it (step 2),
for customers holding 1 vs 10 000 snippets.

    .venv/bin/python bench/erasure.py                          # SQLite (embedded default)
    .venv/bin/python bench/erasure.py --counts 1,100,1000,10000 --repeat 5
    EARSHOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/erasure.py --postgres          # on a scratch PostgreSQL schema

Target (issue 7): step 1 - destroy the data key, cut the pseudonym link, write the receipt and the
audit record, commit - costs the same for 1 and 10 000 snippets. Step 2 (rows and blobs removed)
is linear by nature and runs after the answer; it is reported for completeness.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from earshot.access.models import Facility, User
from earshot.config import load_settings
from earshot.database import new_id, utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.intake.services import create_product
from earshot.privacy.erasure import erase_customer, purge_erasure
from earshot.privacy.services import set_consent
from earshot.review.models import Assignment, Grade, Snippet
from earshot.vault.services import VaultError

AUDIO_S = 1.0  # seconds of audio per snippet blob (setup cost only; erasure never reads blobs)
GRADED_SHARE = 0.1


@contextmanager
def scratch_database(postgres: bool) -> Iterator[str | None]:
    """None (SQLite in the data dir), or a fresh schema on EARSHOT_TEST_POSTGRES_URL, dropped after."""
    if not postgres:
        yield None
        return
    import sqlalchemy as sa

    base = os.environ.get("EARSHOT_TEST_POSTGRES_URL")
    if not base:
        sys.exit("--postgres needs EARSHOT_TEST_POSTGRES_URL")
    schema = "bench_" + secrets.token_hex(4)
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def wav_bytes(seconds: float) -> bytes:
    """Silence as 16 kHz 16-bit mono WAV (the size of a real snippet blob of that length)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(int(16000 * seconds), "<i2").tobytes())
    return buf.getvalue()


def populate(
    dep: Deployment, external_id: str, n: int, product_id: str, reviewers: list[str]
) -> tuple[str, str]:
    """A consenting customer with one recording and `n` encrypted snippets (10 % graded)."""
    audio = wav_bytes(AUDIO_S)
    now = utcnow()
    with dep.db.session() as s:
        customer = set_consent(s, dep, external_id, granted=True, actor="bench")
        rec = Recording(
            customer_id=customer.id, product_id=product_id, duration_s=n * AUDIO_S, status="processed"
        )
        s.add(rec)
        s.flush()
        snippets, assignments, grades = [], [], []
        pending: list[tuple[str, bytes]] = []

        def put_later(session: object, customer_id: str) -> str:
            """What `Vault.put_blob` does, with the (I/O-bound) store writes done on threads below."""
            blob_id = new_id()
            pending.append((blob_id, dep.vault.seal(s, customer_id, f"blob:{blob_id}", audio)))
            return blob_id

        for i in range(n):
            sid = new_id()
            snippets.append(
                {
                    "id": sid,
                    "recording_id": rec.id,
                    "customer_id": customer.id,
                    "product_id": product_id,
                    "position": i,
                    "duration_s": AUDIO_S,
                    "audio_blob_id": put_later(s, customer.id),
                    "transcript_enc": dep.vault.seal_text(
                        s, customer.id, f"snippet:{sid}:text", f"snippet {i}"
                    ),
                    "pii_types": "",
                    "status": "queued",
                    "graders_needed": 1,
                    "grades_done": 0,
                    "in_flight": 0,
                    "rand": random.random(),
                    "created_at": now,
                }
            )
            if random.random() < GRADED_SHARE:
                aid, gid, who = new_id(), new_id(), random.choice(reviewers)
                snippets[-1].update(status="graded", grades_done=1)
                assignments.append(
                    {
                        "id": aid,
                        "snippet_id": sid,
                        "reviewer_id": who,
                        "recording_id": rec.id,
                        "customer_id": customer.id,
                        "status": "completed",
                        "assigned_at": now,
                        "lease_expires_at": now + timedelta(minutes=10),
                        "completed_at": now,
                    }
                )
                grades.append(
                    {
                        "id": gid,
                        "snippet_id": sid,
                        "assignment_id": aid,
                        "reviewer_id": who,
                        "accuracy": 4,
                        "created_at": now,
                        "transcript_enc": dep.vault.seal_text(s, customer.id, f"grade:{gid}:text", "x"),
                    }
                )
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: dep.blobs.put(*item), pending))
        for model, rows in ((Snippet, snippets), (Assignment, assignments), (Grade, grades)):
            for start in range(0, len(rows), 1000):
                s.execute(insert(model), rows[start : start + 1000])
        return customer.id, snippets[0]["audio_blob_id"]


def erase_once(dep: Deployment, external_id: str, pseudonym: str, blob_id: str) -> tuple[float, float, int]:
    """Step 1 (timed to its commit), a check that nothing decrypts any more, then step 2 (timed)."""
    t0 = time.perf_counter()
    with dep.db.session() as s:
        report = erase_customer(s, dep, external_id, actor="bench", source="cli")
    t1 = time.perf_counter()
    if report is None:
        raise SystemExit(f"{external_id} was not found")
    with dep.db.session() as s:  # sanity: from the commit on, the data no longer decrypts
        try:
            dep.vault.get_blob(s, pseudonym, blob_id)
            raise SystemExit("a blob still decrypted after the shred")
        except VaultError:
            pass
    t2 = time.perf_counter()
    final = purge_erasure(dep, report.erasure_id)
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2, final.snippets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1,10000", help="snippets per customer (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3, help="customers erased per count")
    ap.add_argument(
        "--postgres", action="store_true", help="use a scratch schema on EARSHOT_TEST_POSTGRES_URL"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.postgres) as url:
        overrides = {"database_url": url} if url else {}
        dep = Deployment.open(load_settings(Path(tmp) / "data", **overrides))
        try:
            from earshot.audit.context import install

            install(dep)  # records are MACed as in a running deployment
        except ImportError:
            pass
        with dep.db.session() as s:
            product, _ = create_product(s, "bench")
            facility = Facility(name="Bench", country="IE", networks="10.0.0.0/8")
            s.add(facility)
            s.flush()
            reviewers = []
            for i in range(5):
                user = User(
                    email=f"r{i}@bench.example", role="reviewer", facility_id=facility.id, status="active"
                )
                s.add(user)
                s.flush()
                reviewers.append(user.id)
            product_id = product.id
        # Populate everything first: every customer is a bystander for the erasures before it.
        plan = [(n, f"bench-{n}-{r}") for n in counts for r in range(args.repeat)]
        blobs = {}
        t = time.perf_counter()
        for n, ext in plan:
            blobs[ext] = populate(dep, ext, n, product_id, reviewers)
        print(
            f"setup: {sum(n for n, _ in plan)} snippets in {time.perf_counter() - t:.1f} s "
            f"({dep.db.engine.dialect.name})",
            file=sys.stderr,
        )
        random.shuffle(plan)  # no systematic order effect
        per_count: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
        for n, ext in plan:
            shred_s, purge_s, purged = erase_once(dep, ext, *blobs[ext])
            assert purged == n, (purged, n)
            per_count[n].append((shred_s, purge_s))
        dep.close()
    print(f"{'snippets':>9} {'shred median ms':>16} {'shred max ms':>13} {'purge median s':>15}")
    for n in counts:
        shreds = [a * 1000 for a, _ in per_count[n]]
        purges = [b for _, b in per_count[n]]
        row = {
            "snippets": n,
            "runs": len(shreds),
            "shred_ms_median": round(statistics.median(shreds), 2),
            "shred_ms_max": round(max(shreds), 2),
            "purge_s_median": round(statistics.median(purges), 3),
            "database": "postgresql" if args.postgres else "sqlite",
        }
        results.append(row)
        print(f"{n:>9} {row['shred_ms_median']:>16} {row['shred_ms_max']:>13} {row['purge_s_median']:>15}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
