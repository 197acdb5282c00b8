-- tenancy.usage_timestamp: a JSON event's occurred_at text as timestamptz, or NULL when it is not one.

create or replace function tenancy.usage_timestamp(p_value text)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- ISO 8601 only: a date, a time and an offset (Z or +hh:mm); no 'now', 'today' or epoch words.
    if p_value is null
        or not regexp_like(p_value, '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$') then
        return null;
    end if;
    return p_value::timestamptz;
exception
    when datetime_field_overflow or invalid_datetime_format or invalid_time_zone_displacement_value then
        return null;
end
$$;

comment on function tenancy.usage_timestamp(text) is
'pgtenancy internal: p_value, an ISO 8601 timestamp with an offset, as timestamptz; NULL when it '
'is not one (or names no real instant, such as month 13).';

revoke all on function tenancy.usage_timestamp(text) from public;
