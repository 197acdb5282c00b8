-- Usage model: meters, customers, versioned tiers, subscriptions, overrides, entitlements, customer_usage and usage periods.
-- Every function is called as tenancy_app in contexts set by tenancy_service, as applications do,
-- with each role of the tenant: owners and admins manage, members and viewers are refused (42501)
-- and without a context everything is refused (TN001); each error a function documents is raised
-- with its SQLSTATE and a message naming the value. The superuser only reads the rows behind the
-- functions and computes the internal tenancy.usage_period on fixed instants.

begin;
select plan(154);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'um-a-' || left(md5(random()::text), 8) as slug_a
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Usage model A', :'owner_a') as tenant_a \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
reset role;

-- Without a context ----------------------------------------------------------------------------

select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    $$select tenancy.create_meter('api_calls')$$,
    'TN001',
    'no tenant context: manage meters needs tenancy.authenticate() or tenancy.set_context() first',
    'create_meter without a context: TN001'
);
select throws_ok(
    $$select tenancy.create_customer('cust-1')$$,
    'TN001',
    'no tenant context: manage customers needs tenancy.authenticate() or tenancy.set_context() first',
    'create_customer without a context: TN001'
);
select throws_ok(
    $$select tenancy.create_tier('pro', 10)$$,
    'TN001',
    'no tenant context: manage tiers needs tenancy.authenticate() or tenancy.set_context() first',
    'create_tier without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', 20)$$,
    'TN001',
    'no tenant context: manage tiers needs tenancy.authenticate() or tenancy.set_context() first',
    'update_tier without a context: TN001'
);
select throws_ok(
    $$select tenancy.subscribe('cust-1', 'pro')$$,
    'TN001',
    'no tenant context: manage subscriptions needs tenancy.authenticate() or tenancy.set_context() first',
    'subscribe without a context: TN001'
);
select throws_ok(
    $$select tenancy.change_tier('cust-1', 'pro')$$,
    'TN001',
    'no tenant context: manage subscriptions needs tenancy.authenticate() or tenancy.set_context() first',
    'change_tier without a context: TN001'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-1', '{}')$$,
    'TN001',
    'no tenant context: manage subscriptions needs tenancy.authenticate() or tenancy.set_context() first',
    'set_subscription_overrides without a context: TN001'
);
select throws_ok(
    $$select tenancy.has_entitlement('cust-1', 'api_access')$$,
    'TN001',
    'no tenant context: check entitlements needs tenancy.authenticate() or tenancy.set_context() first',
    'has_entitlement without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.customer_usage('cust-1')$$,
    'TN001',
    'no tenant context: read usage needs tenancy.authenticate() or tenancy.set_context() first',
    'customer_usage without a context: TN001'
);
reset role;

-- Meters ---------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.create_meter('api_calls', 'API calls') as api_calls_id \gset
select tenancy.create_meter(
    'seats', 'Seats', p_aggregation => 'unique_count', p_property => 'user', p_reset_period => 'never', p_unit => 'seat'
) as seats_id \gset
select tenancy.create_meter('peak_gb', p_aggregation => 'max', p_reset_period => 'day', p_unit => 'GB');
select tenancy.create_meter('projects', p_aggregation => 'latest', p_reset_period => 'year');
select tenancy.create_meter('logins', p_aggregation => 'count', p_reset_period => 'week', p_backdate_grace => '90 days');
select tenancy.create_meter('exports', p_backdate_grace => '0');
reset role;
select results_eq(
    format(
        $$select key::text, name, unit, aggregation, property, reset_period, backdate_grace
        from tenancy.meters where tenant_id = %L order by key$$,
        :'tenant_a'
    ),
    $$values
        ('api_calls', 'API calls', 'unit', 'sum', null, 'month', interval '24 hours'),
        ('exports', 'exports', 'unit', 'sum', null, 'month', interval '0'),
        ('logins', 'logins', 'unit', 'count', null, 'week', interval '90 days'),
        ('peak_gb', 'peak_gb', 'GB', 'max', null, 'day', interval '24 hours'),
        ('projects', 'projects', 'unit', 'latest', null, 'year', interval '24 hours'),
        ('seats', 'Seats', 'seat', 'unique_count', 'user', 'never', interval '24 hours')$$,
    'create_meter stores key, name (the key by default), unit, aggregation, property, reset period and grace'
);
select is(
    (
        select id from tenancy.meters
        where tenant_id = :'tenant_a' and key = 'api_calls'
    ),
    :'api_calls_id'::uuid,
    'create_meter returns the meter''s id'
);

