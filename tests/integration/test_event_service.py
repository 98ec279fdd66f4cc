"""The event service end to end (API.md "Events and tickets"): events
created, read, changed and deleted under the caller's role; drafts
invisible to anyone without a role; the public list of published events by
start, newest first, in keyset pages with from/to; the staff list; the
permission table read by staff, changed by a super admin only, and applied
from the next request on both instances. Two gateways, two event
instances."""

import uuid

import pytest

from tally import unique


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


def _both(sys_, method, user, path, json=None):
    """The same request through each gateway (each may reach either instance)."""
    return [sys_.request(method, user, path, json=json, gw=gw) for gw in (sys_.gw, sys_.gw2)]


# ---------------------------------------------------------------------------
# Events

def test_create_makes_a_draft_the_creator_reads_from_either_gateway(sys_):
    u = sys_.user()
    r = sys_.post(u, "/events", {"name": "PyCon", "description": "talks\nand more",
                                 "starts_at": "2030-06-01T09:00:00+02:00",
                                 "ends_at": "2030-06-03T18:00:00Z",
                                 "timezone": "Europe/Paris", "location": "Lyon"})
    assert r.status_code == 201, r.text
    ev = r.json()
    assert set(ev) == {"id", "name", "description", "starts_at", "ends_at", "timezone",
                       "location", "state", "created_at", "updated_at", "background_url"}
    assert ev["background_url"] is None
    assert ev["state"] == "draft" and ev["starts_at"] == "2030-06-01T07:00:00Z"
    assert ev["description"] == "talks\nand more" and ev["timezone"] == "Europe/Paris"
    assert r.headers["Location"] == f"/api/v1/events/{ev['id']}"
    for got in _both(sys_, "GET", u, f"/events/{ev['id']}"):
        assert got.status_code == 200 and got.json() == ev


def test_a_draft_is_404_to_anyone_without_a_role_and_a_published_event_readable(sys_):
    owner, other = sys_.user(), sys_.user()
    ev = sys_.event(owner)
    path = f"/events/{ev['id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "mine"}), ("DELETE", None)):
        r = sys_.request(method, other, path, json=body)
        assert r.status_code == 404, (method, r.text)
    assert sys_.get(owner, path).json()["name"] == ev["name"]
    assert sys_.patch(owner, path, {"state": "published"}).status_code == 200
    assert sys_.get(other, path).status_code == 200
    # Seen, but not theirs to change
    assert sys_.patch(other, path, {"name": "mine"}).status_code == 403
    assert sys_.delete(other, path).status_code == 403
    assert sys_.get(other, path).json()["name"] == ev["name"]


def test_staff_read_and_change_any_draft(sys_):
    owner = sys_.user()
    ev = sys_.event(owner)
    admin = sys_.admin()
    assert sys_.get(admin, f"/events/{ev['id']}").status_code == 200
    r = sys_.patch(admin, f"/events/{ev['id']}", {"location": "Paris"})
    assert r.status_code == 200 and r.json()["location"] == "Paris"


