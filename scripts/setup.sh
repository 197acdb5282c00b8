#!/usr/bin/env bash
# Create the virtualenv with pgtenancy (editable) and its dev tools; install pgTAP, pg_prove,
# plpgsql_check and pgbouncer from Debian when root, or say which packages are missing.
# Says what it does, one line per step; pip's own output goes to a log, shown only on failure.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

step() { printf 'setup: %s\n' "$*"; }
took() { printf 'setup:   done in %d s\n' "$((SECONDS - $1))"; }

step "checking the Debian packages the tests need (pgTAP, pg_prove, plpgsql_check, pgbouncer)"
missing=()
pgver=$(pg_config --version 2>/dev/null | sed -E 's/[^0-9]*([0-9]+).*/\1/' || true)
pgver=${pgver:-15}
[ -f "/usr/share/postgresql/${pgver}/extension/pgtap.control" ] || missing+=("postgresql-${pgver}-pgtap")
[ -f "/usr/share/postgresql/${pgver}/extension/plpgsql_check.control" ] || missing+=("postgresql-${pgver}-plpgsql-check")
command -v pg_prove >/dev/null 2>&1 || missing+=("libtap-parser-sourcehandler-pgtap-perl")
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=("pgbouncer")
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        start=$SECONDS
        step "installing ${missing[*]} with apt-get"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
        took "$start"
    else
        echo "setup: the tests need these Debian packages: ${missing[*]}" >&2
        echo "  sudo apt-get install ${missing[*]}" >&2
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    step "creating the virtualenv $venv with $python"
    "$python" -m venv "$venv"
fi
log="$venv/setup.log"
start=$SECONDS
step "installing pgtenancy (editable) and its dev tools into $venv: about 30 s (pip's log: $log)"
if ! { "$venv/bin/python" -m pip install --upgrade pip \
        && "$venv/bin/python" -m pip install -e '.[dev]'; } >"$log" 2>&1; then
    echo "setup: pip failed; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
took "$start"
step "ready: $venv/bin/pgtenancy"