select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.create_meter('api_calls')$$,
    '23505',
    format('meter ''api_calls'' already exists in tenant %s', :'tenant_a'),
    'create_meter of an existing key: 23505 naming it'
);
select throws_ok(
    $$select tenancy.create_meter('API')$$,
    '22023',
    'invalid meter key ''API'': a lower-case letter, then up to 62 lower-case letters, digits and underscores',
    'create_meter refuses an upper-case key'
);
select throws_ok(
    $$select tenancy.create_meter('1calls')$$, '22023', null, 'create_meter refuses a key starting with a digit'
);
select throws_ok(
    $$select tenancy.create_meter(null)$$, '22023', null, 'create_meter refuses a NULL key'
);
select throws_ok(
    format($$select tenancy.create_meter(%L)$$, 'a' || repeat('b', 63)),
    '22023', null,
    'create_meter refuses a key of 64 characters'
);
select isnt(
    tenancy.create_meter('a' || repeat('b', 62)), null, 'create_meter takes a key of 63 characters'
);
select throws_ok(
    $$select tenancy.create_meter('avg_calls', p_aggregation => 'avg')$$,
    '22023',
    'invalid aggregation ''avg'' for meter ''avg_calls'': sum, count, max, unique_count or latest',
    'create_meter refuses an unknown aggregation'
);
select throws_ok(
    $$select tenancy.create_meter('users', p_aggregation => 'unique_count')$$,
    '22023',
    'meter ''users'': a unique_count meter needs the property whose values it counts, and only it has one (got NULL)',
    'create_meter refuses a unique_count meter without a property'
);
select throws_ok(
    $$select tenancy.create_meter('bytes', p_property => 'user')$$,
    '22023',
    'meter ''bytes'': a unique_count meter needs the property whose values it counts, and only it has one (got ''user'')',
    'create_meter refuses a property on a sum meter'
);
select throws_ok(
    format($$select tenancy.create_meter('users', p_aggregation => 'unique_count', p_property => %L)$$, repeat('p', 101)),
    '22023', null,
    'create_meter refuses a property name of 101 characters'
);
select throws_ok(
    $$select tenancy.create_meter('hourly', p_reset_period => 'hour')$$,
    '22023',
    'invalid reset period ''hour'' for meter ''hourly'': day, week, month, year or never',
    'create_meter refuses an unknown reset period'
);
select throws_ok(
    $$select tenancy.create_meter('late', p_backdate_grace => '91 days')$$,
    '22023',
    'invalid backdating grace 91 days for meter ''late'': 0 to 90 days',
    'create_meter refuses a grace over 90 days'
);
select throws_ok(
    $$select tenancy.create_meter('late', p_backdate_grace => '-1 second')$$,
    '22023', null,
    'create_meter refuses a negative grace'
);
select throws_ok(
    $$select tenancy.create_meter('late', p_backdate_grace => null)$$,
    '22023',
    'invalid backdating grace NULL for meter ''late'': 0 to 90 days',
    'create_meter refuses a NULL grace'
);
select throws_ok(
    $$select tenancy.create_meter('blank', '   ')$$,
    '22023',
    'invalid name ''   '' or unit ''unit'' for meter ''blank'': a name of 1 to 200 and a unit of 1 to 50 characters',
    'create_meter refuses a blank name'
);
select throws_ok(
    $$select tenancy.create_meter('blank', p_unit => '')$$,
    '22023', null,
    'create_meter refuses an empty unit'
);
select throws_ok(
    format($$select tenancy.create_meter('blank', %L)$$, repeat('n', 201)),
    '22023', null,
    'create_meter refuses a name of 201 characters'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'admin_a');
select isnt(tenancy.create_meter('storage_gb', p_aggregation => 'max'), null, 'an admin creates a meter');
reset role;
select pg_temp.act_as(:'tenant_a');
select isnt(tenancy.create_meter('service_calls'), null, 'a service context creates a meter');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.create_meter('member_calls')$$,
    '42501',
    format('role member of tenant %s cannot manage meters', :'tenant_a'),
    'a member cannot create a meter: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.create_meter('viewer_calls')$$,
    '42501',
    format('role viewer of tenant %s cannot manage meters', :'tenant_a'),
    'a viewer cannot create a meter: 42501'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.meters
        where tenant_id = :'tenant_a' and key in ('member_calls', 'viewer_calls')
    ),
    0,
    'the refused meters were not created'
);

