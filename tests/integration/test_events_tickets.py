"""Tickets and orders (API.md "Events and tickets"): Open Event's ticket
rules with money in integer minor units, `available` on every ticket,
hidden tickets for roles only, orders all or nothing, free orders completed
at once, priced ones holding their tickets for 15 minutes, paid, cancelled
(tickets back at once) or expired by the durable job on the test's clock —
and never counted past their expiry even before the job runs; one order per
Idempotency-Key; another user's order is 404. Two gateways, two event
instances with their jobs run by `tallyctl jobs run-due` (TALLY_RUN_JOBS=0)
and buyers who pay their own orders (TALLY_PAYMENTS=manual). The
concurrency rounds are in test_events_oversell.py."""

import datetime as dt

import pytest

from tally import psql, unique, wait_for

EVENT_ENV = {"TALLY_PAYMENTS": "manual", "TALLY_RUN_JOBS": "0"}

# An event far ahead whose tickets are on sale whatever today is (from 2020
# to the event's end, 2099)
EVENT = {"starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z",
         "timezone": "Europe/Paris", "state": "published"}
ON_SALE = {"sales_starts_at": "2020-01-01T00:00:00Z", "sales_ends_at": "2099-06-01T00:00:00Z"}
AFTER_EVERY_HOLD = "2099-12-31T00:00:00Z"


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


def _ticket(sys_, user, event_id, **fields):
    body = {"name": unique("T"), "type": "paid", "price": 1250, "currency": "EUR",
            "quantity": 10}
    body.update(ON_SALE)
    body.update(fields)
    r = sys_.post(user, f"/events/{event_id}/tickets", body)
    assert r.status_code == 201, r.text
    return r.json()


def _order(sys_, user, event_id, items, **kw):
    return sys_.post(user, f"/events/{event_id}/orders", {"items": items}, **kw)


def _available(sys_, user, event_id, ticket_id):
    r = sys_.get(user, f"/events/{event_id}/tickets/{ticket_id}")
    assert r.status_code == 200, r.text
    return r.json()["available"]


@pytest.fixture(scope="module")
def owner(sys_):
    return sys_.user()


@pytest.fixture(scope="module")
def ev(sys_, owner):
    return sys_.event(owner, **EVENT)


# ---------------------------------------------------------------------------
# Tickets

def test_a_ticket_shows_its_fields_and_available(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=5)
    assert t["available"] == 5 and t["sold"] == 0 and t["held"] == 0
    assert t["price"] == 1250 and t["currency"] == "EUR" and t["type"] == "paid"
    assert t["min_order"] == 1 and t["max_order"] == 5 and t["hidden"] is False
    assert t["sales_ends_at"] == "2099-06-01T00:00:00Z"
    yen = _ticket(sys_, owner, ev["id"], price=3000, currency="JPY")
    assert yen["price"] == 3000
    free = _ticket(sys_, owner, ev["id"], type="free", price=None, currency=None)
    assert free["price"] == 0 and free["currency"] is None
    listed = sys_.get(None, f"/events/{ev['id']}/tickets", gw=sys_.gw2)
    assert listed.status_code == 200   # a published event's tickets, to anyone
    assert yen["id"] in [x["id"] for x in listed.json()["items"]]


