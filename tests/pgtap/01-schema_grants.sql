-- Schema ownership, function and table privileges, pinned search paths and comments.
-- Catalog checks read pg_catalog as the connecting superuser; behaviour is checked as the real roles.

begin;
select plan(267);

-- Ownership --------------------------------------------------------------------------------

-- tenancy belongs to tenancy_owner.
select schema_owner_is('tenancy', 'tenancy_owner', 'schema tenancy is owned by tenancy_owner');

-- No table, sequence, view or index in tenancy belongs to anyone else: 0 rows. The audit trail
-- (tenancy.audit_logs, its partitions, seals, holds and retention, with their indexes and
-- sequences) belongs to tenancy_audit_owner, so that tenancy_owner cannot change it.
select is_empty(
    $$
    select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where c.relnamespace = 'tenancy'::regnamespace
        and c.relowner <> 'tenancy_owner'::regrole
        and not (c.relname ~ '^audit_' and c.relowner = 'tenancy_audit_owner'::regrole)
    $$,
    'every relation in schema tenancy is owned by tenancy_owner, the audit trail''s by tenancy_audit_owner'
);
select is_empty(
    $$
    select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where c.relnamespace = 'tenancy'::regnamespace
        and c.relname ~ '^audit_' and c.relowner <> 'tenancy_audit_owner'::regrole
    $$,
    'every relation of the audit trail is owned by tenancy_audit_owner'
);

-- No function in tenancy belongs to anyone else but the audit trail's guard, sealing,
-- verification, retention and redaction (tenancy_audit_owner): 0 rows.
select is_empty(
    $$
    select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    where p.pronamespace = 'tenancy'::regnamespace
        and p.proowner <> 'tenancy_owner'::regrole
        and not (p.proowner = 'tenancy_audit_owner'::regrole and p.proname in (
            'tg_audit_immutable', 'audit_row_digest', 'seal_audit', 'verify_audit', 'export_seal',
            'redact_audit', 'redact_audit_entities', 'erasure_audit_keys', 'subject_audit_keys', 'ensure_audit_partitions', 'set_legal_hold', 'drop_audit_before',
            'audit_body_digest', 'audit_seal_batches', 'audit_seal_header', 'canonical_json',
            'verify_deletion_certificate'
        ))
    $$,
    'every function in schema tenancy is owned by tenancy_owner, but the audit trail''s own'
);

-- Nothing for PUBLIC ---------------------------------------------------------------------------

-- Lint 0002 (sql/lints/0002_public_grants.sql) is the one definition of what PUBLIC may not
-- hold: a NULL proacl counts as the default privileges, which include EXECUTE for PUBLIC.
select is_empty(
    $$select object from tenancy.lint_0002_public_grants where object ~ '\('$$,
    'no function in schema tenancy is executable by PUBLIC (lint 0002)'
);

-- The same for tables, sequences and the schemas themselves: 0 rows.
select is_empty(
    $$select object from tenancy.lint_0002_public_grants where object !~ '\('$$,
    'no schema, table or sequence of pgtenancy grants anything to PUBLIC (lint 0002)'
);

-- A fresh role with no memberships (created here by the superuser) may use nothing in tenancy.
create role pgtap_nobody nologin;

select ok(
    not has_schema_privilege('pgtap_nobody', 'tenancy', 'usage'),
    'a role with no memberships has no USAGE on schema tenancy'
);

-- 0 functions executable.
select is_empty(
    $$
    select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    where p.pronamespace = 'tenancy'::regnamespace
        and has_function_privilege('pgtap_nobody', p.oid, 'execute')
    $$,
    'a role with no memberships cannot execute any tenancy function'
);

-- 0 relations with any privilege.
select is_empty(
    $$
    select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where c.relnamespace = 'tenancy'::regnamespace
        and c.relkind in ('r', 'p', 'v', 'm')
        and has_table_privilege(
            'pgtap_nobody', c.oid, 'select, insert, update, delete, truncate, references, trigger'
        )
    $$,
    'a role with no memberships has no privilege on any tenancy table'
);

