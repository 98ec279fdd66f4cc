"""Roles on an event (API.md "Events and tickets"): invites by email with a
7-day single-use code accepted only by the user it was mailed to, a new
invite replacing the pending one, the list of roles, removing roles without
ever leaving an event without an organizer, and the permission table
checked against the real service: each role × service × operation gives
the answer the table says. Two gateways, two event instances."""

import pytest

from tally import psql, unique, wait_for

ROLES = ["organizer", "coorganizer", "track_organizer", "moderator"]


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


def _roles(sys_, user, event_id):
    r = sys_.get(user, f"/events/{event_id}/roles")
    assert r.status_code == 200, r.text
    return r.json()["items"]


# ---------------------------------------------------------------------------
# Invites

def test_an_invite_is_mailed_and_accepted_once_by_its_addressee(sys_):
    owner, guest = sys_.user(), sys_.user()
    ev = sys_.event(owner)
    code = sys_.invite(owner, ev["id"], guest.email.upper(), "coorganizer")
    pending = [r for r in _roles(sys_, owner, ev["id"]) if r["status"] == "pending"]
    assert [(r["email"], r["role"], r["user_id"]) for r in pending] \
        == [(guest.email, "coorganizer", None)]
    # The code is in the mail only, never in the schema
    assert code not in psql(f"SELECT row_to_json(i)::text FROM event.invites i "
                            f"WHERE event_id = '{ev['id']}'")
    r = sys_.post(guest, f"/events/{ev['id']}/roles/accept", {"code": code}, gw=sys_.gw2)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "coorganizer" and r.json()["user_id"] == guest.id
    roles = _roles(sys_, guest, ev["id"])
    assert sorted((r["user_id"], r["role"], r["status"]) for r in roles) == sorted(
        [(owner.id, "organizer", "accepted"), (guest.id, "coorganizer", "accepted")])
    assert [r["email"] for r in roles if r["user_id"] == guest.id] == [guest.email]
    assert [r["email"] for r in roles if r["user_id"] == owner.id] == [owner.email]
    # The guest now sees the draft; the code is spent
    assert sys_.get(guest, f"/events/{ev['id']}").status_code == 200
    r = sys_.post(guest, f"/events/{ev['id']}/roles/accept", {"code": code})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"


def test_another_users_invite_is_403_and_stays_usable(sys_):
    owner, guest, thief = sys_.user(), sys_.user(), sys_.user()
    ev = sys_.event(owner)
    code = sys_.invite(owner, ev["id"], guest.email, "moderator")
    r = sys_.post(thief, f"/events/{ev['id']}/roles/accept", {"code": code})
    assert r.status_code == 403, r.text
    assert sys_.get(thief, f"/events/{ev['id']}").status_code == 404
    r = sys_.post(guest, f"/events/{ev['id']}/roles/accept", {"code": code})
    assert r.status_code == 200, r.text


def test_a_new_invite_for_the_same_email_and_role_replaces_the_pending_one(sys_):
    owner, guest = sys_.user(), sys_.user()
    ev = sys_.event(owner)
    first = sys_.invite(owner, ev["id"], guest.email, "moderator")
    second = sys_.invite(owner, ev["id"], guest.email, "moderator")
    assert first != second
    pending = [r for r in _roles(sys_, owner, ev["id"]) if r["status"] == "pending"]
    assert len(pending) == 1
    assert sys_.post(guest, f"/events/{ev['id']}/roles/accept",
                     {"code": first}).status_code == 400
    assert sys_.post(guest, f"/events/{ev['id']}/roles/accept",
                     {"code": second}).status_code == 200


def test_bad_codes_and_expired_invites_are_400(sys_):
    owner, guest = sys_.user(), sys_.user()
    ev = sys_.event(owner)
    code = sys_.invite(owner, ev["id"], guest.email, "moderator")
    path = f"/events/{ev['id']}/roles/accept"
    for bad in ("", "short", code[:-1] + ("A" if code[-1] != "A" else "B"), code + "x"):
        r = sys_.post(guest, path, {"code": bad})
        assert r.status_code == 400, (bad, r.text)
    assert sys_.post(guest, path, {}).status_code == 400
    # The right code on another event
    other = sys_.event(owner)
    assert sys_.post(guest, f"/events/{other['id']}/roles/accept",
                     {"code": code}).status_code == 400
    psql(f"UPDATE event.invites SET expires_at = now() - interval '1 second' "
         f"WHERE event_id = '{ev['id']}'")
    r = sys_.post(guest, path, {"code": code})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"


