#!/usr/bin/env bash
# Until the first release the schema is one migration, regenerated from the models:
#   scripts/regen_migration.sh
# It is deterministic (depends only on the models in the tree), so anyone may run it.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f src/earshot/migrations/versions/0001_initial.py
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from earshot.database import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}/m.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
PY
f=$(ls src/earshot/migrations/versions/0001_*.py)
[ "$f" = src/earshot/migrations/versions/0001_initial.py ] || mv "$f" src/earshot/migrations/versions/0001_initial.py
sed -i 's/^Create Date: .*/Create Date: (regenerated)/' src/earshot/migrations/versions/0001_initial.py
.venv/bin/ruff format -q src/earshot/migrations/versions/0001_initial.py || true
rm -rf "$tmp"
echo "regenerated src/earshot/migrations/versions/0001_initial.py"
