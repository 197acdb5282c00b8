-- tenancy.require_another_owner: the last-owner rule; TN005 unless the tenant keeps an owner besides p_user_id.

-- The one place the rule lives: set_member_role and remove_member call it before every change
-- of p_user_id's role and before every removal, with the tenant row locked
-- (tenancy.require_member_manager) and p_user_id's membership locked FOR UPDATE. A member who is
-- not an owner takes no owner away: nothing to check. Counting owners is not enough: under REPEATABLE
-- READ and SERIALIZABLE the count would come from the transaction's snapshot, which can still
-- show an owner another manager has removed since (two owners removing each other would both
-- see two owners). So one other owner's row is locked FOR SHARE instead: a lock taken without
-- error is on a row unchanged since the snapshot, which therefore is an owner now and stays one
-- until this transaction ends. Locking a row changed after the snapshot raises 40001; that
-- owner is skipped and the next one tried, so with a third owner left two owners may still
-- leave at the same time. When no other owner can be locked and one of them failed so, the
-- 40001 is raised again: the snapshot cannot tell whether this is the last owner, a retry can.
-- The subtransaction per tried owner is only paid when an owner's role is taken away; nothing
-- on the path of a policy or a trigger calls this function.
create or replace function tenancy.require_another_owner(
    p_tenant_id uuid, p_user_id text, p_caller_id text
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_owner text;
    v_conflict text;
begin
    -- The caller holds this row's lock, so it reads as it is now.
    perform 1 from tenancy.memberships as m
    where m.tenant_id = p_tenant_id and m.user_id = p_user_id and m.role = 'owner';
    if not found then
        return;
    end if;
    for v_owner in
        select m.user_id from tenancy.memberships as m
        where m.tenant_id = p_tenant_id and m.role = 'owner' and m.user_id <> p_user_id
        order by m.user_id
    loop
        -- The caller's own membership is locked already, and was read as owner after the lock.
        if v_owner = p_caller_id then
            return;
        end if;
        begin
            perform 1 from tenancy.memberships as m
            where m.tenant_id = p_tenant_id and m.user_id = v_owner and m.role = 'owner'
            for share;
            if found then
                return;
            end if;
        exception when serialization_failure then
            get stacked diagnostics v_conflict = message_text;
        end;
    end loop;
    if v_conflict is not null then
        raise exception using
            errcode = '40001',
            message = v_conflict,
            detail = format(
                'The owners of tenant %s changed after this transaction''s snapshot was taken.', p_tenant_id
            ),
            hint = 'Retry the transaction.';
    end if;
    raise exception using
        errcode = 'TN005',
        message = format('user %L is the last owner of tenant %s', p_user_id, p_tenant_id),
        hint = 'Make another member an owner first.';
end
$$;

comment on function tenancy.require_another_owner(uuid, text, text) is
'pgtenancy internal: the last-owner rule, checked before p_user_id''s role changes or '
'p_user_id is removed, with the tenant row and p_user_id''s membership locked: nothing when '
'p_user_id is not an owner; TN005 unless another owner remains (that owner''s membership is '
'locked until the transaction ends); 40001 when the snapshot is too old to tell.';

revoke all on function tenancy.require_another_owner(uuid, text, text) from public;
