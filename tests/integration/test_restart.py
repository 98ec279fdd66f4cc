"""A restart is not an outage: while a service has no live instance, a
request waits in the service's bounded queue, up to its deadline, for one
to come (as a Majordomo broker holds it); only at the deadline is it
answered 503 no_instance (PROTOCOL.md §4)."""

import concurrent.futures
import time

import requests

from mesh_client import MeshClient, Worker
from tally import instances, wait_instances

SLEEP_LONG = "/api/v1/test/sleep-long?ms=0"     # deadline 20 s
SLEEP = "/api/v1/test/sleep?ms=0"               # deadline 1 s


def test_request_during_a_restart_of_the_only_instance_is_answered_by_the_new_one(cluster):
    gw = cluster.gateway()
    old = cluster.service([gw], workers=2, name="before")
    wait_instances(gw, 1)
    assert old.stop() == 0
    wait_instances(gw, 0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, gw.url + SLEEP_LONG, timeout=30)
        time.sleep(1.0)
        assert not pending.done(), pending.result().text      # held, not refused
        cluster.service([gw], workers=2, name="after")
        r = pending.result()
    assert r.status_code == 200, r.text
    assert r.json()["instance"] == "after"


def test_request_for_a_service_with_no_instance_is_503_no_instance_at_its_deadline(cluster):
    gw = cluster.gateway()
    started = time.monotonic()
    r = requests.get(gw.url + SLEEP, timeout=10)
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "no_instance"
    assert r.headers["Retry-After"] == "1"
    assert 0.9 <= took < 3.0, took
    assert instances(gw) == 0


def test_mesh_call_to_a_service_never_seen_waits_for_its_first_instance(cluster):
    gw = cluster.gateway()
    with MeshClient(gw.mesh) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.call, "latecomer", "hello", timeout_ms=10000)
        time.sleep(1.0)
        assert not pending.done()
        worker = Worker([gw.mesh], "latecomer", lambda request: (200, {"hi": True})).start()
        try:
            reply = pending.result()
        finally:
            worker.stop()
    assert reply["status"] == 200 and reply["body"] == {"hi": True}
