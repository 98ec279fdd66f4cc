"""Two gateways; every instance connects to both (TALLY_MESH=a,b): no
gateway is a single point of failure, and a restarted gateway gets its
instances back."""

import requests

from tally import gateway_at, instances, ports_of, token, unique, wait_for, wait_instances

ECHO = "/api/v1/test/echo"
ITEMS = "/api/v1/test/items"


def serve_all(gw, count=6):
    seen = set()
    for _ in range(count):
        r = requests.get(gw.url + ECHO, timeout=5)
        assert r.status_code == 200, (gw.name, r.text)
        seen.add(r.json()["instance"])
    return seen


def test_instances_serve_both_gateways_and_survive_a_gateway_restart(cluster):
    a = cluster.gateway(name="gateway-a")
    b = cluster.gateway(name="gateway-b")
    cluster.service([a, b], workers=2, name="one")
    cluster.service([a, b], workers=2, name="two")
    cluster.service([a, b], role="auth", workers=1)
    wait_instances(a, 2)
    wait_instances(b, 2)
    assert serve_all(a) == {"one", "two"}
    assert serve_all(b) == {"one", "two"}

    # A write through one gateway is seen at once through the other.
    wait_instances(a, 1, service="auth")
    wait_instances(b, 1, service="auth")
    auth = token(unique("twogw"))
    etag = requests.get(b.url + ITEMS, headers=auth, timeout=5).headers["ETag"]
    created = requests.post(a.url + ITEMS, json={"name": "via a"}, headers=auth, timeout=5)
    assert created.status_code == 201
    r = requests.get(b.url + ITEMS, headers={**auth, "If-None-Match": etag}, timeout=5)
    assert r.status_code == 200
    assert [item["id"] for item in r.json()["items"]] == [created.json()["id"]]

    # Gateway a dies hard: b goes on serving with both instances.
    http_port, mesh_port = ports_of(a)
    a.kill9()
    assert serve_all(b, 10) == {"one", "two"}
    assert instances(b) == 2

    # a comes back where it was: the instances register with it again.
    a2 = gateway_at(cluster, http_port, mesh_port, name="gateway-a2")
    wait_instances(a2, 2, timeout=15)
    assert serve_all(a2) == {"one", "two"}
    assert serve_all(b) == {"one", "two"}
    wait_for(lambda: requests.get(a2.url + "/readyz", timeout=5).status_code == 200,
             "a2 ready: " + requests.get(a2.url + "/readyz", timeout=5).text)
