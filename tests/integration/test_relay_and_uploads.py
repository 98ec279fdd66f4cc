"""A service calling a service through the mesh; raw bytes in and out."""

import hashlib
import os

import requests

from tally import token


def test_service_calls_another_service_through_the_mesh_as_its_caller(system):
    # relay calls testsvc.whoami through the mesh; the nested call runs as
    # the HTTP caller (derived by the gateway from the parent request).
    r = requests.get(system.gw.url + "/api/v1/test/relay",
                     headers={**token("hank"), "X-Request-Id": "relay-trace-1"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200
    assert body["relayed"] == {"caller": "user", "user_id": "hank", "tz": "UTC",
                               "verified": False, "roles": []}


def test_relay_needs_a_session(system):
    assert requests.get(system.gw.url + "/api/v1/test/relay", timeout=10).status_code == 401


def test_upload_bytes_reach_the_service_unchanged(system):
    data = os.urandom(300_000) + b"\x00\xff" * 1000
    r = requests.post(system.gw.url + "/api/v1/test/upload", data=data,
                      headers={"Content-Type": "image/png"}, timeout=20)
    assert r.status_code == 201
    assert r.json() == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "content_type": "image/png"}


def test_upload_with_a_json_content_type_is_still_bytes(system):
    # An upload route takes the body as it is, whatever it claims to be.
    data = b'{"not": "parsed"'
    r = requests.post(system.gw.url + "/api/v1/test/upload", data=data,
                      headers={"Content-Type": "application/json"}, timeout=20)
    assert r.status_code == 201
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_binary_reply_keeps_its_content_type_and_gets_an_etag(system):
    r = requests.get(system.gw.url + "/api/v1/test/binary", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/png"
    assert r.content == b"\x89PNG\r\n\x1a\n"
    etag = r.headers["ETag"]
    again = requests.get(system.gw.url + "/api/v1/test/binary",
                         headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304 and again.content == b""


def test_json_reply_after_a_binary_one_is_json(system):
    r = requests.get(system.gw.url + "/api/v1/test/whoami", headers=token("gina"), timeout=5)
    assert r.headers["Content-Type"].startswith("application/json")
