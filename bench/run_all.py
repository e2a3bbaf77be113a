"""Run every benchmark in bench/ with modest sizes, one after another (`make bench`).

Each benchmark prints its own figures, the machine it ran on, and ratios against a baseline taken in
the same run. PostgreSQL-backed benchmarks need EARSHOT_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PG = os.environ.get("EARSHOT_TEST_POSTGRES_URL")

RUNS: list[tuple[str, list[str]]] = [
    ("deid", ["deid.py"]),
    ("deid_workers", ["deid_workers.py", "--layouts", "1x2", "2x1"]),
    ("audit", ["audit.py", "--records", "1000000"]),
    ("erasure", ["erasure.py", "--counts", "1,10000", "--repeat", "5"]),
    ("watermark", ["watermark.py", "--candidates", "5000", "--trims", "3"]),
]
if PG:
    RUNS.append(("serve", ["serve.py", "--levels", "1,200"]))


def main() -> int:
    failed = []
    for name, argv in RUNS:
        print(f"\n=== bench/{argv[0]} ===", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]])
        if rc != 0:
            failed.append(name)
    if not PG:
        print("\n(serve benchmark skipped: set EARSHOT_TEST_POSTGRES_URL)")
    print(f"\nbenchmarks that missed a target or failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
