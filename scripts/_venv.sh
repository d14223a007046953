# Sourced by the scripts: make .venv exist and hold the set the script needs (`pgac_set`, set
# before sourcing: cli for scripts/demo, dev otherwise), at the versions of the lock files:
#   dev  requirements-dev.txt: the dev dependency group and the cli, redis and aiohttp extras
#   cli  requirements-cli.txt: the cli extra alone, at the same versions (scripts/lock)
# then the project itself, editable, without dependencies (the lock holds them all). The stamp
# records a hash of pyproject.toml and the lock files, and the set installed, so repeated runs
# start at once and dev (which includes cli) serves the demo without a reinstall; a changed
# pyproject.toml or lock file reinstalls. PGAC_VENV (default .venv) and PYTHON (default python3,
# used only to create the venv) choose where and with which Python.
set -euo pipefail
# A variable, not an argument: `source` without arguments passes on the script's own ones.
SET="${pgac_set:-dev}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PGAC_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
# pip >= 25.1 installs PEP 735 groups (`pip install --group dev`); this is the one we test with.
PIP_PIN="pip==26.3"
case "$SET" in
    dev | cli) LOCK="$ROOT/requirements-$SET.txt" ;;
    *)
        echo "_venv.sh: unknown set '$SET' (dev or cli)" >&2
        exit 2
        ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $($PY --version)" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.pgac-installed"
# One hash over pyproject.toml and both lock files (a missing file counts as empty).
hash="$("$VENV/bin/python" - "$ROOT/pyproject.toml" "$ROOT/requirements-dev.txt" "$ROOT/requirements-cli.txt" <<'EOF'
import hashlib
import os
import sys

digest = hashlib.sha256()
for path in sys.argv[1:]:
    digest.update(open(path, "rb").read() if os.path.exists(path) else b"")
    digest.update(b"\0")
print(digest.hexdigest())
EOF
)"
installed=""
if [ -f "$stamp" ]; then
    read -r stamp_hash stamp_set < "$stamp" || true
    if [ "${stamp_hash:-}" = "$hash" ]; then
        installed="${stamp_set:-}"
    fi
fi
case "$SET:$installed" in
    "$SET:$SET" | cli:dev) ;;
    *)
        echo "installing the $SET set (${LOCK#"$ROOT/"}) and perfectgym-appointments-client into $VENV" >&2
        pip=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
        "${pip[@]}" install "$PIP_PIN" >&2
        # The lock has a hash for every file: pip checks each download against it.
        # The dev set is not compiled at install (half of its install time): scripts/test turns
        # byte-code caches on, so what the suite imports is compiled once, on first import.
        compile=()
        if [ "$SET" = dev ]; then compile=(--no-compile); fi
        "${pip[@]}" install "${compile[@]}" --require-hashes -r "$LOCK" >&2
        "${pip[@]}" install --no-deps -e "$ROOT" >&2
        echo "$hash $SET" > "$stamp"
        ;;
esac
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
