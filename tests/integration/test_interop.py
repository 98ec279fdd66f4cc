"""Interop: a Python peer written from proto/PROTOCOL.md alone
(mesh_client.py) calls services through a gateway's backend and serves a
service of its own."""

import os
import time

import pytest
import requests

from mesh_client import MeshClient, Worker
from tally import ROOT, TEST_PROTO, wait_for, wait_instances

PYWORKER_PROTO = os.path.join(ROOT, "tests", "proto", "pyworker.json")


@pytest.fixture(scope="module")
def mesh(system):
    with MeshClient(system.gw.mesh) as client:
        yield client


def test_python_client_calls_echo_post_and_gets_the_body_back(mesh):
    body = {"text": "hi", "list": [1, 2.5, None, True, "\u20ac"], "map": {"k": "v"}}
    reply = mesh.call("testsvc", "echo.post", body=body)
    assert reply["v"] == 1 and reply["kind"] == "reply"
    assert reply["status"] == 200
    assert reply["body"]["body"] == body


def test_python_client_passes_params(mesh):
    reply = mesh.call("testsvc", "echo.get", params={"a": "1", "b": "two"})
    assert reply["status"] == 200
    assert reply["body"]["params"] == {"a": "1", "b": "two"}


def test_python_client_sees_instances_in_mesh_status(mesh):
    status = mesh.status()
    assert status["gateway"].startswith("gateway")
    services = {s["name"]: s for s in status["services"]}
    testsvc = services["testsvc"]
    assert testsvc["declared"] is True
    assert testsvc["queue"] == 0
    names = sorted(i["instance"] for i in testsvc["instances"])
    assert len(names) == 2 and all(n.startswith("testsvc") for n in names)
    for inst in testsvc["instances"]:
        assert 4 <= inst["capacity"] <= 256            # TALLY_WORKERS=4 (or more: prefetch)
        assert inst["db_ok"] is True
        assert 0 <= inst["in_flight"] <= inst["capacity"]
        assert inst["last_seen_ms"] < 5000
    assert len(services["auth"]["instances"]) == 1


def test_mesh_status_says_whether_the_gateway_is_draining(mesh):
    # PROTOCOL.md §3: {"gateway", "draining", "services"}.
    assert mesh.status()["draining"] is False


def test_python_client_gets_pong(mesh):
    reply = mesh.ping()
    assert reply["status"] == 200 and reply["body"] == {"pong": True}


def test_unknown_service_is_503_no_instance(mesh):
    reply = mesh.call("nosuchsvc", "get")
    assert reply["status"] == 503
    assert reply["body"]["error"]["code"] == "no_instance"


def test_python_worker_serves_http_requests_through_the_gateway(cluster):
    gw = cluster.gateway(env={"TALLY_PROTO_EXTRA": f"{TEST_PROTO}:{PYWORKER_PROTO}"})
    seen = []

    def handler(request):
        seen.append(request)
        method = request["method"]
        if method == "hello":
            return 200, {"hello": request["params"]["name"], "trace": request.get("trace")}
        if method == "echo":
            return 201, {"got": request["body"]}, {"Location": "/api/v1/py/echo/1"}
        if method == "report.png":
            return 200, b"\x89PNG-bytes", {"Content-Type": "image/png"}
        return 404, {"error": {"code": "unknown_method", "message": method}}

    worker = Worker([gw.mesh], "pyworker", handler, instance="pyworker@test", capacity=2)
    worker.start()
    try:
        wait_instances(gw, 1, service="pyworker")
        r = requests.get(gw.url + "/api/v1/py/hello/w%C3%B6rld",
                         headers={"X-Request-Id": "interop-1"}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"hello": "w\u00f6rld", "trace": "interop-1"}
        assert r.headers["ETag"]

        r = requests.post(gw.url + "/api/v1/py/echo", json={"text": "from http"}, timeout=10)
        assert r.status_code == 201
        assert r.json() == {"got": {"text": "from http"}}
        assert r.headers["Location"] == "/api/v1/py/echo/1"

        r = requests.get(gw.url + "/api/v1/py/report.png", timeout=10)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "image/png"
        assert r.content == b"\x89PNG-bytes"

        # The envelope the worker got follows the protocol.
        request = seen[0]
        assert request["v"] == 1 and request["kind"] == "request"
        assert request["service"] == "pyworker" and request["method"] == "hello"
        assert request["idempotent"] is True
        assert request["deadline"] > 0 and request["id"]

        # Heartbeats keep it alive well past the 3 s liveness window.
        time.sleep(4)
        r = requests.get(gw.url + "/api/v1/py/hello/again", timeout=10)
        assert r.status_code == 200
        assert worker.readies == 1
    finally:
        worker.stop()
    # The worker said disconnect: the gateway forgets it.
    wait_instances(gw, 0, service="pyworker")
    r = requests.get(gw.url + "/api/v1/py/hello/gone", timeout=10)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_instance"


def test_python_worker_nested_call_runs_as_its_caller_only_with_parent(cluster):
    gw = cluster.gateway(env={"TALLY_PROTO_EXTRA": f"{TEST_PROTO}:{PYWORKER_PROTO}"})
    cluster.service([gw], role="auth", workers=1)
    cluster.service([gw], workers=1)

    def handler(request, nested):
        with_parent = nested.call("testsvc", "whoami")
        without = nested.call("testsvc", "whoami", parent=False)
        return 200, {"caller": request.get("caller"),
                     "with_parent": with_parent and with_parent["body"],
                     "without_parent": without and without["status"]}

    worker = Worker([gw.mesh], "pyworker", handler, instance="pyworker@nested")
    worker.start()
    try:
        wait_instances(gw, 1, service="pyworker")
        wait_instances(gw, 1, service="auth")
        wait_instances(gw, 1)
        r = requests.get(gw.url + "/api/v1/py/relay",
                         headers={"Authorization": "Bearer test-token-ivy"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["caller"] == {"kind": "user", "user_id": "ivy", "roles": []}
        assert body["with_parent"] == {"caller": "user", "user_id": "ivy", "tz": "UTC",
                                       "verified": False, "roles": []}
        # Without its parent the call is the worker's own (service:pyworker),
        # and whoami is declared for users only: refused before its handler
        assert body["without_parent"] == 403
    finally:
        worker.stop()


def test_readyz_follows_the_db_ok_an_instance_reports(cluster):
    gw = cluster.gateway(env={"TALLY_PROTO_EXTRA": f"{TEST_PROTO}:{PYWORKER_PROTO}"})
    cluster.service([gw], workers=1)
    worker = Worker([gw.mesh], "pyworker", lambda request: (200, {}), db_ok=False).start()
    try:
        wait_instances(gw, 1, service="pyworker")
        wait_instances(gw, 1)
        r = requests.get(gw.url + "/readyz", timeout=5)
        assert r.status_code == 503
        assert r.json()["missing"] == [{"service": "pyworker", "reason": "database not answering"}]
        worker.db_ok = True                   # the next heartbeat says so
        wait_for(lambda: requests.get(gw.url + "/readyz", timeout=5).status_code == 200,
                 "readyz 200 after db_ok", timeout=5)
    finally:
        worker.stop()