-- Customers ------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.create_customer('cust-1', 'Customer One', '{"plan": "x"}') as cust_1_id \gset
select is(
    tenancy.create_customer('cust-1', p_metadata => '{"region": "eu"}'),
    :'cust_1_id'::uuid,
    'create_customer of an existing external id returns its id'
);
reset role;
select results_eq(
    format($$select name, metadata from tenancy.customers where tenant_id = %L and external_id = 'cust-1'$$, :'tenant_a'),
    $$values ('Customer One', '{"plan": "x", "region": "eu"}'::jsonb)$$,
    'create_customer keeps the name when none is given and merges the metadata'
);
select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.create_customer('cust-1', 'Customer 1');
reset role;
select is(
    (
        select name from tenancy.customers
        where tenant_id = :'tenant_a' and external_id = 'cust-1'
    ),
    'Customer 1',
    'an admin renames a customer'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.create_customer('')$$,
    '22023',
    'invalid customer id '''': 1 to 255 characters',
    'create_customer refuses an empty external id'
);
select throws_ok(
    format($$select tenancy.create_customer(%L)$$, repeat('c', 256)),
    '22023', null,
    'create_customer refuses an external id of 256 characters'
);
select isnt(
    tenancy.create_customer(repeat('c', 255)), null, 'create_customer takes an external id of 255 characters'
);
select throws_ok(
    $$select tenancy.create_customer('cust-x', p_metadata => '[1]')$$,
    '22023',
    'customer metadata must be a JSON object, got array',
    'create_customer refuses metadata that is not an object'
);
select throws_ok(
    $$select tenancy.create_customer('cust-x', p_metadata => null)$$,
    '22023',
    'customer metadata must be a JSON object, got NULL',
    'create_customer refuses NULL metadata'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.create_customer('cust-m')$$,
    '42501',
    format('role member of tenant %s cannot manage customers', :'tenant_a'),
    'a member cannot create a customer: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.create_customer('cust-v')$$,
    '42501', null,
    'a viewer cannot create a customer: 42501'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.customers
        where tenant_id = :'tenant_a' and external_id in ('', 'cust-x', 'cust-m', 'cust-v')
    ),
    0,
    'the refused customers were not created'
);

-- Tiers ----------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.create_tier(
    'pro', 29, '{"api_calls": 100, "seats": 3}', '{custom_domain,api_access,api_access}', 'EUR', '{seats}',
    '{"seats": 5}', '{0.9,0.5,0.9}'
) as pro_v1 \gset
select tenancy.create_tier('free', 0) as free_id \gset
reset role;
select results_eq(
    format(
        $$select name, version, is_current, superseded_at is null, price, currency, usage_caps, soft_caps,
            overage_prices, feature_entitlements, alert_thresholds
        from tenancy.tiers where tenant_id = %L order by name$$,
        :'tenant_a'
    ),
    $$values
        ('free', 1, true, true, 0::numeric, 'USD', '{}'::jsonb, '{}'::text[], '{}'::jsonb, '{}'::text[], '{0.8,1}'::numeric[]),
        ('pro', 1, true, true, 29, 'EUR', '{"api_calls": 100, "seats": 3}', '{seats}', '{"seats": 5}',
            '{api_access,custom_domain}', '{0.5,0.9}')$$,
    'create_tier stores version 1 with its terms; features and thresholds sorted without repeats; defaults: USD, no caps, 80 % and 100 %'
);
select is(
    (
        select id from tenancy.tiers
        where tenant_id = :'tenant_a' and name = 'pro'
    ),
    :'pro_v1'::uuid,
    'create_tier returns the tier''s id'
);

select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.create_tier('pro', 10)$$,
    '23505',
    format('tier ''pro'' already exists in tenant %s', :'tenant_a'),
    'create_tier of an existing tier: 23505 naming it'
);
select throws_ok(
    $$select tenancy.create_tier('', 10)$$,
    '22023',
    'invalid tier name '''': 1 to 100 characters, no surrounding spaces',
    'create_tier refuses an empty name'
);
select throws_ok(
    $$select tenancy.create_tier(' gold', 10)$$, '22023', null, 'create_tier refuses a name with surrounding spaces'
);
select throws_ok(
    format($$select tenancy.create_tier(%L, 10)$$, repeat('t', 101)),
    '22023', null,
    'create_tier refuses a name of 101 characters'
);
select throws_ok(
    $$select tenancy.create_tier('gold', -1)$$,
    '22023',
    'invalid price -1 for tier ''gold'': a finite number from 0',
    'create_tier refuses a negative price'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 'NaN')$$, '22023', null, 'create_tier refuses a NaN price'
);
select throws_ok(
    $$select tenancy.create_tier('gold', null)$$,
    '22023',
    'invalid price NULL for tier ''gold'': a finite number from 0',
    'create_tier refuses a NULL price'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_currency => 'usd')$$,
    '22023',
    'invalid currency ''usd'' for tier ''gold'': an ISO 4217 code such as USD',
    'create_tier refuses a currency that is not an ISO 4217 code'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '[1]')$$,
    '22023',
    'usage_caps of tier ''gold'' must be a JSON object of meter keys to numbers',
    'create_tier refuses caps that are not an object'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, null)$$, '22023', null, 'create_tier refuses NULL caps'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_overage_prices => '"x"')$$,
    '22023',
    'overage_prices of tier ''gold'' must be a JSON object of meter keys to numbers',
    'create_tier refuses overage prices that are not an object'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"api_calls": "100"}')$$,
    '22023',
    'tier ''gold'': cap of ''api_calls'': "100" is not a number',
    'create_tier refuses a cap that is not a number'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"api_calls": -1}')$$,
    '22023',
    'tier ''gold'': cap of ''api_calls'': -1 is negative',
    'create_tier refuses a negative cap'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"api_calls": 10}', p_overage_prices => '{"seats": 1}')$$,
    '22023',
    'tier ''gold'': overage price of ''seats'': the tier has no cap on it',
    'create_tier refuses an overage price of an uncapped meter'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"api_calls": 10}', p_overage_prices => '{"api_calls": -2}')$$,
    '22023',
    'tier ''gold'': overage price of ''api_calls'': -2 is negative',
    'create_tier refuses a negative overage price'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"api_calls": 10}', p_soft_caps => '{seats}')$$,
    '22023',
    'tier ''gold'': soft cap ''seats'': the tier has no cap on it',
    'create_tier refuses a soft cap on an uncapped meter'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{"nope": 10}')$$,
    '22023',
    format('tier ''gold'' caps meter ''nope'', which tenant %s does not have', :'tenant_a'),
    'create_tier refuses a cap on a meter the tenant does not have'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{}', '{Custom-Domain}')$$,
    '22023',
    'invalid feature ''Custom-Domain'' of tier ''gold'': a lower-case letter, then up to 62 lower-case letters, digits and underscores',
    'create_tier refuses a feature name that is not a key'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, '{}', array[null]::text[])$$,
    '22023', null,
    'create_tier refuses a NULL feature'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_alert_thresholds => '{0}')$$,
    '22023',
    'invalid alert thresholds {0} of tier ''gold'': up to 10 fractions of the cap, above 0 and at most 10',
    'create_tier refuses a threshold of 0'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_alert_thresholds => '{11}')$$,
    '22023', null,
    'create_tier refuses a threshold above 10'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_alert_thresholds => null)$$,
    '22023', null,
    'create_tier refuses NULL thresholds'
);
select throws_ok(
    $$select tenancy.create_tier('gold', 10, p_alert_thresholds => '{0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,2}')$$,
    '22023', null,
    'create_tier refuses 11 thresholds'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.create_tier('team', 99, '{"api_calls": 1000}', '{custom_domain,api_access}') as team_id \gset
select isnt(:'team_id'::uuid, null, 'an admin creates a tier');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.create_tier('member tier', 1)$$,
    '42501',
    format('role member of tenant %s cannot manage tiers', :'tenant_a'),
    'a member cannot create a tier: 42501'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', 1)$$,
    '42501',
    format('role member of tenant %s cannot manage tiers', :'tenant_a'),
    'a member cannot update a tier: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.create_tier('viewer tier', 1)$$, '42501', null, 'a viewer cannot create a tier: 42501'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.tiers
        where tenant_id = :'tenant_a'
    ),
    3,
    'only pro, free and team exist'
);

