-- tenancy.api_key_attempt: the body of authenticate_api_key and try_authenticate_api_key: check a key, set its context or count the failure.

-- Checks, in this order: a read-write transaction (25006, before the key is looked at: a
-- read-only transaction could not count a failure, and would be an uncounted oracle); the key's
-- shape (TN004: 70 bytes, pgtk_, base64url, a canonical tenant part), before any hashing; its
-- hash, one probe of tenancy.api_key_secrets' primary key joined to the key's row (unknown:
-- TN004); the key's lockout (TN013); revoked or expired (TN004); its tenant active (TN002).
-- A refusal drops any context, is counted and recorded (tenancy.authentication_failed: the count
-- survives any rollback, the event row stays when the caller commits), then raised (p_raise) or
-- returned in error_code and error_message. Either way it is counted before anything can roll it
-- back, so no exception block (a subtransaction) is needed but the ones below, off the common
-- path. Messages name the check and at most the key's id and listed prefix, never the key.
-- Under REPEATABLE READ and SERIALIZABLE the key's secret row is locked (released at once, as in
-- context_preconditions): a revocation committed after the snapshot raises 40001.
-- Cheap checks first: the length, then the alphabet as one negated character class (a counted
-- repetition such as {65} costs the regular expression engine some ten times more).
create or replace function tenancy.api_key_attempt(
    p_key text,
    p_raise boolean,
    out tenant_id uuid,
    out role text,
    out api_key_id uuid,
    out error_code text,
    out error_message text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid;
    v_key_id uuid;
    v_role text;
    v_prefix text;
    v_expires_at timestamptz;
    v_revoked_at timestamptz;
    v_last_used_at timestamptz;
    v_status text;
    v_tenant_key text;
    v_subject text;
    v_limit integer;
    v_window bigint;
    v_count_0 bigint;
    v_count_1 bigint;
begin
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'an API key needs a read-write transaction (a tenant context records its key with setval)',
            hint = 'Start the transaction without READ ONLY; reads stay reads. Hot standbys cannot set a context.';
    end if;
    <<checks>>
    begin
        error_code := 'TN004';
        if p_key is null then
            error_message := 'API key is NULL';
            exit checks;
        end if;
        if octet_length(p_key) <> 70 then
            error_message := format(
                'malformed API key: %s bytes long, an API key has 70 (pgtk_ and 65 base64url characters)',
                octet_length(p_key)
            );
            exit checks;
        end if;
        if not starts_with(p_key, 'pgtk_') then
            error_message := 'malformed API key: it does not start with pgtk_';
            exit checks;
        end if;
        if p_key ~ '[^A-Za-z0-9_-]' then
            error_message := 'malformed API key: it holds characters other than base64url (A-Z, a-z, 0-9, - and _)';
            exit checks;
        end if;
        v_tenant_id := encode(tenancy.base64url_decode(substr(p_key, 6, 22)), 'hex')::uuid;
        if v_tenant_id is null then
            error_message := 'malformed API key: its tenant part is not canonical base64url';
            exit checks;
        end if;

        if current_setting('transaction_isolation') = 'read committed' then
            select s.api_key_id, s.revoked_at, k.role, k.prefix, k.expires_at, k.last_used_at
            into v_key_id, v_revoked_at, v_role, v_prefix, v_expires_at, v_last_used_at
            from tenancy.api_key_secrets as s
            inner join tenancy.api_keys as k on k.tenant_id = s.tenant_id and k.id = s.api_key_id
            where s.tenant_id = v_tenant_id and s.hash = tenancy.secret_hash(p_key);
        else
            begin
                select s.api_key_id, s.revoked_at, k.role, k.prefix, k.expires_at, k.last_used_at
                into v_key_id, v_revoked_at, v_role, v_prefix, v_expires_at, v_last_used_at
                from tenancy.api_key_secrets as s
                inner join tenancy.api_keys as k on k.tenant_id = s.tenant_id and k.id = s.api_key_id
                where s.tenant_id = v_tenant_id and s.hash = tenancy.secret_hash(p_key)
                for share of s;
                raise exception using errcode = 'TN000', message = 'release the row lock';
            exception when sqlstate 'TN000' then
                null;  -- the variables keep the values read above
            end;
        end if;
        if v_key_id is null then
            -- The tenant is the key's own claim, not the event's tenant: anyone can write it.
            error_message := format('unknown API key: no key of tenant %s has its hash', v_tenant_id);
            exit checks;
        end if;

        v_subject := 'api_key:' || v_key_id;
        -- tenancy.auth_failures(v_subject) >= the limit, read here without another function call
        -- and configuration read (every successful call pays for it): each of the subject's two
        -- counters holds the window number above its low 20 bits, the failures in it below them.
        select c.lockout_failures, tenancy.lockout_window_number(c.lockout_window)
        into v_limit, v_window
        from tenancy.auth_config as c;
        if v_limit > 0 then
            v_count_0 := pg_sequence_last_value(tenancy.auth_failure_counter(v_subject, 0));
            v_count_1 := pg_sequence_last_value(tenancy.auth_failure_counter(v_subject, 1));
            if v_count_0 >> 20 = v_window and v_count_1 >> 20 = v_window
                and least(v_count_0 & 1048575, v_count_1 & 1048575) >= v_limit then
                begin
                    perform tenancy.require_not_locked_out(array[v_subject]);
                exception when sqlstate 'TN013' then
                    get stacked diagnostics error_message = message_text;
                    error_code := 'TN013';
                    exit checks;
                end;
            end if;
        end if;
        if v_revoked_at is not null then
            error_message := format('API key %s (%s...) was revoked at %s', v_key_id, v_prefix, v_revoked_at);
            exit checks;
        end if;
        if v_expires_at <= clock_timestamp() then
            error_message := format('API key %s (%s...) expired at %s', v_key_id, v_prefix, v_expires_at);
            exit checks;
        end if;
        select c.status, c.key into v_status, v_tenant_key
        from tenancy.context_preconditions(v_tenant_id, null) as c;
        if v_status is distinct from 'active' then
            error_code := 'TN002';
            error_message := format('tenant %s of API key %s is %s', v_tenant_id, v_key_id, coalesce(v_status, 'missing'));
            exit checks;
        end if;
        error_code := null;
    end checks;

    if error_code is not null then
        perform tenancy.clear_context();
        perform tenancy.authentication_failed(
            error_code, error_message, array[v_subject], v_tenant_id, null, null, v_key_id::text
        );
        if p_raise then
            raise exception using
                errcode = error_code,
                message = error_message,
                hint = 'The failure is counted even when the transaction rolls back; repeated failures lock the key out.';
        end if;
        -- v_tenant_id may be the key's own claim: nothing but the refusal is returned.
        return;
    end if;

    perform tenancy.establish_context(v_tenant_id, chr(30) || v_key_id::text, v_role, v_tenant_key);
    -- At most one write a minute per key, and none that waits: a row another transaction is
    -- updating (its own refresh, a revocation) is skipped, and under REPEATABLE READ a refresh
    -- committed after the snapshot (40001 when updating the row) leaves it to that one.
    if v_last_used_at is null or v_last_used_at < now() - interval '1 minute' then
        begin
            update tenancy.api_keys as k
            set last_used_at = now()
            where k.tenant_id = v_tenant_id and k.id = (
                select l.id from tenancy.api_keys as l
                where l.tenant_id = v_tenant_id and l.id = v_key_id
                    and (l.last_used_at is null or l.last_used_at < now() - interval '1 minute')
                for no key update skip locked
            );
        exception when serialization_failure then
            null;
        end;
    end if;
    tenant_id := v_tenant_id;
    role := v_role;
    api_key_id := v_key_id;
end
$$;

comment on function tenancy.api_key_attempt(text, boolean) is
'pgtenancy internal: checks an API key and sets its context (tenant, the key''s role, user NULL, '
'the key id: tenancy.current_api_key_id), returning tenant_id, role and api_key_id; or counts '
'and records the refusal (TN004, TN002, TN013) and raises it (p_raise) or returns its '
'error_code and error_message. Raises 25006 in a read-only transaction, 40001 under REPEATABLE '
'READ or SERIALIZABLE when the key or its tenant changed after the snapshot, TN008 for a session '
'that is not clean.';

revoke all on function tenancy.api_key_attempt(text, boolean) from public;