@pytest.mark.parametrize("fields, status, field", [
    ({"price": 0}, 422, "price"),
    ({"price": -5}, 422, "price"),
    ({"price": 12.5}, 400, "price"),
    ({"price": "1250"}, 400, "price"),
    ({"currency": "EURO"}, 400, "currency"),
    ({"currency": "XYZ"}, 400, "currency"),
    ({"currency": None}, 422, "currency"),
    ({"type": "free"}, 422, "price"),
    ({"type": "donation", "price": None, "min_price": 500, "max_price": 100}, 422, "max_price"),
    ({"quantity": 0}, 422, "quantity"),
    ({"min_order": 0}, 422, "min_order"),
    ({"min_order": 5, "max_order": 4}, 422, "max_order"),
    ({"max_order": 11}, 422, "max_order"),
    ({"sales_starts_at": "2099-01-01T00:00:00Z", "sales_ends_at": "2098-01-01T00:00:00Z"},
     422, "sales_ends_at"),
    ({"sales_ends_at": "2099-06-03T18:00:01Z"}, 422, "sales_ends_at"),
    ({"sales_ends_at": "soon"}, 400, "sales_ends_at"),
    ({"type": "gift"}, 400, "type"),
    ({"hidden": "yes"}, 400, "hidden"),
])
def test_bad_tickets_are_refused_and_nothing_is_made(sys_, owner, ev, fields, status, field):
    before = len(sys_.get(owner, f"/events/{ev['id']}/tickets").json()["items"])
    body = {"name": unique("T"), "type": "paid", "price": 1250, "currency": "EUR",
            "quantity": 10}
    body.update(ON_SALE)
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    if "currency" in fields and fields["currency"] is None:
        body.pop("currency", None)
    r = sys_.post(owner, f"/events/{ev['id']}/tickets", body)
    assert r.status_code == status, r.text
    assert field in r.json()["error"]["fields"], r.text
    assert len(sys_.get(owner, f"/events/{ev['id']}/tickets").json()["items"]) == before


def test_a_ticket_name_is_unique_in_its_event(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"])
    r = sys_.post(owner, f"/events/{ev['id']}/tickets",
                  dict(ON_SALE, name=t["name"], type="free", quantity=3))
    assert r.status_code == 409 and r.json()["error"]["code"] == "ticket_exists"
    other = sys_.event(owner, **EVENT)
    _ticket(sys_, owner, other["id"], name=t["name"])


def test_hidden_tickets_are_for_roles_only(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], hidden=True)
    buyer = sys_.user()
    ids = [x["id"] for x in sys_.get(buyer, f"/events/{ev['id']}/tickets").json()["items"]]
    assert t["id"] not in ids
    assert sys_.get(buyer, f"/events/{ev['id']}/tickets/{t['id']}").status_code == 404
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 1}])
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_ticket"
    assert t["id"] in [x["id"] for x in
                       sys_.get(owner, f"/events/{ev['id']}/tickets").json()["items"]]
    assert _order(sys_, owner, ev["id"], [{"ticket_id": t["id"], "quantity": 1}]
                  ).status_code == 201


def test_only_roles_with_permission_change_tickets(sys_, owner, ev):
    buyer = sys_.user()
    r = sys_.post(buyer, f"/events/{ev['id']}/tickets", dict(ON_SALE, name="x", type="free",
                                                            quantity=1))
    assert r.status_code == 403
    t = _ticket(sys_, owner, ev["id"])
    assert sys_.patch(buyer, f"/events/{ev['id']}/tickets/{t['id']}",
                      {"quantity": 99}).status_code == 403
    assert sys_.delete(buyer, f"/events/{ev['id']}/tickets/{t['id']}").status_code == 403
    draft = sys_.event(owner, **dict(EVENT, state="draft"))
    assert sys_.get(buyer, f"/events/{draft['id']}/tickets").status_code == 404


def test_quantity_never_goes_below_sold_and_held(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=5)
    buyer = sys_.user()
    assert _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 3}]
                  ).status_code == 201
    path = f"/events/{ev['id']}/tickets/{t['id']}"
    r = sys_.patch(owner, path, {"quantity": 2, "max_order": 2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "below_sold"
    r = sys_.patch(owner, path, {"quantity": 4, "max_order": 4})
    assert r.status_code == 200 and r.json()["available"] == 1
    # A ticket that was ordered stays
    assert sys_.delete(owner, path).status_code == 409
    fresh = _ticket(sys_, owner, ev["id"])
    assert sys_.delete(owner, f"/events/{ev['id']}/tickets/{fresh['id']}").status_code == 204


# ---------------------------------------------------------------------------
# Orders

def test_a_free_order_is_completed_at_once(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], type="free", price=None, currency=None, quantity=4)
    buyer = sys_.user()
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 2}])
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "completed" and o["total"] == 0 and o["expires_at"] is None
    assert o["items"] == [{"ticket_id": t["id"], "quantity": 2, "price": 0}]
    assert r.headers["Location"] == f"/api/v1/events/{ev['id']}/orders/{o['id']}"
    assert _available(sys_, buyer, ev["id"], t["id"]) == 2


