"""The gateway's HTTP error table (shared/API.md, Conventions): each error has
the API's shape {"error": {"code", "message", "fields"?}}, a JSON content
type and an X-Request-Id, and nothing a client sends ever gives a 500."""

import hashlib
import json

import pytest
import requests

from tally import parse_metric, raw_http, token

ECHO = "/api/v1/test/echo"
ITEMS = "/api/v1/test/items"
UPLOAD = "/api/v1/test/upload"
JSON = {"Content-Type": "application/json"}
MiB = 1024 * 1024


def assert_error(status, headers, body, expected_status, code=None):
    """An error response in the API's shape."""
    headers = {k.lower(): v for k, v in headers.items()}
    assert status != 500
    assert status == expected_status, (status, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    assert len(headers.get("x-request-id", "")) > 0
    doc = json.loads(body)
    assert set(doc) == {"error"}
    error = doc["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    if code:
        assert error["code"] == code, error
    return error


def check(r, expected_status, code=None):
    return assert_error(r.status_code, r.headers, r.content, expected_status, code)


def test_unknown_path_is_404(system):
    check(requests.get(system.gw.url + "/api/v1/nowhere", timeout=5), 404, "not_found")


def test_wrong_method_is_405_with_allow(system):
    r = requests.put(system.gw.url + ECHO, timeout=5)
    check(r, 405, "method_not_allowed")
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert "GET" in allow and "POST" in allow and "PUT" not in allow


def test_malformed_json_is_400(system):
    r = requests.post(system.gw.url + ECHO, data=b'{"text": ', headers=JSON, timeout=5)
    check(r, 400, "malformed_json")


def test_wrong_content_type_is_415(system):
    r = requests.post(system.gw.url + ECHO, data=b'{"text": "hi"}',
                      headers={"Content-Type": "text/plain"}, timeout=5)
    check(r, 415)


def test_json_body_over_1_mib_is_413(system):
    body = json.dumps({"text": "a" * MiB}).encode()
    r = requests.post(system.gw.url + ECHO, data=body, headers=JSON, timeout=10)
    check(r, 413, "too_large")


def test_chunked_json_body_over_1_mib_is_413(system):
    # No Content-Length: the limit must hold while the body arrives.
    def chunks():
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}'
    r = requests.post(system.gw.url + ECHO, data=chunks(), headers=JSON, timeout=10)
    check(r, 413, "too_large")


def test_upload_route_accepts_2_mib(system):
    data = bytes(range(256)) * (2 * MiB // 256)
    r = requests.post(system.gw.url + UPLOAD, data=data,
                      headers={"Content-Type": "application/octet-stream"}, timeout=20)
    assert r.status_code == 201, r.text
    assert r.json()["bytes"] == 2 * MiB
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_over_10_mib_is_413(system):
    r = requests.post(system.gw.url + UPLOAD, data=b"x" * (10 * MiB + 1),
                      headers={"Content-Type": "application/octet-stream"}, timeout=20)
    check(r, 413, "too_large")


def test_body_field_of_the_wrong_type_is_400_with_fields(system):
    r = requests.post(system.gw.url + ECHO, json={"text": 5, "count": "x"}, timeout=5)
    error = check(r, 400, "invalid_body")
    assert set(error["fields"]) == {"text", "count"}


def test_missing_required_field_is_400_with_fields(system):
    r = requests.post(system.gw.url + ITEMS, json={}, headers=token("alice"), timeout=5)
    error = check(r, 400)
    assert "name" in error["fields"]


def test_string_over_its_max_length_is_400_with_fields(system):
    r = requests.post(system.gw.url + ECHO, json={"text": "x" * 101}, timeout=5)
    assert "text" in check(r, 400)["fields"]


def test_a_body_on_get_is_400(system):
    r = requests.get(system.gw.url + ECHO, data=b"surprise", timeout=5)
    check(r, 400, "unexpected_body")


def test_invalid_utf8_in_json_is_400(system):
    r = requests.post(system.gw.url + ECHO, data=b'{"text": "\xff\xfe"}', headers=JSON, timeout=5)
    check(r, 400, "malformed_json")


def test_deeply_nested_json_is_refused(system):
    # 33 levels against a limit of 32: a client error (400 or 413), never
    # passed to the service.
    body = b"[" * 33 + b"]" * 33
    r = requests.post(system.gw.url + ECHO, data=body, headers=JSON, timeout=5)
    assert r.status_code in (400, 413)
    check(r, r.status_code)


def test_very_deeply_nested_json_is_refused(system):
    body = b'{"a":' * 100000 + b"1" + b"}" * 100000
    r = requests.post(system.gw.url + ECHO, data=body, headers=JSON, timeout=10)
    assert r.status_code in (400, 413)
    check(r, r.status_code)


def test_duplicate_keys_in_json_are_400(system):
    r = requests.post(system.gw.url + ECHO, data=b'{"text": "a", "text": "b"}',
                      headers=JSON, timeout=5)
    check(r, 400, "malformed_json")


@pytest.mark.parametrize("query", [b"a=%zz", b"a=%4", b"a=%00", b"a=%ff", b"%zz=1"])
def test_bad_percent_encoding_in_query_is_400(system, query):
    # Raw bytes: an HTTP library would re-quote the bad escape.
    status, headers, body = raw_http(system.gw.url,
                                     b"GET " + ECHO.encode() + b"?" + query +
                                     b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert_error(status, headers, body, 400, "bad_query")


def test_good_percent_encoding_in_query_is_decoded(system):
    status, _, body = raw_http(system.gw.url,
                               b"GET " + ECHO.encode() + b"?a=%e2%82%ac&b=x+y%2Bz"
                               b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert json.loads(body)["params"] == {"a": "\u20ac", "b": "x y+z"}


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_bad_idempotency_key_is_400(system, key):
    r = requests.post(system.gw.url + ITEMS, json={"name": "k"},
                      headers={**token("alice"), "Idempotency-Key": key.encode("utf-8")},
                      timeout=5)
    check(r, 400, "bad_idempotency_key")


def test_no_client_error_in_this_module_answered_5xx(system):
    # Runs last in this module: every request above was a client's mistake,
    # so the gateway's counters must hold no 5xx at all.
    text = requests.get(system.gw.ops_url + "/metrics", timeout=5).text
    bad = [line for line in text.splitlines()
           if line.startswith("http_requests_total") and 'code="5' in line]
    assert not bad, bad
    assert parse_metric(text, "http_requests_total", {"code": "400"}) is not None
