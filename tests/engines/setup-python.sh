#!/usr/bin/env bash
# Installs the Python reference implementations the conformance and engine tests compare
# phlo against (pinned): croniter and Dagster. Idempotent; prints the venv's python path.
#   PHLO_PY_VENV  where the venv goes (default: target/py-refs)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${PHLO_PY_VENV:-target/py-refs}"
pins="croniter==7.0.0 dagster==1.13.27 dagster-pipes==1.13.27 dagster-docker==0.29.27 dagster-k8s==0.29.27"
stamp="$venv/.phlo-pins"
ready() { [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$pins" ]]; }
if ready; then
    echo "$venv/bin/python"
    exit 0
fi
# tests run side by side and several may ask at once: one installs, the others wait for it
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null; then
    exec 9>"$venv.lock"
    flock 9
else
    until mkdir "$venv.lock.d" 2>/dev/null; do sleep 1; done
    trap 'rmdir "$venv.lock.d"' EXIT
fi
if ready; then
    echo "$venv/bin/python"
    exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins >&2
echo "$pins" > "$stamp"
echo "$venv/bin/python"