def test_a_priced_order_holds_for_15_minutes_then_pay_completes_it(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=4)
    buyer = sys_.user()
    o = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 2}]).json()
    assert o["status"] == "pending" and o["total"] == 2500 and o["currency"] == "EUR"
    assert o["total_text"] == "25.00 EUR"
    made = dt.datetime.fromisoformat(o["created_at"].replace("Z", "+00:00"))
    ends = dt.datetime.fromisoformat(o["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=14, seconds=59) < ends - made <= dt.timedelta(minutes=15, seconds=1)
    assert _available(sys_, buyer, ev["id"], t["id"]) == 2
    path = f"/events/{ev['id']}/orders/{o['id']}"
    r = sys_.post(buyer, path + "/pay", {"payment_reference": "psp-1"}, gw=sys_.gw2)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["payment_reference"] == "psp-1"
    assert sys_.post(buyer, path + "/pay", {"payment_reference": "psp-2"}).status_code == 409
    got = sys_.get(sys_.admin(), f"/events/{ev['id']}/tickets/{t['id']}").json()
    assert (got["sold"], got["held"], got["available"]) == (2, 0, 2)


def test_cancelled_tickets_return_at_once(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=2)
    a, b = sys_.user(), sys_.user()
    first = _order(sys_, a, ev["id"], [{"ticket_id": t["id"], "quantity": 2}]).json()
    r = _order(sys_, b, ev["id"], [{"ticket_id": t["id"], "quantity": 1}])
    assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
    path = f"/events/{ev['id']}/orders/{first['id']}"
    assert sys_.post(a, path + "/cancel", {}).json()["status"] == "cancelled"
    assert _order(sys_, b, ev["id"], [{"ticket_id": t["id"], "quantity": 2}],
                  gw=sys_.gw2).status_code == 201
    assert sys_.post(a, path + "/cancel", {}).status_code == 409
    # A completed order cancelled by a role returns its tickets too
    free = _ticket(sys_, owner, ev["id"], type="free", price=None, currency=None, quantity=1)
    done = _order(sys_, a, ev["id"], [{"ticket_id": free["id"], "quantity": 1}]).json()
    assert _available(sys_, a, ev["id"], free["id"]) == 0
    r = sys_.post(owner, f"/events/{ev['id']}/orders/{done['id']}/cancel", {})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert _available(sys_, a, ev["id"], free["id"]) == 1


def test_an_order_is_all_items_or_none(sys_, owner, ev):
    plenty = _ticket(sys_, owner, ev["id"], quantity=10)
    scarce = _ticket(sys_, owner, ev["id"], quantity=1)
    buyer = sys_.user()
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": plenty["id"], "quantity": 3},
                                       {"ticket_id": scarce["id"], "quantity": 2}])
    assert r.status_code in (409, 422), r.text      # 2 > max_order 1: 422
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": plenty["id"], "quantity": 3},
                                       {"ticket_id": scarce["id"], "quantity": 1}])
    assert r.status_code == 201
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": plenty["id"], "quantity": 3},
                                       {"ticket_id": scarce["id"], "quantity": 1}])
    assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
    assert _available(sys_, buyer, ev["id"], plenty["id"]) == 7
    assert r.json()["error"]["fields"] == {"items": r.json()["error"]["fields"]["items"]}


