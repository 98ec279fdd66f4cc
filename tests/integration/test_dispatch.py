"""Dispatch: least recently used instance with a free slot; deadlines."""

import threading
import time

import requests

from tally import metric, wait_for, wait_instances

ECHO = "/api/v1/test/echo"


def test_requests_are_spread_over_both_instances(system):
    seen = set()
    for _ in range(20):
        r = requests.get(system.gw.url + ECHO, timeout=5)
        assert r.status_code == 200
        seen.add(r.json()["instance"])
    assert len(seen) == 2, seen


def test_busy_instance_at_capacity_gets_no_work_and_the_other_serves(cluster):
    gw = cluster.gateway()
    cluster.service([gw], workers=1, name="busyA")
    wait_instances(gw, 1)
    slow = {}

    def long_call():
        slow["r"] = requests.get(gw.url + "/api/v1/test/sleep-long?ms=3000", timeout=20)

    t = threading.Thread(target=long_call)
    t.start()
    # The only instance, busyA, has taken the long request: its one slot is full.
    wait_for(lambda: metric(gw, "tally_mesh_in_flight", {"service": "testsvc"}) == 1, "busyA busy")
    cluster.service([gw], workers=1, name="freeB")
    wait_instances(gw, 2)
    for _ in range(10):
        r = requests.get(gw.url + ECHO, timeout=5)
        assert r.status_code == 200
        assert r.json()["instance"] == "freeB"
    t.join()
    assert slow["r"].status_code == 200
    assert slow["r"].json() == {"instance": "busyA", "slept": 3000}


def test_request_past_its_deadline_is_504_deadline(system):
    # Route timeout 1000 ms; the service would take 3 s.
    start = time.monotonic()
    r = requests.get(system.gw.url + "/api/v1/test/sleep?ms=3000", timeout=10)
    elapsed = time.monotonic() - start
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "deadline"
    assert r.headers["Content-Type"].startswith("application/json")
    assert elapsed < 2.8, elapsed
    # The gateway and the service go on serving.
    assert requests.get(system.gw.url + ECHO, timeout=5).status_code == 200


def test_request_within_its_deadline_is_answered(system):
    r = requests.get(system.gw.url + "/api/v1/test/sleep?ms=200", timeout=10)
    assert r.status_code == 200
    assert r.json()["slept"] == 200
