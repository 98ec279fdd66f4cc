"""The auth hook: protected routes ask the auth service (here testsvc's
stand-in, which accepts "test-token-<user>") who the caller is."""

import requests

from tally import token, unique, wait_instances

WHOAMI = "/api/v1/test/whoami"
ITEMS = "/api/v1/test/items"


def test_protected_route_without_a_token_is_401(system):
    r = requests.get(system.gw.url + WHOAMI, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


def test_protected_route_with_a_bad_token_is_401(system):
    for value in ("Bearer nope", "Bearer test-token-", "Basic dGVzdA=="):
        r = requests.get(system.gw.url + WHOAMI, headers={"Authorization": value}, timeout=5)
        assert r.status_code == 401, value
        assert r.json()["error"]["code"] == "unauthenticated"


def test_bearer_token_identifies_the_user(system):
    r = requests.get(system.gw.url + WHOAMI, headers=token("carol"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"caller": "user", "user_id": "carol", "tz": "UTC", "verified": False,
                        "roles": []}


def test_roles_from_the_auth_service_reach_the_handler(system):
    r = requests.get(system.gw.url + WHOAMI, headers=token("admin1"), timeout=5)
    assert r.json() == {"caller": "user", "user_id": "admin1", "tz": "UTC", "verified": False,
                        "roles": ["admin"]}


def test_session_cookie_works_like_a_bearer_token(system):
    r = requests.get(system.gw.url + WHOAMI, cookies={"tally_session": "test-token-dave"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["user_id"] == "dave"


def test_open_route_passes_no_user(system):
    r = requests.get(system.gw.url + "/api/v1/test/echo", headers=token("erin"), timeout=5)
    assert r.status_code == 200
    assert r.json()["user"] is None


def test_item_of_alice_is_404_for_bob(system):
    alice, bob = token(unique("alice")), token(unique("bob"))
    created = requests.post(system.gw.url + ITEMS, json={"name": "secret"}, headers=alice, timeout=5)
    assert created.status_code == 201
    location = created.headers["Location"]
    assert requests.get(system.gw.url + location, headers=alice, timeout=5).status_code == 200
    r = requests.get(system.gw.url + location, headers=bob, timeout=5)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert requests.delete(system.gw.url + location, headers=bob, timeout=5).status_code == 404
    assert requests.get(system.gw.url + ITEMS, headers=bob, timeout=5).json()["items"] == []
    # still there for alice
    assert requests.get(system.gw.url + location, headers=alice, timeout=5).status_code == 200


def test_caller_sent_in_a_forged_header_is_ignored(system):
    # Only the auth service decides who the caller is.
    r = requests.get(system.gw.url + WHOAMI,
                     headers={**token("frank"), "X-User-Id": "root"}, timeout=5)
    assert r.json()["user_id"] == "frank"


def test_protected_route_with_the_auth_service_down_is_503_not_401(cluster):
    gw = cluster.gateway()
    cluster.service([gw], workers=1)
    wait_instances(gw, 1)
    r = requests.get(gw.url + WHOAMI, headers=token("ivan"), timeout=10)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_instance"
    assert r.headers["Retry-After"] == "1"
    # Open routes do not need it.
    assert requests.get(gw.url + "/api/v1/test/echo", timeout=5).status_code == 200