-- ... and it cannot call the API: permission denied (42501) at the schema.
set local role pgtap_nobody;
select throws_ok(
    'select tenancy.current_tenant_id()',
    '42501',
    'permission denied for schema tenancy',
    'a role with no memberships cannot call tenancy.current_tenant_id()'
);
reset role;

-- Exact grantees of every public function --------------------------------------------------

-- Each row: the roles holding a direct EXECUTE grant, besides the owner.
select
    is(
        (
            select array_agg(a.grantee::regrole::text order by a.grantee::regrole::text)
            from
                pg_catalog.aclexplode((
                    select p.proacl from pg_catalog.pg_proc as p
                    where p.oid = e.fn::regprocedure
                )) as a
            where a.privilege_type = 'EXECUTE' and a.grantee <> 'tenancy_owner'::regrole
        ),
        e.grantees,
        format('%s is granted to exactly %s', e.fn, array_to_string(e.grantees, ', '))
    )
from (
    values
    ('tenancy.create_tenant(text,text,text,uuid,text)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.tenant_id_for_key(text)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.suspend_tenant(uuid)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.reactivate_tenant(uuid)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.configure_jwt(text,text,text)', array['tenancy_admin']),
    ('tenancy.set_context(uuid,text)', array['tenancy_service']),
    ('tenancy.begin_support_access(uuid,text,integer)', array['tenancy_admin']),
    ('tenancy.support_access_gaps()', array['tenancy_auditor']),
    (
        'tenancy.support_key_of(uuid,text)',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'tenancy.support_access_open(text)',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.authenticate(text)', array['tenancy_app']),
    ('tenancy.authenticate(text,text)', array['tenancy_app']),
    ('tenancy.try_authenticate(text,text)', array['tenancy_app']),
    ('tenancy.configure_issuer(text,text[],text,text[],interval,uuid,text,interval)', array['tenancy_admin']),
    ('tenancy.remove_issuer(text,uuid)', array['tenancy_admin']),
    ('tenancy.set_jwks(text,jsonb)', array['tenancy_admin', 'tenancy_app']),
    ('tenancy.set_platform_jwks(text,jsonb)', array['tenancy_admin']),
    ('tenancy.set_tenant_jwks(text,jsonb)', array['tenancy_app', 'tenancy_service']),
    ('tenancy.jwks_sync_targets()', array['tenancy_admin']),
    ('tenancy.configure_auth(integer,integer,integer,interval)', array['tenancy_admin']),
    ('tenancy.auth_failures(text)', array['tenancy_admin', 'tenancy_auditor']),
    ('tenancy.tenant_security_events(timestamp with time zone,text,integer)', array['tenancy_app', 'tenancy_service']),
    ('tenancy.create_api_key(text,text,timestamp with time zone)', array['tenancy_app', 'tenancy_service']),
    ('tenancy.authenticate_api_key(text)', array['tenancy_app']),
    ('tenancy.try_authenticate_api_key(text)', array['tenancy_app']),
    ('tenancy.revoke_api_key(uuid)', array['tenancy_app', 'tenancy_service']),
    ('tenancy.current_api_key_id()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    ('tenancy.invite(text,text,interval)', array['tenancy_app']),
    ('tenancy.accept_invitation(text,text)', array['tenancy_app']),
    ('tenancy.revoke_invitation(uuid)', array['tenancy_app']),
    ('tenancy.add_member(text,text)', array['tenancy_app']),
    ('tenancy.set_member_role(text,text)', array['tenancy_app']),
    ('tenancy.remove_member(text)', array['tenancy_app']),
    ('tenancy.clear_context()', array['tenancy_admin', 'tenancy_app', 'tenancy_service']),
    ('tenancy.current_tenant_id()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    ('tenancy.current_user_id()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    ('tenancy.current_member_role()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    (
        'tenancy.context_tenant_id(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.current_tenant_key()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    (
        'tenancy.context_tenant_key(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.set_branding(jsonb)', array['tenancy_app']),
    ('tenancy.set_tenant_branding(uuid,jsonb)', array['tenancy_admin']),
    ('tenancy.configure_regions(text[])', array['tenancy_admin']),
    ('tenancy.set_tenant_region(uuid,text)', array['tenancy_admin']),
    ('tenancy.configure_placement(text,text,text,text,boolean)', array['tenancy_admin']),
    ('tenancy.set_tenant_placement(uuid,text)', array['tenancy_admin']),
    ('tenancy.tenant_placement(uuid)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.fence_tenant(uuid,text)', array['tenancy_admin']),
    ('tenancy.fence_transactions()', array['tenancy_admin']),
    ('tenancy.fence_pending(text[])', array['tenancy_admin']),
    ('tenancy.unfence_tenant(uuid)', array['tenancy_admin']),
    ('tenancy.release_moved_tenant(uuid,integer,boolean)', array['tenancy_admin']),
    ('tenancy.log_move(uuid,text,jsonb)', array['tenancy_admin']),
    (
        'tenancy.raise_fenced(text,text,text)',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.context_fenced()', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    ('tenancy.configure_context_mac(boolean,integer,boolean)', array['tenancy_admin']),
    (
        'tenancy.context_tenant_id_mac(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'tenancy.context_tenant_key_mac(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.citus_distribution_plan()', array['tenancy_admin']),
    ('tenancy.set_feature_default(text,jsonb)', array['tenancy_admin']),
    ('tenancy.set_feature_flag(uuid,text,jsonb)', array['tenancy_admin']),
    ('tenancy.feature_value(text)', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    ('tenancy.feature_enabled(text)', array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']),
    (
        'tenancy.require_feature_flag_name(text)',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.configure_domains(text[],text[],interval)', array['tenancy_admin']),
    ('tenancy.rename_tenant_slug(uuid,text)', array['tenancy_admin', 'tenancy_service']),
    ('tenancy.add_custom_domain(text)', array['tenancy_app']),
    ('tenancy.verify_custom_domain(text,text[])', array['tenancy_service']),
    ('tenancy.remove_custom_domain(text)', array['tenancy_app']),
    ('tenancy.set_primary_domain(text)', array['tenancy_app']),
    ('tenancy.custom_domains_to_verify()', array['tenancy_service']),
    ('tenancy.resolve_tenant(text)', array['tenancy_app', 'tenancy_service']),
    ('tenancy.tenant_public_profile(text)', array['tenancy_app', 'tenancy_service'])
) as e (fn, grantees)
order by e.fn;

-- Effective privileges of each pgtenancy role, inheritance included (tenancy_service inherits
-- tenancy_app): 36 functions x 4 roles.
select
    function_privs_are(
        'tenancy',
        f.name,
        f.args,
        r.role,
        case when r.role = any(f.allowed) then array['EXECUTE'] else array[]::text[] end,
        format(
            '%s %s execute tenancy.%s',
            r.role,
            case when r.role = any(f.allowed) then 'may' else 'may not' end,
            f.name
        )
    )
from (
    values
    (
        'create_tenant', array['text', 'text', 'text', 'uuid', 'text'],
        array['tenancy_admin', 'tenancy_service']
    ),
    ('tenant_id_for_key', array['text'], array['tenancy_admin', 'tenancy_service']),
    ('suspend_tenant', array['uuid'], array['tenancy_admin', 'tenancy_service']),
    ('reactivate_tenant', array['uuid'], array['tenancy_admin', 'tenancy_service']),
    ('configure_jwt', array['text', 'text', 'text'], array['tenancy_admin']),
    ('set_context', array['uuid', 'text'], array['tenancy_service']),
    ('begin_support_access', array['uuid', 'text', 'integer'], array['tenancy_admin']),
    ('support_access_gaps', array[]::text[], array['tenancy_auditor']),
    ('authenticate', array['text'], array['tenancy_app', 'tenancy_service']),
    ('authenticate', array['text', 'text'], array['tenancy_app', 'tenancy_service']),
    ('add_member', array['text', 'text'], array['tenancy_app', 'tenancy_service']),
    ('set_member_role', array['text', 'text'], array['tenancy_app', 'tenancy_service']),
    ('remove_member', array['text'], array['tenancy_app', 'tenancy_service']),
    ('clear_context', array[]::text[], array['tenancy_admin', 'tenancy_app', 'tenancy_service']),
    (
        'current_tenant_id', array[]::text[],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'current_user_id', array[]::text[],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'current_member_role', array[]::text[],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'context_tenant_id', array['text[]'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'current_tenant_key', array[]::text[],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'context_tenant_key', array['text[]'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('set_branding', array['jsonb'], array['tenancy_app', 'tenancy_service']),
    ('set_tenant_branding', array['uuid', 'jsonb'], array['tenancy_admin']),
    ('configure_regions', array['text[]'], array['tenancy_admin']),
    ('set_tenant_region', array['uuid', 'text'], array['tenancy_admin']),
    ('set_feature_default', array['text', 'jsonb'], array['tenancy_admin']),
    ('set_feature_flag', array['uuid', 'text', 'jsonb'], array['tenancy_admin']),
    (
        'feature_value', array['text'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'feature_enabled', array['text'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'require_feature_flag_name', array['text'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('configure_domains', array['text[]', 'text[]', 'interval'], array['tenancy_admin']),
    ('rename_tenant_slug', array['uuid', 'text'], array['tenancy_admin', 'tenancy_service']),
    ('add_custom_domain', array['text'], array['tenancy_app', 'tenancy_service']),
    ('verify_custom_domain', array['text', 'text[]'], array['tenancy_service']),
    ('remove_custom_domain', array['text'], array['tenancy_app', 'tenancy_service']),
    ('set_primary_domain', array['text'], array['tenancy_app', 'tenancy_service']),
    ('custom_domains_to_verify', array[]::text[], array['tenancy_service']),
    ('resolve_tenant', array['text'], array['tenancy_app', 'tenancy_service']),
    ('tenant_public_profile', array['text'], array['tenancy_app', 'tenancy_service'])
) as f (name, args, allowed)
cross join (
    values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')
) as r (role)
order by f.name, r.role;

-- SECURITY DEFINER -------------------------------------------------------------------------

-- The API functions that act on platform tables run as their owner.
select is_definer('tenancy', 'set_context', array['uuid', 'text'], 'set_context is SECURITY DEFINER');
select is_definer(
    'tenancy', 'begin_support_access', array['uuid', 'text', 'integer'], 'begin_support_access is SECURITY DEFINER'
);
select is_definer('tenancy', 'authenticate', array['text'], 'authenticate is SECURITY DEFINER');
select is_definer(
    'tenancy', 'authenticate', array['text', 'text'], 'authenticate(p_token, p_host) is SECURITY DEFINER'
);

-- The policy key must stay inlinable SQL without SECURITY DEFINER, or policies pay per call.
select isnt_definer(
    'tenancy', 'context_tenant_id', array['text[]'], 'context_tenant_id is not SECURITY DEFINER'
);

-- Every SECURITY DEFINER function pins its search_path with pg_temp last (lint 0003,
-- sql/lints/0003_definer_search_path.sql): 0 rows.
select is_empty(
    $$select object from tenancy.lint_0003_definer_search_path where detail ~ '^SECURITY DEFINER'$$,
    'every SECURITY DEFINER function in tenancy pins search_path, pg_temp last (lint 0003)'
);

-- There is at least one such function, so the check above is not vacuous.
select cmp_ok(
    (
        select count(*)::int from pg_catalog.pg_proc as p
        where p.pronamespace = 'tenancy'::regnamespace and p.prosecdef
    ),
    '>=',
    10,
    'schema tenancy has SECURITY DEFINER functions to check'
);

-- No function anywhere in tenancy puts public (or $user) on its search path (lint 0003): 0 rows.
select is_empty(
    $$select object from tenancy.lint_0003_definer_search_path where detail ~ '^function'$$,
    'no tenancy function has public or $user on its search path (lint 0003)'
);

-- jwt_config is private to tenancy_owner -----------------------------------------------------

select
    table_privs_are(
        'tenancy', 'jwt_config', r.role, array[]::text[], format('%s has no privilege on tenancy.jwt_config', r.role)
    )
from (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by r.role;

-- The global hostname map (tenancy.domain_claims) is private to tenancy_owner too: every domain
-- of every tenant, read by pgtenancy's functions alone.
select
    table_privs_are(
        'tenancy', 'domain_claims', r.role, array[]::text[],
        format('%s has no privilege on tenancy.domain_claims', r.role)
    )
from (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by r.role;

-- Reading it as any pgtenancy role: permission denied (42501).
set local role tenancy_app;
select throws_ok(
    'select secret from tenancy.jwt_config', '42501', 'permission denied for table jwt_config',
    'tenancy_app cannot read the JWT secret'
);
set local role tenancy_service;
select throws_ok(
    'select secret from tenancy.jwt_config', '42501', 'permission denied for table jwt_config',
    'tenancy_service cannot read the JWT secret'
);
set local role tenancy_auditor;
select throws_ok(
    'select secret from tenancy.jwt_config', '42501', 'permission denied for table jwt_config',
    'tenancy_auditor cannot read the JWT secret'
);
set local role tenancy_admin;
select throws_ok(
    'select secret from tenancy.jwt_config', '42501', 'permission denied for table jwt_config',
    'tenancy_admin cannot read the JWT secret'
);
-- ... nor write it directly: 42501.
select throws_ok(
    $$update tenancy.jwt_config set secret = repeat('x', 40)$$, '42501',
    'permission denied for table jwt_config',
    'tenancy_admin cannot write the JWT secret directly'
);
-- The legitimate path: tenancy_admin sets it through configure_jwt.
select lives_ok(
    $$select tenancy.configure_jwt(repeat('s', 32), 'https://issuer.example', 'aud-1')$$,
    'tenancy_admin configures JWT verification through tenancy.configure_jwt()'
);
-- configure_jwt refuses a short secret: 22023.
select throws_ok(
    $$select tenancy.configure_jwt(repeat('s', 31))$$,
    '22023',
    'JWT secret must be at least 32 bytes, got 31 bytes',
    'configure_jwt refuses a secret shorter than 32 bytes'
);
reset role;

-- The row is there (checked as the superuser): 1 row with the configured issuer.
select results_eq(
    'select issuer, audience from tenancy.jwt_config',
    $$values ('https://issuer.example'::text, 'aud-1'::text)$$,
    'configure_jwt stored the issuer and audience'
);

-- Platform tables are not the application's -------------------------------------------------

-- tenancy_app cannot read tenants: 42501; tenancy_admin can.
set local role tenancy_app;
select throws_ok(
    'select count(*) from tenancy.tenants', '42501', 'permission denied for table tenants',
    'tenancy_app cannot read tenancy.tenants'
);
set local role tenancy_admin;
select lives_ok('select count(*) from tenancy.tenants', 'tenancy_admin reads tenancy.tenants');
-- Nobody but the owner writes the platform tables directly: 42501.
select throws_ok(
    $$insert into tenancy.tenants (slug, name) values ('direct', 'Direct')$$, '42501',
    'permission denied for table tenants',
    'tenancy_admin cannot insert into tenancy.tenants directly'
);
set local role tenancy_app;
select throws_ok(
    $$insert into tenancy.memberships (tenant_id, user_id, role)
      values (gen_random_uuid(), gen_random_uuid(), 'owner')$$,
    '42501',
    'permission denied for table memberships',
    'tenancy_app cannot insert into tenancy.memberships directly'
);
-- The context sequences cannot be moved by the application: 42501.
select throws_ok(
    $$select setval('tenancy.context_key', 1)$$, '42501',
    'permission denied for sequence context_key',
    'tenancy_app cannot reset tenancy.context_key'
);
reset role;

-- Comments ----------------------------------------------------------------------------------

-- Every function in tenancy has a COMMENT (lint 0018, sql/lints/0018_missing_comment.sql): 0 rows.
select is_empty(
    $$select object from tenancy.lint_0018_missing_comment where object ~ '\('$$,
    'every function in schema tenancy has a comment (lint 0018)'
);

-- Every table, view and sequence in tenancy has a COMMENT: 0 rows.
select is_empty(
    $$
    select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where c.relnamespace = 'tenancy'::regnamespace
        and c.relkind in ('r', 'p', 'v', 'm', 'S')
        and obj_description(c.oid, 'pg_class') is null
    $$,
    'every table, view and sequence in schema tenancy has a comment'
);

-- The schema itself has one.
select isnt(
    obj_description('tenancy'::regnamespace, 'pg_namespace'), null, 'schema tenancy has a comment'
);

select * from finish();
rollback;
