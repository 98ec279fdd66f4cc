"""A service's bounded queue (1024): beyond it, 503 queue_full with
Retry-After, and the gateway stays healthy."""

import collections
import time

import requests

from mesh_client import MeshClient
from tally import metric, wait_for, wait_instances

QUEUE_MAX = 1024


def test_full_queue_is_503_with_retry_after(cluster):
    gw = cluster.gateway()
    cluster.service([gw], workers=1)
    wait_instances(gw, 1)
    total = QUEUE_MAX + 100
    with MeshClient(gw.mesh) as mesh:
        capacity = mesh.status()["services"]
        capacity = [s for s in capacity if s["name"] == "testsvc"][0]["instances"][0]["capacity"]
        ids = set()
        for _ in range(total):
            envelope = mesh.request("testsvc", "sleep", params={"ms": "2000"}, timeout_ms=4000)
            ids.add(envelope["id"])
            mesh.send(envelope)

        # One in flight, 1024 queued: HTTP now also finds the queue full.
        wait_for(lambda: metric(gw, "tally_mesh_queue_depth", {"service": "testsvc"}) == QUEUE_MAX,
                 "a full queue", timeout=10)
        r = requests.get(gw.url + "/api/v1/test/sleep?ms=1", timeout=5)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["code"] == "queue_full"

        replies = {}
        until = time.monotonic() + 20
        while len(replies) < total and time.monotonic() < until:
            msg = mesh.receive(500)
            if msg and msg.get("kind") == "reply" and msg["id"] in ids:
                replies[msg["id"]] = msg
    assert len(replies) == total, "every request gets exactly one reply"
    by_status = collections.Counter(m["status"] for m in replies.values())
    full = [m for m in replies.values() if m["status"] == 503]
    assert len(full) >= total - QUEUE_MAX - capacity
    for m in full:
        assert m["body"]["error"]["code"] == "queue_full"
        assert m["headers"]["Retry-After"] == "1"
    # The rest ran (one slot) or timed out in the queue: nothing else.
    assert set(by_status) <= {200, 503, 504}, by_status
    assert by_status[200] >= 1

    # Healthy afterwards: the queue drains and requests succeed again.
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
    wait_for(lambda: metric(gw, "tally_mesh_queue_depth", {"service": "testsvc"}) == 0,
             "the queue to drain", timeout=20)
    wait_for(lambda: requests.get(gw.url + "/api/v1/test/echo", timeout=5).status_code == 200,
             "echo answered again", timeout=20)
    assert metric(gw, "tally_mesh_pending") is not None
