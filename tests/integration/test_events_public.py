"""What anyone reads of a published event without logging in, and the
changes that would break what an event already holds (API.md "Events and
tickets"): an anonymous reader sees a published event, its visible
tickets and its programme (speakers without their email), never a draft,
a hidden ticket or anything it may not write; a token sent on those routes
is still checked (an ended session is 401, not anonymous). An event whose
tickets are sold or held cannot be deleted (409), and its times cannot
move so that a session or a ticket's sales fall outside them (422). Two
gateways, two event instances."""

import pytest
import requests

from tally import unique

EVENT = {"starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z",
         "timezone": "Europe/Paris"}
ON_SALE = {"sales_starts_at": "2020-01-01T00:00:00Z", "sales_ends_at": "2099-06-01T00:00:00Z"}


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


def _ticket(sys_, user, event_id, **fields):
    body = {"name": unique("T"), "type": "free", "quantity": 10}
    body.update(ON_SALE)
    body.update(fields)
    r = sys_.post(user, f"/events/{event_id}/tickets", body)
    assert r.status_code == 201, r.text
    return r.json()


def _make(sys_, user, event_id, service, **fields):
    r = sys_.post(user, f"/events/{event_id}/{service}", fields)
    assert r.status_code == 201, r.text
    return r.json()


def _anonymous(sys_, path, gw=None, headers=None):
    return requests.get(sys_.url(path, gw), headers=headers or {}, timeout=60)


def test_anyone_reads_a_published_event_its_visible_tickets_and_programme(sys_):
    owner = sys_.user()
    ev = sys_.event(owner, state="published", **EVENT)
    e = ev["id"]
    shown = _ticket(sys_, owner, e)
    hidden = _ticket(sys_, owner, e, hidden=True)
    track = _make(sys_, owner, e, "tracks", name="Main")
    spk = _make(sys_, owner, e, "speakers", name="Ada", email="ada@example.com")
    ses = _make(sys_, owner, e, "sessions", title="Opening", track_id=track["id"],
                speaker_ids=[spk["id"]], starts_at="2099-06-01T10:00:00Z",
                ends_at="2099-06-01T11:00:00Z")
    for gw in (sys_.gw, sys_.gw2):
        r = _anonymous(sys_, f"/events/{e}", gw)
        assert r.status_code == 200, r.text
        assert r.json() == sys_.get(owner, f"/events/{e}").json()
        tickets = _anonymous(sys_, f"/events/{e}/tickets", gw).json()["items"]
        assert [t["id"] for t in tickets] == [shown["id"]]
        assert _anonymous(sys_, f"/events/{e}/tickets/{shown['id']}", gw).status_code == 200
        assert _anonymous(sys_, f"/events/{e}/tickets/{hidden['id']}", gw).status_code == 404
        assert _anonymous(sys_, f"/events/{e}/tracks/{track['id']}", gw).json()["name"] == "Main"
        assert _anonymous(sys_, f"/events/{e}/sessions/{ses['id']}", gw
                          ).json()["title"] == "Opening"
        speakers = _anonymous(sys_, f"/events/{e}/speakers", gw).json()["items"]
        assert [s["name"] for s in speakers] == ["Ada"] and "email" not in speakers[0]
        for service in ("sponsors", "microlocations"):
            r = _anonymous(sys_, f"/events/{e}/{service}", gw)
            assert r.status_code == 200 and r.json()["items"] == [], r.text
    # The owner, logged in on the same routes, sees what a role sees
    mine = sys_.get(owner, f"/events/{e}/tickets").json()["items"]
    assert {t["id"] for t in mine} == {shown["id"], hidden["id"]}
    assert sys_.get(owner, f"/events/{e}/speakers/{spk['id']}").json()["email"] == \
        "ada@example.com"


