-- tenancy.open_support_access: the body of tenancy.begin_support_access, for any duration up to four hours.

-- begin_support_access calls it with whole minutes; the tests call it with seconds, to see an
-- access expire.
-- In order: a read-write transaction (the event is written, the key stored with setval), a
-- reason, a duration, an existing tenant (active or suspended: support may look into a suspended
-- one; a deleted one, offboarded, is refused: 55000)
-- in a clean session (tenancy.context_preconditions: TN008, and 40001 under REPEATABLE READ or
-- SERIALIZABLE when the tenant changed after the snapshot). Then:
-- 1. a number from tenancy.support_accesses, which no rollback takes back, and the
--    support_access.begun event carrying it (attempt) with the reason, the duration and the
--    expiry; the event's database_user is the session user. The access entry in the tenant's
--    audit trail too: action ACCESS, entity support_access and the number, actor role support,
--    metadata the reason, the expiry and the minutes over the request metadata, db_user the
--    session user. Both are written before the transaction becomes read-only. Nothing in core
--    PostgreSQL writes outside the transaction: if the transaction rolls back, the event and the
--    entry go with it, the number does not, and tenancy.support_access_gaps() shows it to the
--    auditor. A LOG line in the server log says the same, and stays too;
-- 2. a context in the tenant with the role support/<expiry>/<xid> (expiry in whole epoch
--    seconds, rounded down; the transaction's id) and no user. The whole role is bound into the
--    context key (tenancy.support_key_of), so neither can be changed by hand;
-- 3. SET LOCAL transaction_read_only = on. After the transaction's first query PostgreSQL
--    refuses SET TRANSACTION READ WRITE and transaction_read_only = off, in a savepoint too, so
--    every write is refused by the server (25006). Where it can be undone (RESET on PostgreSQL 15,
--    a rolled-back savepoint taken before the access began) the access ends with it:
--    tenancy.support_access_open requires a read-only transaction.
create or replace function tenancy.open_support_access(p_tenant_id uuid, p_reason text, p_duration interval)
returns table (tenant_id uuid, role text, expires_at timestamptz, access_number bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reason text := btrim(p_reason);
    v_status text;
    v_key text;
    v_number bigint;
    v_expiry bigint;
begin
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'support access needs a read-write transaction (it records its event, then makes the transaction read-only)',
            hint = 'Start the transaction without READ ONLY; one support access per transaction.';
    end if;
    if v_reason is null or v_reason = '' or length(v_reason) > 500 or v_reason ~ '[[:cntrl:]]' then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid support access reason %s', coalesce(quote_literal(tenancy.token_excerpt(p_reason, 100)), 'NULL')
            ),
            hint = 'Say why (a ticket, say) in 1 to 500 characters without control characters: the tenant''s '
                'owners and admins read it.';
    end if;
    if p_duration is null or p_duration < interval '1 second' or p_duration > interval '240 minutes' then
        raise exception using
            errcode = '22023',
            message = format(
                'support access duration %s is out of range: 1 to 240 minutes', coalesce(p_duration::text, 'NULL')
            );
    end if;
    select c.status, c.key into v_status, v_key
    from tenancy.context_preconditions(p_tenant_id, null) as c;
    if v_status is null then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_status = 'deleted' then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is deleted: it has no rows to read', p_tenant_id),
            hint = 'Its deletion certificate: tenancy.deletion_certificate(); its audit trail is kept.';
    end if;
    v_number := nextval('tenancy.support_accesses'::regclass);
    v_expiry := floor(extract(epoch from clock_timestamp() + p_duration))::bigint;
    perform tenancy.record_security_event(
        'support_access.begun', v_reason, p_tenant_id, null, null, null,
        jsonb_build_object(
            'access_number', v_number,
            'database_user', session_user::text,
            'duration', p_duration::text,
            'expires_at', to_timestamp(v_expiry)
        ),
        null, v_number
    );
    -- The access entry of the tenant's audit trail (its owners and admins read it there too).
    insert into tenancy.audit_logs (
        tenant_id, txid, action, entity_type, entity_id, actor_role, metadata
    )
    values (
        p_tenant_id, pg_current_xact_id()::text::bigint, 'ACCESS', 'support_access', v_number::text, 'support',
        tenancy.request_metadata()
        || jsonb_build_object(
            'reason', v_reason,
            'expires_at', to_timestamp(v_expiry),
            'minutes', trim_scale(extract(epoch from p_duration) / 60)
        )
    );
    raise log 'pgtenancy: support access % to tenant % by % until %: %',
        v_number, p_tenant_id, session_user, to_timestamp(v_expiry), v_reason;
    perform tenancy.establish_context(
        p_tenant_id, null, format('support/%s/%s', v_expiry, pg_current_xact_id()), v_key
    );
    execute 'set local transaction_read_only = on';
    return query select p_tenant_id, 'support'::text, to_timestamp(v_expiry), v_number;
end
$$;

comment on function tenancy.open_support_access(uuid, text, interval) is
'pgtenancy internal: the body of tenancy.begin_support_access, for a duration of 1 second to '
'240 minutes: records the support_access.begun event numbered from tenancy.support_accesses and '
'its ACCESS entry in the tenant''s audit trail, sets a support context in the tenant and makes '
'the transaction read-only.';

revoke all on function tenancy.open_support_access(uuid, text, interval) from public;