def test_inviting_needs_update_on_event_and_a_valid_email_and_role(sys_):
    owner, mod, stranger = sys_.user(), sys_.user(), sys_.user()
    ev = sys_.event(owner)
    sys_.grant(owner, ev["id"], mod, "moderator")
    body = {"email": f"{unique('x')}@example.com", "role": "moderator"}
    assert sys_.post(mod, f"/events/{ev['id']}/roles", body).status_code == 403
    assert sys_.post(stranger, f"/events/{ev['id']}/roles", body).status_code == 404
    for bad, field in (({"email": "nope", "role": "moderator"}, "email"),
                       ({"email": "a@example.com", "role": "owner"}, "role"),
                       ({"email": "a@example.com"}, "role")):
        r = sys_.post(owner, f"/events/{ev['id']}/roles", bad)
        assert r.status_code == 400 and field in r.json()["error"]["fields"], r.text
    assert len(_roles(sys_, owner, ev["id"])) == 2


def test_the_roles_list_is_for_the_events_roles_and_staff(sys_):
    owner, stranger = sys_.user(), sys_.user()
    ev = sys_.event(owner, state="published")
    assert sys_.get(stranger, f"/events/{ev['id']}/roles").status_code == 403
    assert len(_roles(sys_, sys_.admin(), ev["id"])) == 1
    draft = sys_.event(owner)
    assert sys_.get(stranger, f"/events/{draft['id']}/roles").status_code == 404


# ---------------------------------------------------------------------------
# Removing roles

