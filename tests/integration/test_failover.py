"""Instances that stop answering: heartbeat expiry, and kill -9 under load."""

import collections
import re
import signal
import threading
import time

import requests

from tally import instances, token, unique, wait_for, wait_instances

ECHO = "/api/v1/test/echo"
ITEMS = "/api/v1/test/items"


def test_silent_instance_expires_after_missed_heartbeats_and_comes_back(cluster):
    gw = cluster.gateway()
    a = cluster.service([gw], workers=2, name="hbA")
    cluster.service([gw], workers=2, name="hbB")
    wait_instances(gw, 2)

    a.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_for(lambda: instances(gw) == 1, "hbA to expire", timeout=10)
        took = time.monotonic() - stopped
        assert 2.0 <= took <= 8.0, took        # 3 missed heartbeats of 1 s
        for _ in range(10):
            r = requests.get(gw.url + ECHO, timeout=5)
            assert r.status_code == 200
            assert r.json()["instance"] == "hbB"
    finally:
        a.signal(signal.SIGCONT)
    wait_instances(gw, 2, timeout=15)
    seen = {requests.get(gw.url + ECHO, timeout=5).json()["instance"] for _ in range(10)}
    assert seen == {"hbA", "hbB"}


def test_kill_9_under_load_loses_no_acknowledged_write(cluster):
    gw = cluster.gateway()
    cluster.service([gw], role="auth", workers=4)
    victim = cluster.service([gw], workers=4, name="victim")
    cluster.service([gw], workers=4, name="survivor")
    wait_instances(gw, 2)
    wait_instances(gw, 1, service="auth")
    user = unique("k9")
    auth = token(user)
    stop = threading.Event()
    lock = threading.Lock()
    reads, keyed, unkeyed = [], [], []   # (status, json or None)
    errors = []

    def record(bucket, item):
        with lock:
            bucket.append(item)

    def reader():
        # sleep-long (20 s route timeout), not sleep (1 s): a dead instance
        # is noticed within 3 heartbeats, and only then can its idempotent
        # requests run again elsewhere; with a 1 s deadline they would
        # rightly be 504s.
        s = requests.Session()
        while not stop.is_set():
            r = s.get(gw.url + "/api/v1/test/sleep-long?ms=200", timeout=30)
            record(reads, (r.status_code, r.json().get("instance") if r.status_code == 200 else r.text))

    def keyed_writer(n):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            key, name = f"{user}-{n}-{i}", f"keyed-{n}-{i}"
            i += 1
            r = s.post(gw.url + ITEMS, json={"name": name, "delay_ms": 200},
                       headers={**auth, "Idempotency-Key": key}, timeout=30)
            record(keyed, (r.status_code, name, r.json()))

    def unkeyed_writer(n):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            name = f"plain-{n}-{i}"
            i += 1
            r = s.post(gw.url + ITEMS, json={"name": name, "delay_ms": 200}, headers=auth, timeout=30)
            record(unkeyed, (r.status_code, name, r.json()))

    def guard(fn, *args):
        def run():
            try:
                fn(*args)
            except Exception as e:   # a transport error is a failure too
                errors.append(repr(e))
        return threading.Thread(target=run)

    threads = [guard(reader) for _ in range(2)] + \
              [guard(keyed_writer, n) for n in range(2)] + \
              [guard(unkeyed_writer, n) for n in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    victim.kill9()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    lost = re.findall(r"instance victim of testsvc lost \(.*\), (\d+) request", gw.output())
    assert lost and int(lost[0]) >= 1, "the victim had requests in flight when it died"

    # Idempotent requests were re-dispatched: all 2xx.
    assert reads and all(status == 200 for status, _ in reads), \
        collections.Counter(s for s, _ in reads)
    assert {inst for _, inst in reads} == {"victim", "survivor"}, "the victim had work in flight"
    assert all(status == 201 for status, _, _ in keyed), collections.Counter(s for s, _, _ in keyed)
    # Plain writes: done, or told that the worker was lost.
    for status, _, body in unkeyed:
        assert status == 201 or (status == 503 and body["error"]["code"] == "worker_lost"), (status, body)

    # No acknowledged write is lost.
    for status, _, body in keyed + unkeyed:
        if status == 201:
            r = requests.get(gw.url + ITEMS + "/" + body["id"], headers=auth, timeout=10)
            assert r.status_code == 200, body
            assert r.json()["name"] == body["name"]
    # Keyed writes exist exactly once per key.
    listed = requests.get(gw.url + ITEMS + "?limit=500", headers=auth, timeout=10).json()["items"]
    names = collections.Counter(item["name"] for item in listed)
    for _, name, _ in keyed:
        assert names[name] == 1, (name, names[name])
    assert len(listed) < 500
