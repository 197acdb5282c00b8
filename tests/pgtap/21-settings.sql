-- White-label settings: branding (each field's rule), regions and their history, feature flags
-- with platform defaults and per-tenant overrides, feature_enabled inside an application policy.
-- Every refusal is paired with the rightful call succeeding. Fixtures: tenants by tenancy_admin;
-- the superuser only creates the test table and reads rows back. Policies are named as sentences:
-- noqa: disable=RF05

begin;
select plan(107);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'user_2' || md5(random()::text) as admin_a,
    'google-oauth2|' || (random() * 1e18)::bigint as member_a,
    'samlp|acme|viewer@acme.example' as viewer_a,
    'auth0|' || gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('settings-a', 'Settings A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('settings-b', 'Settings B', :'owner_b') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
reset role;

-- branding_of(tenant): the stored branding, read back by the superuser ('{}' without a row).
create function pg_temp.branding_of(p_tenant_id uuid)
returns jsonb
language sql
as $$
    select coalesce((select s.branding::jsonb from tenancy.tenant_settings as s where s.tenant_id = p_tenant_id), '{}')
$$;

-- branding_hint(doc): the hint of the error set_branding raises for doc, as the current role.
create function pg_temp.branding_hint(p_doc jsonb)
returns text
language plpgsql
as $$
declare
    v_hint text;
begin
    perform tenancy.set_branding(p_doc);
    return null;
exception when invalid_parameter_value then
    get stacked diagnostics v_hint = pg_exception_hint;
    return v_hint;
end
$$;

-- valid_flag_by_domain(name), valid_flag_by_require(name): whether each spelling of the flag
-- name rule accepts a name.
create function pg_temp.valid_flag_by_domain(p_name text)
returns boolean
language plpgsql
as $$
begin
    perform p_name::tenancy.feature_flag_name;
    return true;
exception when check_violation then
    return false;
end
$$;
create function pg_temp.valid_flag_by_require(p_name text)
returns boolean
language plpgsql
as $$
begin
    perform tenancy.require_feature_flag_name(p_name);
    return true;
exception when invalid_parameter_value then
    return false;
end
$$;

-- Branding -------------------------------------------------------------------------------------

-- The owner of A sets a full branding: stored normalised (name trimmed, colours lower-cased, JSON
-- nulls dropped) and returned as stored.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select is(
    tenancy.set_branding(
        $${"display_name": "  Acme Corp ", "logo_url": "https://cdn.acme.example/brand/logo.svg?v=2",
          "primary_color": "#1A2B3C", "secondary_color": "#fff", "accent_color": "#FF8800",
          "background_color": "#FFFFFF", "text_color": "#222", "support_email": "help+web@acme.example",
          "unused": null}$$
    ),
    $${"display_name": "Acme Corp", "logo_url": "https://cdn.acme.example/brand/logo.svg?v=2",
       "primary_color": "#1a2b3c", "secondary_color": "#fff", "accent_color": "#ff8800",
       "background_color": "#ffffff", "text_color": "#222", "support_email": "help+web@acme.example"}$$::jsonb,
    'the owner of A sets every branding field; it comes back normalised'
);
reset role;
select is(
    pg_temp.branding_of(:'tenant_a') ->> 'display_name', 'Acme Corp', 'the branding of A is stored'
);

-- Each bad field: 22023 naming the field and the value as given.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    throws_ok(
        format('select tenancy.set_branding(%L)', b.doc),
        '22023',
        b.message,
        'set_branding refuses ' || b.what
    )
from (
    values
    (1, '{"display_name": ""}', 'invalid branding field display_name: ""', 'an empty display name'),
    (2, '{"display_name": "   "}', 'invalid branding field display_name: "   "', 'a blank display name'),
    (
        3, '{"display_name": "Acme\u0007"}', 'invalid branding field display_name: "Acme\u0007"',
        'a display name with a control character'
    ),
    (
        4, format('{"display_name": "%s"}', repeat('x', 201)),
        format('invalid branding field display_name: "%s...', repeat('x', 199)),
        'a display name over 200 characters'
    ),
    (5, '{"display_name": 42}', 'invalid branding field display_name: 42', 'a display name that is a number'),
    (
        6, '{"logo_url": "http://cdn.acme.example/logo.png"}',
        'invalid branding field logo_url: "http://cdn.acme.example/logo.png"', 'a logo URL over http'
    ),
    (
        7, '{"logo_url": "javascript:alert(1)"}', 'invalid branding field logo_url: "javascript:alert(1)"',
        'a javascript: logo URL'
    ),
    (
        8, '{"logo_url": "https://user:pw@cdn.acme.example/logo.png"}',
        'invalid branding field logo_url: "https://user:pw@cdn.acme.example/logo.png"',
        'a logo URL with a user name'
    ),
    (
        9, '{"logo_url": "https://cdn.acme.example/a\"onerror=\"x"}',
        'invalid branding field logo_url: "https://cdn.acme.example/a\"onerror=\"x"',
        'a logo URL with a double quote'
    ),
    (
        10, '{"logo_url": "https://localhost/logo.png"}', 'invalid branding field logo_url: "https://localhost/logo.png"',
        'a logo URL whose host has no dot'
    ),
    (11, '{"primary_color": "red"}', 'invalid branding field primary_color: "red"', 'a colour name'),
    (12, '{"secondary_color": "#12345"}', 'invalid branding field secondary_color: "#12345"', 'a 5-digit colour'),
    (13, '{"accent_color": "#ggg"}', 'invalid branding field accent_color: "#ggg"', 'a colour that is not hex'),
    (14, '{"background_color": "ffffff"}', 'invalid branding field background_color: "ffffff"', 'a colour without #'),
    (15, '{"text_color": 255}', 'invalid branding field text_color: 255', 'a colour that is a number'),
    (16, '{"support_email": "nope"}', 'invalid branding field support_email: "nope"', 'an e-mail address without @'),
    (
        17, '{"support_email": "help@acme"}', 'invalid branding field support_email: "help@acme"',
        'an e-mail address without a dotted domain'
    ),
    (18, '{"colour": "#fff"}', 'invalid branding field colour: "#fff"', 'an unknown field'),
    (19, '["#fff"]', 'invalid branding ["#fff"]: a JSON object is required, got array', 'an array'),
    (20, null, 'branding is NULL', 'NULL')
) as b (n, doc, message, what)
order by b.n;

-- A valid field next to a bad one: the bad one is named, nothing is written.
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Changed", "primary_color": "blue"}')$$,
    '22023',
    'invalid branding field primary_color: "blue"',
    'a document with one bad field among good ones is refused, naming the bad one'
);
reset role;
select is(
    pg_temp.branding_of(:'tenant_a') ->> 'display_name', 'Acme Corp',
    'after the refusals the branding of A is unchanged'
);

-- The hint states the rule (the comment of the domain's constraint).
select pg_temp.act_as(:'tenant_a', :'owner_a');
select is(
    pg_temp.branding_hint('{"logo_url": "http://x.example/l.png"}'),
    'The rule: logo_url is an https:// URL of at most 2048 characters: a DNS host name with a dot, an '
    || 'optional port and path, no user name, no spaces and none of " < > \ ^ ` { | }.',
    'the hint of a refused field states its rule'
);

-- Who may set the branding of the current tenant: owners and admins; members and viewers 42501.
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Member brand"}')$$,
    '42501',
    format('role member of tenant %s cannot change its branding', :'tenant_a'),
    'a member cannot set the branding'
);
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Viewer brand"}')$$,
    '42501',
    format('role viewer of tenant %s cannot change its branding', :'tenant_a'),
    'a viewer cannot set the branding'
);
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(
    tenancy.set_branding('{"display_name": "Acme by its admin", "primary_color": "#0af"}'),
    '{"display_name": "Acme by its admin", "primary_color": "#0af"}'::jsonb,
    'an admin sets the branding (the document replaces the old one)'
);
-- Without a context: TN001.
reset role;
set local role tenancy_app;
select tenancy.clear_context();
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Nobody"}')$$,
    'TN001',
    'no tenant context: tenancy.set_branding() needs tenancy.authenticate() or tenancy.set_context() earlier '
    || 'in the transaction',
    'set_branding without a context is refused'
);
-- The application cannot name a tenant: the two-argument form is tenancy_admin's.
select throws_ok(
    format('select tenancy.set_tenant_branding(%L::uuid, %L)', :'tenant_b', '{"display_name": "Hijacked"}'),
    '42501',
    'permission denied for function set_tenant_branding',
    'tenancy_app cannot set another tenant''s branding'
);
reset role;
select is(pg_temp.branding_of(:'tenant_b'), '{}'::jsonb, 'the branding of B is untouched');

