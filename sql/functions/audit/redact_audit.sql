-- tenancy.redact_audit: erases named values from audit rows and keeps their seals verifying.
-- migrate: as-role tenancy_audit_owner

-- The GDPR erasure of a data subject calls it (from its own SECURITY DEFINER function, owned by
-- tenancy_owner): the named keys of old_data and new_data become JSON null. A row's digest covers
-- its header and the digest of its body; the first redaction stores that body digest in
-- body_digest, so tenancy.audit_row_digest, and with it every seal and verify_audit, gives the
-- same value before and after (sealed now or later). A sealed row is redacted only while it still
-- matches its seal, and a row below the sealing frontier only when a seal holds it: tampered or
-- forged content must not be laundered into a valid-looking redacted row. The trail's trigger
-- allows this one UPDATE: as tenancy_audit_owner, in a transaction whose
-- tenancy.audit_redacting setting is its own id, header unchanged, body_digest set once.
create or replace function tenancy.redact_audit(p_ids bigint[], p_columns text[])
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_frontier bigint;
    v_bad record;
    v_count integer;
begin
    if p_ids is null or array_position(p_ids, null) is not null or cardinality(p_ids) > 100000 then
        raise exception using
            errcode = '22023',
            message = format(
                'audit row ids %s are not valid: an array of at most 100000 ids without NULL',
                coalesce(left(p_ids::text, 100), 'NULL')
            );
    end if;
    if p_columns is null or cardinality(p_columns) = 0 or array_position(p_columns, null) is not null
        or exists (select from unnest(p_columns) as c (name) where c.name = '') then
        raise exception using
            errcode = '22023',
            message = format(
                'columns to redact %s are not valid: a non-empty array of column names without NULL or ''''',
                coalesce(left(p_columns::text, 100), 'NULL')
            );
    end if;
    if cardinality(p_ids) = 0 then
        return 0;
    end if;

    -- The rows to redact, locked so the check below holds until they are written.
    perform from tenancy.audit_logs as l where l.id = any(p_ids) for update;
    select s.frontier into v_frontier from tenancy.audit_seal_state as s;

    -- Each row against its seal (the tenant's seals whose transactions span the row's).
    select l.id, l.tenant_id, x.seq, x.found
    into v_bad
    from tenancy.audit_logs as l
    left join lateral (
        select s.seq, substring(s.digests from (p.ord - 1) * 32 + 1 for 32) as digest, true as found
        from tenancy.audit_seals as s
        cross join lateral (select array_position(s.ids, l.id) as ord) as p
        where (s.tenant_id = l.tenant_id or (l.tenant_id is null and s.tenant_id is null))
            and s.txid_from <= l.txid and s.txid_to >= l.txid
            and p.ord is not null
        limit 1
    ) as x on true
    where l.id = any(p_ids)
        and (
            x.found and x.digest <> tenancy.audit_row_digest(l)
            or x.found is null and l.txid < v_frontier
        )
    order by l.id
    limit 1;
    if found then
        raise exception using
            errcode = '55000',
            message = case
                when v_bad.found then format(
                    'audit row %s does not match its seal (seal %s of %s): it was altered after sealing; '
                    'nothing was redacted', v_bad.id, v_bad.seq,
                    coalesce('tenant ' || v_bad.tenant_id::text, 'the rows of no tenant')
                )
                else format(
                    'audit row %s is below the sealing frontier but in no seal (inserted out of order); '
                    'nothing was redacted', v_bad.id
                )
            end,
            hint = 'tenancy.verify_audit reports the tenant''s problems; tampered rows are evidence, not data to erase.';
    end if;

    perform set_config('tenancy.audit_redacting', pg_current_xact_id()::text, true);
    update tenancy.audit_logs as l
    set
        old_data = case
            when jsonb_typeof(l.old_data) = 'object' then
                l.old_data || coalesce(
                    (select jsonb_object_agg(c.name, 'null'::jsonb) from unnest(p_columns) as c (name)
                     where l.old_data ? c.name),
                    '{}'::jsonb
                )
            else l.old_data
        end,
        new_data = case
            when jsonb_typeof(l.new_data) = 'object' then
                l.new_data || coalesce(
                    (select jsonb_object_agg(c.name, 'null'::jsonb) from unnest(p_columns) as c (name)
                     where l.new_data ? c.name),
                    '{}'::jsonb
                )
            else l.new_data
        end,
        -- l is the row before this UPDATE: its body's digest, unless an earlier redaction kept it
        body_digest = coalesce(l.body_digest, tenancy.audit_body_digest(l)),
        redacted_at = now()
    where l.id = any(p_ids)
        and exists (
            select from unnest(p_columns) as c (name)
            where jsonb_typeof(l.old_data) = 'object' and coalesce(l.old_data -> c.name, 'null') <> 'null'
                or jsonb_typeof(l.new_data) = 'object' and coalesce(l.new_data -> c.name, 'null') <> 'null'
        );
    get diagnostics v_count = row_count;
    perform set_config('tenancy.audit_redacting', '', true);
    return v_count;
end
$$;

comment on function tenancy.redact_audit(bigint[], text[]) is
'Erases personal values from audit rows: the named keys of old_data and new_data become JSON '
'null; body_digest keeps the digest of the body as it was, redacted_at the time, so seals still '
'verify. Refuses (55000) a row that no longer matches its seal or that should be sealed and is '
'not. Returns the rows changed (rows without a value under those keys are left alone). For '
'tenancy_owner: the erasure of a data subject calls it.';

revoke all on function tenancy.redact_audit(bigint[], text[]) from public;
grant execute on function tenancy.redact_audit(bigint[], text[]) to tenancy_owner;
