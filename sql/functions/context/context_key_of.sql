-- tenancy.context_key_of: the 64-bit key binding a tenant and a member role to this transaction.

-- uuid_hash_extended over the tenant, seeded with a hash of the transaction start time, with the
-- role's code in the low three bits. Nothing in it is free text: a value written by hand can only
-- name another existing tenant, which matches the stored key with probability 2^-61 per try.
-- Inlinable SQL: no SET clause, every name schema-qualified.
-- The role codes come from tenancy.member_role: each role's position in the type (owner 1,
-- admin 2, member 3, viewer 4), then service (5). They are written into the body as constants
-- when this file is applied (a catalog lookup would cost every policy check a query): the roles
-- are spelled in the type alone, and tests/pgtap/12-one_source.sql checks the codes against it. A
-- migration that adds a role appends it (its code is the next one; the others keep theirs) and
-- must be followed by this file being applied again (change it, e.g. this comment): until then
-- the new role's code is NULL and its contexts are refused.
-- The codes need only agree within one transaction (the key covers its start time and lives in
-- a per-session sequence value): a transaction open while this function is replaced is the only
-- one that sees two sets of codes. Appending a role keeps every member role's code and gives the
-- new role service's, so such a transaction's service context can at most read as the new role,
-- never as more. A role added BEFORE others would renumber them: add roles at the end.
do $key_of$
declare
    v_cases text;
    v_service integer;
begin
    select
        pg_catalog.string_agg(
            pg_catalog.format(
                'when p_role operator(pg_catalog.=) %L then %s', r.label, r.code
            ),
            E'\n                    ' order by r.code
        ),
        pg_catalog.count(*) operator(pg_catalog.+) 1
    into v_cases, v_service
    from pg_catalog.unnest(pg_catalog.enum_range(null::tenancy.member_role)::pg_catalog.text [])
        with ordinality as r (label, code);
    -- Three bits hold the codes: six member roles at most, and service.
    if v_service operator(pg_catalog.>) 7 then
        raise exception using
            errcode = '54000',
            message = pg_catalog.format(
                'tenancy.member_role has %s roles; the context key encodes at most 6', v_service operator(pg_catalog.-) 1
            );
    end if;
    execute pg_catalog.format(
        $ddl$
        create or replace function tenancy.context_key_of(p_tenant_id uuid, p_role text)
        returns bigint
        language sql
        stable
        parallel safe
        as $body$
            select pg_catalog.uuid_hash_extended(
                p_tenant_id,
                pg_catalog.hashfloat8extended(
                    pg_catalog.date_part('epoch', pg_catalog.transaction_timestamp()),
                    0::pg_catalog.int8
                )
            )
            operator(pg_catalog.#) (
                case
                    %s
                    when p_role operator(pg_catalog.=) 'service' then %s
                end
            )::pg_catalog.int8
        $body$
        $ddl$,
        v_cases,
        v_service
    );
end
$key_of$;

comment on function tenancy.context_key_of(uuid, text) is
'pgtenancy internal: a 64-bit hash of the tenant and the start time of the current transaction '
'with the role code (the role''s position in tenancy.member_role: owner 1, admin 2, member 3, '
'viewer 4; service 5) in its low bits; NULL for an unknown role. Stored with setval() by '
'establish_context, compared by context_tenant_id.';

revoke all on function tenancy.context_key_of(uuid, text) from public;
grant execute on function tenancy.context_key_of(uuid, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