-- tenancy_admin sets any tenant's branding; an unknown tenant is P0002.
set local role tenancy_admin;
select is(
    tenancy.set_tenant_branding(:'tenant_b', '{"display_name": "Beta", "logo_url": "https://beta.example/l.png"}'),
    '{"display_name": "Beta", "logo_url": "https://beta.example/l.png"}'::jsonb,
    'tenancy_admin sets the branding of B'
);
select throws_ok(
    format('select tenancy.set_tenant_branding(%L::uuid, %L)', '00000000-0000-0000-0000-000000000001', '{}'),
    'P0002',
    'tenant 00000000-0000-0000-0000-000000000001 does not exist',
    'tenancy_admin cannot brand a tenant that does not exist'
);
select throws_ok(
    format('select tenancy.set_tenant_branding(%L::uuid, %L)', :'tenant_b', '{"logo_url": "ftp://beta.example/l.png"}'),
    '22023',
    'invalid branding field logo_url: "ftp://beta.example/l.png"',
    'tenancy_admin''s call checks the branding too'
);
reset role;

-- Members read their own tenant's settings row, never another's.
select pg_temp.act_as(:'tenant_b', :'owner_b');
select results_eq(
    $$select tenant_id, branding ->> 'display_name' from tenancy.tenant_settings$$,
    format($$values (%L::uuid, 'Beta')$$, :'tenant_b'),
    'the owner of B reads B''s settings and nothing of A'
);
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select results_eq(
    $$select tenant_id, branding ->> 'display_name' from tenancy.tenant_settings$$,
    format($$values (%L::uuid, 'Acme by its admin')$$, :'tenant_a'),
    'a viewer of A reads A''s settings'
);
select throws_ok(
    $$update tenancy.tenant_settings set branding = '{}'$$,
    '42501',
    'permission denied for table tenant_settings',
    'tenancy_app cannot write tenant_settings directly'
);
reset role;

