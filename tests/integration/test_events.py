"""Durable events between services (shared/tl_event.c; PROTOCOL.md §7,
`publishes` and `subscribes`): published inside the publisher's
transaction, delivered at least once to every subscribing service, in
order per subject, and handled once by the runtime of a subscriber."""

import os
import random
import subprocess
import threading
import time

import requests

from mesh_client import MeshClient, Worker
from tally import ROOT, TEST_PROTO, binary, metric, psql, wait_for, wait_instances

SUBSCRIBER_PROTO = os.path.join(ROOT, "tests", "proto", "subscriber.json")


def publish(gw, subject, count, rollback=False):
    return requests.post(gw.url + "/api/v1/test/events",
                         json={"subject": subject, "count": count, "rollback": rollback},
                         timeout=10)


def run_due(gw, hours_ahead):
    """Runs testsvc's jobs due `hours_ahead` hours from now: retries come
    at once instead of on their back-off."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + hours_ahead * 3600))
    out = subprocess.run([binary("tallyctl"), "jobs", "run-due", "testsvc", "--at", at],
                         env=dict(os.environ, TALLY_MESH=gw.mesh), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_events_reach_a_subscriber_in_order_per_subject(cluster):
    gw = cluster.gateway()
    # The publisher knows its subscribers from their declarations
    cluster.service([gw], workers=2, env={"TALLY_PROTO_EXTRA": f"{TEST_PROTO}:{SUBSCRIBER_PROTO}"})
    received, lock = [], threading.Lock()
    # s1's first event is refused until the test lets it through: what the
    # test sees does not hang on when the retries' back-off ends
    held, refusals = threading.Event(), []
    held.set()

    def handler(request):
        assert request["method"] == "events.deliver"
        body = request["body"]
        subject, seq = body["subject"], body["body"]["seq"]
        with lock:
            if subject == "s1" and seq == 1 and held.is_set():
                refusals.append(seq)
                return 503, {"error": {"code": "unavailable", "message": "not now"}}
            received.append((subject, seq, request["caller"]["kind"], body["event"]))
        return 200, {}

    worker = Worker([gw.mesh], "pysub", handler, capacity=4).start()
    try:
        wait_instances(gw, 1, service="pysub")
        wait_instances(gw, 1)
        for subject, count in (("s1", 3), ("s2", 2)):
            r = publish(gw, subject, count)
            assert r.status_code == 201, r.text
            assert r.json()["subscribers"] == 1
        # s2 goes through; s1 waits behind its first event, which failed
        wait_for(lambda: len([s for s in received if s[0] == "s2"]) >= 2 and refusals,
                 "s2's events and s1's refusal", timeout=30)
        time.sleep(1)                   # time for an out-of-order delivery to show
        assert [seq for s, seq, _, _ in received if s == "s2"] == [1, 2]
        assert [seq for s, seq, _, _ in received if s == "s1"] == []
        held.clear()
        # Retries come on a back-off; the operator's clock brings them now
        for hours in range(1, 12):
            if len([r for r in received if r[0] == "s1"]) == 3:
                break
            run_due(gw, hours)
        assert [seq for s, seq, _, _ in received if s == "s1"] == [1, 2, 3]
        assert {(kind, event) for _, _, kind, event in received} == \
            {("service:testsvc", "testsvc.ping")}
        # Every outbox row is marked delivered
        assert psql("SELECT count(*) FROM testsvc.event_outbox WHERE subject IN ('s1', 's2') "
                    "AND delivered_at IS NULL") == "0"
        # Published in a transaction that rolls back: no event at all
        r = publish(gw, "s3", 2, rollback=True)
        assert r.status_code == 201, r.text
        assert psql("SELECT count(*) FROM testsvc.event_outbox WHERE subject = 's3'") == "0"
        time.sleep(1)
        assert not [r for r in received if r[0] == "s3"]
    finally:
        worker.stop()


def test_a_subscriber_handles_an_event_once_and_only_from_its_publisher(cluster):
    gw = cluster.gateway()
    cluster.service([gw], workers=2)
    wait_instances(gw, 1)
    owner = f"evt-{random.randrange(1 << 30)}"
    psql(f"INSERT INTO testsvc.items (owner, name) VALUES ('{owner}', 'a'), ('{owner}', 'b')")
    event = {"id": random.randrange(1, 1 << 40), "event": "auth.user.deleted",
             "subject": owner, "body": {"user_id": owner}}
    with MeshClient(gw.mesh, peer="service:tracker") as tracker, \
            MeshClient(gw.mesh, peer="operator") as operator, \
            MeshClient(gw.mesh, peer="service:auth") as auth:
        # Only auth delivers auth's events, and only services deliver at all
        assert tracker.call("testsvc", "events.deliver", body=event)["status"] == 403
        assert operator.call("testsvc", "events.deliver", body=event)["status"] == 403
        assert psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{owner}'") == "2"
        for bad in ({}, {**event, "id": "x"}, {**event, "id": 0}, {"event": "auth.user.deleted"}):
            assert auth.call("testsvc", "events.deliver", body=bad)["status"] == 400, bad
        reply = auth.call("testsvc", "events.deliver",
                          body={**event, "event": "auth.user.renamed"})
        assert reply["status"] == 404               # not subscribed to
        # The event: handled once
        reply = auth.call("testsvc", "events.deliver", body=event)
        assert reply["status"] == 200 and reply["body"] == {"duplicate": False}
        assert psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{owner}'") == "0"
        # Delivered again (a publisher retries until it hears 2xx): the
        # handler does not run again
        psql(f"INSERT INTO testsvc.items (owner, name) VALUES ('{owner}', 'c')")
        reply = auth.call("testsvc", "events.deliver", body=event)
        assert reply["status"] == 200 and reply["body"] == {"duplicate": True}
        assert psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{owner}'") == "1"


# ---------------------------------------------------------------------------
# Broadcasts: what every live gateway must hear at once (not kept)

def test_a_broadcast_reaches_every_gateway_and_is_acknowledged(cluster):
    gw1, gw2 = cluster.gateway(), cluster.gateway()
    cluster.service([gw1, gw2], workers=1)
    wait_instances(gw1, 1)
    wait_instances(gw2, 1)

    def broadcast(topic):
        r = requests.post(gw1.url + "/api/v1/test/broadcast", json={"topic": topic}, timeout=15)
        assert r.status_code == 200, r.text
        return r.json()["acked"]
    assert broadcast("testsvc.hello") == 2
    assert metric(gw1, "tally_broadcasts_total") == 1
    assert metric(gw2, "tally_broadcasts_total") == 1
    # Another service's topic: every gateway refuses it, none counts it
    assert broadcast("auth.session.revoked") == 0
    assert metric(gw1, "tally_broadcasts_total") == 1
    # Only a service broadcasts, and only its own topics
    with MeshClient(gw1.mesh) as nobody, MeshClient(gw1.mesh, peer="service:auth") as auth:
        reply = nobody.call("mesh", "broadcast", body={"topic": "testsvc.hello"})
        assert reply["status"] == 403
        reply = auth.call("mesh", "broadcast", body={"topic": "auth.session.revoked",
                                                      "body": {"session": "x"}})
        assert reply["status"] == 200 and reply["body"]["handled"] is False
        assert auth.call("mesh", "broadcast", body={})["status"] == 400
    # A gateway that is gone is not counted
    assert gw2.stop() == 0
    assert broadcast("testsvc.hello") == 1
