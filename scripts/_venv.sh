# Sourced by the scripts: make .venv exist and hold the extra the script needs (`pgac_extra`, set
# before sourcing: cli for scripts/demo, dev otherwise). The stamp records pyproject.toml's hash
# and the extra installed, so repeated runs start at once and dev (which includes cli) serves
# the demo without a reinstall; a changed pyproject.toml reinstalls.
set -euo pipefail
# A variable, not an argument: `source` without arguments passes on the script's own ones.
EXTRA="${pgac_extra:-dev}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PGAC_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $($PY --version)" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.pgac-installed"
hash="$("$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$ROOT/pyproject.toml")"
installed=""
if [ -f "$stamp" ]; then
    read -r stamp_hash stamp_extra < "$stamp" || true
    if [ "${stamp_hash:-}" = "$hash" ]; then
        # A stamp without an extra is from before the demo had its own: those installed dev.
        installed="${stamp_extra:-dev}"
    fi
fi
case "$EXTRA:$installed" in
    "$EXTRA:$EXTRA" | cli:dev) ;;
    *)
        echo "installing perfectgym-appointments-client[$EXTRA] into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$EXTRA]" >&2
        echo "$hash $EXTRA" > "$stamp"
        ;;
esac
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