def test_a_draft_is_404_to_anyone_and_writes_still_need_a_session(sys_):
    owner = sys_.user()
    ev = sys_.event(owner, **EVENT)                     # a draft
    e = ev["id"]
    _ticket(sys_, owner, e)
    for path in (f"/events/{e}", f"/events/{e}/tickets", f"/events/{e}/tracks",
                 f"/events/{e}/speakers"):
        r = _anonymous(sys_, path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    for method, path, body in (("POST", f"/events/{e}/tracks", {"name": "x"}),
                               ("PATCH", f"/events/{e}", {"name": "x"}),
                               ("DELETE", f"/events/{e}", None),
                               ("POST", f"/events/{e}/orders", {"items": []}),
                               ("GET", f"/events/{e}/roles", None)):
        r = requests.request(method, sys_.url(path), json=body, timeout=60)
        assert r.status_code == 401, (method, path, r.text)
    assert sys_.get(owner, f"/events/{e}").json() == ev


def test_a_token_on_a_public_read_is_checked_not_ignored(sys_):
    owner = sys_.user()
    ev = sys_.event(owner, state="published", **EVENT)
    path = f"/events/{ev['id']}"
    bad = {"Authorization": "Bearer " + "x" * 43}
    r = _anonymous(sys_, path, headers=bad)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", r.text
    reader = sys_.user()
    assert sys_.get(reader, path).status_code == 200
    assert sys_.post(reader, "/auth/logout").status_code in (200, 204)
    for gw in (sys_.gw, sys_.gw2):
        assert sys_.get(reader, path, gw=gw).status_code == 401
    assert _anonymous(sys_, path).status_code == 200


def test_an_event_with_sold_or_held_tickets_is_not_deleted(sys_):
    owner, buyer = sys_.user(), sys_.user()
    ev = sys_.event(owner, state="published", **EVENT)
    e = ev["id"]
    free = _ticket(sys_, owner, e)
    r = sys_.post(buyer, f"/events/{e}/orders", {"items": [{"ticket_id": free["id"],
                                                            "quantity": 2}]})
    assert r.status_code == 201 and r.json()["status"] == "completed", r.text
    order = r.json()
    r = sys_.delete(owner, f"/events/{e}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "has_orders", r.text
    assert sys_.get(owner, f"/events/{e}", gw=sys_.gw2).status_code == 200
    assert sys_.get(buyer, f"/events/{e}/orders/{order['id']}").json()["status"] == "completed"
    # Cancelled, the tickets are back and the event may go with its records
    r = sys_.post(buyer, f"/events/{e}/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text
    r = sys_.delete(owner, f"/events/{e}")
    assert r.status_code == 204, r.text
    assert sys_.get(owner, f"/events/{e}").status_code == 404
    assert sys_.get(buyer, f"/events/{e}/orders/{order['id']}").status_code == 404


def test_event_times_cannot_leave_a_session_or_a_sale_outside(sys_):
    owner = sys_.user()
    ev = sys_.event(owner, **EVENT)
    e = ev["id"]
    path = f"/events/{e}"
    _make(sys_, owner, e, "sessions", title="Day two", starts_at="2099-06-02T10:00:00Z",
          ends_at="2099-06-02T11:00:00Z")
    r = sys_.patch(owner, path, {"ends_at": "2099-06-02T10:30:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "sessions_outside"
    assert "ends_at" in r.json()["error"]["fields"]
    r = sys_.patch(owner, path, {"starts_at": "2099-06-02T10:30:00Z"})
    assert r.status_code == 422 and "starts_at" in r.json()["error"]["fields"], r.text
    assert sys_.get(owner, path).json() == ev
    # Still around the session: fine
    r = sys_.patch(owner, path, {"starts_at": "2099-06-02T09:00:00Z",
                                 "ends_at": "2099-06-02T12:00:00Z"})
    assert r.status_code == 200, r.text
    moved = r.json()
    # A ticket on sale until the event's end keeps the end from moving earlier
    _ticket(sys_, owner, e, sales_ends_at="2099-06-02T12:00:00Z")
    r = sys_.patch(owner, path, {"ends_at": "2099-06-02T11:30:00Z"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "sales_after_end", r.text
    assert sys_.get(owner, path, gw=sys_.gw2).json() == moved
