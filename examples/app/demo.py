"""The pgtenancy demo: two tenants, one database, and nobody sees anybody else's rows.

Run with ``make demo``, which passes the throwaway cluster's URL (or $DATABASE_URL when set).
Directly: ``python examples/app/demo.py --database-url URL``; it (re)creates a
``pgtenancy_demo`` database on the server of URL, and never touches the database URL names.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import as_login
from pgtenancy.testing.tokens import tenant_token

HERE = Path(__file__).resolve().parent
DEMO_DB = "pgtenancy_demo"
SECRET = "demo-secret-" + "0123456789abcdef" * 3
ISSUER = "https://auth.demo.example"
LOGINS = {
    "demo_app": "tenancy_app",
    "demo_service": "tenancy_service",
    "demo_admin": "tenancy_admin",
}

# User ids are the identity provider's subjects, verbatim.
ALICE = "auth0|5f7c8ec7c33c6c004bbafe82"  # Acme owner
BOB = "auth0|61a4c2e9d51b7a0069f3c1d4"  # Acme member
CAROL = "google-oauth2|108143987654321098765"  # Acme viewer
DAVE = "user_2abcDEFghiJKLmnoPQRstu"  # Globex owner


def say(text: str = "") -> None:
    print(text, flush=True)


def ok(text: str) -> None:
    say(f"   ✔ {text}")


def prepare(base: str) -> str:
    say(f"Creating the database {DEMO_DB} and migrating it (a few seconds) ...")
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DEMO_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DEMO_DB)))
    url = testing.with_dbname(base, DEMO_DB)
    steps = migrate(url)
    versioned = sum(1 for s in steps if s[:4].isdigit())
    say(f"1. pgtenancy migrate applied {len(steps)} steps to a new database, {DEMO_DB}:")
    say(
        f"   {versioned} versioned migrations (roles, the tenancy schema, its tables) and "
        f"{len(steps) - versioned} definitions"
    )
    say("   (functions and generated policies), each step in its own transaction.")
    with psycopg.connect(url, autocommit=True) as conn:
        for path in [HERE / "schema.sql", *sorted((HERE / "policies").glob("*.sql"))]:
            with conn.transaction():
                conn.execute(path.read_bytes())
        for login, group in LOGINS.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("create role {} login in role {}").format(
                        sql.Identifier(login), sql.Identifier(group)
                    )
                )
    say("   The example app (app.projects, app.documents) got its generated row-level security.")
    return url


def one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def refused(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> str:
    """Run a statement expected to fail inside a savepoint; return 'SQLSTATE: message'."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return f"{exc.sqlstate}: {exc.diag.message_primary}"
    raise SystemExit(f"demo failed: expected {query!r} to be refused")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a database on the server to use (default: $DATABASE_URL); the demo creates "
        f"{DEMO_DB} next to it",
    )
    args = parser.parse_args(argv)
    if not (args.database_url or "").strip():
        parser.error(
            "which server? Pass --database-url URL or set DATABASE_URL; for the throwaway "
            'local cluster: --database-url "$(pgtenancy db url)" (or run make demo)'
        )
    return args


