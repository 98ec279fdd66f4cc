"""A misbehaving service (a Python worker from mesh_client.py) cannot make
the gateway break HTTP: odd statuses, bodies that are not JSON, headers
with line breaks."""

import os

import pytest
import requests

from mesh_client import Worker
from tally import ROOT, TEST_PROTO, Cluster, raw_http, wait_instances

PYWORKER_PROTO = os.path.join(ROOT, "tests", "proto", "pyworker.json")


def handler(request):
    what = request["params"]["name"]
    if what.startswith("status-"):
        status = int(what[7:])
        return status, {"status": status}
    if what == "int-keys":
        return 200, {1: "one"}
    if what == "crlf-location":
        return 201, {"ok": True}, {"Location": "/x\r\nSet-Cookie: evil=1"}
    if what == "crlf-type":
        return 200, b"bytes", {"Content-Type": "text/html\r\nX-Evil: 1"}
    if what == "gateway-headers":
        return 200, {"ok": True}, {"X-Request-Id": "forged", "Access-Control-Allow-Origin": "*",
                                   "Content-Security-Policy": "none", "Cache-Control": "public"}
    return 200, {"ok": True}


@pytest.fixture(scope="module")
def bad():
    c = Cluster()
    gw = c.gateway(env={"TALLY_PROTO_EXTRA": f"{TEST_PROTO}:{PYWORKER_PROTO}"})
    worker = Worker([gw.mesh], "pyworker", handler, instance="pyworker@bad", capacity=4).start()
    wait_instances(gw, 1, service="pyworker")
    c.gw = gw
    yield c
    worker.stop()
    failures = c.stop()
    assert not failures, "\n".join(failures)


def get(gw, name):
    return raw_http(gw.url, b"GET /api/v1/py/hello/" + name.encode() +
                    b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=10)


def test_reply_body_that_is_not_json_is_502(bad):
    status, headers, body = get(bad.gw, "int-keys")
    assert status == 502
    assert b"bad_gateway" in body
    assert get(bad.gw, "fine")[0] == 200


@pytest.mark.parametrize("code", [100, 101, 199, 304])
def test_service_status_that_is_not_a_final_answer_is_502(bad, code):
    # PROTOCOL.md §5: services answer 2xx/4xx/5xx (304 is the gateway's).
    # A 1xx is not a final HTTP response and a 304 from a service has no
    # tag behind it: the client must get a 502, never a broken exchange.
    status, headers, body = get(bad.gw, f"status-{code}")
    assert status == 502, (code, status, headers)
    assert get(bad.gw, "fine")[0] == 200


def test_line_breaks_in_service_headers_never_reach_the_client(bad):
    status, headers, body = get(bad.gw, "crlf-location")
    assert status == 201
    assert "set-cookie" not in headers
    assert "\r" not in headers.get("location", "") and "\n" not in headers.get("location", "")
    status, headers, body = get(bad.gw, "crlf-type")
    assert status == 200
    assert "x-evil" not in headers
    assert body == b"bytes"


def test_service_cannot_set_the_gateways_own_headers(bad):
    r = requests.get(bad.gw.url + "/api/v1/py/hello/gateway-headers",
                     headers={"X-Request-Id": "mine"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "mine"
    assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert r.headers["Cache-Control"] == "private, no-cache"    # JSON GET with an ETag
