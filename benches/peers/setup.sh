#!/usr/bin/env bash
# Installs the peers benches/side_by_side.py compares phlo with (pinned): pandas, dbt-core
# and dbt-sqlite. Idempotent; prints the venv's python path.
#   PHLO_PEERS_VENV  where the venv goes (default: target/bench-peers)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${PHLO_PEERS_VENV:-target/bench-peers}"
pins="pandas==3.1.2 dbt-core==1.10.23 dbt-sqlite==1.10.0"
stamp="$venv/.phlo-pins"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$pins" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins >&2
echo "$pins" > "$stamp"
echo "$venv/bin/python"
