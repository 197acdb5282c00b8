-- tenancy.verify_custom_domain: record what DNS returned for a custom domain's TXT record; verified once the expected value was seen.

-- Called by trusted backends (pgtenancy domains verify) with every TXT string found at
-- _pgtenancy-challenge.<domain>. The expected value, pgtenancy-verification=<token>, among them
-- (surrounding whitespace ignored): verified, and the domain resolves. Otherwise a pending or
-- failed domain is failed (checked again later: the record may not have propagated yet); a
-- verified one stays verified (the record may be taken down once checked). Returns the status.
create or replace function tenancy.verify_custom_domain(p_hostname text, p_txt_values text[])
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_host text := tenancy.normalized_host(p_hostname);  -- TN010 when malformed
    v_domain record;
    v_seen boolean;
begin
    select d.tenant_id, d.status, d.txt_token into v_domain
    from tenancy.domain_claims as c
    inner join tenancy.tenant_domains as d on d.tenant_id = c.tenant_id and d.hostname = c.hostname
    where c.hostname = v_host and c.kind = 'custom'
    for update of c, d;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('custom domain %L is not claimed', coalesce(v_host, p_hostname));
    end if;
    if v_domain.status = 'verified' then
        update tenancy.tenant_domains as d set checked_at = now()
        where d.tenant_id = v_domain.tenant_id and d.hostname = v_host;
        return 'verified';
    end if;
    v_seen := exists (
        select from unnest(p_txt_values) as v (value)
        where btrim(v.value) = 'pgtenancy-verification=' || v_domain.txt_token
    );
    if v_seen then
        update tenancy.tenant_domains as d
        set status = 'verified', checked_at = now(), verified_at = now()
        where d.tenant_id = v_domain.tenant_id and d.hostname = v_host;
        update tenancy.domain_claims as c set resolves = true where c.hostname = v_host;
        return 'verified';
    end if;
    update tenancy.tenant_domains as d
    set status = 'failed', checked_at = now(), failed_at = now()
    where d.tenant_id = v_domain.tenant_id and d.hostname = v_host;
    return 'failed';
end
$$;

comment on function tenancy.verify_custom_domain(text, text[]) is
'For tenancy_service: p_txt_values are the TXT strings DNS returned for '
'_pgtenancy-challenge.<p_hostname>. With the value tenancy.add_custom_domain returned among them '
'the domain becomes verified and resolves; otherwise a pending or failed domain becomes failed. '
'Returns the status. P0002 when no tenant claims the domain; TN010 when it is malformed.';

revoke all on function tenancy.verify_custom_domain(text, text[]) from public;
grant execute on function tenancy.verify_custom_domain(text, text[]) to tenancy_service;
