-- tenancy.verify_deletion_certificate: does a deletion certificate hash to its sha256, and is it the one sealed in its tenant's audit trail?
-- migrate: as-role tenancy_audit_owner

-- Three checks, the first failure wins: 1. the certificate's sha256 is the SHA-256 of
-- tenancy.canonical_json of every other key but audit_id (a changed count, date or reason shows);
-- 2. its audit_id is the tenant.offboarded row of its tenant's audit trail, and that row holds
-- this very certificate (a certificate made up with a matching hash does not); 3. that row is in
-- one of the tenant's seals with the digest it has now (tenancy.seal_audit chained it; a row
-- changed since would not match). Until a sealing round has chained the row, the certificate does
-- not verify yet (sealed false). tenancy.verify_audit checks the whole chain of the tenant.
-- Owned by the audit trail's owner: it reads the trail and its seals. Reads only.
create or replace function tenancy.verify_deletion_certificate(p_certificate jsonb)
returns table (ok boolean, sealed boolean, audit_id bigint, problem text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_body jsonb;
    v_sha text;
    v_tenant uuid;
    v_id bigint;
    v_row tenancy.audit_logs;
    v_seq bigint;
    v_digest bytea;
begin
    if jsonb_typeof(p_certificate) is distinct from 'object'
        or p_certificate ->> 'format' is distinct from 'pgtenancy.deletion_certificate.v1'
        or coalesce(p_certificate #>> '{tenant,id}', '') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        or coalesce(p_certificate ->> 'sha256', '') !~ '^[0-9a-f]{64}$'
        or jsonb_typeof(p_certificate -> 'audit_id') is distinct from 'number'
        or coalesce(p_certificate ->> 'audit_id', '') !~ '^[1-9][0-9]{0,17}$' then
        return query select
            false, false, null::bigint,
            format(
                'not a deletion certificate: a JSON object with format pgtenancy.deletion_certificate.v1, '
                'tenant.id, sha256 (64 hex digits) and audit_id is expected, got %s',
                coalesce(left(p_certificate::text, 100), 'NULL')
            );
        return;
    end if;
    v_tenant := (p_certificate #>> '{tenant,id}')::uuid;
    v_id := (p_certificate ->> 'audit_id')::bigint;
    v_body := p_certificate - 'sha256' - 'audit_id';
    v_sha := encode(sha256(convert_to(tenancy.canonical_json(v_body), 'UTF8')), 'hex');
    if v_sha <> p_certificate ->> 'sha256' then
        return query select
            false, false, v_id,
            format(
                'the certificate was changed: its contents hash to %s, not to its sha256 %s',
                v_sha, p_certificate ->> 'sha256'
            );
        return;
    end if;
    select l.* into v_row from tenancy.audit_logs as l where l.tenant_id = v_tenant and l.id = v_id;
    if not found or v_row.action <> 'tenant.offboarded' or v_row.entity_type <> 'tenant'
        or v_row.entity_id is distinct from v_tenant::text then
        return query select
            false, false, v_id,
            format(
                'audit row %s is not the tenant.offboarded entry of tenant %s%s', v_id, v_tenant,
                case when not found then ': no such row of the tenant in the trail (or its partition was dropped)' end
            );
        return;
    end if;
    if v_row.new_data is distinct from v_body || jsonb_build_object('sha256', v_sha) then
        return query select
            false, false, v_id,
            format(
                'audit row %s holds another certificate of tenant %s (sha256 %s)', v_id, v_tenant,
                coalesce(v_row.new_data ->> 'sha256', 'none')
            );
        return;
    end if;
    select s.seq, substring(s.digests from (u.ord::integer - 1) * 32 + 1 for 32)
    into v_seq, v_digest
    from tenancy.audit_seals as s
    cross join lateral unnest(s.ids) with ordinality as u (id, ord)
    where
        s.tenant_id = v_tenant
        and s.txid_from <= v_row.txid
        and s.txid_to >= v_row.txid
        and u.id = v_id
    order by s.seq
    limit 1;
    if not found then
        return query select
            false, false, v_id,
            format(
                'audit row %s holding the certificate is not sealed yet: tenancy.seal_audit() (pgtenancy audit '
                'seal) chains it once its transaction and every older one have ended', v_id
            );
        return;
    end if;
    if v_digest <> tenancy.audit_row_digest(v_row) then
        return query select
            false, true, v_id,
            format('audit row %s no longer matches its digest in seal %s: the trail was altered', v_id, v_seq);
        return;
    end if;
    return query select true, true, v_id, null::text;
end
$$;

comment on function tenancy.verify_deletion_certificate(jsonb) is
'For tenancy_admin and tenancy_auditor: checks a deletion certificate (tenancy.deletion_certificate, '
'or a copy kept elsewhere): its sha256 is the SHA-256 of tenancy.canonical_json of the rest but '
'audit_id; audit_id is its tenant''s tenant.offboarded audit row holding the same certificate; '
'that row is in a seal with the digest it has now. Returns ok, sealed (the row is in a seal), '
'the audit row and the first problem (NULL when ok). Not ok, sealed false, before a sealing round '
'has chained the row (tenancy.seal_audit).';

revoke all on function tenancy.verify_deletion_certificate(jsonb) from public;
grant execute on function tenancy.verify_deletion_certificate(jsonb) to tenancy_admin, tenancy_auditor;