-- Regions --------------------------------------------------------------------------------------

-- Only tenancy_admin configures regions and places tenants.
set local role tenancy_service;
select throws_ok(
    $$select tenancy.configure_regions(array['eu'])$$,
    '42501',
    'permission denied for function configure_regions',
    'tenancy_service cannot configure regions'
);
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu'),
    '42501',
    'permission denied for function set_tenant_region',
    'tenancy_service cannot place a tenant'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu'),
    '42501',
    'permission denied for function set_tenant_region',
    'an owner cannot place their tenant (tenancy_app)'
);
reset role;

set local role tenancy_admin;
select is(
    tenancy.configure_regions(array['us-east-1', 'eu', 'eu-central', 'eu']),
    array['eu', 'eu-central', 'us-east-1'],
    'tenancy_admin configures three regions (a duplicate counts once; sorted)'
);
select throws_ok(
    $$select tenancy.configure_regions(array['eu', 'EU-West'])$$,
    '22023',
    'invalid region ''EU-West''',
    'configure_regions refuses a tag that is not lower case'
);
select throws_ok(
    $$select tenancy.configure_regions(array['eu', 'eu-'])$$,
    '22023',
    'invalid region ''eu-''',
    'configure_regions refuses a tag ending with a hyphen'
);
select throws_ok(
    $$select tenancy.configure_regions(array['eu', null])$$,
    '22023',
    'region is NULL',
    'configure_regions refuses a NULL tag'
);
select throws_ok(
    'select tenancy.configure_regions(null)',
    '22023',
    'region list is NULL',
    'configure_regions refuses a NULL list'
);
select is(
    (select array_agg(r.region::text order by r.region) from tenancy.regions as r),
    array['eu', 'eu-central', 'us-east-1'],
    'after the refusals the regions are the three configured'
);

-- Placing tenants: unknown or invalid regions and unknown tenants are refused.
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'mars'),
    '22023',
    'unknown region ''mars''',
    'set_tenant_region refuses a region that is not configured'
);
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'EU'),
    '22023',
    'invalid region ''EU''',
    'set_tenant_region refuses an invalid tag'
);
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', '00000000-0000-0000-0000-000000000001', 'eu'),
    'P0002',
    'tenant 00000000-0000-0000-0000-000000000001 does not exist',
    'set_tenant_region refuses an unknown tenant'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu'), 'tenancy_admin places A in eu'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu'), 'placing A in eu again changes nothing'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu-central'), 'tenancy_admin moves A to eu-central'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_b', 'us-east-1'), 'tenancy_admin places B in us-east-1'
);
-- A region in use is not removed; an unused one is.
select throws_ok(
    $$select tenancy.configure_regions(array['eu', 'us-east-1'])$$,
    '55000',
    'region ''eu-central'' is the region of 1 tenant(s) and cannot be removed',
    'configure_regions keeps a region a tenant is in'
);
select is(
    tenancy.configure_regions(array['eu-central', 'us-east-1']),
    array['eu-central', 'us-east-1'],
    'configure_regions removes eu, which no tenant is in'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, null)', :'tenant_b'), 'tenancy_admin takes B out of any region'
);
reset role;

