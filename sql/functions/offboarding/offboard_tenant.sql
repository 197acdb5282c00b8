-- tenancy.offboard_tenant: one step of a tenant's offboarding: suspend and count, delete a batch, or finish with a deletion certificate.

-- One call does one step, so the caller commits between steps and no step holds its locks for
-- long (tenancy.offboard and `pgtenancy tenant offboard` loop it):
-- 1. the first call (no tenancy.tenant_offboardings row yet) suspends the tenant (contexts are
--    refused from then on), records per tenant table how many rows of it there are, and writes
--    tenant.offboarding_started into the tenant's audit trail;
-- 2. each further call deletes at most p_batch_rows rows, tables in tenancy.offboarding_tables'
--    order (rows referring to others before the rows they refer to), one table after the other;
--    before the tenant's connector endpoints go, their URLs and signing secrets
--    (tenancy.connector_secrets, a platform table) go;
-- 3. a call that finds no row left, once every transaction that may hold a context of the tenant
--    set before its suspension has ended (tenancy.tenant_offboardings.watched: until then it says
--    what it waits for), sets the status to deleted, counts again (every table 0), deletes the
--    tenant's platform rows that no tenant table holds (its hostnames in tenancy.domain_claims,
--    its own token issuers with their keys and cached verifications), and builds the deletion
--    certificate, sealed into the audit trail as its tenant.offboarded entry (tenancy.log_audit;
--    tenancy.seal_audit then chains it), which it returns with "done": true.
-- The audit trail, security events and the tenancy.tenants row (status deleted) are kept: the
-- retention policy decides about the trail (tenancy.drop_audit_before). Every step locks the
-- tenant's row, so steps of two callers take turns, and pgtenancy's functions that write for a
-- tenant without a context (branding, region, flags, issuers, slug) wait for a step and then see
-- the status. Each step works in a service context of the tenant that it sets itself (the tenant
-- is suspended: tenancy.set_context refuses it) and drops before returning; the audit rows of the
-- deletions name the caller's login (db_user). Before each step, tenancy.offboarding_problems
-- names the tables it could not empty safely (42501): deleting as tenancy_owner runs the tables'
-- triggers and policies with its rights, so their owners must be members of it. A crash or a
-- cancelled step loses only that step: calling again resumes. Once finished, a call returns the
-- stored certificate.
create or replace function tenancy.offboard_tenant(
    p_tenant_id uuid, p_reason text, p_batch_rows integer default 10000
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reason text := btrim(p_reason);
    v_record tenancy.tenant_offboardings;
    v_tenant tenancy.tenants;
    v_bad text;
    v_counts jsonb;
    v_platform jsonb;
    v_table record;
    v_value text;
    v_count bigint;
    v_budget bigint := p_batch_rows;
    v_deleted bigint := 0;
    v_step_tables jsonb := '{}'::jsonb;
    v_watched text[];
    v_waiting integer[];
    v_after jsonb;
    v_issuers bigint[];
    v_body jsonb;
    v_sha text;
    v_audit_id bigint;
    v_certificate jsonb;
    v_now timestamptz := clock_timestamp();
begin
    if p_batch_rows is null or p_batch_rows < 1 or p_batch_rows > 1000000 then
        raise exception using
            errcode = '22023',
            message = format(
                'offboarding batch of %s rows is out of range: 1 to 1000000', coalesce(p_batch_rows::text, 'NULL')
            );
    end if;
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'offboarding deletes rows: it needs a read-write transaction';
    end if;
    if tenancy.context_tenant_id(null::text[]) is not null then
        raise exception using
            errcode = '55000',
            message = format(
                'offboarding sets a context of its own: this transaction has one already (tenant %s)',
                tenancy.context_tenant_id(null::text[])
            ),
            hint = 'Offboard in a transaction without tenancy.authenticate(), tenancy.set_context() or support access.';
    end if;

    select o.* into v_record from tenancy.tenant_offboardings as o where o.tenant_id = p_tenant_id for update;
    if found and v_record.finished_at is not null then
        return v_record.certificate || jsonb_build_object('done', true);
    end if;
    select t.* into v_tenant from tenancy.tenants as t where t.id = p_tenant_id for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;

    -- Every step: tables that cannot be emptied (safely) stop it, before anything is done.
    v_bad := tenancy.offboarding_problems();
    if v_bad is not null then
        raise exception using
            errcode = '42501',
            message = format('offboarding could not empty every tenant table: %s', v_bad),
            hint = 'Apply the policy files pgtenancy generate renders (they grant tenancy_owner SELECT and '
                'DELETE; a table gets a delete policy when its spec names write roles), have a member of '
                'tenancy_owner own the tables, then offboard again: it resumes.';
    end if;

    if v_record.tenant_id is null then
        -- 1. The first step: check, suspend, count.
        if v_reason is null or v_reason = '' or length(v_reason) > 500 or v_reason ~ '[[:cntrl:]]' then
            raise exception using
                errcode = '22023',
                message = format(
                    'invalid offboarding reason %s',
                    coalesce(quote_literal(tenancy.token_excerpt(p_reason, 100)), 'NULL')
                ),
                hint = 'Say why (a contract ended, a request number) in 1 to 500 characters without '
                    'control characters: the deletion certificate and the audit trail keep it.';
        end if;
        if v_tenant.status = 'active' then
            perform tenancy.set_tenant_status(p_tenant_id, 'suspended', array['active']);
        end if;
        perform tenancy.establish_context(p_tenant_id, null, 'service', v_tenant.key);
        select coalesce(jsonb_object_agg(c.key, jsonb_build_object('before', c.value, 'deleted', 0)), '{}')
        into v_counts
        from jsonb_each(tenancy.offboarding_counts(p_tenant_id, v_tenant.key)) as c;
        insert into tenancy.tenant_offboardings (tenant_id, slug, reason, started_xid, counts)
        values (p_tenant_id, v_tenant.slug, v_reason, pg_current_xact_id()::text::bigint, v_counts)
        returning * into v_record;
        perform tenancy.log_audit(
            'tenant.offboarding_started', 'tenant', p_tenant_id::text, null,
            jsonb_build_object('slug', v_tenant.slug, 'reason', v_reason, 'status', v_tenant.status),
            '{}'
        );
        perform tenancy.clear_context();
        return jsonb_build_object(
            'done', false, 'tenant_id', p_tenant_id, 'slug', v_record.slug, 'step', 1, 'deleted', 0,
            'tables', '{}'::jsonb,
            'rows_before', (select coalesce(sum((c.value ->> 'before')::bigint), 0) from jsonb_each(v_counts) as c),
            'rows_deleted', 0
        );
    end if;

    -- A further step. A tenant made active again by hand is suspended again.
    if v_tenant.status = 'active' then
        perform tenancy.set_tenant_status(p_tenant_id, 'suspended', array['active']);
    end if;
    v_counts := v_record.counts;
    v_platform := v_record.platform_rows;
    v_watched := v_record.watched;
    -- The transactions to wait for, taken once the suspension has committed: every client session
    -- of this database in a transaction now may have set a context of the tenant before.
    if v_watched is null
        and coalesce(pg_xact_status(v_record.started_xid::text::xid8), 'committed') = 'committed' then
        v_watched := coalesce(array(
            select l.virtualxid
            from pg_locks as l
            inner join pg_stat_activity as a on a.pid = l.pid
            where
                l.locktype = 'virtualxid'
                and l.mode = 'ExclusiveLock'
                and l.granted
                and l.pid <> pg_backend_pid()
                and a.datid = (select d.oid from pg_database as d where d.datname = current_database())
                and a.usesysid is not null
            order by l.virtualxid
        ), '{}');
    end if;

    -- 2. Delete a batch.
    perform tenancy.establish_context(p_tenant_id, null, 'service', v_tenant.key);
    for v_table in select o.* from tenancy.offboarding_tables() as o loop
        v_value := tenancy.offboarding_value(p_tenant_id, v_tenant.key, v_table.value_kind);
        continue when v_value is null;
        if not v_counts ? v_table.table_name then
            -- A tenant table that appeared since the offboarding began.
            execute format('select pg_catalog.count(*) from %s as t where %s', v_table.table_name, v_table.predicate)
            using v_value into v_count;
            v_counts := v_counts || jsonb_build_object(
                v_table.table_name, jsonb_build_object('before', v_count, 'deleted', 0)
            );
        end if;
        if v_table.relid = 'tenancy.connector_endpoints'::regclass then
            delete from tenancy.connector_secrets as s
            using tenancy.connector_endpoints as e
            where e.tenant_id = p_tenant_id and s.endpoint_id = e.id;
            get diagnostics v_count = row_count;
            if v_count > 0 then
                v_platform := jsonb_set(
                    v_platform, array['tenancy.connector_secrets'],
                    to_jsonb(coalesce((v_platform ->> 'tenancy.connector_secrets')::bigint, 0) + v_count)
                );
            end if;
        end if;
        v_count := tenancy.offboarding_delete(
            v_table.table_name, v_table.predicate, v_value, case when not v_table.whole then v_budget end
        );
        if v_count > 0 then
            v_counts := jsonb_set(
                v_counts, array[v_table.table_name, 'deleted'],
                to_jsonb((v_counts #>> array[v_table.table_name, 'deleted'])::bigint + v_count)
            );
            v_step_tables := v_step_tables || jsonb_build_object(v_table.table_name, v_count);
            v_deleted := v_deleted + v_count;
            v_budget := v_budget - v_count;
        end if;
        exit when v_budget <= 0;
    end loop;

    -- Rows went, or transactions that may hold an old context of the tenant are still running:
    -- not finished yet.
    if v_deleted = 0 and cardinality(v_watched) > 0 then
        v_waiting := array(
            select l.pid from pg_locks as l
            where l.locktype = 'virtualxid' and l.mode = 'ExclusiveLock' and l.granted
                and l.virtualxid = any(v_watched)
            order by l.pid
        );
    end if;
    if v_deleted > 0 or cardinality(v_waiting) > 0 then
        update tenancy.tenant_offboardings as o
        set
            steps = o.steps + 1, last_step_at = v_now, counts = v_counts, platform_rows = v_platform,
            watched = v_watched
        where o.tenant_id = p_tenant_id;
        perform tenancy.clear_context();
        return jsonb_build_object(
            'done', false, 'tenant_id', p_tenant_id, 'slug', v_record.slug, 'step', v_record.steps + 1,
            'deleted', v_deleted, 'tables', v_step_tables,
            'rows_before', (select coalesce(sum((c.value ->> 'before')::bigint), 0) from jsonb_each(v_counts) as c),
            'rows_deleted', (select coalesce(sum((c.value ->> 'deleted')::bigint), 0) from jsonb_each(v_counts) as c)
        ) || case
            when cardinality(v_waiting) > 0 then jsonb_build_object('waiting_for', to_jsonb(v_waiting))
            else '{}'::jsonb
        end;
    end if;

    -- 3. Nothing left: finish.
    perform tenancy.set_tenant_status(p_tenant_id, 'deleted', array['suspended']);
    v_after := tenancy.offboarding_counts(p_tenant_id, v_tenant.key);
    if exists (select from jsonb_each(v_after) as a where (a.value)::bigint > 0) then
        -- Cannot happen while the tenant's row is locked; the next step deletes them.
        raise exception using
            errcode = '55000',
            message = format(
                'tenant %s still has rows after a pass that found none: %s', p_tenant_id,
                (select string_agg(a.key || ' ' || a.value, ', ' order by a.key) from jsonb_each(v_after) as a where (a.value)::bigint > 0)
            );
    end if;
    select coalesce(jsonb_object_agg(c.key, c.value || jsonb_build_object('after', coalesce(v_after -> c.key, '0'))), '{}')
    into v_counts
    from jsonb_each(v_counts) as c;

    -- Platform rows of the tenant that no tenant table holds.
    delete from tenancy.domain_claims as c where c.tenant_id = p_tenant_id;
    get diagnostics v_count = row_count;
    v_platform := v_platform || jsonb_build_object('tenancy.domain_claims', v_count);
    select count(*) into v_count
    from tenancy.jwt_keys as k
    inner join tenancy.jwt_issuers as i on i.id = k.issuer_id
    where i.tenant_id = p_tenant_id;
    v_platform := v_platform || jsonb_build_object('tenancy.jwt_keys', v_count);
    with gone as (
        delete from tenancy.jwt_issuers as i where i.tenant_id = p_tenant_id returning i.id
    )
    select array_agg(g.id) into v_issuers from gone as g;
    v_platform := v_platform || jsonb_build_object('tenancy.jwt_issuers', coalesce(cardinality(v_issuers), 0));
    update tenancy.verified_tokens as v
    set token_hash = '\x'::bytea, issuer_id = null, kid = null, subject = null, tenant_claim = null,
        issuer_tenant_id = null, expires_at = '-infinity'
    where
        v.token_hash <> '\x'::bytea
        and (
            v.issuer_tenant_id = p_tenant_id
            or v.tenant_claim = p_tenant_id::text
            or v.issuer_id = any(coalesce(v_issuers, '{}'))
        );
    get diagnostics v_count = row_count;
    v_platform := v_platform || jsonb_build_object('tenancy.verified_tokens', v_count);
    if not v_platform ? 'tenancy.connector_secrets' then
        v_platform := v_platform || jsonb_build_object('tenancy.connector_secrets', 0);
    end if;

    v_body := jsonb_build_object(
        'format', 'pgtenancy.deletion_certificate.v1',
        'tenant', jsonb_build_object('id', p_tenant_id, 'slug', v_record.slug),
        'reason', v_record.reason,
        'requested_by', v_record.requested_by,
        'finished_by', session_user,
        'started_at', to_char(v_record.started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'steps', v_record.steps + 1,
        'tables', (
            select coalesce(jsonb_agg(
                jsonb_build_object('table', c.key) || c.value order by c.key collate "C"
            ), '[]')
            from jsonb_each(v_counts) as c
        ),
        'rows', jsonb_build_object(
            'before', (select coalesce(sum((c.value ->> 'before')::bigint), 0) from jsonb_each(v_counts) as c),
            'deleted', (select coalesce(sum((c.value ->> 'deleted')::bigint), 0) from jsonb_each(v_counts) as c),
            'after', (select coalesce(sum((c.value ->> 'after')::bigint), 0) from jsonb_each(v_counts) as c)
        ),
        'platform_rows', v_platform,
        'kept', jsonb_build_array(
            'tenancy.audit_logs', 'tenancy.audit_seals', 'tenancy.security_events', 'tenancy.tenant_offboardings',
            'tenancy.tenants'
        )
    );
    v_sha := encode(sha256(convert_to(tenancy.canonical_json(v_body), 'UTF8')), 'hex');
    v_audit_id := tenancy.log_audit(
        'tenant.offboarded', 'tenant', p_tenant_id::text, null, v_body || jsonb_build_object('sha256', v_sha), '{}'
    );
    v_certificate := v_body || jsonb_build_object('sha256', v_sha, 'audit_id', v_audit_id);
    update tenancy.tenant_offboardings as o
    set
        steps = o.steps + 1, last_step_at = v_now, counts = v_counts, platform_rows = v_platform,
        watched = v_watched, finished_at = v_now, certificate = v_certificate
    where o.tenant_id = p_tenant_id;
    perform tenancy.clear_context();
    return v_certificate || jsonb_build_object('done', true);
end
$$;

comment on function tenancy.offboard_tenant(uuid, text, integer) is
'For tenancy_admin: one step of offboarding tenant p_tenant_id; commit after each and call again '
'until "done" is true (tenancy.offboard does). The first suspends it and counts its rows in every '
'tenant table (p_reason: 1 to 500 characters, kept); each further step deletes at most '
'p_batch_rows (1 to 1,000,000; a table referring to itself goes in one statement) of its rows, '
'referencing tables first, or waits ("waiting_for": pids) for transactions that may hold a '
'context of it set before the suspension; the last sets its status to deleted, deletes its '
'hostnames, own token issuers and connector secrets, and returns the deletion certificate '
'(tenancy.deletion_certificate) with "done": true, also written to its audit trail. The audit '
'trail and security events are kept. Once done it returns the stored certificate. P0002 for an '
'unknown tenant; 22023 for a bad reason or batch; 42501, before anything is done, when a tenant '
'table cannot be emptied safely (tenancy.offboarding_problems: privileges, no delete policy, an '
'owner that is not a member of tenancy_owner); 55000 in a transaction with a tenant context.';

revoke all on function tenancy.offboard_tenant(uuid, text, integer) from public;
grant execute on function tenancy.offboard_tenant(uuid, text, integer) to tenancy_admin;
