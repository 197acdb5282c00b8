-- tenancy.audit_seal_batches: the audit rows of a range of transactions, digested and grouped into unchained seals.
-- migrate: as-role tenancy_audit_owner

-- Internal to tenancy.seal_audit (no grant: it runs as the owner). One row per tenant and month
-- among the rows with p_from <= txid < p_to: txid_from, txid_to, row_count,
-- ids and the concatenated 32-byte digests, both in (txid, id) order; seq, total_rows,
-- prev_head, head and sealed_at are left for the caller, which chains them. A set-returning
-- PL/pgSQL function because its RETURN QUERY may run in parallel workers, which a SELECT INTO in
-- seal_audit may not; the digest (tenancy.audit_row_digest, inlined) is most of the work.
-- work_mem is raised for the sort of the range's rows (about 100 bytes each).
-- The month of a row is that of the partition holding it (audit_logs_YYYY_MM: the month of
-- logged_at in the time zone its bounds were written in), else (the default partition) the UTC
-- month of logged_at. So a seal's rows share one partition, and when retention drops the
-- partitions before a month, it drops the rows of exactly the seals of earlier months, which
-- tenancy.verify_audit then checks by their chain alone.
create or replace function tenancy.audit_seal_batches(p_from bigint, p_to bigint)
returns setof tenancy.audit_seals
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set work_mem = '64MB'
as $$
begin
    return query
    select
        g.tenant_id, null::bigint, g.month, g.txid_from, g.txid_to, g.row_count, null::bigint, g.ids, g.digests,
        null::bytea, ''::bytea, null::timestamptz
    from (
        -- The rows come sorted, so ids and digests are aggregated in (txid, id) order; both
        -- aggregates read the same rows in the same order, so ids[i] is the row of digest i.
        select
            r.tenant_id,
            r.month,
            min(r.txid) as txid_from,
            max(r.txid) as txid_to,
            count(*)::integer as row_count,
            array_agg(r.id) as ids,
            string_agg(r.digest, ''::bytea) as digests
        from (
            select
                l.tenant_id,
                coalesce(p.month, date_trunc('month', l.logged_at, 'UTC')::date) as month,
                l.txid,
                l.id,
                tenancy.audit_row_digest(l) as digest
            from tenancy.audit_logs as l
            left join (
                -- audit_logs_YYYY_MM partitions: the month they hold (OFFSET 0: computed once per
                -- partition, not once per row)
                select
                    i.inhrelid as oid,
                    to_date(substring(c.relname from '^audit_logs_([0-9]{4}_[0-9]{2})$'), 'YYYY_MM') as month
                from pg_inherits as i
                inner join pg_class as c on i.inhrelid = c.oid
                where i.inhparent = 'tenancy.audit_logs'::regclass
                offset 0
            ) as p on l.tableoid = p.oid
            where l.txid >= p_from and l.txid < p_to
            order by l.tenant_id, month, l.txid, l.id
            offset 0
        ) as r
        group by r.tenant_id, r.month
    ) as g;
end
$$;

comment on function tenancy.audit_seal_batches(bigint, bigint) is
'Internal to tenancy.seal_audit: the audit rows with p_from <= txid < p_to, one unchained seal '
'per tenant and month (ids and digests in (txid, id) order; seq, totals and heads left empty).';

revoke all on function tenancy.audit_seal_batches(bigint, bigint) from public;