-- Versioning -----------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    $$select tier_id, version, new_version from tenancy.update_tier('free', 5)$$,
    format($$values (%L::uuid, 1, false)$$, :'free_id'),
    'update_tier of a tier without subscribers changes its version in place'
);
select is(
    tenancy.subscribe('cust-1', 'pro', p_started_at => '2025-01-31 10:00:00+00'),
    :'pro_v1'::uuid,
    'subscribe returns the current version of the tier'
);
select
    tier_id as pro_v2,
    version as pro_v2_version,
    new_version as pro_v2_new
from tenancy.update_tier('pro', p_usage_caps => '{"api_calls": 200}') \gset
select results_eq(
    format($$select %L::integer, %L::boolean, %L::uuid <> %L::uuid$$, :'pro_v2_version', :'pro_v2_new', :'pro_v2', :'pro_v1'),
    $$values (2, true, true)$$,
    'update_tier of a tier with a subscriber makes version 2, a new tier row'
);
reset role;
select results_eq(
    format(
        $$select version, is_current, superseded_at is not null, price, currency, usage_caps, soft_caps, overage_prices,
            feature_entitlements, alert_thresholds
        from tenancy.tiers where tenant_id = %L and name = 'pro' order by version$$,
        :'tenant_a'
    ),
    $$values
        (1, false, true, 29::numeric, 'EUR', '{"api_calls": 100, "seats": 3}'::jsonb, '{seats}'::text[], '{"seats": 5}'::jsonb,
            '{api_access,custom_domain}'::text[], '{0.5,0.9}'::numeric[]),
        (2, true, false, 29, 'EUR', '{"api_calls": 200}', '{}', '{}', '{api_access,custom_domain}', '{0.5,0.9}')$$,
    'version 1 is superseded; version 2 keeps the terms not given and drops the soft cap and overage price of the meter no longer capped'
);
select is(
    (
        select s.tier_id from tenancy.subscriptions as s
        inner join tenancy.customers as c on s.tenant_id = c.tenant_id and s.customer_id = c.id
        where s.tenant_id = :'tenant_a' and c.external_id = 'cust-1'
    ),
    :'pro_v1'::uuid,
    'the subscriber stays on version 1'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    $$select cap, hard from tenancy.customer_usage('cust-1') where meter = 'api_calls'$$,
    $$values (100::numeric, true)$$,
    'the subscriber''s cap is still version 1''s'
);
select results_eq(
    $$select tier_id, version, new_version from tenancy.update_tier('pro', 39)$$,
    format($$values (%L::uuid, 2, false)$$, :'pro_v2'),
    'updating version 2, which has no subscribers, changes it in place'
);
select is(tenancy.subscribe('cust-2', 'pro'), :'pro_v2'::uuid, 'a new subscriber gets the current version 2');
select results_eq(
    $$select cap from tenancy.customer_usage('cust-2') where meter = 'api_calls'$$,
    $$values (200::numeric)$$,
    'the new subscriber has version 2''s cap'
);
select
    tier_id as pro_v3,
    version as pro_v3_version,
    new_version as pro_v3_new