def test_sales_windows_min_max_orders_and_donations(sys_, owner):
    past = sys_.event(owner, starts_at="2021-01-01T00:00:00Z", ends_at="2021-01-02T00:00:00Z",
                      timezone="UTC", state="published")
    closed = _ticket(sys_, owner, past["id"], sales_starts_at="2020-01-01T00:00:00Z",
                     sales_ends_at="2020-06-01T00:00:00Z")
    ev = sys_.event(owner, **EVENT)
    later = _ticket(sys_, owner, ev["id"], sales_starts_at="2099-01-01T00:00:00Z")
    buyer = sys_.user()
    for e, t in ((past, closed), (ev, later)):
        r = _order(sys_, buyer, e["id"], [{"ticket_id": t["id"], "quantity": 1}])
        assert r.status_code == 409 and r.json()["error"]["code"] == "sales_closed", r.text
    t = _ticket(sys_, owner, ev["id"], min_order=2, max_order=3)
    for qty, code in ((1, "below_min_order"), (4, "above_max_order")):
        r = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": qty}])
        assert r.status_code == 422 and r.json()["error"]["code"] == code
    gift = _ticket(sys_, owner, ev["id"], type="donation", price=None, min_price=100,
                   max_price=5000)
    for price in (None, 99, 5001):
        item = {"ticket_id": gift["id"], "quantity": 1}
        if price is not None:
            item["price"] = price
        r = _order(sys_, buyer, ev["id"], [item])
        assert r.status_code == 422 and r.json()["error"]["code"] == "donation_out_of_range"
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": gift["id"], "quantity": 2, "price": 700}])
    assert r.status_code == 201 and r.json()["total"] == 1400
    yen = _ticket(sys_, owner, ev["id"], price=3000, currency="JPY")
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": yen["id"], "quantity": 1},
                                       {"ticket_id": t["id"], "quantity": 2}])
    assert r.status_code == 422 and r.json()["error"]["code"] == "mixed_currencies"
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": yen["id"], "quantity": 1}])
    assert r.json()["total_text"] == "3000 JPY"


@pytest.mark.parametrize("items", [
    [], "all", [{"ticket_id": "nope", "quantity": 1}], [{"quantity": 1}],
    [{"ticket_id": "00000000-0000-0000-0000-000000000001", "quantity": 0}],
    [{"ticket_id": "00000000-0000-0000-0000-000000000001", "quantity": 1.5}],
    [{"ticket_id": "00000000-0000-0000-0000-000000000001", "quantity": 1}] * 2,
    [{"ticket_id": "00000000-0000-0000-0000-000000000001", "quantity": 1, "price": -1}],
])
def test_bad_order_bodies_are_400(sys_, ev, items):
    r = _order(sys_, sys_.user(), ev["id"], items)
    assert r.status_code == 400, r.text


def test_unknown_tickets_and_events_in_orders(sys_, owner, ev):
    buyer = sys_.user()
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": "00000000-0000-0000-0000-000000000001",
                                        "quantity": 1}])
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_ticket"
    other = sys_.event(owner, **EVENT)
    t = _ticket(sys_, owner, other["id"])
    r = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 1}])
    assert r.status_code == 422
    draft = sys_.event(owner, **dict(EVENT, state="draft"))
    r = _order(sys_, buyer, draft["id"], [{"ticket_id": t["id"], "quantity": 1}])
    assert r.status_code == 404


# ---------------------------------------------------------------------------
# Expiry

