"""A reply larger than one mesh frame (12 MiB, ZMQ_MAXMSGSIZE): the runtime
refuses to send it, answers 500 reply_too_large instead, and its instance
stays connected with every other request in flight on it."""

import concurrent.futures
import time

import requests

from tally import instances, wait_instances

FRAME = 12 * 1024 * 1024


def test_reply_past_the_mesh_frame_is_500_and_the_instance_keeps_its_other_requests(cluster):
    gw = cluster.gateway()
    svc = cluster.service([gw], workers=2, name="bigreply")
    wait_instances(gw, 1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # In flight on the same (only) instance while the big reply is made.
        slow = pool.submit(requests.get, gw.url + "/api/v1/test/sleep-long?ms=2000", timeout=30)
        time.sleep(0.5)
        started = time.monotonic()
        r = requests.get(gw.url + f"/api/v1/test/binary?bytes={FRAME + 1024}", timeout=30)
        assert r.status_code == 500, r.text[:200]
        assert r.json()["error"]["code"] == "reply_too_large"
        assert time.monotonic() - started < 5          # answered, not left to its deadline
        other = slow.result()
        assert other.status_code == 200, other.text[:200]
        assert other.json()["instance"] == "bigreply"
    assert instances(gw) == 1
    assert "reply_too_large" in svc.output()
    # Under the frame, a large reply still goes through whole.
    r = requests.get(gw.url + f"/api/v1/test/binary?bytes={FRAME - 4096}", timeout=30)
    assert r.status_code == 200 and len(r.content) == FRAME - 4096
