#!/usr/bin/env bash
# Create the virtualenv with pgtenancy (editable) and its dev tools; install pgTAP, pg_prove,
# plpgsql_check and pgbouncer from Debian when root, or say which packages are missing.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

missing=()
pgver=$(pg_config --version 2>/dev/null | sed -E 's/[^0-9]*([0-9]+).*/\1/' || true)
pgver=${pgver:-15}
[ -f "/usr/share/postgresql/${pgver}/extension/pgtap.control" ] || missing+=("postgresql-${pgver}-pgtap")
[ -f "/usr/share/postgresql/${pgver}/extension/plpgsql_check.control" ] || missing+=("postgresql-${pgver}-plpgsql-check")
command -v pg_prove >/dev/null 2>&1 || missing+=("libtap-parser-sourcehandler-pgtap-perl")
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=("pgbouncer")
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]}"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
    else
        echo "the tests need these Debian packages: ${missing[*]}" >&2
        echo "  sudo apt-get install ${missing[*]}" >&2
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
