-- tenancy.import_erasure_ledger: adds the current tenant's ledger entries kept elsewhere (a ledger exported before a restore) that are missing.

create or replace function tenancy.import_erasure_ledger(p_entries jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('import_erasure_ledger', 'ledger');
    v_bad jsonb;
    v_count integer;
begin
    if jsonb_typeof(p_entries) is distinct from 'array' then
        raise exception using
            errcode = '22023',
            message = format('ledger entries must be a JSON array, got %s', coalesce(left(p_entries::text, 50), 'NULL'));
    end if;
    select e.value into v_bad
    from jsonb_array_elements(p_entries) as e
    where jsonb_typeof(e.value) is distinct from 'object'
        or coalesce(e.value ->> 'tenant_id', '') <> v_tenant::text
        or coalesce(e.value ->> 'id', '') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        or coalesce(e.value ->> 'subject_hash', '') !~ '^[0-9a-f]{64}$'
        or btrim(coalesce(e.value ->> 'reason', '')) = ''
        or length(e.value ->> 'reason') > 500
        or coalesce(e.value ->> 'erased_at', '') = ''
        or coalesce(jsonb_typeof(e.value -> 'counts'), 'object') <> 'object'
        or coalesce(e.value ->> 'audit_rows', '0') !~ '^[0-9]{1,9}$'
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format(
                'ledger entry %s is not an entry of tenant %s (tenant_id, id, subject_hash, reason of 1 to 500 '
                'characters, erased_at; counts an object, audit_rows a count, when given)',
                left(v_bad::text, 200), v_tenant
            );
    end if;
    begin
        insert into tenancy.erasure_ledger (tenant_id, id, erased_at, subject_hash, reason, counts, audit_rows, erased_by)
        select
            v_tenant, (e.value ->> 'id')::uuid, (e.value ->> 'erased_at')::timestamptz, e.value ->> 'subject_hash',
            e.value ->> 'reason', coalesce(e.value -> 'counts', '{}'), coalesce((e.value ->> 'audit_rows')::integer, 0),
            e.value ->> 'erased_by'
        from jsonb_array_elements(p_entries) as e
        on conflict do nothing;
        get diagnostics v_count = row_count;
    exception when invalid_datetime_format or datetime_field_overflow then
        raise exception using
            errcode = '22023',
            message = format('a ledger entry''s erased_at is not a time: %s', sqlerrm);
    end;
    if v_count > 0 then
        perform tenancy.log_audit(
            'erasure_ledger.imported', 'erasure_ledger', null, null, null, jsonb_build_object('entries', v_count)
        );
    end if;
    return v_count;
end
$$;

comment on function tenancy.import_erasure_ledger(jsonb) is
'Adds to the current tenant''s erasure ledger the entries of p_entries (a JSON array of ledger '
'rows of this tenant, as pgtenancy erasure ledger writes them) that it lacks, by id; returns how '
'many. After restoring a backup older than some erasures, import the ledger kept since, then '
'run tenancy.reapply_erasures. 22023 for an entry of another tenant or a malformed one. Owners, '
'admins and service contexts.';

revoke all on function tenancy.import_erasure_ledger(jsonb) from public;
grant execute on function tenancy.import_erasure_ledger(jsonb) to tenancy_app, tenancy_service;
