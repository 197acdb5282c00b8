-- tenancy.usage_timestamp: a JSON event's occurred_at text as timestamptz, or NULL when it is not one.

create or replace function tenancy.usage_timestamp(p_value text)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- ISO 8601 only: a date, a time and an offset (Z or +hh:mm); no 'now', 'today' or epoch
    -- words. Fields out of range (month 13, hour 24, an offset beyond 15:59) fail the pattern.
    if p_value is null or not regexp_like(
        p_value,
        '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?'
        '(Z|[+-](0\d|1[0-5])(:?[0-5]\d)?)$'
    ) then
        return null;
    end if;
    -- Every month of years 1 to 9999 has days 1 to 28: those cast without fail. Days 29 to 31
    -- may name no day (February 30th), and year 0 none at all: only they pay for the exception
    -- block's subtransaction.
    if substr(p_value, 9, 2) <= '28' and substr(p_value, 1, 4) <> '0000' then
        return p_value::timestamptz;
    end if;
    begin
        return p_value::timestamptz;
    exception
        when datetime_field_overflow or invalid_datetime_format or invalid_time_zone_displacement_value then
            return null;
    end;
end
$$;

comment on function tenancy.usage_timestamp(text) is
'pgtenancy internal: p_value, an ISO 8601 timestamp with an offset, as timestamptz; NULL when it '
'is not one (or names no real instant, such as month 13).';

revoke all on function tenancy.usage_timestamp(text) from public;
