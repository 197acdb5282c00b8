"""``pgtenancy relay`` against local PostHog, Slack and Standard Webhooks receivers and PostgreSQL.

The relay runs in this process (``Relay(config).run(once=True)``, or long-running on a thread)
or as the ``pgtenancy relay`` command, as a ``tenancy_service`` login; the receivers are real
HTTP servers on 127.0.0.1 (tests/py/receivers.py) and the webhook one checks every signature
with the ``standardwebhooks`` package. Nothing inside the relay is replaced.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import formatdate
from pathlib import Path

import pytest
from receivers import PostHog, Reply, Request, Slack, Webhooks
from relay_support import (
    POSTHOG_KEY,
    Outbox,
    RelayProcess,
    RelayThread,
    log_event,
    wait_until,
)
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

NIL = uuid.UUID(int=0)


@pytest.fixture(scope="module")
def outbox_db(pgtenancy_make_database: Callable[[], str]) -> Outbox:
    return Outbox.create(pgtenancy_make_database())


@pytest.fixture
def outbox(outbox_db: Outbox) -> Outbox:
    """This module's database, without any other test's events, deliveries or endpoints."""
    outbox_db.reset()
    return outbox_db


@pytest.fixture
def posthog() -> Iterator[PostHog]:
    server = PostHog()
    yield server
    server.close()


@pytest.fixture
def hooks() -> Iterator[Webhooks]:
    server = Webhooks()
    yield server
    server.close()


@pytest.fixture
def slack() -> Iterator[Slack]:
    server = Slack()
    yield server
    server.close()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def rotate(outbox: Outbox, tenant: uuid.UUID, secret: str, overlap: str) -> None:
    with outbox.context(tenant) as conn:
        conn.execute(
            "select tenancy.rotate_webhook_secret('hook', %s, %s::interval)", (secret, overlap)
        )


def webhook_tenant(outbox: Outbox, hooks: Webhooks, path: str = "/hooks") -> uuid.UUID:
    """A tenant with a webhook endpoint (every event type) at ``hooks``, which knows its secret."""
    tenant = outbox.tenant()
    _, secret = outbox.webhook(tenant, hooks.url + path)
    hooks.secrets.append(secret)
    return tenant


# -- PostHog ---------------------------------------------------------------------------------


def test_posthog_events_carry_the_outbox_id_time_and_tenant_group(
    outbox: Outbox, posthog: PostHog
) -> None:
    tenant = outbox.tenant("Acme")
    outbox.rows("update tenancy.tenants set name = 'Acme Renamed' where id = %s", (tenant,))
    call = outbox.track(
        tenant,
        "api_call",
        "user-1",
        # An application's own groups are replaced by the tenant, never added to it.
        {"endpoint": "/v1/items", "$groups": {"tenant": "someone-else"}, "$group_0": "x"},
    )
    with outbox.context(tenant) as conn:  # the seed's trackApiCall(distinctId, endpoint, method)
        row = conn.execute("select tenancy.track_api_call('user-2', '/v1/orders', 'post')")
        api_call = row.fetchone()
    assert api_call is not None

    totals = outbox.relay_once(posthog.url)

    assert totals == {"delivered": 4}
    assert all(r.path == "/batch/" for r in posthog.received())
    assert [b["api_key"] for b in posthog.batches()] == [POSTHOG_KEY] * len(posthog.batches())
    assert not any("historical_migration" in b for b in posthog.batches())
    sent = {e["uuid"]: e for e in posthog.events()}
    stored = outbox.rows(
        "select id, occurred_at from tenancy.analytics_events where tenant_id = %s", (tenant,)
    )
    assert set(sent) == {str(r["id"]) for r in stored}
    for row in stored:  # PostHog's uuid is the outbox id, its timestamp the original time
        assert datetime.fromisoformat(sent[str(row["id"])]["timestamp"]) == row["occurred_at"]
    assert sent[str(call)]["event"] == "api_call"
    assert sent[str(call)]["distinct_id"] == "user-1"
    props = sent[str(call)]["properties"]
    assert props["$groups"] == {"tenant": str(tenant)}
    assert "$group_0" not in props
    assert props["endpoint"] == "/v1/items"
    assert sent[str(api_call[0])]["distinct_id"] == "user-2"
    assert sent[str(api_call[0])]["properties"] == {
        "endpoint": "/v1/orders",
        "method": "POST",
        "$groups": {"tenant": str(tenant)},
        "$lib": "pgtenancy-relay",
    }
    # Creation and rename: $groupidentify of group type tenant, keyed by the tenant id.
    identify = sorted(
        (e for e in sent.values() if e["event"] == "$groupidentify"), key=lambda e: e["timestamp"]
    )
    assert [e["properties"]["$group_set"]["name"] for e in identify] == ["Acme", "Acme Renamed"]
    for e in identify:
        assert e["distinct_id"] == f"$tenant_{tenant}"
        assert e["properties"]["$group_type"] == "tenant"
        assert e["properties"]["$group_key"] == str(tenant)
    assert outbox.pending() == 0
    assert outbox.value("select array_agg(distinct last_status) from tenancy.deliveries") == [200]


def test_posthog_events_older_than_48_hours_go_in_historical_batches(
    outbox: Outbox, posthog: PostHog
) -> None:
    tenant = outbox.tenant()
    recent = outbox.track(tenant, "recent", "user-1", {})
    ages: dict[str, uuid.UUID] = {}
    for age in ("3 days", "47 hours"):
        # As an import would write them: events that happened long before they are relayed.
        ages[age] = outbox.value(
            "with e as (insert into tenancy.analytics_events"
            " (tenant_id, id, occurred_at, event, distinct_id, ordering_key)"
            " values (%(t)s, tenancy.uuid_v7(), now() - %(age)s::interval, 'imported', 'user-9',"
            " 'user-9') returning id, occurred_at)"
            " insert into tenancy.deliveries (tenant_id, event_id, destination_id, source,"
            " occurred_at, ordering_key, next_attempt_at)"
            " select %(t)s, id, %(nil)s, 'analytics', occurred_at, 'user-9', now() from e"
            " returning event_id",
            {"t": tenant, "age": age, "nil": NIL},
        )

    assert outbox.relay_once(posthog.url) == {"delivered": 4}

    batches = posthog.batches()
    historical = [e["uuid"] for b in batches if b.get("historical_migration") for e in b["batch"]]
    live = [e["uuid"] for b in batches if not b.get("historical_migration") for e in b["batch"]]
    assert historical == [str(ages["3 days"])]
    assert str(recent) in live and str(ages["47 hours"]) in live
    assert all(b.get("historical_migration") in (None, True) for b in batches)


def test_posthog_events_of_one_person_keep_their_order(outbox: Outbox, posthog: PostHog) -> None:
    tenant = outbox.tenant()
    with outbox.context(tenant) as conn, conn.cursor() as cur:
        cur.executemany(
            "select tenancy.track_event('step', %s, %s::jsonb)",
            [(f"user-{n % 8}", f'{{"n": {n}}}') for n in range(240)],
        )

    assert outbox.relay_once(posthog.url) == {"delivered": 241}

    assert len(posthog.batches()) == 2  # 200 per tenant and claim
    by_person: dict[str, list[int]] = {}
    for event in posthog.events():
        if event["event"] == "step":
            by_person.setdefault(event["distinct_id"], []).append(event["properties"]["n"])
    assert len(by_person) == 8
    for person, steps in by_person.items():
        assert steps == sorted(steps), f"{person}'s events out of order"


def test_posthog_batch_is_acknowledged_only_after_a_2xx(outbox: Outbox, posthog: PostHog) -> None:
    tenant = outbox.tenant()
    ids = [outbox.track(tenant, "page_view", f"user-{i}", {"i": i}) for i in range(3)]
    posthog.fail_next(1, 500)

    assert outbox.relay_once(posthog.url) == {"retry": 4}

    failed = posthog.received()
    assert [r.status for r in failed] == [500]
    first_uuids = sorted(e["uuid"] for e in failed[0].json["batch"])
    for event_id in ids:
        d = outbox.delivery(event_id)
        assert d["delivered_at"] is None and d["dead_at"] is None
        assert d["attempts"] == 1 and d["last_status"] == 500
        assert "PostHog answered 500" in d["last_error"]
        assert 3.5 <= d["due_in"] <= 6.5  # 5 s, jittered by ±25 %
        assert d["lease_until"] is None

    assert outbox.make_due() == 4
    assert outbox.relay_once(posthog.url) == {"delivered": 4}

    again = posthog.accepted()
    assert len(again) == 1
    assert sorted(e["uuid"] for e in again[0].json["batch"]) == first_uuids
    assert {str(i) for i in ids} <= set(first_uuids)
    for event_id in ids:
        d = outbox.delivery(event_id)
        assert d["delivered_at"] is not None and d["attempts"] == 2 and d["last_status"] == 200


# -- webhooks ---------------------------------------------------------------------------------


def test_webhook_is_signed_per_standard_webhooks(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks, "/hooks/acme")
    event = outbox.log(tenant, {"order": 7}, connector="billing", action="paid")

    assert outbox.relay_once() == {"delivered": 1}

    [request] = hooks.received()
    assert request.status == 200 and request.path == "/hooks/acme"
    assert request.verified_with == hooks.secrets
    assert request.webhook_id == str(event)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    body = request.json
    occurred_at = outbox.value(
        "select occurred_at from tenancy.connector_events where id = %s", (event,)
    )
    assert body == {
        "type": "billing.paid",
        "timestamp": occurred_at.isoformat(),
        "tenant_id": str(tenant),
        "data": {"order": 7},
    }
    # The signature binds the body, the id and the time: another secret or a changed body fail.
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hooks.secrets[0]).verify(request.body.replace(b"7", b"8"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hooks.secrets[0]).verify(
            request.body, {**request.headers, "webhook-id": str(uuid.uuid4())}
        )


def test_webhook_is_signed_with_both_secrets_during_a_rotation(
    outbox: Outbox, hooks: Webhooks
) -> None:
    tenant = outbox.tenant()
    old, new, newer = new_secret(), new_secret(), new_secret()
    outbox.webhook(tenant, hooks.url, secret=old)
    hooks.secrets.extend([old, new, newer])

    outbox.log(tenant, {"n": 1})
    outbox.relay_once()
    rotate(outbox, tenant, new, "1 hour")  # the old secret signs for an hour more
    outbox.log(tenant, {"n": 2})
    outbox.relay_once()
    rotate(outbox, tenant, newer, "0 seconds")  # both earlier secrets end now
    outbox.log(tenant, {"n": 3})
    outbox.relay_once()

    requests = hooks.received()
    assert [r.json["data"]["n"] for r in requests] == [1, 2, 3]
    assert [r.status for r in requests] == [200, 200, 200]
    assert [r.verified_with for r in requests] == [[old], [old, new], [newer]]
    assert [len(r.headers["webhook-signature"].split()) for r in requests] == [1, 2, 1]


def test_webhook_410_disables_the_endpoint_and_dead_letters_its_queue(
    outbox: Outbox, hooks: Webhooks
) -> None:
    tenant = webhook_tenant(outbox, hooks, "/gone")
    other = Webhooks()
    try:
        _, other_secret = outbox.webhook(tenant, other.url, name="other")
        other.secrets.append(other_secret)
        hooks.default = Reply(410, body=b"gone")
        first = outbox.logs(tenant, 3, key="k")

        totals = outbox.relay_once()

        assert totals.get("gone") == 1
        assert [r.status for r in hooks.received()] == [410]  # the rest were never attempted
        endpoint = outbox.rows(
            "select enabled, disabled_reason, disabled_at from tenancy.connector_endpoints"
            " where tenant_id = %s and name = 'hook'",
            (tenant,),
        )[0]
        assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]
        dead = outbox.rows(
            "select d.event_id, d.dead_at, d.last_error from tenancy.deliveries as d"
            " join tenancy.connector_endpoints as e on e.id = d.destination_id"
            " where e.name = 'hook' order by d.event_id"
        )
        assert [r["event_id"] for r in dead] == first
        assert all(r["dead_at"] is not None for r in dead)
        # The tenant's other endpoint is not affected, and a disabled one gets no new events.
        later = outbox.log(tenant, {"seq": 3}, key="k")
        outbox.relay_once()
        assert other.ids() == [str(i) for i in [*first, later]]
        assert len(hooks.received()) == 1
        assert (
            outbox.value("select count(*) from tenancy.deliveries where event_id = %s", (later,))
            == 1
        )
    finally:
        other.close()


def test_webhook_429_waits_for_retry_after(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks)
    seconds = outbox.log(tenant, key="a")
    date = outbox.log(tenant, key="b")
    replies = {
        str(seconds): Reply(429, retry_after="30"),
        str(date): Reply(429, retry_after=formatdate(time.time() + 120, usegmt=True)),
    }
    hooks.rule = lambda r: replies.get(r.webhook_id)

    assert outbox.relay_once() == {"retry": 2}

    for event, expected in ((seconds, 30), (date, 120)):
        d = outbox.delivery(event)
        assert d["last_status"] == 429 and d["attempts"] == 1 and d["dead_at"] is None
        assert expected - 3 <= d["due_in"] <= expected + 1, d
    assert len(hooks.received()) == 2


def test_webhook_other_4xx_is_retried_then_dead_lettered(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks)
    event = outbox.log(tenant)
    hooks.default = Reply(400, body=b"bad payload")

    assert outbox.relay_once(max_attempts=2) == {"retry": 1}
    d = outbox.delivery(event)
    assert d["attempts"] == 1 and d["dead_at"] is None and 3.5 <= d["due_in"] <= 6.5

    assert outbox.make_due() == 1
    assert outbox.relay_once(max_attempts=2) == {"retry": 1}
    d = outbox.delivery(event)
    assert d["attempts"] == 2 and d["dead_at"] is not None and d["delivered_at"] is None
    assert d["last_status"] == 400 and "bad payload" in d["last_error"]

    assert outbox.make_due() == 0  # a dead letter is not due again
    assert outbox.relay_once(max_attempts=2) == {}
    assert [r.webhook_id for r in hooks.received()] == [str(event)] * 2


def test_webhook_timeout_is_retried(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks)
    event = outbox.log(tenant)
    hooks.hang_next(1, 2.0)

    started = time.monotonic()
    assert outbox.relay_once(timeout=0.5) == {"retry": 1}
    assert time.monotonic() - started < 2.0
    d = outbox.delivery(event)
    assert d["attempts"] == 1 and d["last_status"] is None and "Timeout" in d["last_error"]

    outbox.make_due()
    assert outbox.relay_once(timeout=0.5) == {"delivered": 1}
    assert [r.webhook_id for r in hooks.received()] == [str(event)] * 2
    assert hooks.ids() == [str(event)]


def test_events_of_one_key_arrive_in_order_when_the_first_fails_once(
    outbox: Outbox, hooks: Webhooks
) -> None:
    tenant = webhook_tenant(outbox, hooks)
    ordered = outbox.logs(tenant, 5, key="order-1")
    other = outbox.log(tenant, {"other": True}, key="order-2")
    failed: set[str] = set()

    def fail_first_once(request: Request) -> Reply | None:
        if request.webhook_id == str(ordered[0]) and not failed:
            failed.add(request.webhook_id)
            return Reply(500)
        return None

    hooks.rule = fail_first_once
    totals = outbox.relay_once()

    # The key waits behind its head; the other key goes on.
    assert totals == {"retry": 1, "defer": 4, "delivered": 1}
    assert [(r.webhook_id, r.status) for r in hooks.received()] in (
        [(str(ordered[0]), 500), (str(other), 200)],
        [(str(other), 200), (str(ordered[0]), 500)],
    )
    assert [outbox.delivery(e)["attempts"] for e in ordered] == [1, 0, 0, 0, 0]

    outbox.make_due()
    assert outbox.relay_once() == {"delivered": 5}
    assert [i for i in hooks.ids() if i != str(other)] == [str(e) for e in ordered]
    assert [r.json["data"]["seq"] for r in hooks.accepted() if r.webhook_id != str(other)] == list(
        range(5)
    )


def test_endpoints_receive_only_their_own_tenants_events(outbox: Outbox) -> None:
    a, b = outbox.tenant(), outbox.tenant()
    to_a, to_b, to_b_billing = Webhooks(), Webhooks(), Webhooks()
    try:
        for tenant, server, name, types in (
            (a, to_a, "hook", []),
            (b, to_b, "hook", []),
            (b, to_b_billing, "billing", ["billing.*"]),
        ):
            _, secret = outbox.webhook(tenant, server.url, name=name, event_types=types)
            server.secrets.append(secret)
        a_events = [outbox.log(a, {"n": 1}), outbox.log(a, {"n": 2}, connector="billing")]
        b_sync = outbox.log(b, {"n": 3})
        b_paid = outbox.log(b, {"n": 4}, connector="billing", action="paid")

        assert outbox.relay_once() == {"delivered": 5}

        assert sorted(to_a.ids()) == sorted(str(e) for e in a_events)
        assert sorted(to_b.ids()) == sorted([str(b_sync), str(b_paid)])
        assert to_b_billing.ids() == [str(b_paid)]
        for server, tenant in ((to_a, a), (to_b, b), (to_b_billing, b)):
            assert {r.json["tenant_id"] for r in server.received()} == {str(tenant)}
            assert all(r.verified_with == server.secrets for r in server.received())
    finally:
        for server in (to_a, to_b, to_b_billing):
            server.close()


def test_a_tenants_backlog_does_not_starve_another(outbox: Outbox, hooks: Webhooks) -> None:
    first, second = sorted([outbox.tenant(), outbox.tenant()])
    # The backlog belongs to the tenant visited first: without round-robin its 60 events would
    # fill the first claims.
    for tenant, path in ((first, "/busy"), (second, "/quiet")):
        _, secret = outbox.webhook(tenant, hooks.url + path)
        hooks.secrets.append(secret)
    with outbox.context(first) as conn:
        for i in range(60):
            log_event(conn, {"seq": i}, key=f"k{i}")
    quiet = outbox.log(second, {"quiet": True})

    totals = outbox.relay_once(connector_batch=10, connector_per_tenant=5, concurrency=1)

    assert totals == {"delivered": 61}
    arrivals = hooks.ids()
    assert len(arrivals) == 61
    # The first claim takes 5 of the busy tenant's and the quiet tenant's one.
    assert arrivals.index(str(quiet)) < 6, arrivals.index(str(quiet))


# -- Slack ------------------------------------------------------------------------------------


def slack_message(outbox: Outbox, tenant: uuid.UUID, channel: str, text: str) -> uuid.UUID:
    with outbox.context(tenant) as conn:
        row = conn.execute("select tenancy.log_slack_message(%s, %s)", (channel, text)).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_slack_gets_at_most_one_message_per_second_per_endpoint(
    outbox: Outbox, slack: Slack
) -> None:
    tenant = outbox.tenant()
    for channel in ("general", "ops"):
        outbox.slack(tenant, f"{slack.url}/services/{channel}", channel, channel)
        for i in range(3):
            slack_message(outbox, tenant, f"#{channel}", f"{channel} {i}")

    assert outbox.relay_once() == {"delivered": 6}

    by_path: dict[str, list[Request]] = {}
    for r in slack.accepted():
        by_path.setdefault(r.path, []).append(r)
    assert sorted(by_path) == ["/services/general", "/services/ops"]
    for path, requests in by_path.items():
        channel = path.rsplit("/", 1)[1]
        assert [r.json["text"] for r in requests] == [f"{channel} {i}" for i in range(3)]
        gaps = [b.at - a.at for a, b in zip(requests, requests[1:], strict=False)]
        assert min(gaps) >= 0.9, gaps
    # The two endpoints' buckets are their own: both channels went out side by side.
    arrivals = [r.at for r in slack.accepted()]
    assert max(arrivals) - min(arrivals) < 2.8


def test_slack_429_retry_after_is_honoured(outbox: Outbox, slack: Slack) -> None:
    tenant = outbox.tenant()
    outbox.slack(tenant, slack.url, "alerts", None)
    slack.fail_next(1, 429, retry_after="2")
    first = slack_message(outbox, tenant, "general", "first")
    second = slack_message(outbox, tenant, "general", "second")

    relay = RelayThread(outbox.config())
    try:
        slack.wait_for(lambda: len(slack.accepted()) == 2, timeout=15)
    finally:
        totals = relay.stop()

    requests = slack.received()
    assert [(r.status, r.json["text"]) for r in requests] == [
        (429, "first"),
        (200, "first"),
        (200, "second"),
    ]
    assert requests[1].at - requests[0].at >= 1.95
    assert requests[2].at - requests[1].at >= 0.9
    assert outbox.delivery(first)["attempts"] == 2
    assert outbox.delivery(second)["delivered_at"] is not None
    assert totals == {"retry": 1, "defer": 1, "delivered": 2}


# -- the command ------------------------------------------------------------------------------


def cli(outbox: Outbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        outbox.relay_args(*args), capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def status_rows(outbox: Outbox) -> dict[tuple[str, str], list[str]]:
    result = subprocess.run(
        outbox.relay_args()[:2] + ["status", "--database-url", outbox.service],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "source",
        "kind",
        "pending",
        "in",
        "flight",
        "dead",
        "oldest",
        "pending",
    ]
    return {(f[0], f[1]): f[2:5] for f in (line.split() for line in lines[1:])}


def test_relay_status_and_once_from_the_command_line(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks, "/ok")
    _, secret = outbox.webhook(tenant, hooks.url + "/refuses", name="refuses")
    hooks.secrets.append(secret)
    hooks.rule = lambda r: Reply(400) if r.path == "/refuses" else None
    outbox.log(tenant, {"n": 1})
    outbox.log(tenant, {"n": 2})

    assert status_rows(outbox) == {
        ("analytics", "posthog"): ["1", "0", "0"],  # the tenant's $groupidentify
        ("connector", "webhook"): ["4", "0", "0"],
    }

    result = cli(outbox, "--once", "--max-attempts", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": defer 1, delivered 2, retry 2"), result.stdout
    assert "connector batch of 4" in result.stderr

    # The refusing endpoint's first event failed once (its last attempt), the second waited
    # behind it (defer) and failed in its turn. Without --posthog-host analytics events wait.
    assert status_rows(outbox) == {
        ("analytics", "posthog"): ["1", "0", "0"],
        ("connector", "webhook"): ["0", "0", "2"],
    }
    again = cli(outbox, "--once")
    assert again.returncode == 0 and again.stdout.strip().endswith(": nothing due")


def test_sigterm_finishes_the_batch_in_hand_and_exits_0(
    outbox: Outbox, hooks: Webhooks, tmp_path: Path
) -> None:
    tenant = webhook_tenant(outbox, hooks)
    events = outbox.logs(tenant, 30, key="one-key")  # claimed 10 at a time, sent in order
    hooks.default = Reply(200, delay=0.1)

    relay = RelayProcess(outbox.relay_args(), tmp_path / "relay.log")
    try:
        wait_until(lambda: len(hooks.received()) >= 2, 20, "the relay's first request")
        relay.proc.send_signal(signal.SIGTERM)
        assert relay.proc.wait(20) == 0, relay.output()
    finally:
        relay.terminate()

    log = relay.output()
    assert "connector batch of 10" in log and log.strip().endswith(": delivered 10"), log
    delivered = outbox.rows(
        "select event_id from tenancy.deliveries where delivered_at is not null order by event_id"
    )
    assert [r["event_id"] for r in delivered] == events[:10]
    assert hooks.ids() == [str(e) for e in events[:10]]
    assert (
        outbox.value("select count(*) from tenancy.deliveries where lease_until is not null") == 0
    )
    time.sleep(0.3)
    assert len(hooks.received()) == 10


def test_relay_refuses_a_login_outside_tenancy_service(outbox: Outbox, hooks: Webhooks) -> None:
    tenant = webhook_tenant(outbox, hooks)
    event = outbox.log(tenant)
    args = outbox.relay_args("--once")
    args[args.index(outbox.service)] = outbox.admin  # tenancy_admin, not tenancy_service

    refused = subprocess.run(args, capture_output=True, text=True, timeout=60)

    assert refused.returncode == 2
    assert "permission denied for function relay_claim" in refused.stderr, refused.stderr
    assert hooks.received() == []
    assert outbox.delivery(event)["attempts"] == 0
    assert cli(outbox, "--once").returncode == 0
    assert hooks.ids() == [str(event)]
