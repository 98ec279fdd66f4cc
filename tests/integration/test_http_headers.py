"""Headers every response carries: X-Request-Id, security headers, CORS."""

import re

import pytest
import requests

from tally import raw_http

ECHO = "/api/v1/test/echo"
ORIGIN = "https://app.example"


def test_valid_request_id_is_echoed(system):
    rid = "client-req_1.2:3"
    r = requests.get(system.gw.url + ECHO, headers={"X-Request-Id": rid}, timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == rid


def test_request_id_is_echoed_on_errors_too(system):
    r = requests.get(system.gw.url + "/nowhere", headers={"X-Request-Id": "abc-123"}, timeout=5)
    assert r.status_code == 404
    assert r.headers["X-Request-Id"] == "abc-123"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "\u00e9t\u00e9"])
def test_invalid_or_missing_request_id_is_replaced_by_32_hex(system, given):
    headers = {} if given is None else {"X-Request-Id": given.encode("utf-8")}
    r = requests.get(system.gw.url + ECHO, headers=headers, timeout=5)
    assert r.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"]), r.headers["X-Request-Id"]


def test_generated_request_ids_differ(system):
    ids = {requests.get(system.gw.url + "/healthz", timeout=5).headers["X-Request-Id"]
           for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("path", ["/healthz", ECHO, "/nowhere"])
def test_security_headers_are_present(system, path):
    r = requests.get(system.gw.url + path, timeout=5)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_cors_preflight_from_the_allowed_origin_is_204_with_allow_headers(system):
    r = requests.options(system.gw.url + ECHO, headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key",
    }, timeout=5)
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    methods = [m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")]
    assert "POST" in methods and "GET" in methods
    allowed = [h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")]
    assert "content-type" in allowed and "idempotency-key" in allowed and "authorization" in allowed
    assert "Origin" in r.headers.get("Vary", "")


def test_cors_simple_request_from_the_allowed_origin_gets_acao(system):
    r = requests.get(system.gw.url + ECHO, headers={"Origin": ORIGIN}, timeout=5)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-Id" in r.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.evil",
                                    "http://app.example", "https://app.exampl", "null"])
def test_cors_disallowed_origin_gets_no_acao(system, origin):
    for method in ("OPTIONS", "GET"):
        r = requests.request(method, system.gw.url + ECHO, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=5)
        assert "Access-Control-Allow-Origin" not in r.headers, (method, origin)
        assert "Access-Control-Allow-Credentials" not in r.headers


def test_cors_origin_with_a_comma_does_not_match_a_list_entry(system):
    # The allow list is matched exactly: an Origin that embeds an allowed
    # one between commas is not allowed.
    status, headers, _ = raw_http(system.gw.url,
                                  b"GET " + ECHO.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                                  b"Origin: x,https://app.example,y\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert "access-control-allow-origin" not in headers
