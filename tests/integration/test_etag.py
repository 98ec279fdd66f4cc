"""ETags on JSON GETs, 304 on If-None-Match, and no stale read after a write."""

import re

import requests

from tally import token, unique

ITEMS = "/api/v1/test/items"


def test_json_get_has_a_strong_etag(system):
    r = requests.get(system.gw.url + "/api/v1/test/echo?x=1", timeout=5)
    assert r.status_code == 200
    assert re.fullmatch(r'"[^"]+"', r.headers["ETag"]), r.headers["ETag"]   # not W/


def test_if_none_match_with_the_current_etag_is_304_with_empty_body(system):
    # A list whose content does not depend on the instance that answers
    # (echo names its instance, so its tag differs between the two).
    auth = token(unique("etag"))
    url = system.gw.url + ITEMS
    assert requests.post(url, json={"name": "x"}, headers=auth, timeout=5).status_code == 201
    etag = requests.get(url, headers=auth, timeout=5).headers["ETag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        r = requests.get(url, headers={**auth, "If-None-Match": header}, timeout=5)
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["ETag"] == etag


def test_if_none_match_with_another_etag_is_200(system):
    url = system.gw.url + "/api/v1/test/echo?x=3"
    r = requests.get(url, headers={"If-None-Match": '"not-the-tag"'}, timeout=5)
    assert r.status_code == 200
    assert r.json()["params"] == {"x": "3"}


def test_list_etag_changes_after_a_write_and_the_list_is_never_stale(system):
    user = unique("etag")
    auth = token(user)
    url = system.gw.url + ITEMS
    first = requests.get(url, headers=auth, timeout=5)
    assert first.status_code == 200 and first.json()["items"] == []
    etag = first.headers["ETag"]
    assert requests.get(url, headers={**auth, "If-None-Match": etag}, timeout=5).status_code == 304

    for n in range(5):
        created = requests.post(url, json={"name": f"n{n}"}, headers=auth, timeout=5)
        assert created.status_code == 201
        # Right after the write, with the old tag: never 304, never old data.
        r = requests.get(url, headers={**auth, "If-None-Match": etag}, timeout=5)
        assert r.status_code == 200
        assert r.headers["ETag"] != etag
        ids = [item["id"] for item in r.json()["items"]]
        assert created.json()["id"] in ids
        assert len(ids) == n + 1
        etag = r.headers["ETag"]


def test_error_responses_carry_no_etag(system):
    r = requests.get(system.gw.url + ITEMS + "/00000000-0000-0000-0000-000000000000",
                     headers=token("nobody"), timeout=5)
    assert r.status_code == 404
    assert "ETag" not in r.headers


def test_head_has_the_headers_of_get_without_a_body(system):
    auth = token(unique("head"))
    url = system.gw.url + ITEMS
    get = requests.get(url, headers=auth, timeout=5)
    head = requests.head(url, headers=auth, timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