def test_update_changes_only_what_is_given_and_delete_removes(sys_):
    u = sys_.user()
    ev = sys_.event(u, description="first")
    path = f"/events/{ev['id']}"
    r = sys_.patch(u, path, {"name": "Renamed", "ends_at": "2030-06-04T18:00:00Z"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["name"] == "Renamed" and got["ends_at"] == "2030-06-04T18:00:00Z"
    assert got["description"] == "first" and got["starts_at"] == ev["starts_at"]
    assert sys_.delete(u, path).status_code == 204
    assert sys_.get(u, path, gw=sys_.gw2).status_code == 404
    assert sys_.delete(u, path).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC"}, "name"),
    ({"name": "x", "ends_at": "2030-06-02T09:00:00Z", "timezone": "UTC"}, "starts_at"),
    ({"name": "x", "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z"},
     "timezone"),
    ({"name": "x", "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"name": "x", "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "../../etc/passwd"}, "timezone"),
    ({"name": "x", "starts_at": "2029-02-03 nine", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC"}, "starts_at"),
    ({"name": "x", "starts_at": "2029-02-03T04:05:06", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC"}, "starts_at"),
    ({"name": "x", "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC", "state": "cancelled"}, "state"),
    ({"name": "", "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC"}, "name"),
    ({"name": "a\x01b", "starts_at": "2029-02-03T04:05:06Z",
      "ends_at": "2030-06-02T09:00:00Z", "timezone": "UTC"}, "name"),
    ({"name": 5, "starts_at": "2029-02-03T04:05:06Z", "ends_at": "2030-06-02T09:00:00Z",
      "timezone": "UTC"}, "name"),
])
def test_create_with_bad_fields_is_400_naming_the_field(sys_, body, field):
    u = sys_.user()
    r = sys_.post(u, "/events", body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"].get("fields", {}), r.text
    assert sys_.get(sys_.admin(), "/admin/events?from=2029-02-03T04:05:06Z&to=2029-02-03T04:05:06Z"
                    ).json()["items"] == []


def test_an_event_must_start_before_it_ends_on_create_and_on_update(sys_):
    u = sys_.user()
    for start, end in (("2030-06-02T09:00:00Z", "2030-06-02T09:00:00Z"),
                       ("2030-06-03T09:00:00Z", "2030-06-02T09:00:00Z"),
                       ("2030-01-01T00:00:00Z", "2031-06-01T00:00:00Z")):
        r = sys_.post(u, "/events", {"name": "x", "starts_at": start, "ends_at": end,
                                     "timezone": "UTC"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"] == {"ends_at": r.json()["error"]["fields"]["ends_at"]}
    ev = sys_.event(u)
    r = sys_.patch(u, f"/events/{ev['id']}", {"starts_at": "2030-06-05T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert sys_.get(u, f"/events/{ev['id']}").json() == ev


def test_bad_ids_and_bodies_are_clear_errors(sys_):
    u = sys_.user()
    assert sys_.get(u, "/events/not-a-uuid").status_code == 404
    assert sys_.get(u, "/events/00000000-0000-0000-0000-000000000000").status_code == 404
    ev = sys_.event(u)
    r = sys_.request("PATCH", u, f"/events/{ev['id']}", data="[1, 2]",
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = sys_.patch(u, f"/events/{ev['id']}", {"timezone": "Nowhere/Land"})
    assert r.status_code == 400 and "timezone" in r.json()["error"]["fields"]
    assert sys_.get(u, f"/events/{ev['id']}").json() == ev
    assert sys_.get(None, f"/events/{ev['id']}").status_code == 404     # a draft, to anyone


# ---------------------------------------------------------------------------
# Lists

def _window(year):
    return f"from={year}-01-01T00:00:00Z&to={year}-12-31T23:59:59Z"


def test_the_public_list_shows_published_events_newest_first_in_pages(sys_):
    u = sys_.user()
    year = 2100 + uuid.uuid4().int % 7000      # a window no other run shares
    made = []
    for day in range(1, 8):
        state = "draft" if day == 4 else "published"
        made.append(sys_.event(u, name=f"day {day}", state=state,
                               starts_at=f"{year}-03-{day:02d}T10:00:00Z",
                               ends_at=f"{year}-03-{day:02d}T18:00:00Z"))
    want = [e["id"] for e in reversed(made) if e["state"] == "published"]
    seen, cursor = [], None
    while True:
        q = f"/events?{_window(year)}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = sys_.get(None, q, gw=sys_.gw2 if len(seen) % 4 else sys_.gw)   # anonymous
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == want
    # from/to on starts_at
    r = sys_.get(u, f"/events?from={year}-03-02T00:00:00Z&to={year}-03-03T23:00:00Z")
    assert [e["name"] for e in r.json()["items"]] == ["day 3", "day 2"]
    assert sys_.get(u, "/events?from=yesterday").status_code == 400
    assert sys_.get(u, f"/events?from={year}-03-05T00:00:00Z&to={year}-03-01T00:00:00Z"
                    ).status_code == 400
    assert sys_.get(u, "/events?cursor=nope").status_code == 400
    assert sys_.get(u, "/events?limit=501").status_code == 400


def test_staff_list_every_event_and_nobody_else_may(sys_):
    u = sys_.user()
    year = 2100 + uuid.uuid4().int % 7000
    draft = sys_.event(u, starts_at=f"{year}-05-01T10:00:00Z", ends_at=f"{year}-05-02T10:00:00Z")
    pub = sys_.event(u, state="published", starts_at=f"{year}-05-03T10:00:00Z",
                     ends_at=f"{year}-05-04T10:00:00Z")
    assert sys_.get(u, f"/admin/events?{_window(year)}").status_code == 403
    for staff in (sys_.admin(), sys_.super_admin()):
        ids = [e["id"] for e in sys_.get(staff, f"/admin/events?{_window(year)}").json()["items"]]
        assert draft["id"] in ids and pub["id"] in ids
        assert ids.index(pub["id"]) < ids.index(draft["id"])
    drafts = sys_.get(sys_.admin(), f"/admin/events?state=draft&{_window(year)}").json()["items"]
    assert draft["id"] in [e["id"] for e in drafts] and all(e["state"] == "draft" for e in drafts)
    assert sys_.get(sys_.admin(), "/admin/events?state=gone").status_code == 400


# ---------------------------------------------------------------------------
# The permission table

ROLES = ["organizer", "coorganizer", "track_organizer", "moderator"]
SERVICES = ["event", "tickets", "orders", "tracks", "sessions", "speakers", "sponsors",
            "microlocations"]


def _default(role, service):
    full = role == "organizer"
    writes = role in ("organizer", "coorganizer") or (role == "track_organizer"
                                                      and service == "tracks")
    return {"create": writes, "read": True, "update": writes,
            "delete": full or (role == "track_organizer" and service == "tracks")}


def test_staff_read_the_default_permission_table_and_users_may_not(sys_):
    r = sys_.get(sys_.admin(), "/admin/permissions")
    assert r.status_code == 200, r.text
    rows = r.json()["permissions"]
    assert [(p["role"], p["service"]) for p in rows] == [(r_, s) for r_ in ROLES for s in SERVICES]
    for p in rows:
        assert {k: p[k] for k in ("create", "read", "update", "delete")} \
            == _default(p["role"], p["service"]), p
    assert sys_.get(sys_.user(), "/admin/permissions").status_code == 403


def test_only_a_super_admin_changes_the_table_and_bad_rows_change_nothing(sys_):
    before = sys_.get(sys_.admin(), "/admin/permissions").json()
    row = {"role": "moderator", "service": "tracks", "create": True, "read": True,
           "update": False, "delete": False}
    assert sys_.put(sys_.admin(), "/admin/permissions", {"permissions": [row]}).status_code == 403
    assert sys_.put(sys_.user(), "/admin/permissions", {"permissions": [row]}).status_code == 403
    root = sys_.super_admin()
    for bad in ([], [dict(row, role="owner")], [dict(row, service="events")],
                [dict(row, delete="yes")], [row, {k: v for k, v in row.items() if k != "read"}],
                "all", [row] * 33):
        r = sys_.put(root, "/admin/permissions", {"permissions": bad})
        assert r.status_code == 400, (bad, r.text)
    assert sys_.get(root, "/admin/permissions").json() == before
    try:
        r = sys_.put(root, "/admin/permissions", {"permissions": [row]})
        assert r.status_code == 200, r.text
        got = [p for p in r.json()["permissions"]
               if p["role"] == "moderator" and p["service"] == "tracks"]
        assert got == [row]
    finally:
        sys_.put(root, "/admin/permissions",
                 {"permissions": [dict(row, create=False)]})


def test_a_permission_change_applies_from_the_next_request_on_every_instance(sys_):
    u = sys_.user()
    ev = sys_.event(u)
    root = sys_.super_admin()
    off = {"role": "organizer", "service": "event", "create": True, "read": True,
           "update": False, "delete": True}
    try:
        assert sys_.put(root, "/admin/permissions", {"permissions": [off]}).status_code == 200
        for _ in range(3):      # each gateway, either instance
            for r in _both(sys_, "PATCH", u, f"/events/{ev['id']}", {"name": "no"}):
                assert r.status_code == 403, r.text
    finally:
        r = sys_.put(root, "/admin/permissions", {"permissions": [dict(off, update=True)]})
        assert r.status_code == 200
    for r in _both(sys_, "PATCH", u, f"/events/{ev['id']}", {"name": "yes"}):
        assert r.status_code == 200, r.text
