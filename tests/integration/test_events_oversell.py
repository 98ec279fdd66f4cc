"""Never oversell (API.md "Events and tickets", issue 11): 100 tickets, two
event instances behind two gateways, 200 concurrent orders of one ticket
each → exactly 100 held, every answer 201 or 409 sold_out, no 5xx, and the
counts add up once the holds expire; then a round of mixed quantities with
cancellations in between. The buyers are 40 users placing 5 orders each at
once (registering 200 accounts would spend the test on password hashing);
each request is its own order, as a buyer's would be."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tally import psql, unique

EVENT_ENV = {"TALLY_PAYMENTS": "manual", "TALLY_RUN_JOBS": "0"}
EVENT = {"starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z",
         "timezone": "Europe/Paris", "state": "published"}
ON_SALE = {"sales_starts_at": "2020-01-01T00:00:00Z", "sales_ends_at": "2099-06-01T00:00:00Z"}
AFTER_EVERY_HOLD = "2099-12-31T00:00:00Z"


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


@pytest.fixture(scope="module")
def buyers(sys_):
    users = [sys_.user() for _ in range(40)]
    for u in users:        # each gateway knows each session before the rush
        for gw in (sys_.gw, sys_.gw2):
            assert sys_.get(u, "/me/orders", gw=gw).status_code == 200
    return users


def _ticket(sys_, user, event_id, **fields):
    body = dict(ON_SALE, name=unique("T"), quantity=100)
    body.update(fields)
    r = sys_.post(user, f"/events/{event_id}/tickets", body)
    assert r.status_code == 201, r.text
    return r.json()


def _state(sys_, user, event_id, ticket_id):
    t = sys_.get(user, f"/events/{event_id}/tickets/{ticket_id}").json()
    return t["sold"], t["held"], t["available"]


def test_200_concurrent_buyers_of_100_tickets_get_exactly_100(sys_, buyers):
    owner = sys_.user()
    ev = sys_.event(owner, **EVENT)
    t = _ticket(sys_, owner, ev["id"], type="paid", price=500, currency="EUR", max_order=1)
    jobs = [(buyers[i % len(buyers)], (sys_.gw, sys_.gw2)[i % 2]) for i in range(200)]

    def buy(job):
        user, gw = job
        r = sys_.post(user, f"/events/{ev['id']}/orders",
                      {"items": [{"ticket_id": t["id"], "quantity": 1}]}, gw=gw, timeout=120)
        return r.status_code, (r.json().get("error") or {}).get("code"), r.json().get("id")

    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(buy, jobs))
    statuses = [a[0] for a in answers]
    assert all(s in (201, 409) for s in statuses), sorted(set(statuses))
    assert statuses.count(201) == 100
    assert {a[1] for a in answers if a[0] == 409} == {"sold_out"}
    assert len({a[2] for a in answers if a[0] == 201}) == 100
    assert _state(sys_, owner, ev["id"], t["id"]) == (0, 100, 0)
    assert psql(f"SELECT sum(quantity) FROM event.holds WHERE ticket_id = '{t['id']}'") == "100"
    # The holds expire: every ticket is back, and nothing was ever sold twice
    sys_.run_jobs(AFTER_EVERY_HOLD)
    assert _state(sys_, owner, ev["id"], t["id"]) == (0, 0, 100)
    assert psql(f"SELECT count(*) FROM event.orders WHERE event_id = '{ev['id']}' "
                f"AND status = 'expired'") == "100"


def test_mixed_quantities_with_cancellations_never_oversell(sys_, buyers):
    owner = sys_.user()
    ev = sys_.event(owner, **EVENT)
    t = _ticket(sys_, owner, ev["id"], type="free", max_order=4)
    rng = random.Random(11)
    jobs = [(buyers[i % len(buyers)], (sys_.gw, sys_.gw2)[i % 2], rng.randint(1, 4),
             i % 3 == 0) for i in range(200)]

    def buy(job):
        user, gw, qty, cancel = job
        r = sys_.post(user, f"/events/{ev['id']}/orders",
                      {"items": [{"ticket_id": t["id"], "quantity": qty}]}, gw=gw, timeout=120)
        out = [("order", r.status_code, (r.json().get("error") or {}).get("code"))]
        if r.status_code == 201 and cancel:
            c = sys_.post(user, f"/events/{ev['id']}/orders/{r.json()['id']}/cancel", {},
                          gw=gw, timeout=120)
            out.append(("cancel", c.status_code, None))
        return out

    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = [a for result in pool.map(buy, jobs) for a in result]
    orders = [a for a in answers if a[0] == "order"]
    assert all(a[1] in (201, 409) for a in orders), sorted({a[1] for a in orders})
    assert {a[2] for a in orders if a[1] == 409} <= {"sold_out"}
    assert all(a[1] == 200 for a in answers if a[0] == "cancel")
    assert any(a[0] == "cancel" for a in answers)
    sold, held, available = _state(sys_, owner, ev["id"], t["id"])
    completed = psql(f"SELECT coalesce(sum(i.quantity), 0) FROM event.order_items i "
                     f"JOIN event.orders o ON o.id = i.order_id "
                     f"WHERE i.ticket_id = '{t['id']}' AND o.status = 'completed'")
    assert sold == int(completed) <= 100 and held == 0 and available == 100 - sold
    # What the cancellations gave back sells, to exactly 100 and no further
    filler = buyers[0]
    while True:
        r = sys_.post(filler, f"/events/{ev['id']}/orders",
                      {"items": [{"ticket_id": t["id"], "quantity": 1}]})
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "sold_out"
            break
        assert r.status_code == 201, r.text
    assert _state(sys_, owner, ev["id"], t["id"]) == (100, 0, 0)