def test_an_expired_hold_is_never_counted_even_before_the_job_runs(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=1)
    a, b = sys_.user(), sys_.user()
    o = _order(sys_, a, ev["id"], [{"ticket_id": t["id"], "quantity": 1}]).json()
    assert _available(sys_, a, ev["id"], t["id"]) == 0
    # Its 15 minutes are over (moved back in time: the job has not run)
    psql(f"UPDATE event.orders SET expires_at = now() - interval '1 second' "
         f"WHERE id = '{o['id']}'")
    psql(f"UPDATE event.holds SET expires_at = now() - interval '1 second' "
         f"WHERE order_id = '{o['id']}'")
    assert _available(sys_, a, ev["id"], t["id"]) == 1
    path = f"/events/{ev['id']}/orders/{o['id']}"
    assert sys_.get(a, path).json()["status"] == "expired"
    assert _order(sys_, b, ev["id"], [{"ticket_id": t["id"], "quantity": 1}]).status_code == 201
    r = sys_.post(a, path + "/pay", {"payment_reference": "late"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_expired"
    got = sys_.get(owner, f"/events/{ev['id']}/tickets/{t['id']}").json()
    assert (got["sold"], got["held"], got["available"]) == (0, 1, 0)


def test_the_job_expires_pending_orders_on_the_test_clock(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=3)
    buyer = sys_.user()
    o = _order(sys_, buyer, ev["id"], [{"ticket_id": t["id"], "quantity": 3}]).json()
    assert psql(f"SELECT count(*) FROM event.jobs j, event.orders o "
                f"WHERE o.id = '{o['id']}' AND j.kind = 'event.expire_order' "
                f"AND abs(extract(epoch FROM j.run_at - o.expires_at)) < 0.002 "
                f"AND j.done_at IS NULL") == "1"
    sys_.run_jobs(AFTER_EVERY_HOLD)
    assert psql(f"SELECT status FROM event.orders WHERE id = '{o['id']}'") == "expired"
    assert psql(f"SELECT count(*) FROM event.holds WHERE order_id = '{o['id']}'") == "0"
    assert _available(sys_, buyer, ev["id"], t["id"]) == 3
    r = sys_.post(buyer, f"/events/{ev['id']}/orders/{o['id']}/cancel", {})
    assert r.status_code == 409


# ---------------------------------------------------------------------------
# Keys, owners, lists

def test_the_same_idempotency_key_is_one_order(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=5)
    buyer = sys_.user()
    key = {"Idempotency-Key": unique("k")}
    items = [{"ticket_id": t["id"], "quantity": 2}]
    one = _order(sys_, buyer, ev["id"], items, headers=key)
    two = _order(sys_, buyer, ev["id"], items, headers=key, gw=sys_.gw2)
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] == two.json()["id"]
    assert _available(sys_, buyer, ev["id"], t["id"]) == 3


def test_another_users_order_is_404_and_lists_show_ones_own(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=5)
    a, b = sys_.user(), sys_.user()
    o = _order(sys_, a, ev["id"], [{"ticket_id": t["id"], "quantity": 1}]).json()
    path = f"/events/{ev['id']}/orders/{o['id']}"
    assert sys_.get(b, path).status_code == 404
    assert sys_.post(b, path + "/pay", {"payment_reference": "x"}).status_code == 404
    assert sys_.post(b, path + "/cancel", {}).status_code == 404
    assert sys_.get(a, path).json()["id"] == o["id"]
    assert sys_.get(owner, path).json()["buyer_id"] == a.id
    assert [x["id"] for x in sys_.get(a, "/me/orders").json()["items"]] == [o["id"]]
    assert sys_.get(b, "/me/orders").json()["items"] == []
    assert sys_.get(b, f"/events/{ev['id']}/orders").status_code == 403
    ids = [x["id"] for x in sys_.get(owner, f"/events/{ev['id']}/orders?limit=500"
                                      ).json()["items"]]
    assert o["id"] in ids
    assert sys_.get(a, f"/events/{ev['id']}/orders/not-a-uuid").status_code == 404


# ---------------------------------------------------------------------------
# Mails

def _soon():
    """A few seconds from now by the real clock: every job just enqueued is
    due, no hold's expiry (15 minutes) is."""
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_completed_order_is_confirmed_by_mail_to_a_verified_buyer(sys_, owner, ev):
    t = _ticket(sys_, owner, ev["id"], quantity=5)
    root = sys_.super_admin()           # made by the operator: verified
    unverified = sys_.user()
    o = _order(sys_, root, ev["id"], [{"ticket_id": t["id"], "quantity": 2}]).json()
    assert sys_.post(root, f"/events/{ev['id']}/orders/{o['id']}/pay",
                     {"payment_reference": "psp-9"}).status_code == 200
    _order(sys_, unverified, ev["id"], [{"ticket_id": t["id"], "quantity": 1}])
    sys_.run_jobs(_soon())

    def mails():
        return [m.parsed() for m in sys_.sink.messages(rcpt=root.email)
                if m.parsed()["Subject"] == f"Your order for {ev['name']}"]
    wait_for(lambda: mails(), "the confirmation", timeout=30)
    mails = mails()
    assert len(mails) == 1
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert "2 ticket(s), 25.00 EUR" in text
    assert f"http://tally.test/events/{ev['id']}/orders/{o['id']}" in text
    assert sys_.sink.messages(rcpt=unverified.email) == []
    # The pending order of the unverified buyer is not confirmed either way
    assert psql("SELECT count(*) FROM event.jobs WHERE kind = 'event.mail_order' "
                "AND done_at IS NULL AND run_at <= now()") == "0"


# ---------------------------------------------------------------------------
# The permission table for tickets and orders, against the real service

ROLES = ["organizer", "coorganizer", "track_organizer", "moderator"]


def _may(role, op):
    """API.md's defaults for tickets and orders (the same for both)."""
    if role in ("admin", "organizer"):
        return True
    if role == "coorganizer":
        return op != "delete"
    return op == "read"


@pytest.mark.parametrize("published", [False, True])
def test_each_role_on_tickets_and_orders_gets_what_the_table_says(sys_, published):
    owner = sys_.user()
    ev = sys_.event(owner, **dict(EVENT, state="published" if published else "draft"))
    people = {role: sys_.user() for role in ROLES}
    for role in ROLES:
        sys_.grant(owner, ev["id"], people[role], role)
    people[None] = sys_.user()
    people["admin"] = sys_.admin()
    base = f"/events/{ev['id']}"
    failures = []

    def check(who, what, method, path, body, want):
        r = sys_.request(method, people[who], path, json=body)
        if r.status_code != want:
            failures.append((who, what, want, r.status_code, r.text[:80]))
        return r

    for who in people:
        hidden = 404 if not published and who is None else None
        # tickets: create, read, update, delete
        t = _ticket(sys_, owner, ev["id"], type="free", price=None, currency=None)
        body = dict(ON_SALE, name=unique("T"), type="free", quantity=3)
        for op, method, path, json, ok in (
                ("create", "POST", f"{base}/tickets", body, 201),
                ("read", "GET", f"{base}/tickets/{t['id']}", None, 200),
                ("update", "PATCH", f"{base}/tickets/{t['id']}", {"quantity": 20}, 200),
                ("delete", "DELETE", f"{base}/tickets/{t['id']}", None, 204)):
            want = hidden or (ok if _may(who, op) or (who is None and op == "read") else 403)
            check(who, ("tickets", op), method, path, json, want)
        # orders: create (whoever reads the tickets), read (the event's
        # list), update (cancel another buyer's order)
        t = _ticket(sys_, owner, ev["id"], type="free", price=None, currency=None)
        check(who, ("orders", "create"), "POST", f"{base}/orders",
              {"items": [{"ticket_id": t["id"], "quantity": 1}]}, hidden or 201)
        check(who, ("orders", "read"), "GET", f"{base}/orders", None,
              hidden or (200 if _may(who, "read") and who is not None else 403))
        other = _order(sys_, owner, ev["id"], [{"ticket_id": t["id"], "quantity": 1}]).json()
        want = 404 if who is None else (200 if _may(who, "update") else 403)
        check(who, ("orders", "update"), "POST", f"{base}/orders/{other['id']}/cancel", {}, want)
    assert failures == []
