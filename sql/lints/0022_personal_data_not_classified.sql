-- pgtenancy lint 0022 (WARN): a column of a tenant table whose name or sampled contents look
-- personal (email, phone, name, address, IP...) but that is not classified as personal data
-- (pii, or the subject column, in tenancy.personal_data). A suggestion, never acted on:
-- tenancy.lint_personal_data() samples at most 100 rows per table, as the caller, and returns
-- no value. With doctor --spec, doctor calls that function with the spec instead of this view.

create or replace view tenancy.lint_0022_personal_data_not_classified as
select
    p.code,
    p.name,
    p.level,
    p.object,
    p.detail,
    p.remediation
from tenancy.lint_personal_data() as p;

comment on view tenancy.lint_0022_personal_data_not_classified is
'pgtenancy doctor, lint 0022 (WARN): columns of tenant tables that look personal by name or by '
'a bounded sample of their values, but are not classified in tenancy.personal_data. See '
'docs/lints/0022_personal_data_not_classified.md.';
revoke all on tenancy.lint_0022_personal_data_not_classified from public;
grant select on tenancy.lint_0022_personal_data_not_classified to tenancy_admin, tenancy_auditor;