from tenancy.update_tier('pro', p_soft_caps => '{api_calls}', p_overage_prices => '{"api_calls": 0.01}') \gset
reset role;
select results_eq(
    format($$select id, version, %L::boolean from tenancy.tiers where id = %L$$, :'pro_v3_new', :'pro_v3'),
    format($$values (%L::uuid, 3, true)$$, :'pro_v3'),
    'updating version 2 once it has a subscriber makes version 3'
);
select results_eq(
    format(
        $$select price, soft_caps, overage_prices from tenancy.tiers where tenant_id = %L and name = 'pro' and is_current$$,
        :'tenant_a'
    ),
    $$values (39::numeric, '{api_calls}'::text[], '{"api_calls": 0.01}'::jsonb)$$,
    'update_tier sets a soft cap and its overage price'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select is(tenancy.change_tier('cust-1', 'pro'), :'pro_v3'::uuid, 'change_tier moves a subscriber to the current version');
select results_eq(
    $$select cap, hard from tenancy.customer_usage('cust-1') where meter = 'api_calls'$$,
    $$values (200::numeric, false)$$,
    'the moved subscriber has version 3''s soft cap of 200'
);
reset role;
select is(
    (
        select s.period_anchor from tenancy.subscriptions as s
        inner join tenancy.customers as c on s.tenant_id = c.tenant_id and s.customer_id = c.id
        where s.tenant_id = :'tenant_a' and c.external_id = 'cust-1'
    ),
    '2025-01-31 10:00:00+00'::timestamptz,
    'change_tier keeps the period anchor'
);
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(tenancy.change_tier('cust-1', 'free'), :'free_id'::uuid, 'an admin moves a subscriber to another tier');
select throws_ok(
    $$select tenancy.change_tier('cust-1', 'gold')$$,
    'P0002',
    format('tier ''gold'' does not exist in tenant %s', :'tenant_a'),
    'change_tier to an unknown tier: P0002 naming it'
);
select throws_ok(
    $$select tenancy.change_tier('cust-9', 'pro')$$,
    'P0002',
    format('customer ''cust-9'' of tenant %s has no subscription', :'tenant_a'),
    'change_tier of a customer without a subscription: P0002 naming it'
);
select throws_ok(
    $$select * from tenancy.update_tier('gold', 10)$$,
    'P0002',
    format('tier ''gold'' does not exist in tenant %s', :'tenant_a'),
    'update_tier of an unknown tier: P0002 naming it'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', -5)$$,
    '22023',
    'invalid price -5 for tier ''pro'': a finite number from 0',
    'update_tier refuses bad terms: 22023'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', p_soft_caps => '{seats}')$$,
    '22023',
    'tier ''pro'': soft cap ''seats'': the tier has no cap on it',
    'update_tier refuses a soft cap on a meter the tier does not cap'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', p_usage_caps => '{"nope": 1}')$$,
    '22023', null,
    'update_tier refuses a cap on an unknown meter'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.change_tier('cust-1', 'pro')$$,
    '42501',
    format('role member of tenant %s cannot manage subscriptions', :'tenant_a'),
    'a member cannot change a tier: 42501'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.tiers
        where tenant_id = :'tenant_a' and name = 'pro'
    ),
    3,
    'the refused updates made no version'
);