def main(argv: list[str] | None = None) -> int:
    url = prepare(parse_args(argv).database_url)
    app_url, service_url, admin_url = (as_login(url, n) for n in LOGINS)

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("select tenancy.configure_jwt(%s, %s)", (SECRET, ISSUER))
        acme = one(admin, "select tenancy.create_tenant('acme', 'Acme Corp', %s)", (ALICE,))
        globex = one(admin, "select tenancy.create_tenant('globex', 'Globex', %s)", (DAVE,))
    say(
        "2. A platform operator (tenancy_admin) configured JWT verification "
        "and created two tenants:"
    )
    say(f"   acme   {acme}  owner alice")
    say(f"   globex {globex}  owner dave")

    def token(tenant: uuid.UUID, user: str, ttl: int = 300) -> str:
        return tenant_token(SECRET, tenant, user, ttl=ttl, issuer=ISSUER)

    with psycopg.connect(app_url) as app:
        # Alice, Acme's owner, adds Bob as a member and Carol as a viewer.
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            app.execute("select tenancy.add_member(%s, 'member')", (BOB,))
            app.execute("select tenancy.add_member(%s, 'viewer')", (CAROL,))
            app.execute(
                "insert into app.projects (name) values ('Rocket skates'), ('Giant magnet')"
            )
        # Bob writes documents; Dave fills Globex.
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, BOB),))
            app.execute(
                "insert into app.documents (project_id, title) "
                "select id, name || ' spec' from app.projects"
            )
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(globex, DAVE),))
            app.execute("insert into app.projects (name) values ('Doomsday device')")
            app.execute(
                "insert into app.documents (project_id, title) "
                "select id, 'Top secret plans' from app.projects"
            )
        say("3. Through the application role (tenancy_app), with signed tokens:")
        say("   alice (acme owner) added bob as member and carol as viewer, and made 2 projects;")
        say("   bob (member) wrote 2 documents; dave (globex owner) made 1 project and 1 document.")

        say("4. Every tenant sees only its own rows:")
        for name, tenant, user in (("alice@acme", acme, ALICE), ("dave@globex", globex, DAVE)):
            with app.transaction():
                ctx = app.execute(
                    "select tenant_id, role from tenancy.authenticate(%s)", (token(tenant, user),)
                ).fetchone()
                titles = [r[0] for r in app.execute("select title from app.documents order by id")]
                total = one(app, "select count(*) from app.documents")
            assert ctx is not None and ctx[0] == tenant
            assert all(t.endswith("spec") for t in titles) == (tenant == acme)
            noun = "document" if total == 1 else "documents"
            ok(f"{name:12} role {ctx[1]:6} sees {total} {noun}: {', '.join(titles)}")
            if tenant == globex:
                assert total == 1

        say("5. And every attempt to cross the line is refused:")
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, CAROL),))
            ok(
                "carol (viewer) reads "
                f"{one(app, 'select count(*) from app.documents')} documents but cannot write: "
                + refused(app, "insert into app.documents (project_id, title) values (1, 'x')")
            )
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            ok(
                "alice (acme owner) cannot insert a globex project: "
                + refused(
                    app,
                    "insert into app.projects (tenant_id, name) values (%s, 'Trojan horse')",
                    (globex,),
                )
            )
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, BOB),))
            changed = app.execute(
                "update app.documents set title = 'pwned' where tenant_id = %s", (globex,)
            )
            ok(f"bob's update of globex documents changed {changed.rowcount} rows")
            ok(
                "bob cannot move a row to globex: "
                + refused(app, "update app.documents set tenant_id = %s", (globex,))
            )
            forged = one(
                app,
                "select set_config('tenancy.context', "
                "replace(current_setting('tenancy.context'), %s, %s), true)",
                (str(acme), str(globex)),
            )
            seen = one(app, "select count(*) from app.documents")
            ok(
                f"bob forges set_config('tenancy.context', …{forged[-20:]}) "
                f"with globex's id: sees {seen} rows"
            )
            assert seen == 0
        with app.transaction():
            ok(
                "an expired token is refused: "
                + refused(app, "select tenancy.authenticate(%s)", (token(acme, ALICE, ttl=-60),))
            )
        with app.transaction():
            seen = one(app, "select count(*) from app.documents")
            ok(
                f"no token at all: {seen} rows visible, and writing says "
                + refused(app, "insert into app.projects (name) values ('Anonymous')")
            )
        with app.transaction():
            ok(
                "the app role cannot pick its own tenant: "
                + refused(app, "select tenancy.set_context(%s)", (globex,))
            )

    # The audit trail: every change above was recorded, in the writer's transaction.
    with psycopg.connect(app_url) as app, app.transaction():
        app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
        trail = app.execute(
            "select entity_type, action, count(*) from tenancy.audit_logs "
            "group by entity_type, action order by entity_type, action"
        ).fetchall()
        bob = one(
            app,
            "select string_agg(distinct a.action || ' ' || a.entity_type, ', ') "
            "from tenancy.audit_logs as a where a.actor_user_id = %s",
            (BOB,),
        )
    with psycopg.connect(service_url, autocommit=True) as service:
        sealed = service.execute("select sealed_rows from tenancy.seal_audit()").fetchone()
        verified = service.execute(
            "select ok, checked_rows from tenancy.verify_audit(%s)", (acme,)
        ).fetchone()
    say("6. Every change was recorded in the audit trail, which alice (acme owner) reads:")
    for entity, action, count in trail:
        say(f"   {entity:24} {action:7} {count}")
    ok(f"bob's rows in acme's trail: {bob}; his update of globex changed nothing, so none")
    assert sealed is not None and verified is not None and verified[0] is True
    ok(
        f"a service job sealed {sealed[0]} audit rows into per-tenant hash chains; "
        f"acme's chain verifies ({verified[1]} rows)"
    )

    # Usage and tiers: acme meters its own customers; a hard cap holds.
    with psycopg.connect(app_url) as app:
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            app.execute("select tenancy.create_meter('api_calls', 'API calls')")
            app.execute(
                "select tenancy.create_tier('starter', 9, '{\"api_calls\": 5}', '{api_access}')"
            )
            app.execute("select tenancy.subscribe('cus_roadrunner', 'starter')")
        outcomes: list[str] = []
        for _ in range(7):
            with app.transaction():
                app.execute("select tenancy.authenticate(%s)", (token(acme, BOB),))
                outcomes.append(
                    one(
                        app,
                        "select outcome from tenancy.track_usage("
                        "'api_calls', 'cus_roadrunner', 1, p_enforce => true)",
                    )
                )
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, CAROL),))
            check = app.execute(
                "select allowed, used, cap from tenancy.check_usage_enforcement("
                "'cus_roadrunner', 'api_calls')"
            ).fetchone()
            entitled = one(app, "select tenancy.has_entitlement('cus_roadrunner', 'api_access')")
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(globex, DAVE),))
            foreign = one(app, "select count(*) from tenancy.customers")
            no_meter = refused(
                app, "select tenancy.track_usage('api_calls', 'cus_roadrunner', 1000)"
            )
    say("7. Usage and tiers: alice put customer cus_roadrunner on tier starter (5 API calls):")
    assert outcomes == ["recorded"] * 5 + ["refused"] * 2, outcomes
    assert check is not None and check[0] is False and entitled is True and foreign == 0
    ok(f"bob tracked 7 calls with p_enforce: {', '.join(outcomes)}")
    ok(
        f"carol (viewer) checks: allowed {check[0]}, used {check[1]} of {check[2]}; "
        f"entitled to api_access: {entitled}"
    )
    ok(f"dave (globex) sees {foreign} of acme's customers; counting against them: {no_meter}")

    # Analytics and connectors: events leave through the outbox only if their transaction commits.
    received = outbox_step(app_url, service_url, token, acme, globex)
    say("8. Analytics and connectors: alice set up a signed webhook; bob's work enqueued events:")
    ok(
        f"the relay delivered {received['webhooks']} webhook (signature verified, webhook-id = "
        f"event id) and {received['posthog']} PostHog events, each with $groups tenant = acme"
    )
    ok(f"bob's rolled-back transaction left nothing to deliver: {received['rolled_back']} arrived")
    ok(f"dave (globex) sees {received['foreign']} of acme's events, endpoints or deliveries")

    # GDPR: a customer's data exported, then erased, with the audit trail still verifying.
    with psycopg.connect(app_url) as app:
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            subject = str(
                one(
                    app,
                    "insert into app.customers (email, full_name, phone) "
                    "values ('wile@example.com', 'Wile E. Coyote', '+1 555 0100') returning id",
                )
            )
            app.execute(
                "insert into app.orders (customer_id, shipping_address) values (%s, %s)",
                (int(subject), "1 Mesa Road, Desert"),
            )
            request = one(app, "select tenancy.open_subject_request('erasure', %s)", (subject,))
            exported = one(app, "select tenancy.export_subject(%s)", (subject,))
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(globex, DAVE),))
            foreign_export = one(app, "select tenancy.export_subject(%s)", (subject,))
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            erased = one(
                app, "select tenancy.erase_subject(%s, 'asked to be forgotten')", (subject,)
            )
            left = one(
                app,
                "select email || ' / ' || coalesce(full_name, 'NULL') from app.customers "
                "where id = %s",
                (int(subject),),
            )
            status = one(
                app, "select status from tenancy.subject_request_status where id = %s", (request,)
            )
    with psycopg.connect(url, autocommit=True) as su:
        su.execute("select tenancy.seal_audit()")
        verified = one(su, "select ok from tenancy.verify_audit(%s)", (acme,))
    say("9. GDPR: alice exported customer Wile's data, then erased it:")
    ok(
        f"the export held {sum(len(v) for v in exported['tables'].values())} rows and "
        f"{len(exported['audit'])} audit entries; dave (globex) exporting the same id got "
        f"{sum(len(v) for v in foreign_export['tables'].values())} rows"
    )
    ok(
        f"erased {erased['tables']} and {erased['audit_rows']} audit rows; the customer now reads "
        f"{left}; the request is {status}; the audit trail verifies: {verified}"
    )

    # Placement: before a move, the operator fences acme's writes inside the database.
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("select tenancy.fence_tenant(%s, 'move to dedicated-1 (demo)')", (acme,))
    with psycopg.connect(app_url) as app:
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
            readable = one(app, "select count(*) from app.documents")
            fenced = refused(app, "insert into app.projects (name) values ('During the move')")
        with app.transaction():
            app.execute("select tenancy.authenticate(%s)", (token(globex, DAVE),))
            app.execute("insert into app.projects (name) values ('Globex writes on')")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("select tenancy.unfence_tenant(%s)", (acme,))
    with psycopg.connect(app_url) as app, app.transaction():
        app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
        after = one(app, "insert into app.projects (name) values ('After the move') returning name")
    say("10. Outgrowing one machine: acme was fenced for a move to its own database:")
    ok(f"alice still read {readable} documents, but her write was refused: {fenced}")
    ok(f"globex wrote as usual; once the fence lifted, alice wrote {after!r} (docs/scaling.md)")

    with psycopg.connect(url) as su:
        per_tenant = su.execute(
            "select t.slug, count(d.*) from tenancy.tenants t "
            "left join app.documents d on d.tenant_id = t.id group by t.slug order by t.slug"
        ).fetchall()
    say("11. Seen from the database owner's side, all rows are still there and untouched:")
    for slug, count in per_tenant:
        say(f"   {slug:7} {count} {'document' if count == 1 else 'documents'}")
    say()
    say("Each tenant saw only its own rows; every cross-tenant attempt was refused.")
    say()
    say("Where to look next:")
    say(f'   psql "{url}"')
    say("       the demo database, as a superuser (row-level security does not apply: 3 rows):")
    say("       select count(*) from app.documents;")
    say("       then as the application, which sees nothing without a tenant context (0 rows):")
    say("       set role demo_app; select count(*) from app.documents;")
    say(
        f"   {rel(HERE / 'schema.sql')}, {rel(HERE / 'tenancy.toml')}: the example app's tables "
        "and its spec"
    )
    say(
        f"   {rel(HERE / 'policies')}/: the row-level security generated from the spec "
        "(pgtenancy generate)"
    )
    say(f"   {rel(Path(__file__))}: this story, step by step")
    say("   README.md (how it works, installing into your project), docs/ (errors, security)")
    return 0


