"""Idempotency-Key on writes: the same key from the same user replays the
first answer and changes nothing."""

import threading

import requests

from tally import psql, token, unique

ITEMS = "/api/v1/test/items"


def rows(owner):
    return int(psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{owner}'"))


def test_same_key_and_same_body_replays_the_answer_and_writes_one_row(system):
    user = unique("idem")
    headers = {**token(user), "Idempotency-Key": unique("key")}
    first = requests.post(system.gw.url + ITEMS, json={"name": "once"}, headers=headers, timeout=5)
    assert first.status_code == 201
    for _ in range(3):
        again = requests.post(system.gw.url + ITEMS, json={"name": "once"}, headers=headers, timeout=5)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Location"] == first.headers["Location"]
    assert rows(user) == 1
    listed = requests.get(system.gw.url + ITEMS, headers=token(user), timeout=5).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]


def test_same_key_with_a_different_body_is_422(system):
    user = unique("idem")
    headers = {**token(user), "Idempotency-Key": unique("key")}
    assert requests.post(system.gw.url + ITEMS, json={"name": "a"}, headers=headers,
                         timeout=5).status_code == 201
    r = requests.post(system.gw.url + ITEMS, json={"name": "b"}, headers=headers, timeout=5)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert rows(user) == 1


def test_the_same_key_from_another_user_is_a_different_request(system):
    key = unique("shared-key")
    a, b = unique("idemA"), unique("idemB")
    ra = requests.post(system.gw.url + ITEMS, json={"name": "x"},
                       headers={**token(a), "Idempotency-Key": key}, timeout=5)
    rb = requests.post(system.gw.url + ITEMS, json={"name": "x"},
                       headers={**token(b), "Idempotency-Key": key}, timeout=5)
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
    assert rows(a) == 1 and rows(b) == 1


def test_without_a_key_every_post_writes(system):
    user = unique("idem")
    for _ in range(2):
        assert requests.post(system.gw.url + ITEMS, json={"name": "twice"}, headers=token(user),
                             timeout=5).status_code == 201
    assert rows(user) == 2


def test_key_on_a_route_without_a_user_is_ignored(system):
    # Documented behaviour: keys are scoped to a user (PROTOCOL.md: "the
    # same key from the same caller"); on a route without authentication
    # there is no caller, so the key is ignored: no replay and no 422.
    headers = {"Idempotency-Key": unique("anon")}
    r1 = requests.post(system.gw.url + "/api/v1/test/echo", json={"text": "one"}, headers=headers, timeout=5)
    r2 = requests.post(system.gw.url + "/api/v1/test/echo", json={"text": "two"}, headers=headers, timeout=5)
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["body"] == {"text": "one"}
    assert r2.json()["body"] == {"text": "two"}


def test_concurrent_requests_with_the_same_key_write_once(system):
    user = unique("idem")
    headers = {**token(user), "Idempotency-Key": unique("key")}
    answers = []

    def post():
        r = requests.post(system.gw.url + ITEMS, json={"name": "race", "delay_ms": 300},
                          headers=headers, timeout=15)
        answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in answers] == [201] * 5, answers
    assert len({body["id"] for _, body in answers}) == 1
    assert rows(user) == 1
