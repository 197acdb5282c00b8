#!/usr/bin/env bash
# pgspot over every file in sql/, read as one stream in the order migrate applies them.
#
# Usage: scripts/pgspot.sh [PGSPOT]   (default: .venv/bin/pgspot, else pgspot on PATH)
#
# One stream (pgspot --append), not file by file: pgspot then sees the migrations create the
# tenancy schema before the functions and policies use it, so a CREATE OR REPLACE there is in a
# schema pgtenancy created (file by file, every function would be PS002 "unsafe function
# creation"). Order: sql/migrations, then sql/functions (subfolders included), sql/policies,
# then sql/lints.
#
# Exits 1 listing every finding that is not accepted below; each accepted one says why.
set -euo pipefail
cd "$(dirname "$0")/.."

pgspot=${1:-}
if [ -z "$pgspot" ]; then
    if [ -x .venv/bin/pgspot ]; then pgspot=.venv/bin/pgspot; else pgspot=pgspot; fi
fi

files=()
while IFS= read -r f; do files+=("$f"); done < <(
    LC_ALL=C ls sql/migrations/*.sql
    find sql/functions -name '*.sql' | LC_ALL=C sort
    LC_ALL=C ls sql/policies/*.sql
    LC_ALL=C ls sql/lints/*.sql
)

# Functions without a SET search_path on purpose. A SET clause keeps the planner from inlining
# a SQL function and costs a PL/pgSQL one a GUC save and restore per call; these run as the
# caller (most once per statement, on the policies' path) and resolve nothing through
# search_path instead: every function, operator and type in them is schema-qualified, which
# pgspot checks in their bodies all the same (and tests/pgtap/08-plpgsql_check.sql and the
# hostile-session tests check with temporary objects).
no_search_path=(
    'tenancy.auth_failure_counter(p_subject text,p_row integer)'
    'tenancy.base64url_decode(p_value text)'
    'tenancy.base64url_encode(p_value bytea)'
    'tenancy.claim_number_text(p_value numeric)'
    'tenancy.context_fingerprint_of(p_value text)'
    'tenancy.context_tenant_id(p_roles text[])'
    'tenancy.context_tenant_key(p_roles text[])'
    'tenancy.context_value(p_tenant_id uuid,p_role text,p_key text,p_user_id text)'
    'tenancy.context_value_part(p_value text,p_part text)'
    'tenancy.context_tenant_key_mac(p_roles text[])'
    'tenancy.current_api_key_id()'
    'tenancy.context_user_slot()'
    'tenancy.lockout_window_number(p_window interval)'
    'tenancy.current_member_role()'
    'tenancy.current_tenant_id()'
    'tenancy.current_tenant_key()'
    'tenancy.context_fenced()'
    'tenancy.current_user_id()'
    'tenancy.feature_enabled(p_flag text)'
    'tenancy.feature_value(p_flag text)'
    'tenancy.require_feature_flag_name(p_flag text)'
    'tenancy.auth_failure_counter(p_subject text,p_row integer)'
    'tenancy.secret_hash(p_secret text)'
    # runs as the caller so that it can tell tenancy_admin from an application (pg_has_role on
    # current_user) and hand over to the SECURITY DEFINER function that caller may execute
    'tenancy.set_jwks(p_issuer text,p_jwks jsonb,added integer,removed integer,kept integer,skipped integer)'
    'tenancy.normalized_host(p_host text)'
    # called once per outbox event: the GUC save and restore of a SET clause would be a large
    # part of an enqueue's cost
    'tenancy.uuid_v7()'
    'tenancy.outbox_actor(p_user_slot text)'
    'tenancy.support_access_open(p_role text)'
    'tenancy.support_key_of(p_tenant_id uuid,p_role text)'
    'tenancy.tenant_key_int4(p_key text)'
    'tenancy.tenant_key_int8(p_key text)'
    'tenancy.token_excerpt(p_value text,p_length integer)'
    # the audit trail's digests: inlined SQL functions (a SET clause would stop the inlining)
    'tenancy.audit_body_digest(p_row tenancy.audit_logs)'
    'tenancy.audit_row_digest(p_row tenancy.audit_logs)'
    'tenancy.request_metadata()'
    # the subject hash of GDPR's ledger: an inlined SQL function, evaluated per row when
    # tenancy.reapply_erasures looks for the subjects of the ledger's hashes
    'tenancy.subject_hash(p_tenant_id uuid,p_subject text)'
    'tenancy.audit_seal_header(p_tenant_id uuid,p_seq bigint,p_month date,p_txid_from bigint,p_txid_to bigint,p_row_count integer,p_total_rows bigint)'
    # a procedure that commits between steps may carry no SET clause (PostgreSQL refuses
    # transaction control in it)
    'tenancy.offboard(p_tenant_id uuid,p_reason text,p_batch_rows integer)'
)
# context_key_of is created by a DO block (its role codes come from tenancy.member_role), whose
# dynamic SQL pgspot does not read; so is hmac_sha256 (it names pgcrypto's schema).

# Findings accepted, as extended regular expressions over "file|finding".
accepted=(
    # none: every finding fails the check
)

args=()
for f in "${no_search_path[@]}"; do args+=(--proc-without-search-path "$f"); done

out=$("$pgspot" --append "${args[@]}" "${files[@]}" 2>&1) && rc=0 || rc=$?

# pgspot prints "<file>: " before each file's findings, then "PSnnn: ..." lines.
findings=$(awk '
    /^[^ ].*\.sql: $/ { file = substr($0, 1, length($0) - 2); next }
    /^PS[0-9]+: / { print file "|" $0 }
' <<<"$out")
if [ "${#accepted[@]}" -gt 0 ]; then
    pattern=$(IFS='|'; printf '%s' "${accepted[*]}")
    rejected=$(grep -Ev "$pattern" <<<"$findings" || true)
else
    # An empty pattern would match, and so accept, every finding.
    rejected=$findings
fi

if [ -n "$rejected" ]; then
    echo "pgspot: findings in sql/ (scripts/pgspot.sh lists the accepted ones and why):"
    echo "$rejected"
    exit 1
fi
if [ "$rc" -ne 0 ] && [ -z "$findings" ]; then
    # pgspot failed without reporting a finding (a parse error, say).
    echo "$out"
    exit "$rc"
fi
echo "pgspot: $(grep -c . <<<"${findings:-}" || true) accepted finding(s) in ${#files[@]} files, none other"