def outbox_step(
    app_url: str, service_url: str, token: Any, acme: uuid.UUID, globex: uuid.UUID
) -> dict[str, int]:
    """Step 8: a local receiver stands in for a webhook and PostHog; the relay runs once."""
    import asyncio
    import base64
    import hashlib
    import hmac
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pgtenancy.relay import Relay, RelayConfig

    got: list[tuple[str, dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://localhost:{server.server_address[1]}"
    try:
        with psycopg.connect(app_url) as app:
            with app.transaction():
                app.execute("select tenancy.authenticate(%s)", (token(acme, ALICE),))
                secret = one(
                    app,
                    "select signing_secret from tenancy.configure_webhook('ops', %s, '{deploy.*}')",
                    (f"{base}/hooks",),
                )
            with app.transaction():
                app.execute("select tenancy.authenticate(%s)", (token(acme, BOB),))
                app.execute("select tenancy.track_api_call(%s, '/v1/deploys', 'POST')", (BOB,))
                app.execute(
                    "select tenancy.log_connector_event('deploy', 'finished', "
                    """'{"version": "1.4.2"}')"""
                )
            tx = app.transaction(force_rollback=True)
            with tx:
                app.execute("select tenancy.authenticate(%s)", (token(acme, BOB),))
                app.execute(
                    "select tenancy.log_connector_event('deploy', 'finished', "
                    """'{"version": "rolled back"}')"""
                )
            with app.transaction():
                app.execute("select tenancy.authenticate(%s)", (token(globex, DAVE),))
                foreign = one(
                    app,
                    "select (select count(*) from tenancy.analytics_events where tenant_id = %s)"
                    " + (select count(*) from tenancy.connector_endpoints where tenant_id = %s)"
                    " + (select count(*) from tenancy.deliveries where tenant_id = %s)",
                    (acme, acme, acme),
                )
        config = RelayConfig(
            database_url=service_url,
            posthog_host=base,
            posthog_key="phc_demo",
            allow_private_network=True,
        )
        asyncio.run(Relay(config).run(once=True))
    finally:
        server.shutdown()
    hooks = [(h, b) for path, h, b in got if path == "/hooks"]
    for headers, body in hooks:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert f"v1,{expected}" in headers["webhook-signature"].split(), headers
    posthog = [
        e
        for path, _, body in got
        if path == "/batch/"
        for e in json.loads(body)["batch"]
        if e["event"] != "$groupidentify"
    ]
    assert all(e["properties"]["$groups"] == {"tenant": str(acme)} for e in posthog), posthog
    rolled_back = sum(b"rolled back" in b for _, b in hooks)
    return {
        "webhooks": len(hooks),
        "posthog": len(posthog),
        "rolled_back": rolled_back,
        "foreign": int(foreign),
    }


def rel(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