select results_eq(
    format(
        $$select tenant_id, old_region, new_region, changed_by = session_user
          from tenancy.tenant_region_changes
          where tenant_id in (%L, %L)
          order by id$$,
        :'tenant_a', :'tenant_b'
    ),
    format(
        $$values
            (%1$L::uuid, null::text, 'eu'::text, true),
            (%1$L::uuid, 'eu', 'eu-central', true),
            (%2$L::uuid, null, 'us-east-1', true),
            (%2$L::uuid, 'us-east-1', null, true)$$,
        :'tenant_a', :'tenant_b'
    ),
    'every region change is recorded with the old and new region and the login; the repeat is not'
);
select results_eq(
    format(
        'select tenant_id, region::text from tenancy.tenant_settings where tenant_id in (%L, %L) order by region',
        :'tenant_a', :'tenant_b'
    ),
    format($$values (%L::uuid, 'eu-central'::text), (%L::uuid, null)$$, :'tenant_a', :'tenant_b'),
    'A is in eu-central, B in no region'
);

-- The history is the tenant's: owners and admins of A read A's changes only; members do not.
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(
    (select count(*)::int from tenancy.tenant_region_changes), 2, 'an admin of A reads A''s two region changes'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(
    (select count(*)::int from tenancy.tenant_region_changes), 0, 'a member of A reads no region change'
);
reset role;
-- An operator reads them in a support access to A (read-only for the rest of its transaction:
-- observed in a savepoint, checked after it).
savepoint support_reads;  -- noqa: PRS
set local role tenancy_admin;
select access_number as ignored from tenancy.begin_support_access(:'tenant_a', 'region history', 5) \gset
select count(*) as admin_region_changes from tenancy.tenant_region_changes \gset
reset role;
rollback to savepoint support_reads;
select is(
    :'admin_region_changes'::int, 2,
    'tenancy_admin reads A''s region changes in a support access to A'
);
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is(
    (
        select array_agg(c.new_region order by c.id)
        from tenancy.tenant_region_changes as c
    ),
    array['us-east-1', null],
    'the owner of B reads B''s changes only'
);
reset role;

-- Feature flags --------------------------------------------------------------------------------

-- Only tenancy_admin declares flags and overrides them.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.set_feature_default('notes.visible', 'true')$$,
    '42501',
    'permission denied for function set_feature_default',
    'tenancy_app cannot set a platform default'
);
select throws_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', :'tenant_a', 'notes.visible', 'true'),
    '42501',
    'permission denied for function set_feature_flag',
    'tenancy_app cannot override a flag, not even for its own tenant'
);
select throws_ok(
    $$update tenancy.feature_defaults set value = 'true'$$,
    '42501',
    'permission denied for table feature_defaults',
    'tenancy_app cannot change the platform defaults directly'
);
select throws_ok(
    format(
        $$insert into tenancy.feature_flags (tenant_id, flag, value) values (%L, 'notes.visible', 'true')$$,
        :'tenant_a'
    ),
    '42501',
    'permission denied for table feature_flags',
    'tenancy_app cannot write an override directly'
);
reset role;

set local role tenancy_admin;
select
    throws_ok(
        format('select tenancy.set_feature_default(%L, %L)', f.name, 'true'),
        '22023',
        format('invalid feature flag name %L', f.name),
        format('set_feature_default refuses the flag name %L', f.name)
    )
from (values ('Notes.Visible'), ('notes-visible'), ('notes..visible'), ('1notes'), ('notes.'), (repeat('x', 101))) as f (name);
select throws_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', :'tenant_a', 'notes.visible', 'true'),
    'P0002',
    'feature flag ''notes.visible'' does not exist',
    'a flag without a platform default cannot be overridden'
);
select lives_ok(
    $$select tenancy.set_feature_default('notes.visible', 'false')$$,
    'tenancy_admin declares notes.visible, off by default'
);
select lives_ok(
    $$select tenancy.set_feature_default('notes.page_size', '{"rows": 20}')$$,
    'tenancy_admin declares notes.page_size, a JSON value'
);
select lives_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', :'tenant_a', 'notes.visible', 'true'),
    'tenancy_admin turns notes.visible on for A'
);
select lives_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', :'tenant_a', 'notes.page_size', '{"rows": 50}'),
    'tenancy_admin gives A a page size of 50'
);
select throws_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', '00000000-0000-0000-0000-000000000001', 'notes.visible', 'true'),
    'P0002',
    'tenant 00000000-0000-0000-0000-000000000001 does not exist',
    'set_feature_flag refuses an unknown tenant'
);
reset role;