def test_organizers_remove_roles_but_never_the_last_organizer(sys_):
    owner, co, second = sys_.user(), sys_.user(), sys_.user()
    ev = sys_.event(owner)
    sys_.grant(owner, ev["id"], co, "coorganizer")
    # A coorganizer may not remove anyone
    assert sys_.delete(co, f"/events/{ev['id']}/roles/{owner.id}").status_code == 403
    # The only organizer stays
    r = sys_.delete(owner, f"/events/{ev['id']}/roles/{owner.id}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_organizer"
    # ... even by accepting a lesser role
    code = sys_.invite(owner, ev["id"], owner.email, "moderator")
    r = sys_.post(owner, f"/events/{ev['id']}/roles/accept", {"code": code})
    assert r.status_code == 409, r.text
    sys_.grant(owner, ev["id"], second, "organizer")
    assert sys_.delete(second, f"/events/{ev['id']}/roles/{owner.id}").status_code == 204
    assert sys_.get(owner, f"/events/{ev['id']}").status_code == 404
    assert sys_.delete(second, f"/events/{ev['id']}/roles/{co.id}", gw=sys_.gw2).status_code == 204
    assert sys_.delete(second, f"/events/{ev['id']}/roles/{co.id}").status_code == 404
    assert sys_.delete(second, f"/events/{ev['id']}/roles/{second.id}").status_code == 409
    assert [(r["user_id"], r["role"], r["status"]) for r in _roles(sys_, second, ev["id"])] \
        == [(second.id, "organizer", "accepted"), (None, "moderator", "pending")]


# ---------------------------------------------------------------------------
# The permission table, against the real service

def _event_requests(ev_id):
    """Each operation on service `event` as one request."""
    return {"read": ("GET", f"/events/{ev_id}", None),
            "update": ("PATCH", f"/events/{ev_id}", {"location": "Elsewhere"}),
            "delete": ("DELETE", f"/events/{ev_id}", None)}


def _expected(role, op, published):
    """API.md's defaults for service `event`."""
    if role in ("admin", "super_admin"):
        return {"read": 200, "update": 200, "delete": 204}[op]
    if role is None:
        if not published:
            return 404
        return 200 if op == "read" else 403
    allowed = {"organizer": {"read", "update", "delete"},
               "coorganizer": {"read", "update"},
               "track_organizer": {"read"}, "moderator": {"read"}}[role]
    if op in allowed:
        return {"read": 200, "update": 200, "delete": 204}[op]
    return 403


@pytest.mark.parametrize("published", [False, True])
def test_each_role_on_the_event_service_gets_what_the_table_says(sys_, published):
    owner = sys_.user()
    people = {role: sys_.user() for role in ROLES if role != "organizer"}
    people["organizer"] = sys_.user()
    people[None] = sys_.user()
    people["admin"] = sys_.admin()
    people["super_admin"] = sys_.super_admin()
    failures = []
    for op in ("read", "update", "delete"):
        for who, user in people.items():
            # A fresh event for each (role, operation): a delete ends it
            ev = sys_.event(owner, state="published" if published else "draft")
            if who in ROLES:
                sys_.grant(owner, ev["id"], user, who)
            method, path, body = _event_requests(ev["id"])[op]
            r = sys_.request(method, user, path, json=body)
            want = _expected(who, op, published)
            if r.status_code != want:
                failures.append((who, op, want, r.status_code, r.text[:100]))
    assert failures == []


# ---------------------------------------------------------------------------
# A user who deletes their account

def _delete_account(sys_, user):
    r = sys_.request("DELETE", user, "/me", json={"password": "correct horse battery"})
    assert r.status_code == 200, r.text


def test_a_deleted_users_roles_go_and_their_events_pass_on_or_go_back_to_draft(sys_):
    owner, mod, co, second_co = sys_.user(), sys_.user(), sys_.user(), sys_.user()
    shared = sys_.event(owner, state="published")
    sys_.grant(owner, shared["id"], mod, "moderator")
    sys_.grant(owner, shared["id"], co, "coorganizer")
    sys_.grant(owner, shared["id"], second_co, "coorganizer")
    alone = sys_.event(owner, state="published")
    co_led = sys_.event(owner, state="published")
    sys_.grant(owner, co_led["id"], co, "organizer")
    _delete_account(sys_, owner)
    wait_for(lambda: psql(f"SELECT count(*) FROM event.roles WHERE user_id = '{owner.id}'")
             == "0", "the event service to forget the user", timeout=60)
    # The senior role (the first coorganizer) organizes now; the others stay
    roles = {r["user_id"]: r["role"] for r in _roles(sys_, co, shared["id"])}
    assert roles == {co.id: "organizer", second_co.id: "coorganizer", mod.id: "moderator"}
    assert sys_.get(co, f"/events/{shared['id']}").json()["state"] == "published"
    # Nobody left: back to draft, seen by staff only
    assert sys_.get(sys_.admin(), f"/events/{alone['id']}").json()["state"] == "draft"
    assert sys_.get(mod, f"/events/{alone['id']}").status_code == 404
    # Another organizer was there: nothing to hand over
    assert {r["user_id"]: r["role"] for r in _roles(sys_, co, co_led["id"])} \
        == {co.id: "organizer"}
    assert psql(f"SELECT count(*) FROM event.events WHERE creator = '{owner.id}'") == "0"


def test_a_deleted_buyers_orders_stay_without_them(sys_):
    owner, buyer = sys_.user(), sys_.user()
    ev = sys_.event(owner, state="published", starts_at="2099-06-01T09:00:00Z",
                    ends_at="2099-06-02T09:00:00Z")
    r = sys_.post(owner, f"/events/{ev['id']}/tickets",
                  {"name": "Free", "type": "free", "quantity": 5,
                   "sales_starts_at": "2020-01-01T00:00:00Z",
                   "sales_ends_at": "2099-06-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    order = sys_.post(buyer, f"/events/{ev['id']}/orders",
                      {"items": [{"ticket_id": r.json()["id"], "quantity": 2}]}).json()
    _delete_account(sys_, buyer)
    wait_for(lambda: psql(f"SELECT buyer IS NULL FROM event.orders WHERE id = '{order['id']}'")
             == "t", "the order to lose its buyer", timeout=60)
    got = sys_.get(owner, f"/events/{ev['id']}/orders/{order['id']}").json()
    assert got["buyer_id"] is None and got["status"] == "completed"
    assert sys_.get(owner, f"/events/{ev['id']}/tickets/{r.json()['id']}"
                    ).json()["sold"] == 2


def test_invites_used_or_expired_a_month_ago_are_purged(sys_):
    owner, old, fresh = sys_.user(), sys_.user(), sys_.user()
    ev = sys_.event(owner)
    sys_.grant(owner, ev["id"], old, "moderator")
    sys_.grant(owner, ev["id"], fresh, "moderator")
    # A day of its own (each daily purge runs once): one invite used 31
    # days before it, the other the day before
    day = f"20{30 + int(unique('')[-6:]) % 60}-{1 + int(unique('')[-3:]) % 12:02d}-15"
    for user, days in ((old, 31), (fresh, 1)):
        psql(f"UPDATE event.invites SET used_at = '{day}T00:00:00Z'::timestamptz "
             f"- interval '{days} days' WHERE event_id = '{ev['id']}' "
             f"AND email = '{user.email}'")
    sys_.run_jobs(f"{day}T12:00:00Z")
    left = psql(f"SELECT email FROM event.invites WHERE event_id = '{ev['id']}'")
    assert left.split() == [fresh.email]
    # The roles themselves stay
    assert len(_roles(sys_, owner, ev["id"])) == 3
