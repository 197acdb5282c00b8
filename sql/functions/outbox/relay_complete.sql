-- tenancy.relay_complete: record the outcome of leased deliveries: delivered, retried later, dead-lettered, or put back.

-- Only deliveries still leased to p_relay change: a relay whose lease ran out and whose work
-- another relay claimed records nothing (that relay's outcome counts). Outcomes:
--   delivered  a 2xx; the delivery is done.
--   retry      a failure (timeout, 429, 5xx, other 4xx): tried again after p_retry_after seconds
--              when given (Retry-After), else tenancy.delivery_retry_delay; dead-lettered instead
--              once it has had p_max_attempts attempts.
--   dead       dead-lettered now (an endpoint that is disabled, removed or not allowed).
--   gone       410 Gone: dead-lettered, and its endpoint disabled with every delivery queued for it.
--   defer      not attempted (a rate limit, a relay stopping): due again after p_retry_after
--              seconds (default 0), the attempt not counted.
create or replace function tenancy.relay_complete(
    p_relay text,
    p_tenant_ids uuid[],
    p_event_ids uuid[],
    p_destination_ids uuid[],
    p_occurred_at timestamptz[],
    p_outcomes text[],
    p_statuses integer[],
    p_errors text[],
    p_retry_after numeric[],
    p_max_attempts integer default 12
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
    v_bad text;
    v_gone_tenants uuid[];
    v_gone_endpoints uuid[];
begin
    select o.outcome into v_bad
    from unnest(p_outcomes) as o (outcome)
    where o.outcome is null or o.outcome <> all('{delivered,retry,dead,gone,defer}'::text[])
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('delivery outcome %s is not delivered, retry, dead, gone or defer', coalesce(quote_literal(v_bad), 'NULL'));
    end if;
    if p_max_attempts is null or p_max_attempts not between 1 and 100 then
        raise exception using errcode = '22023', message = format('max attempts %s: 1 to 100', coalesce(p_max_attempts::text, 'NULL'));
    end if;
    with r as (
        select *
        from unnest(
            p_tenant_ids, p_event_ids, p_destination_ids, p_occurred_at, p_outcomes, p_statuses, p_errors, p_retry_after
        ) as r (tenant_id, event_id, destination_id, occurred_at, outcome, status, error, retry_after)
    ),
    done as (
        update tenancy.deliveries as d
        set lease_until = null,
            leased_by = null,
            last_status = coalesce(r.status, case when r.outcome = 'defer' then d.last_status end),
            last_error = case when r.outcome = 'defer' then d.last_error else left(r.error, 1000) end,
            delivered_at = case when r.outcome = 'delivered' then now() end,
            dead_at = case
                when r.outcome in ('dead', 'gone') or (r.outcome = 'retry' and d.attempts >= p_max_attempts) then now()
            end,
            next_attempt_at = case
                when r.outcome = 'retry' then
                    -- least() skips NULLs: without a Retry-After the backoff schedule applies.
                    now() + case
                        when r.retry_after is not null then make_interval(secs => least(greatest(r.retry_after, 0), 86400))
                        else tenancy.delivery_retry_delay(d.attempts)
                    end
                when r.outcome = 'defer' then now() + make_interval(secs => least(coalesce(r.retry_after, 0), 86400))
                else d.next_attempt_at
            end,
            attempts = case when r.outcome = 'defer' then greatest(d.attempts - 1, 0) else d.attempts end
        from r
        where d.tenant_id = r.tenant_id and d.event_id = r.event_id and d.destination_id = r.destination_id
            and d.occurred_at = r.occurred_at and d.leased_by = p_relay
            and d.delivered_at is null and d.dead_at is null
        returning d.tenant_id, d.destination_id, r.outcome
    ),
    counted as (
        select count(*)::integer as n from done
    )
    select counted.n, array(select distinct done.tenant_id from done where done.outcome = 'gone'),
        array(select distinct done.destination_id from done where done.outcome = 'gone')
    into v_count, v_gone_tenants, v_gone_endpoints
    from counted;
    if cardinality(v_gone_endpoints) > 0 then
        update tenancy.connector_endpoints as e
        set enabled = false, disabled_reason = 'the endpoint answered 410 Gone', disabled_at = now(), updated_at = now()
        where e.tenant_id = any(v_gone_tenants) and e.id = any(v_gone_endpoints) and e.enabled;
        update tenancy.deliveries as d
        set dead_at = now(), last_error = 'endpoint disabled: it answered 410 Gone', lease_until = null, leased_by = null
        where d.tenant_id = any(v_gone_tenants) and d.destination_id = any(v_gone_endpoints)
            and d.delivered_at is null and d.dead_at is null;
    end if;
    return v_count;
end
$$;

comment on function tenancy.relay_complete(text, uuid[], uuid[], uuid[], timestamptz[], text[], integer[], text[], numeric[], integer) is
'For the relay (tenancy_service): records the outcomes (delivered, retry, dead, gone, defer) of '
'deliveries leased to p_relay, given as parallel arrays, with HTTP status, error and Retry-After '
'seconds; a retry past p_max_attempts (default 12, about a day of backoff) is dead-lettered; '
'gone (410) disables the endpoint and dead-letters what was queued for it. Deliveries no '
'longer leased to p_relay are left alone. Returns how many were recorded. 22023 for an unknown outcome.';

revoke all on function tenancy.relay_complete(text, uuid[], uuid[], uuid[], timestamptz[], text[], integer[], text[], numeric[], integer) from public;
grant execute on function tenancy.relay_complete(text, uuid[], uuid[], uuid[], timestamptz[], text[], integer[], text[], numeric[], integer) to tenancy_service;
