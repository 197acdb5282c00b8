-- tenancy.lint_personal_data: lint 0022's findings, columns of tenant tables that look personal (by name or sampled contents) but are not classified.

-- Runs as the caller (doctor's connection): the sample reads only the rows the caller's row level
-- security shows (a superuser or a BYPASSRLS role sees every tenant's; tenancy_admin or
-- tenancy_auditor without a tenant context sees none of a forced table, and then only names are
-- checked), and skips columns the caller may not read. It returns findings, never a value: the
-- sample query returns counts only.
--
-- Tenant tables: tenancy.lint_tenant_tables outside schema tenancy (pgtenancy's own), but
-- temporary tables and partitions and inheritance children of tenant tables (their parent stands
-- for them). A column is classified when it is in pii or is the subject column of the table's
-- entry: in p_spec when given and it lists the table (the spec is what generate writes the
-- registry from, so it decides), else in tenancy.personal_data. Without the privilege to read
-- tenancy.personal_data nothing is returned.
--
-- By name (text-like columns; IP addresses also inet and cidr, birth dates also date and time
-- types; arrays by their element type): the column name's words (split at non-alphanumerics and
-- lower-to-upper case changes) contain email, e-mail, mail; phone, telephone, fax, tel/mobile/cell
-- alone or with number; first/last/full/given/family/middle/maiden/nick name, surname, forename,
-- username and the name of a customer, client, contact, person and the like (name alone only in a
-- table whose rows are data subjects or whose name says people: users, customers, contacts...);
-- address (not server, host, mac, wallet... address), street, postcode, postal code, zip (code) at
-- the end; dob, birth date, birthday, date of birth; ip, ipv4, ipv6, ip address, remote or client
-- addr at the end; ssn, social security, national id or insurance, passport, tax id, driver's
-- licence, id card; iban, bank account; credit card, card number. A name ending in id, count,
-- type, kind, status, template, format, domain, provider, server, host, verified, confirmed,
-- enabled, opt in, sent or token is not personal (email_verified, email_template).
--
-- By contents (other text-like columns, not the tenant column): at most 100 rows, read from the
-- whole table when it has at most 32 pages (partitions and children included), else from a
-- TABLESAMPLE SYSTEM of about 32 pages (REPEATABLE: the same rows each run); a WARN when at least
-- 5 values are not empty and more than half of them look like email addresses, phone numbers
-- (+ and 8 to 15 digits, or 9 to 15 digits in 3 or more groups) or IPv4/IPv6 addresses.
create or replace function tenancy.lint_personal_data(p_spec jsonb default null)
returns table (
    code pg_catalog.text,
    name pg_catalog.text,
    level pg_catalog.text,
    object pg_catalog.text,
    detail pg_catalog.text,
    remediation pg_catalog.text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    c_max_pages constant pg_catalog.int8 := 32;
    c_max_rows constant pg_catalog.int4 := 100;
    c_min_values constant pg_catalog.int8 := 5;
    c_email constant pg_catalog.text := '^[A-Za-z0-9._%+''-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$';
    c_ip constant pg_catalog.text :=
        '^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
        '|([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}'
        '|([0-9a-f]{1,4}(:[0-9a-f]{1,4})*)?::([0-9a-f]{1,4}(:[0-9a-f]{1,4})*)?'
        '|::ffff:[0-9]{1,3}(\.[0-9]{1,3}){3})(%[0-9a-z._-]+)?(/[0-9]{1,3})?$';
    c_phone_international constant pg_catalog.text := '^\+[0-9 ().-]+$';
    c_phone_grouped constant pg_catalog.text := '^\(?[0-9]{1,5}\)?([ .-]+[0-9]{1,5}){2,5}$';
    v_spec pg_catalog.text := coalesce(p_spec operator (pg_catalog.->>) 'display', 'the spec (tenancy.toml)');
    v_fix pg_catalog.text;
    v_registry pg_catalog.text;
    v_table record;
    v_pages pg_catalog.int8;
    v_select pg_catalog.text;
    v_counts pg_catalog.int8[];
    v_values pg_catalog.int8;
    v_email pg_catalog.int8;
    v_phone pg_catalog.int8;
    v_ip pg_catalog.int8;
    v_column pg_catalog.name;
    v_kind pg_catalog.text;
    v_why pg_catalog.text;
begin
    if not pg_catalog.has_table_privilege('tenancy.personal_data', 'SELECT') then
        return;
    end if;
    for v_table in
        with
        spec as (
            select
                pg_catalog.to_regclass(pg_catalog.format('%I.%I', s.schema, s.name)) as relid,
                case
                    when s.subject is null then coalesce(s.pii, '{}')
                    else coalesce(s.pii, '{}') operator (pg_catalog.||) s.subject
                end as classified,
                s.subject is not null as declared,
                s.subject is not null and not coalesce(s.references, false) as subjects
            from pg_catalog.jsonb_to_recordset(
                coalesce(p_spec operator (pg_catalog.->) 'tables', '[]')
            ) as s (schema pg_catalog.text, name pg_catalog.text, pii pg_catalog.text[],
                subject pg_catalog.text, "references" pg_catalog.bool)
        ),

        roots as (
            select
                tt.relid,
                tt.tenant_column,
                c.relkind,
                c.relname,
                n.nspname
            from tenancy.lint_tenant_tables as tt
            inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) tt.relid
            inner join pg_catalog.pg_namespace as n on n.oid operator (pg_catalog.=) c.relnamespace
            where
                n.nspname operator (pg_catalog.<>) 'tenancy'
                and c.relpersistence operator (pg_catalog.<>) 't'
                and pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                and not exists (
                    select from pg_catalog.pg_inherits as i
                    inner join tenancy.lint_tenant_tables as parent
                        on parent.relid operator (pg_catalog.=) i.inhparent
                    where i.inhrelid operator (pg_catalog.=) tt.relid
                )
        ),

        entries as (
            select
                r.relid,
                r.tenant_column,
                r.relkind,
                s.relid is not null as in_spec,
                case
                    when s.relid is not null then s.classified
                    when d.table_name is not null then d.pii operator (pg_catalog.||) d.subject_column::pg_catalog.text
                    else '{}'
                end as classified,
                case when s.relid is not null then s.declared else d.table_name is not null end as declared,
                case
                    when s.relid is not null then s.subjects
                    else d.table_name is not null and d.subject_references is null
                end
                -- A table named for people: its bare "name" is a person's.
                or r.relname operator (pg_catalog.~) (
                    '^(users?|customers?|clients?|contacts?|people|persons?|employees?|members?|'
                    'patients?|students?|guests?|leads?|subscribers?|candidates?|applicants?)$'
                ) as people,
                pg_catalog.format('%s.%s', r.nspname, r.relname) as spec_key
            from roots as r
            left join spec as s on s.relid operator (pg_catalog.=) r.relid
            left join tenancy.personal_data as d on d.table_name operator (pg_catalog.=) r.relid
        ),

        cols as (
            select
                e.relid,
                a.attnum,
                a.attname,
                e.relkind,
                e.tenant_column,
                e.people,
                '_' operator (pg_catalog.||) pg_catalog.lower(pg_catalog.regexp_replace(
                    pg_catalog.regexp_replace(a.attname::pg_catalog.text, '([a-z0-9])([A-Z])', '\1_\2', 'g'),
                    '[^A-Za-z0-9]+', '_', 'g'
                )) operator (pg_catalog.||) '_' as words,
                bt.typcategory as category,
                t.typcategory operator (pg_catalog.=) 'A' as is_array
            from entries as e
            inner join pg_catalog.pg_attribute as a on a.attrelid operator (pg_catalog.=) e.relid
            inner join pg_catalog.pg_type as t0 on t0.oid operator (pg_catalog.=) a.atttypid
            -- a domain by its base type, an array by its element type
            inner join pg_catalog.pg_type as t
                on t.oid operator (pg_catalog.=) case
                    when t0.typtype operator (pg_catalog.=) 'd' then t0.typbasetype else t0.oid
                end
            inner join pg_catalog.pg_type as bt
                on bt.oid operator (pg_catalog.=) case
                    when t.typcategory operator (pg_catalog.=) 'A' then t.typelem else t.oid
                end
            where
                a.attnum operator (pg_catalog.>) 0
                and not a.attisdropped
                and a.attname operator (pg_catalog.<>) all(e.classified::pg_catalog.name[])
        ),

        kinds as (
            select
                c.*,
                case
                    when c.words operator (pg_catalog.~) (
                        '_(id|ids|uuid|count|type|kind|status|template|format|domain|provider|server|host|'
                        'verified|confirmed|enabled|opt_?in|sent|token)_$'
                    ) then null
                    when c.category operator (pg_catalog.=) 'S' and c.words operator (pg_catalog.~) '_(e_?mails?|mail)_'
                        then 'email addresses'
                    when
                        c.category operator (pg_catalog.=) any('{S,I}')
                        and c.words operator (pg_catalog.~) (
                            '_(ip|ipv4|ipv6|ip_?addr(ess)?|remote_addr(ess)?|client_addr(ess)?|forwarded_for)_$'
                        )
                        then 'IP addresses'
                    when
                        c.category operator (pg_catalog.=) 'S'
                        and c.words operator (pg_catalog.~) (
                            '_(phones?|telephone|cellphone|fax|msisdn)_|_(tel|mobile|cell)_(number|no|nr)_|^_(tel|mobile|cell)_$'
                        )
                        then 'phone numbers'
                    when
                        c.category operator (pg_catalog.=) 'S'
                        and (
                            c.words operator (pg_catalog.~) (
                                '_(first|last|full|given|family|middle|maiden|sur|fore|nick|birth|customer|client|'
                                'contact|person|patient|employee|user|member|owner|recipient|sender|buyer|guest|'
                                'student|holder|cardholder|signer|applicant|candidate|passenger|beneficiary|'
                                'billing|shipping)_?names?_'
                            )
                            or (c.people and c.words operator (pg_catalog.=) '_name_')
                        )
                        then 'person names'
                    when
                        c.category operator (pg_catalog.=) 'S'
                        and c.words operator (pg_catalog.~) (
                            '_(ssn|social_security|national_(id|identity|insurance)|passport|tax_?id|taxpayer_id|'
                            'drivers?_licen[cs]e|driving_licen[cs]e|id_card|identity_card)_'
                        )
                        then 'identity document or tax numbers'
                    when c.category operator (pg_catalog.=) 'S' and c.words operator (pg_catalog.~) '_(iban|bank_account)_'
                        then 'bank account numbers'
                    when
                        c.category operator (pg_catalog.=) 'S'
                        and c.words operator (pg_catalog.~) '_(credit_card|card_number|cc_number)_'
                        then 'payment card numbers'
                    when
                        c.category operator (pg_catalog.=) 'S'
                        and (
                            c.words operator (pg_catalog.~) '_(street|postcodes?|post_code|postal_codes?|postalcode|house_number)_'
                            or c.words operator (pg_catalog.~) '_zip(_?codes?)?_$'
                            or (
                                c.words operator (pg_catalog.~) '_address(es)?_'
                                and c.words operator (pg_catalog.!~) (
                                    '_(server|host|hostname|mac|memory|web|url|network|wallet|contract|bind|listen|'
                                    'base|node|peer|proxy|relay|smtp)_address'
                                )
                            )
                        )
                        then 'postal addresses'
                    when
                        c.category operator (pg_catalog.=) any('{S,D}')
                        and c.words operator (pg_catalog.~) '_(dob|birth_?date|birth_?day|date_of_birth|born_(on|at))_'
                        then 'birth dates'
                end as kind
            from cols as c
        )

        select
            e.relid,
            e.declared,
            e.in_spec,
            e.spec_key,
            pg_catalog.array_agg(k.attname order by k.attnum) filter (where k.kind is not null) as named,
            pg_catalog.array_agg(k.kind order by k.attnum) filter (where k.kind is not null) as named_kinds,
            pg_catalog.array_agg(k.attname order by k.attnum) filter (
                where
                    k.kind is null
                    and k.category operator (pg_catalog.=) 'S'
                    and not k.is_array
                    and k.relkind operator (pg_catalog.=) any('{r,p}')
                    and k.attname is distinct from k.tenant_column
                    and pg_catalog.has_column_privilege(k.relid, k.attnum, 'SELECT')
            ) as sampled
        from entries as e
        inner join kinds as k on k.relid operator (pg_catalog.=) e.relid
        group by e.relid, e.declared, e.in_spec, e.spec_key
        order by e.relid
    loop
        code := '0022';
        name := 'personal_data_not_classified';
        level := 'WARN';
        -- Which source classifies the table's columns (the spec when it lists the table).
        v_registry := case
            when v_table.in_spec then p_spec operator (pg_catalog.->>) 'display'
            else 'tenancy.personal_data'
        end;
        -- "<column>" is replaced by each column's name.
        v_fix := case
            when v_table.declared then pg_catalog.format(
                'add "<column>" to pii of [tables."%s"] in %s, then pgtenancy generate and apply its '
                'file; or ignore this suggestion if it holds no personal data',
                v_table.spec_key, v_spec
            )
            else pg_catalog.format(
                'declare the personal data of [tables."%s"] in %s: subject = "<the column naming the '
                'data subject>", pii = ["<column>"]; then pgtenancy generate and apply its file; or '
                'ignore this suggestion if it holds no personal data',
                v_table.spec_key, v_spec
            )
        end;
        -- By name.
        for v_i in 1 .. coalesce(pg_catalog.cardinality(v_table.named), 0) loop
            v_column := v_table.named[v_i];
            object := pg_catalog.format('%s.%I', v_table.relid::pg_catalog.regclass, v_column);
            detail := pg_catalog.format(
                'column %I of tenant table %s looks like it holds %s (by its name), but %s does not '
                'classify it as personal data (pii, or the subject column): exporting or erasing a data '
                'subject leaves it out',
                v_column, v_table.relid::pg_catalog.regclass, v_table.named_kinds[v_i], v_registry
            );
            remediation := pg_catalog.replace(v_fix, '<column>', v_column);
            return next;
        end loop;
        -- By contents: one bounded sample of the table for all its other text-like columns.
        continue when coalesce(pg_catalog.cardinality(v_table.sampled), 0) operator (pg_catalog.=) 0;
        with recursive tree (relid) as (
            select v_table.relid
            union all
            select i.inhrelid
            from pg_catalog.pg_inherits as i
            inner join tree as t on t.relid operator (pg_catalog.=) i.inhparent
        )

        select
            coalesce(pg_catalog.sum(pg_catalog.pg_relation_size(t.relid)), 0)::pg_catalog.int8
            operator (pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8
        into v_pages
        from tree as t;
        select
            pg_catalog.format(
                'select array[%s]::pg_catalog.int8[] from (select %s from %s%s limit %s) as s',
                pg_catalog.string_agg(
                    pg_catalog.format(
                        'pg_catalog.count(*) filter (where s.v%1$s operator (pg_catalog.<>) ''''), '
                        'pg_catalog.count(*) filter (where s.v%1$s operator (pg_catalog.~) $1), '
                        'pg_catalog.count(*) filter (where (s.v%1$s operator (pg_catalog.~) $3 and '
                        'pg_catalog.length(pg_catalog.regexp_replace(s.v%1$s, ''[^0-9]'', '''', ''g'')) '
                        'between 8 and 15) or (s.v%1$s operator (pg_catalog.~) $4 and '
                        'pg_catalog.length(pg_catalog.regexp_replace(s.v%1$s, ''[^0-9]'', '''', ''g'')) '
                        'between 9 and 15)), '
                        'pg_catalog.count(*) filter (where s.v%1$s operator (pg_catalog.~*) $2)',
                        x.n
                    ),
                    ', ' order by x.n
                ),
                pg_catalog.string_agg(
                    pg_catalog.format('pg_catalog.btrim(%I::pg_catalog.text) as v%s', x.col, x.n),
                    ', ' order by x.n
                ),
                v_table.relid::pg_catalog.regclass,
                case
                    when v_pages operator (pg_catalog.>) c_max_pages then pg_catalog.format(
                        ' tablesample system (%s) repeatable (0)',
                        100.0 operator (pg_catalog.*) c_max_pages operator (pg_catalog./) v_pages
                    )
                    else ''
                end,
                c_max_rows
            )
        into v_select
        from pg_catalog.unnest(v_table.sampled) with ordinality as x (col, n);
        execute v_select into v_counts using c_email, c_ip, c_phone_international, c_phone_grouped;
        for v_i in 1 .. pg_catalog.cardinality(v_table.sampled) loop
            v_values := v_counts[4 * v_i - 3];
            v_email := v_counts[4 * v_i - 2];
            v_phone := v_counts[4 * v_i - 1];
            v_ip := v_counts[4 * v_i];
            continue when
                v_values operator (pg_catalog.<) c_min_values
                or (v_email + v_phone + v_ip) * 2 operator (pg_catalog.<=) v_values;
            v_column := v_table.sampled[v_i];
            v_kind := pg_catalog.concat_ws(
                ' or ',
                case when v_email operator (pg_catalog.>) 0 then 'email addresses' end,
                case when v_phone operator (pg_catalog.>) 0 then 'phone numbers' end,
                case when v_ip operator (pg_catalog.>) 0 then 'IP addresses' end
            );
            v_why := pg_catalog.format(
                'by its contents: %s of the %s non-empty values sampled', v_email + v_phone + v_ip, v_values
            );
            object := pg_catalog.format('%s.%I', v_table.relid::pg_catalog.regclass, v_column);
            detail := pg_catalog.format(
                'column %I of tenant table %s looks like it holds %s (%s), but %s does not classify it '
                'as personal data (pii, or the subject column): exporting or erasing a data subject '
                'leaves it out',
                v_column, v_table.relid::pg_catalog.regclass, v_kind, v_why, v_registry
            );
            remediation := pg_catalog.replace(v_fix, '<column>', v_column);
            return next;
        end loop;
    end loop;
end
$$;

comment on function tenancy.lint_personal_data(jsonb) is
'pgtenancy doctor, lint 0022: columns of tenant tables (outside schema tenancy) whose name or a '
'bounded sample of whose values (at most 100 rows from about 32 pages, as the caller sees them) '
'looks personal (email, phone, name, address, IP...) but that are not classified (pii or subject '
'column) in tenancy.personal_data, or in p_spec for the tables it lists (the spec as doctor '
'--spec reads it: display, tables[schema, name, pii, subject, references]). Runs as the caller; '
'returns findings, never a sampled value.';

revoke all on function tenancy.lint_personal_data(jsonb) from public;
grant execute on function tenancy.lint_personal_data(jsonb) to tenancy_admin, tenancy_auditor;