-- Subscriptions --------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select is(
    tenancy.subscribe(
        'cust-3', 'team', p_started_at => '2025-03-15 08:00:00+00',
        p_cap_overrides => '{"api_calls": 5000, "seats": null}', p_extra_entitlements => '{sso,sso}',
        p_revoked_entitlements => '{api_access}'
    ),
    :'team_id'::uuid,
    'subscribe with a start, cap overrides and extra and revoked entitlements'
);
reset role;
select results_eq(
    format(
        $$select s.started_at, s.period_anchor, s.cap_overrides, s.extra_entitlements, s.revoked_entitlements
        from tenancy.subscriptions as s
        join tenancy.customers as c on c.tenant_id = s.tenant_id and c.id = s.customer_id
        where s.tenant_id = %L and c.external_id = 'cust-3'$$,
        :'tenant_a'
    ),
    $$values (
        '2025-03-15 08:00:00+00'::timestamptz, '2025-03-15 08:00:00+00'::timestamptz,
        '{"api_calls": 5000, "seats": null}'::jsonb, '{sso}'::text[], '{api_access}'::text[]
    )$$,
    'the start anchors the periods; the customer was created; entitlements without repeats'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.subscribe('cust-3', 'free')$$,
    '23505',
    format('customer ''cust-3'' of tenant %s already has a subscription', :'tenant_a'),
    'subscribe of a subscribed customer: 23505 naming it'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'gold')$$,
    'P0002',
    format('tier ''gold'' does not exist in tenant %s', :'tenant_a'),
    'subscribe to an unknown tier: P0002 naming it'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_started_at => now() + interval '2 years')$$,
    '22023',
    format('subscription start %s is not within 10 years before and 1 year after now', now() + interval '2 years'),
    'subscribe refuses a start more than a year ahead: 22023'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_started_at => now() - interval '11 years')$$,
    '22023', null,
    'subscribe refuses a start more than 10 years back: 22023'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_cap_overrides => '{"api_calls": "many"}')$$,
    '22023',
    'cap override of ''api_calls'': "many" is not a number or null',
    'subscribe refuses a cap override that is not a number'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_cap_overrides => '{"api_calls": -1}')$$,
    '22023',
    'cap override of ''api_calls'': -1 is negative',
    'subscribe refuses a negative cap override'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_cap_overrides => '{"nope": 1}')$$,
    '22023',
    format('cap override of ''nope'': tenant %s has no such meter', :'tenant_a'),
    'subscribe refuses a cap override of an unknown meter'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_cap_overrides => '[]')$$,
    '22023',
    'cap overrides must be a JSON object of meter keys to numbers (or null for no cap)',
    'subscribe refuses cap overrides that are not an object'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_extra_entitlements => '{Bad!}')$$,
    '22023',
    'invalid feature ''Bad!'': a lower-case letter, then up to 62 lower-case letters, digits and underscores',
    'subscribe refuses a bad extra feature'
);
select throws_ok(
    $$select tenancy.subscribe('cust-4', 'free', p_revoked_entitlements => null)$$,
    '22023',
    'extra and revoked entitlements must be arrays, not NULL',
    'subscribe refuses NULL revoked entitlements'
);
select throws_ok(
    $$select tenancy.subscribe('', 'free')$$,
    '22023',
    'invalid customer id '''': 1 to 255 characters',
    'subscribe refuses an empty customer id'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.customers
        where tenant_id = :'tenant_a' and external_id in ('cust-4', '')
    ),
    0,
    'refused subscriptions created no customer'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.subscribe('cust-5', 'free')$$,
    '42501',
    format('role member of tenant %s cannot manage subscriptions', :'tenant_a'),
    'a member cannot subscribe a customer: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.subscribe('cust-5', 'free')$$, '42501', null, 'a viewer cannot subscribe a customer: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(tenancy.subscribe('cust-5', 'free'), :'free_id'::uuid, 'an admin subscribes a customer');
reset role;
select is(
    (
        select s.period_anchor from tenancy.subscriptions as s
        inner join tenancy.customers as c on s.tenant_id = c.tenant_id and s.customer_id = c.id
        where s.tenant_id = :'tenant_a' and c.external_id = 'cust-5'
    ),
    now(),
    'without a start the subscription starts now'
);

-- Overrides ------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.change_tier('cust-1', 'team');
select tenancy.set_subscription_overrides('cust-1', '{"api_calls": 7}', '{beta}', '{}');
select results_eq(
    $$select cap, hard, remaining from tenancy.customer_usage('cust-1') where meter = 'api_calls'$$,
    $$values (7::numeric, true, 7::numeric)$$,
    'a cap override replaces the tier''s cap'
);
select tenancy.set_subscription_overrides('cust-1', '{"api_calls": null}');
select results_eq(
    $$select cap, hard, remaining from tenancy.customer_usage('cust-1') where meter = 'api_calls'$$,
    $$values (null::numeric, false, null::numeric)$$,
    'a JSON null override removes the cap'
);
select is(
    tenancy.has_entitlement('cust-1', 'beta'), false,
    'set_subscription_overrides replaces the extra entitlements (beta is gone)'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-9', '{}')$$,
    'P0002',
    format('customer ''cust-9'' of tenant %s has no subscription', :'tenant_a'),
    'set_subscription_overrides of a customer without a subscription: P0002'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-1', '{"api_calls": true}')$$,
    '22023',
    'cap override of ''api_calls'': true is not a number or null',
    'set_subscription_overrides refuses a bad override: 22023'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-1', null)$$,
    '22023', null,
    'set_subscription_overrides refuses NULL overrides'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-1', '{}', null)$$,
    '22023',
    'extra and revoked entitlements must be arrays, not NULL',
    'set_subscription_overrides refuses NULL extra entitlements'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.set_subscription_overrides('cust-1', '{}')$$,
    '42501',
    format('role member of tenant %s cannot manage subscriptions', :'tenant_a'),
    'a member cannot set overrides: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.set_subscription_overrides('cust-1', '{"api_calls": 70}', '{beta}');
select results_eq(
    $$select cap, tenancy.has_entitlement('cust-1', 'beta') from tenancy.customer_usage('cust-1') where meter = 'api_calls'$$,
    $$values (70::numeric, true)$$,
    'an admin sets overrides'
);
reset role;

-- Entitlements ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    $$select tenancy.has_entitlement('cust-3', 'custom_domain'), tenancy.has_entitlement('cust-3', 'api_access'),
        tenancy.has_entitlement('cust-3', 'sso'), tenancy.has_entitlement('cust-3', 'nope'),
        tenancy.has_entitlement('cust-3', null)$$,
    $$values (true, false, true, false, false)$$,
    'has_entitlement: the tier''s feature, minus the revoked one, plus the extra one; not others'
);
select is(
    tenancy.has_entitlement('cust-2', 'api_access'), true, 'has_entitlement: a feature of the subscriber''s version'
);
select is(
    tenancy.has_entitlement('nobody', 'api_access'), false, 'has_entitlement of an unknown customer: false'
);
select tenancy.create_customer('cust-unsubscribed');
select is(
    tenancy.has_entitlement('cust-unsubscribed', 'api_access'), false,
    'has_entitlement of a customer without a subscription: false'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(tenancy.has_entitlement('cust-3', 'custom_domain'), true, 'a member checks entitlements');
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select is(tenancy.has_entitlement('cust-3', 'sso'), true, 'a viewer checks entitlements');
reset role;

-- customer_usage -------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'cust-3', 12);
select tenancy.track_usage('seats', 'cust-3', p_properties => '{"user": "u1"}');
select tenancy.track_usage('peak_gb', 'cust-3', 4.5);
reset role;
-- the periods expected, from the subscription's anchor (the superuser calls the internal function)
select
    m.period_start as month_start,
    m.period_end as month_end,
    d.period_start as day_start,
    d.period_end as day_end,
    (
        select count(*) from tenancy.meters as mt
        where mt.tenant_id = :'tenant_a'
    ) as meter_count
from tenancy.usage_period('month', '2025-03-15 08:00:00+00', now()) as m,
    tenancy.usage_period('day', '2025-03-15 08:00:00+00', now()) as d
\gset
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select results_eq(
    $$select meter, aggregation, unit, used, reserved, cap, hard, remaining, period_start, period_end
    from tenancy.customer_usage('cust-3') where meter in ('api_calls', 'peak_gb', 'seats')$$,
    format(
        $$values
            ('api_calls', 'sum', 'unit', 12::numeric, 0::numeric, 5000::numeric, true, 4988::numeric, %L::timestamptz, %L::timestamptz),
            ('peak_gb', 'max', 'GB', 4.5, 0, null, false, null, %L, %L),
            ('seats', 'unique_count', 'seat', 1, 0, null, false, null, '-infinity', 'infinity')$$,
        :'month_start', :'month_end', :'day_start', :'day_end'
    ),
    'customer_usage (read by a viewer): used, cap from the override (a null override: none), remaining and the anchored period of each meter'
);
select results_eq(
    $$select count(*)::integer, count(*) filter (where used = 0 and cap is null and remaining is null)::integer
    from tenancy.customer_usage('cust-3')$$,
    format($$values (%s, %s)$$, :meter_count, :meter_count - 3),
    'customer_usage has one row per meter of the tenant'
);
select results_eq(
    $$select meter, used, cap, period_start, period_end from tenancy.customer_usage('nobody') where meter = 'api_calls'$$,
    $$values ('api_calls', 0::numeric, null::numeric,
        date_trunc('month', now() at time zone 'UTC') at time zone 'UTC',
        (date_trunc('month', now() at time zone 'UTC') + interval '1 month') at time zone 'UTC')$$,
    'customer_usage of an unknown customer: nothing used, no cap, the calendar month in UTC'
);
select throws_ok(
    $$select * from tenancy.usage_period('day', null, now())$$,
    '42501', null,
    'tenancy_app cannot call the internal usage_period'
);
reset role;

-- usage_period (internal; as the superuser, in a time zone far from UTC) ------------------------

set local timezone = 'Pacific/Kiritimati';
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 10:00:00+00', '2025-02-27 23:00:00+00')$$,
    $$values ('2025-01-31 10:00:00+00'::timestamptz, '2025-02-28 10:00:00+00'::timestamptz)$$,
    'month anchored on the 31st: the first period ends on February 28th'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 10:00:00+00', '2025-02-28 10:00:00+00')$$,
    $$values ('2025-02-28 10:00:00+00'::timestamptz, '2025-03-31 10:00:00+00'::timestamptz)$$,
    'month anchored on the 31st: February 28th starts the next period, which ends on March 31st'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 10:00:00+00', '2025-03-31 09:59:59.999999+00')$$,
    $$values ('2025-02-28 10:00:00+00'::timestamptz, '2025-03-31 10:00:00+00'::timestamptz)$$,
    'month anchored on the 31st: the end is exclusive'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 10:00:00+00', '2025-04-30 12:00:00+00')$$,
    $$values ('2025-04-30 10:00:00+00'::timestamptz, '2025-05-31 10:00:00+00'::timestamptz)$$,
    'month anchored on the 31st: April''s period starts on the 30th and May''s on the 31st again'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2024-01-31 10:00:00+00', '2024-03-01 00:00:00+00')$$,
    $$values ('2024-02-29 10:00:00+00'::timestamptz, '2024-03-31 10:00:00+00'::timestamptz)$$,
    'month anchored on the 31st in a leap year: February 29th'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 10:00:00+00', '2024-12-15 00:00:00+00')$$,
    $$values ('2024-11-30 10:00:00+00'::timestamptz, '2024-12-31 10:00:00+00'::timestamptz)$$,
    'month: instants before the anchor fall in the periods before it'
);
select results_eq(
    $$select * from tenancy.usage_period('month', '2025-01-31 23:00:00+00', '2025-03-01 00:00:00+00')$$,
    $$values ('2025-02-28 23:00:00+00'::timestamptz, '2025-03-31 23:00:00+00'::timestamptz)$$,
    'month: counted in UTC, whatever the session''s time zone (the anchor is February 1st in Kiritimati)'
);
select results_eq(
    $$select * from tenancy.usage_period('month', null, '2025-12-31 23:59:59+00')$$,
    $$values ('2025-12-01 00:00:00+00'::timestamptz, '2026-01-01 00:00:00+00'::timestamptz)$$,
    'month without an anchor: the calendar month in UTC'
);
select results_eq(
    $$select * from tenancy.usage_period('week', null, '2025-06-15 12:00:00+00')$$,
    $$values ('2025-06-09 00:00:00+00'::timestamptz, '2025-06-16 00:00:00+00'::timestamptz)$$,
    'week without an anchor: from Monday, in UTC (a Sunday falls in the week before)'
);
select results_eq(
    $$select * from tenancy.usage_period('week', null, '2025-06-16 00:00:00+00')$$,
    $$values ('2025-06-16 00:00:00+00'::timestamptz, '2025-06-23 00:00:00+00'::timestamptz)$$,
    'week without an anchor: Monday midnight starts the week'
);
select results_eq(
    $$select * from tenancy.usage_period('week', '2025-06-11 08:00:00+00', '2025-06-20 00:00:00+00')$$,
    $$values ('2025-06-18 08:00:00+00'::timestamptz, '2025-06-25 08:00:00+00'::timestamptz)$$,
    'week anchored on a Wednesday: weeks from Wednesday 08:00'
);
select results_eq(
    $$select * from tenancy.usage_period('day', null, '2025-06-15 23:59:59.999999+00')$$,
    $$values ('2025-06-15 00:00:00+00'::timestamptz, '2025-06-16 00:00:00+00'::timestamptz)$$,
    'day without an anchor: the UTC day'
);
select results_eq(
    $$select * from tenancy.usage_period('day', '2025-06-15 06:30:00+00', '2025-06-15 06:29:59+00')$$,
    $$values ('2025-06-14 06:30:00+00'::timestamptz, '2025-06-15 06:30:00+00'::timestamptz)$$,
    'day anchored at 06:30: a second before the anchor is the day before'
);
select results_eq(
    $$select * from tenancy.usage_period('day', '2025-06-15 06:30:00+00', '2025-07-01 06:30:00+00')$$,
    $$values ('2025-07-01 06:30:00+00'::timestamptz, '2025-07-02 06:30:00+00'::timestamptz)$$,
    'day anchored at 06:30: the anchor''s time of day starts each day'
);
select results_eq(
    $$select * from tenancy.usage_period('year', null, '2025-07-04 00:00:00+00')$$,
    $$values ('2025-01-01 00:00:00+00'::timestamptz, '2026-01-01 00:00:00+00'::timestamptz)$$,
    'year without an anchor: the calendar year in UTC'
);
select results_eq(
    $$select * from tenancy.usage_period('year', '2024-02-29 12:00:00+00', '2025-02-28 11:00:00+00')$$,
    $$values ('2024-02-29 12:00:00+00'::timestamptz, '2025-02-28 12:00:00+00'::timestamptz)$$,
    'year anchored on February 29th: the year ends on February 28th'
);
select results_eq(
    $$select * from tenancy.usage_period('year', '2024-02-29 12:00:00+00', '2028-02-29 13:00:00+00')$$,
    $$values ('2028-02-29 12:00:00+00'::timestamptz, '2029-02-28 12:00:00+00'::timestamptz)$$,
    'year anchored on February 29th: leap years start on the 29th again'
);
select results_eq(
    $$select * from tenancy.usage_period('never', '2025-01-31 10:00:00+00', now())
    union all
    select * from tenancy.usage_period('never', null, '1999-01-01 00:00:00+00')$$,
    $$values ('-infinity'::timestamptz, 'infinity'::timestamptz), ('-infinity', 'infinity')$$,
    'never: one period from -infinity to infinity, with or without an anchor'
);
select results_eq(
    $$select * from tenancy.usage_period(null, null, now())
    union all
    select * from tenancy.usage_period('day', null, null)$$,
    $$values (null::timestamptz, null::timestamptz), (null, null)$$,
    'no reset period or no instant: a NULL period'
);
select throws_ok(
    $$select * from tenancy.usage_period('hour', null, now())$$,
    '22023',
    'invalid reset period ''hour'': day, week, month, year or never',
    'an unknown reset period: 22023'
);
reset timezone;

select * from finish();
rollback;
