-- tenancy.verify_audit: checks one tenant's hash chain and its rows; reports the first problem.
-- migrate: as-role tenancy_audit_owner

-- Three checks, the first problem in chain order wins (a seal's own problem before its rows):
-- 1. the chain: seq runs 1, 2, 3 …; each prev_head is the previous head; total_rows adds up;
--    ids and digests hold row_count entries; head = sha256(prev_head || header || digests);
-- 2. the anchor (what tenancy.export_seal returned earlier, kept outside the database): the seal
--    it names still exists with that head and total_rows;
-- 3. the rows, one full join on id of the sealed positions with the tenant's rows now in the
--    trail: a position whose row is gone (deleted, or moved to another tenant), a row whose digest
--    differs from its sealed one (altered), a row below the frontier in no seal (inserted out of
--    order, or not sealed), and a row in more than one seal. Seals of months before the latest
--    retention cut (tenancy.audit_retention) are checked by their chain alone: their partitions
--    may be gone; 4. a row whose txid no ended transaction had (forged, never to be sealed
--    honestly). A redacted row keeps its digest (tenancy.audit_row_digest uses its stored
--    body_digest).
-- The frontier is read before the seals: a seal_audit committing meanwhile adds seals, never
-- rows below the frontier read. Reads only; SECURITY DEFINER to read every tenant's rows.
create or replace function tenancy.verify_audit(p_tenant_id uuid, p_anchor jsonb default null)
returns table (ok boolean, checked_rows bigint, checked_seals integer, first_bad_id bigint, problem text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_frontier bigint;
    v_before date;
    v_anchor_seq bigint;
    v_anchor_head bytea;
    v_anchor_total bigint;
    v_seals integer;
    v_last bigint;
    v_bad_seq bigint;
    v_bad_id bigint;
    v_problem text;
    v_seq bigint;
    v_ord bigint;
    v_id bigint;
    v_text text;
    v_rows bigint;
    v_unsealed_id bigint;
    v_unsealed_txid bigint;
    v_unsealed_seq bigint;
    v_limit bigint;
    v_future_id bigint;
    v_future_txid bigint;
    v_who text := coalesce('tenant ' || p_tenant_id::text, 'the rows of no tenant');
begin
    if p_anchor is not null then
        if jsonb_typeof(p_anchor) <> 'object'
            or coalesce(p_anchor ->> 'seq', '') !~ '^[1-9][0-9]{0,17}$'
            or coalesce(p_anchor ->> 'total_rows', '') !~ '^[0-9]{1,18}$'
            or coalesce(p_anchor ->> 'head', '') !~ '^[0-9a-f]{64}$'
            or not p_anchor ? 'tenant_id' then
            raise exception using
                errcode = '22023',
                message = format(
                    'audit anchor %s is not a seal exported by tenancy.export_seal (tenant_id, seq, head '
                    'as 64 hex digits, total_rows)', left(p_anchor::text, 200)
                );
        end if;
        if (p_anchor ->> 'tenant_id') is distinct from p_tenant_id::text then
            raise exception using
                errcode = '22023',
                message = format(
                    'audit anchor is the seal of tenant %s, not of %s',
                    coalesce(p_anchor ->> 'tenant_id', 'NULL'), coalesce(p_tenant_id::text, 'NULL')
                );
        end if;
        v_anchor_seq := (p_anchor ->> 'seq')::bigint;
        v_anchor_total := (p_anchor ->> 'total_rows')::bigint;
        v_anchor_head := decode(p_anchor ->> 'head', 'hex');
    end if;

    select s.frontier into v_frontier from tenancy.audit_seal_state as s;
    select max(r.before_month) into v_before from tenancy.audit_retention as r;

    -- 1. The chain, from the seals alone.
    select c.n, c.last_seq, c.bad_seq, c.bad_problem
    into v_seals, v_last, v_bad_seq, v_problem
    from (
        select
            count(*)::integer as n,
            max(k.seq) as last_seq,
            (array_agg(k.seq order by k.seq) filter (where k.problem is not null))[1] as bad_seq,
            (array_agg(k.problem order by k.seq) filter (where k.problem is not null))[1] as bad_problem
        from (
            select
                s.seq,
                case
                    when s.p_seq is null and s.seq <> 1 then
                        format('the chain starts at seal %s: seal 1 is missing', s.seq)
                    when s.seq <> s.p_seq + 1 then
                        format('seal %s follows seal %s: seal %s is missing', s.seq, s.p_seq, s.p_seq + 1)
                    when s.prev_head is distinct from s.p_head then
                        format('seal %s: its prev_head is not the head of seal %s', s.seq, s.seq - 1)
                    when s.total_rows <> coalesce(s.p_total, 0) + s.row_count then
                        format(
                            'seal %s: total_rows %s is not %s + row_count %s', s.seq, s.total_rows,
                            coalesce(s.p_total, 0), s.row_count
                        )
                    when s.row_count < 1
                        or array_ndims(s.ids) is distinct from 1
                        or cardinality(s.ids) <> s.row_count
                        or octet_length(s.digests) <> 32 * s.row_count
                        or array_position(s.ids, null) is not null then
                        format(
                            'seal %s: holds %s ids and %s bytes of digests for row_count %s', s.seq,
                            cardinality(s.ids), octet_length(s.digests), s.row_count
                        )
                    when s.head <> sha256(
                        coalesce(s.prev_head, ''::bytea)
                        || tenancy.audit_seal_header(
                            s.tenant_id, s.seq, s.month, s.txid_from, s.txid_to, s.row_count, s.total_rows
                        )
                        || s.digests
                    ) then
                        format('seal %s: its head does not match its contents (the seal was changed)', s.seq)
                end as problem
            from (
                select
                    s.*,
                    lag(s.seq) over w as p_seq,
                    lag(s.head) over w as p_head,
                    lag(s.total_rows) over w as p_total
                from tenancy.audit_seals as s
                where s.tenant_id = p_tenant_id or (p_tenant_id is null and s.tenant_id is null)
                window w as (order by s.seq)
            ) as s
        ) as k
    ) as c;

    -- 2. The anchor.
    if v_anchor_seq is not null and (v_bad_seq is null or v_anchor_seq < v_bad_seq) then
        select format(
            'seal %s does not match the anchor: %s', s.seq,
            concat_ws(
                ', ',
                case when s.head <> v_anchor_head then
                    format('head %s, anchored %s', encode(s.head, 'hex'), encode(v_anchor_head, 'hex'))
                end,
                case when s.total_rows <> v_anchor_total then
                    format('total_rows %s, anchored %s', s.total_rows, v_anchor_total)
                end
            )
        )
        into v_text
        from tenancy.audit_seals as s
        where (s.tenant_id = p_tenant_id or (p_tenant_id is null and s.tenant_id is null))
            and s.seq = v_anchor_seq
            and (s.head <> v_anchor_head or s.total_rows <> v_anchor_total);
        if not found and v_anchor_seq > coalesce(v_last, 0) then
            v_text := format(
                'the anchored seal %s is missing: the chain of %s ends at seal %s', v_anchor_seq, v_who,
                coalesce(v_last, 0)
            );
        end if;
        if v_text is not null then
            v_bad_seq := v_anchor_seq;
            v_problem := v_text;
        end if;
    end if;

    -- 3. The rows: sealed positions (up to the last seal checked above) against the trail.
    select
        count(*) filter (where j.p_id is not null and j.r_id is not null),
        (array_agg(j.seq order by j.seq, j.ord) filter (where j.kind is not null))[1],
        (array_agg(j.ord order by j.seq, j.ord) filter (where j.kind is not null))[1],
        (array_agg(j.p_id order by j.seq, j.ord) filter (where j.kind is not null))[1],
        (array_agg(j.kind order by j.seq, j.ord) filter (where j.kind is not null))[1],
        (array_agg(j.r_id order by j.txid, j.r_id) filter (where j.p_id is null))[1],
        (array_agg(j.txid order by j.txid, j.r_id) filter (where j.p_id is null))[1]
    into v_rows, v_seq, v_ord, v_id, v_text, v_unsealed_id, v_unsealed_txid
    from (
        select
            p.seq,
            p.ord,
            p.id as p_id,
            r.id as r_id,
            r.txid,
            case
                when r.id is null and not p.chain_only then 'deleted'
                when r.digest <> p.digest then 'altered'
                -- a seal made again over sealed rows (the frontier moved back)
                when p.id is not null and count(*) over (partition by p.id) > 1 then 'sealed more than once'
            end as kind
        from (
            select
                s.seq,
                u.ord,
                u.id,
                substring(s.digests from (u.ord::integer - 1) * 32 + 1 for 32) as digest,
                coalesce(s.month < v_before, false) as chain_only
            from tenancy.audit_seals as s
            cross join lateral unnest(s.ids) with ordinality as u (id, ord)
            where (s.tenant_id = p_tenant_id or (p_tenant_id is null and s.tenant_id is null))
                and s.seq <= coalesce(v_last, 0)
            offset 0
        ) as p
        full join (
            select l.id, l.txid, tenancy.audit_row_digest(l) as digest
            from tenancy.audit_logs as l
            where l.tenant_id = p_tenant_id or (p_tenant_id is null and l.tenant_id is null)
            offset 0
        ) as r on r.id = p.id
        where p.id is not null or r.txid < v_frontier
        -- OFFSET 0 here and above: each digest and kind is computed once per row, not once
        -- for every aggregate that reads it (a subquery pulled up is copied into each).
        offset 0
    ) as j;

    -- 4. A row whose transaction id is beyond every transaction that had ended when this
    -- snapshot was taken (and beyond this transaction's own): no transaction whose rows this
    -- snapshot sees wrote it, so it was inserted with a made-up txid (a superuser's), which
    -- tenancy.seal_audit would otherwise seal, as genuine, once transaction ids reach it.
    v_limit := greatest(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        coalesce(pg_current_xact_id_if_assigned()::text::bigint + 1, 0)
    );
    select l.id, l.txid into v_future_id, v_future_txid
    from tenancy.audit_logs as l
    where (l.tenant_id = p_tenant_id or (p_tenant_id is null and l.tenant_id is null))
        and l.txid >= v_limit
    order by l.txid, l.id
    limit 1;

    -- A row below the frontier that no seal holds: its place in the chain is the first seal
    -- whose transactions reach its own (or after the last).
    if v_unsealed_id is not null then
        select coalesce(min(s.seq), coalesce(v_last, 0) + 1) into v_unsealed_seq
        from tenancy.audit_seals as s
        where (s.tenant_id = p_tenant_id or (p_tenant_id is null and s.tenant_id is null))
            and s.txid_to >= v_unsealed_txid;
        if v_seq is null or v_unsealed_seq <= v_seq then
            v_seq := v_unsealed_seq;
            v_id := v_unsealed_id;
            v_text := format(
                'row %s was inserted out of order: its transaction %s is below the sealing frontier %s '
                'but no seal holds it', v_unsealed_id, v_unsealed_txid, v_frontier
            );
        else
            v_text := format('row %s %s (position %s of seal %s)', v_id, v_text, v_ord, v_seq);
        end if;
    elsif v_text is not null then
        v_text := format('row %s %s (position %s of seal %s)', v_id, v_text, v_ord, v_seq);
    end if;
    if v_text is not null and (v_bad_seq is null or v_seq < v_bad_seq) then
        v_bad_id := v_id;
        v_problem := v_text;
    end if;
    -- After the chain: its rows are in no seal yet.
    if v_problem is null and v_future_id is not null then
        v_bad_id := v_future_id;
        v_problem := format(
            'row %s was forged: its transaction %s is beyond every transaction that had ended (%s) '
            'and is not this one', v_future_id, v_future_txid, v_limit
        );
    end if;

    return query select
        v_problem is null,
        coalesce(v_rows, 0),
        coalesce(v_seals, 0),
        v_bad_id,
        v_problem;
end
$$;

comment on function tenancy.verify_audit(uuid, jsonb) is
'Verifies one tenant''s audit trail (NULL: the rows of no tenant): recomputes every seal''s head '
'from its digests and the previous head, compares each sealed row''s digest with the row in '
'tenancy.audit_logs, and finds rows below the sealing frontier that no seal holds. With '
'p_anchor (a tenancy.export_seal result kept outside the database) it also checks that this seal '
'still has its head and total_rows. Returns ok, the rows and seals checked, and the first '
'problem in chain order: the row id (altered, deleted, inserted out of order) and a sentence.';

revoke all on function tenancy.verify_audit(uuid, jsonb) from public;
grant execute on function tenancy.verify_audit(uuid, jsonb) to tenancy_auditor, tenancy_admin, tenancy_service;
