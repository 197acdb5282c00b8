-- tenancy.seal_audit: chains every audit row of the transactions that have ended into per-tenant seals.
-- migrate: as-role tenancy_audit_owner

-- Writers are never blocked and never serialised: they insert freely, and audit rows carry the
-- id of their top-level transaction (txid). The frontier is the xmin of a snapshot taken after
-- the state row is locked: every transaction with a smaller id has ended (committed or rolled
-- back), so no audit row with txid below it can still appear. A round seals the rows with
-- old frontier <= txid < new frontier, grouped by tenant and month of logged_at (that of its
-- partition), each group in (txid, id) order: one tenancy.audit_seals row per group (ids,
-- 32-byte digests, head = sha256(prev_head || header || digests)), chained per tenant by seq.
-- Rows of a transaction still running wait for a later round; rows of rolled-back transactions
-- do not exist. The state row, locked FOR UPDATE, lets one sealer run at a time (a second
-- waits, then seals what is left).
-- Digests are computed and aggregated in one query over the txid range (BRIN index,
-- tenancy.audit_seal_batches); only the chaining of the batches' heads loops.
create or replace function tenancy.seal_audit()
returns table (tenants integer, batches integer, sealed_rows bigint, frontier bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_old bigint;
    v_new bigint;
    v_seals tenancy.audit_seals[];
    v_seal tenancy.audit_seals;
    v_tenant uuid;
    v_now timestamptz := clock_timestamp();
    v_prev bytea;
    v_head bytea;
    v_seq bigint;
    v_total bigint;
    v_tenants integer := 0;
    v_rows bigint := 0;
begin
    select s.frontier into v_old from tenancy.audit_seal_state as s for update;
    if not found then
        raise exception using
            errcode = '55000',
            message = 'tenancy.audit_seal_state has no row: the audit trail''s migration did not complete';
    end if;
    -- Partitions three months ahead (nothing is locked when none is missing), so rows of the
    -- coming months do not land in the default partition.
    perform tenancy.ensure_audit_partitions(3);
    -- Taken after the lock: a sealer that committed while this one waited is seen.
    v_new := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    if v_new <= v_old then
        return query select 0, 0, 0::bigint, v_old;
        return;
    end if;

    -- One query digests, orders and groups the rows (tenancy.audit_seal_batches: its RETURN
    -- QUERY may use parallel workers, which a SELECT INTO may not); the loop then chains the
    -- batches' heads in memory and one INSERT writes the seals.
    select array_agg(b order by b.tenant_id nulls first, b.month, b.txid_from)
    into v_seals
    from tenancy.audit_seal_batches(v_old, v_new) as b;

    for i in 1..coalesce(cardinality(v_seals), 0) loop
        v_seal := v_seals[i];
        if i = 1 or v_seal.tenant_id is distinct from v_tenant then
            v_tenant := v_seal.tenant_id;
            v_tenants := v_tenants + 1;
            select s.seq, s.total_rows, s.head into v_seq, v_total, v_prev
            from tenancy.audit_seals as s
            where s.tenant_id is not distinct from v_tenant
            order by s.tenant_id, s.seq desc
            limit 1;
            if not found then
                v_seq := 0;
                v_total := 0;
                v_prev := null;
            end if;
        end if;
        v_seq := v_seq + 1;
        v_total := v_total + v_seal.row_count;
        v_head := sha256(
            coalesce(v_prev, ''::bytea)
            || tenancy.audit_seal_header(
                v_tenant, v_seq, v_seal.month, v_seal.txid_from, v_seal.txid_to, v_seal.row_count, v_total
            )
            || v_seal.digests
        );
        -- In the columns' order of tenancy.audit_seals.
        v_seals[i] := row(
            v_seal.tenant_id, v_seq, v_seal.month, v_seal.txid_from, v_seal.txid_to, v_seal.row_count,
            v_total, v_seal.ids, v_seal.digests, v_prev, v_head, v_now
        )::tenancy.audit_seals;
        v_prev := v_head;
        v_rows := v_rows + v_seal.row_count;
    end loop;
    insert into tenancy.audit_seals (
        tenant_id, seq, month, txid_from, txid_to, row_count, total_rows, ids, digests, prev_head, head, sealed_at
    )
    select
        s.tenant_id, s.seq, s.month, s.txid_from, s.txid_to, s.row_count, s.total_rows, s.ids, s.digests,
        s.prev_head, s.head, s.sealed_at
    from unnest(v_seals) as s;

    update tenancy.audit_seal_state as s
    set frontier = v_new, sealed_at = clock_timestamp()
    where s.singleton;
    return query select v_tenants, coalesce(cardinality(v_seals), 0), v_rows, v_new;
end
$$;

comment on function tenancy.seal_audit() is
'Seals the audit trail up to the oldest transaction still running: every row of an ended '
'transaction not sealed yet joins its tenant''s hash chain (tenancy.audit_seals), one batch per '
'tenant and month, rows in (txid, id) order. Returns the tenants and batches sealed, the rows and '
'the new frontier. Never blocks writers; concurrent calls run one after the other. Run it on a '
'schedule (pgtenancy audit seal).';

revoke all on function tenancy.seal_audit() from public;
grant execute on function tenancy.seal_audit() to tenancy_service, tenancy_admin;