-- A sees its overrides; B sees the defaults: A's override is invisible to B.
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(tenancy.feature_enabled('notes.visible'), true, 'notes.visible is on for A (its override)');
select is(tenancy.feature_value('notes.page_size'), '{"rows": 50}'::jsonb, 'A''s page size is its override');
select is(
    (select array_agg(flag::text order by flag) from tenancy.feature_flags),
    array['notes.page_size', 'notes.visible'],
    'a member of A reads A''s overrides'
);
-- feature_enabled runs as the caller without a SET clause: a jsonb = the caller puts first on
-- its search_path is not picked up (a schema of the superuser's stands in for one the caller
-- may create objects in).
reset role;
create schema settings_shadow;
grant usage on schema settings_shadow to public;
create function settings_shadow.loud_jsonb_eq(jsonb, jsonb)
returns boolean
language plpgsql
as $$
begin
    raise exception 'shadow.= called';
end
$$;
create operator settings_shadow.= (leftarg = jsonb, rightarg = jsonb, function = settings_shadow.loud_jsonb_eq); -- noqa: PRS
select pg_temp.act_as(:'tenant_a', :'member_a');
select set_config('search_path', 'settings_shadow, pg_catalog, public', true);
select throws_ok(
    $$select '1'::jsonb = '1'::jsonb$$,
    'P0001',
    'shadow.= called',
    'the shadowing jsonb = is picked by an unqualified comparison'
);
select is(
    tenancy.feature_enabled('notes.visible'), true, 'feature_enabled ignores a shadowing jsonb ='
);
reset search_path;
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is(tenancy.feature_enabled('notes.visible'), false, 'notes.visible is off for B (the default)');
select is(tenancy.feature_value('notes.page_size'), '{"rows": 20}'::jsonb, 'B''s page size is the default');
select is(
    (select count(*)::int from tenancy.feature_flags), 0, 'the owner of B reads none of A''s overrides'
);
select is(tenancy.feature_enabled('notes.page_size'), false, 'a flag whose value is not true is not enabled');
select is(tenancy.feature_value('notes.unknown'), null, 'an undeclared flag has no value');
select is(tenancy.feature_enabled('notes.unknown'), false, 'an undeclared flag is not enabled');
select throws_ok(
    $$select tenancy.feature_enabled('Notes Visible')$$,
    '22023',
    'invalid feature flag name ''Notes Visible''',
    'feature_enabled refuses an invalid flag name'
);
-- One rule spelled twice: the domain tenancy.feature_flag_name, and require_feature_flag_name
-- for feature_value (which must not open a subtransaction). Both accept the same names.
reset role;
select is(
    (
        select array_agg(n.name order by n.name)
        from (
            values ('a'), ('a.b'), ('a_1.b_2.c3'), ('notes.visible'), (repeat('x', 100)), (repeat('x', 101)),
            ('A'), ('1a'), ('_a'), ('a.'), ('.a'), ('a..b'), ('a-b'), ('a.B'), ('a b'), ('a.1'), ('é'), ('')
        ) as n (name)
        where pg_temp.valid_flag_by_domain(n.name) and pg_temp.valid_flag_by_require(n.name)
    ),
    array['a', 'a.b', 'a_1.b_2.c3', 'notes.visible', repeat('x', 100)],
    'the domain and require_feature_flag_name accept the same names'
);
select is(
    (
        select count(*)::int
        from (
            values ('a'), ('a.b'), ('a_1.b_2.c3'), ('notes.visible'), (repeat('x', 100)), (repeat('x', 101)),
            ('A'), ('1a'), ('_a'), ('a.'), ('.a'), ('a..b'), ('a-b'), ('a.B'), ('a b'), ('a.1'), ('é'), ('')
        ) as n (name)
        where pg_temp.valid_flag_by_domain(n.name) is distinct from pg_temp.valid_flag_by_require(n.name)
    ),
    0,
    'the domain and require_feature_flag_name refuse the same names'
);
select pg_temp.act_as(:'tenant_b', :'owner_b');
-- Without a context there is no tenant, so no flag.
select tenancy.clear_context();
select is(tenancy.feature_value('notes.page_size'), null, 'without a context a flag has no value');
reset role;
-- A role exempt from row level security (here the superuser) reads its context's tenant's
-- value all the same, not another tenant's override.
select tenant_id as ignored from tenancy.set_context(:'tenant_b') \gset
select is(
    tenancy.feature_value('notes.page_size'), '{"rows": 20}'::jsonb,
    'a role exempt from row level security in a context of B gets B''s value, not A''s override'
);
select tenancy.clear_context();
savepoint support_flags;  -- noqa: PRS
set local role tenancy_admin;
select access_number as ignored from tenancy.begin_support_access(:'tenant_a', 'flag check', 5) \gset
select tenancy.feature_value('notes.page_size') as admin_page_size \gset
reset role;
rollback to savepoint support_flags;
select is(
    :'admin_page_size'::jsonb, '{"rows": 50}'::jsonb,
    'tenancy_admin in a support access to A reads A''s value'
);
set local role tenancy_auditor;
select is(tenancy.feature_enabled('notes.visible'), false, 'tenancy_auditor (no context) gets false');
reset role;

