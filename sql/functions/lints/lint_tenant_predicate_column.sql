-- tenancy.lint_tenant_predicate_column: the column a policy expression requires to equal the tenant context.

-- p_expression is a policy's USING or WITH CHECK as pg_get_expr prints it (every operand of an
-- operator in parentheses). The expression is split into its top-level AND operands; one of the
-- form "column = <a call of tenancy.context_tenant_id/_key or current_tenant_id/_key>" (either
-- side, with or without the (select ...) wrapper and casts) is the tenant predicate, and its
-- column is returned. NULL when there is none: the expression is then not limited to the
-- tenant's rows (an OR at the top, "true", a predicate inside a function call...). A right-hand
-- side that mixes the context with other values (COALESCE, CASE, NULLIF, GREATEST, LEAST, OR)
-- is no tenant predicate either.
create or replace function tenancy.lint_tenant_predicate_column(p_expression text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_todo pg_catalog.text[] := array[p_expression];
    v_expr pg_catalog.text;
    v_parts pg_catalog.text[];
    v_depth pg_catalog.int4;
    v_quote pg_catalog.text;
    v_start pg_catalog.int4;
    v_wrapped pg_catalog.bool;
    v_char pg_catalog.text;
    v_match pg_catalog.text[];
    v_other pg_catalog.text;
    v_ident constant pg_catalog.text := '("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)';
    v_eq constant pg_catalog.text := ' (?:=|OPERATOR\(pg_catalog\.=\)) ';
begin
    if p_expression is null then
        return null;
    end if;
    while pg_catalog.cardinality(v_todo) operator (pg_catalog.>) 0 loop
        v_expr := pg_catalog.btrim(v_todo[1]);
        v_todo := v_todo[2:];
        -- One pass: the top-level " AND " positions, and whether one pair of parentheses
        -- encloses the whole expression. Quoted literals and identifiers are skipped.
        v_parts := '{}';
        v_depth := 0;
        v_quote := null;
        v_start := 1;
        v_wrapped := pg_catalog.left(v_expr, 1) operator (pg_catalog.=) '(';
        for i in 1 .. pg_catalog.length(v_expr) loop
            v_char := pg_catalog.substr(v_expr, i, 1);
            if v_quote is not null then
                if v_char operator (pg_catalog.=) v_quote then
                    v_quote := null;
                end if;
            elsif v_char operator (pg_catalog.=) any(array['''', '"']) then
                v_quote := v_char;
            elsif v_char operator (pg_catalog.=) '(' then
                v_depth := v_depth operator (pg_catalog.+) 1;
            elsif v_char operator (pg_catalog.=) ')' then
                v_depth := v_depth operator (pg_catalog.-) 1;
                if v_depth operator (pg_catalog.=) 0 and i operator (pg_catalog.<) pg_catalog.length(v_expr) then
                    v_wrapped := false;
                end if;
            elsif
                v_depth operator (pg_catalog.=) 0
                and pg_catalog.substr(v_expr, i, 5) operator (pg_catalog.=) ' AND '
            then
                v_parts := v_parts operator (pg_catalog.||) pg_catalog.substr(
                    v_expr, v_start, i operator (pg_catalog.-) v_start
                );
                v_start := i operator (pg_catalog.+) 5;
            end if;
        end loop;
        if pg_catalog.cardinality(v_parts) operator (pg_catalog.>) 0 then
            v_todo := v_todo operator (pg_catalog.||) v_parts operator (pg_catalog.||) pg_catalog.substr(
                v_expr, v_start
            );
        elsif v_wrapped then
            v_todo := v_todo operator (pg_catalog.||) pg_catalog.substr(
                v_expr, 2, pg_catalog.length(v_expr) operator (pg_catalog.-) 2
            );
        else
            -- A leaf: column = context, or context = column.
            v_match := pg_catalog.regexp_match(v_expr, '^' operator (pg_catalog.||) v_ident operator (pg_catalog.||) v_eq operator (pg_catalog.||) '(.+)$');
            if v_match is not null then
                v_other := v_match[2];
            else
                v_match := pg_catalog.regexp_match(v_expr, '^(.+)' operator (pg_catalog.||) v_eq operator (pg_catalog.||) v_ident operator (pg_catalog.||) '$');
                if v_match is not null then
                    v_match := array[v_match[2], v_match[1]];
                    v_other := v_match[2];
                end if;
            end if;
            if
                v_match is not null
                and v_other operator (pg_catalog.~) '(^|[^.\w])(tenancy\.)?(context|current)_tenant_(id|key)(_mac)?\('
                and not pg_catalog.regexp_replace(v_other, '''([^'']|'''')*''', '''''', 'g')
                operator (pg_catalog.~) '\m(OR|COALESCE|CASE|NULLIF|GREATEST|LEAST)\M'
            then
                if pg_catalog.left(v_match[1], 1) operator (pg_catalog.=) '"' then
                    return pg_catalog.replace(
                        pg_catalog.substr(v_match[1], 2, pg_catalog.length(v_match[1]) operator (pg_catalog.-) 2),
                        '""', '"'
                    );
                end if;
                return v_match[1];
            end if;
        end if;
    end loop;
    return null;
end
$$;

comment on function tenancy.lint_tenant_predicate_column(text) is
'pgtenancy doctor: the column a policy expression (as pg_get_expr prints it) requires, in one of '
'its top-level AND operands, to equal the tenant context (tenancy.context_tenant_id/_key or '
'current_tenant_id/_key); NULL when no such operand exists.';

revoke all on function tenancy.lint_tenant_predicate_column(text) from public;
grant execute on function tenancy.lint_tenant_predicate_column(text) to tenancy_admin, tenancy_auditor;