-- feature_enabled in an application policy ------------------------------------------------------

create table public.settings_notes (
    tenant_id uuid not null default tenancy.current_tenant_id(),
    id integer not null,
    body text not null,
    constraint settings_notes_pkey primary key (tenant_id, id)
);
comment on table public.settings_notes is 'Notes shown only to tenants with notes.visible on.';
alter table public.settings_notes enable row level security;
alter table public.settings_notes force row level security;
create policy "notes are visible to the tenant when notes.visible is on" on public.settings_notes
for select
using (
    tenant_id operator (pg_catalog.=) (select tenancy.context_tenant_id(null))
    and (select tenancy.feature_enabled('notes.visible'))
);
grant select on public.settings_notes to tenancy_app;
insert into public.settings_notes (tenant_id, id, body)
values (:'tenant_a', 1, 'a one'), (:'tenant_a', 2, 'a two'), (:'tenant_b', 1, 'b one');

select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    'select body from public.settings_notes order by id',
    $$values ('a one'), ('a two')$$,
    'tenant A (notes.visible on by override) sees its notes through the policy'
);
select matches(
    pg_temp.plan_of('select body from public.settings_notes'),
    'InitPlan',
    'the flag is read once per statement (an initPlan), not per row'
);
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is_empty('select body from public.settings_notes', 'tenant B (notes.visible off by default) sees no note');

-- The default turned on: B sees its own note, still none of A's.
reset role;
set local role tenancy_admin;
select tenancy.set_feature_default('notes.visible', 'true');
reset role;
select pg_temp.act_as(:'tenant_b', :'owner_b');
select results_eq(
    'select body from public.settings_notes',
    $$values ('b one')$$,
    'with the default on, B sees its note and none of A''s'
);

-- An override turning the flag off for A wins over the default.
reset role;
set local role tenancy_admin;
select tenancy.set_feature_flag(:'tenant_a', 'notes.visible', 'false');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is_empty('select body from public.settings_notes', 'A''s override (off) wins over the default (on)');

-- Removing overrides and flags -------------------------------------------------------------------

reset role;
set local role tenancy_admin;
select throws_ok(
    $$select tenancy.set_feature_default('notes.visible', null)$$,
    '55000',
    'feature flag ''notes.visible'' is overridden for 1 tenant(s) and cannot be removed',
    'a flag a tenant overrides cannot be removed'
);
select lives_ok(
    format('select tenancy.set_feature_flag(%L, %L, null)', :'tenant_a', 'notes.visible'),
    'tenancy_admin removes A''s override'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(tenancy.feature_enabled('notes.visible'), true, 'without its override A follows the default (on)');
reset role;
set local role tenancy_admin;
select lives_ok(
    $$select tenancy.set_feature_default('notes.visible', null)$$,
    'tenancy_admin removes notes.visible once no tenant overrides it'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(tenancy.feature_value('notes.visible'), null, 'a removed flag has no value');
-- In a parallel plan (forced), where no subtransaction may start: the name check of the
-- not-found path raises nothing for a valid name.
select set_config(
    case when current_setting('server_version_num')::int >= 160000 then 'debug_parallel_query' else 'force_parallel_mode' end,
    'on',
    true
);
select is_empty('select body from public.settings_notes', 'a removed flag hides the notes again (forced parallel)');
reset role;

select * from finish();
rollback;
