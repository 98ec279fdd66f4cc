"""The programme of an event (API.md "Events and tickets"): tracks,
sessions, speakers, sponsors and microlocations with their fields; a
session inside the event's times and with a track, microlocation and
speakers of the same event (422 otherwise); a speaker's email shown to
roles only; upload ids checked as UUIDs (what the upload service holds
for them is tested with it, in test_uploads.py); each operation checked
against the role's permission for that service, and published events'
parts readable by anyone logged in. Two gateways, two event instances."""

import pytest

from tally import unique

EVENT = {"starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z",
         "timezone": "Europe/Paris", "state": "published"}
SPEAKER = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture(scope="module")
def sys_(event_system):
    return event_system


@pytest.fixture(scope="module")
def owner(sys_):
    return sys_.user()


@pytest.fixture(scope="module")
def ev(sys_, owner):
    return sys_.event(owner, **EVENT)


def _make(sys_, user, event_id, kind, **body):
    r = sys_.post(user, f"/events/{event_id}/{kind}", body)
    assert r.status_code == 201, r.text
    return r.json()


def _session(**fields):
    body = {"title": unique("S"), "starts_at": "2099-06-01T10:00:00Z",
            "ends_at": "2099-06-01T11:00:00Z"}
    body.update(fields)
    return body


def test_each_part_keeps_its_fields(sys_, owner, ev):
    e = ev["id"]
    track = _make(sys_, owner, e, "tracks", name="Web", description="all things web",
                  color="#1d4ed8")
    assert (track["name"], track["description"], track["color"]) == \
        ("Web", "all things web", "#1d4ed8")
    room = _make(sys_, owner, e, "microlocations", name="Room A", floor=2, latitude=45.76,
                 longitude=4.83)
    assert (room["floor"], room["latitude"], room["longitude"]) == (2, 45.76, 4.83)
    spk = _make(sys_, owner, e, "speakers", name="Ada", email="ada@example.com", bio="b",
                organisation="Analytical")
    assert spk["email"] == "ada@example.com" and spk["photo_upload_id"] is None
    sp = _make(sys_, owner, e, "sponsors", name="ACME", level="gold",
               url="https://acme.example/")
    assert (sp["level"], sp["url"]) == ("gold", "https://acme.example/")
    s = _make(sys_, owner, e, "sessions", **_session(
        track_id=track["id"], microlocation_id=room["id"], speaker_ids=[spk["id"]],
        abstract="a\nb", state="accepted"))
    assert s["track_id"] == track["id"] and s["speaker_ids"] == [spk["id"]]
    assert s["starts_at"] == "2099-06-01T10:00:00Z" and s["state"] == "accepted"
    got = sys_.get(owner, f"/events/{e}/sessions/{s['id']}", gw=sys_.gw2).json()
    assert got == s


def test_a_patch_changes_what_it_names_and_null_clears(sys_, owner, ev):
    e = ev["id"]
    track = _make(sys_, owner, e, "tracks", name="T", color="#000000")
    s = _make(sys_, owner, e, "sessions", **_session(track_id=track["id"]))
    r = sys_.patch(owner, f"/events/{e}/sessions/{s['id']}",
                   {"track_id": None, "ends_at": "2099-06-01T12:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["track_id"] is None and r.json()["title"] == s["title"]
    assert r.json()["ends_at"] == "2099-06-01T12:00:00Z"
    r = sys_.patch(owner, f"/events/{e}/tracks/{track['id']}", {"color": None, "name": "U"})
    assert r.json()["color"] is None and r.json()["name"] == "U"
    assert sys_.patch(owner, f"/events/{e}/tracks/{track['id']}", {"name": None}
                      ).status_code == 400


def test_a_session_lies_inside_the_event_and_refers_to_its_own_parts(sys_, owner, ev):
    e = ev["id"]
    other = sys_.event(owner, **EVENT)
    foreign_track = _make(sys_, owner, other["id"], "tracks", name="Elsewhere")
    foreign_room = _make(sys_, owner, other["id"], "microlocations", name="Elsewhere")
    foreign_spk = _make(sys_, owner, other["id"], "speakers", name="Elsewhere")
    before = len(sys_.get(owner, f"/events/{e}/sessions?limit=500").json()["items"])
    for fields, field in (
            ({"starts_at": "2099-06-01T08:59:59Z"}, "starts_at"),
            ({"ends_at": "2099-06-03T18:00:01Z"}, "starts_at"),
            ({"ends_at": "2099-06-01T10:00:00Z"}, "ends_at"),
            ({"track_id": foreign_track["id"]}, "track_id"),
            ({"microlocation_id": foreign_room["id"]}, "microlocation_id"),
            ({"speaker_ids": [foreign_spk["id"]]}, "speaker_ids"),
            ({"track_id": "00000000-0000-0000-0000-000000000000"}, "track_id")):
        r = sys_.post(owner, f"/events/{e}/sessions", _session(**fields))
        assert r.status_code == 422, (fields, r.text)
        assert field in r.json()["error"]["fields"], r.text
    s = _make(sys_, owner, e, "sessions", **_session())
    r = sys_.patch(owner, f"/events/{e}/sessions/{s['id']}", {"track_id": foreign_track["id"]})
    assert r.status_code == 422
    assert sys_.get(owner, f"/events/{e}/sessions/{s['id']}").json() == s
    assert len(sys_.get(owner, f"/events/{e}/sessions?limit=500").json()["items"]) == before + 1


@pytest.mark.parametrize("kind, body, field", [
    ("tracks", {"name": "x", "color": "blue"}, "color"),
    ("tracks", {"name": ""}, "name"),
    ("tracks", {"description": "no name"}, "name"),
    ("speakers", {"name": "x", "email": "not-mail"}, "email"),
    ("speakers", {"name": "x", "photo_upload_id": "photo.png"}, "photo_upload_id"),
    ("sponsors", {"name": "x", "url": "javascript:alert(1)"}, "url"),
    ("sponsors", {"name": "x", "logo_upload_id": 12}, "logo_upload_id"),
    ("microlocations", {"name": "x", "latitude": 91}, "latitude"),
    ("microlocations", {"name": "x", "floor": 1.5}, "floor"),
    ("sessions", {"title": "x", "starts_at": "2099-06-01T10:00:00Z"}, "ends_at"),
    ("sessions", dict(_session(), state="maybe"), "state"),
    ("sessions", dict(_session(), speaker_ids=["nope"]), "speaker_ids"),
    ("sessions", dict(_session(), speaker_ids=[SPEAKER, SPEAKER]), "speaker_ids"),
])
def test_bad_fields_are_400_and_make_nothing(sys_, owner, ev, kind, body, field):
    e = ev["id"]
    before = len(sys_.get(owner, f"/events/{e}/{kind}?limit=500").json()["items"])
    r = sys_.post(owner, f"/events/{e}/{kind}", body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["fields"], r.text
    assert len(sys_.get(owner, f"/events/{e}/{kind}?limit=500").json()["items"]) == before


def test_a_speakers_email_is_for_roles_only(sys_, owner, ev):
    spk = _make(sys_, owner, ev["id"], "speakers", name="Grace", email="grace@example.com")
    stranger = sys_.user()
    seen = sys_.get(stranger, f"/events/{ev['id']}/speakers/{spk['id']}").json()
    assert "email" not in seen and seen["name"] == "Grace"
    listed = sys_.get(stranger, f"/events/{ev['id']}/speakers?limit=500").json()["items"]
    assert all("email" not in s for s in listed)
    assert sys_.get(sys_.admin(), f"/events/{ev['id']}/speakers/{spk['id']}"
                    ).json()["email"] == "grace@example.com"


def test_deleting_parts_and_another_events_ids_are_404(sys_, owner, ev):
    e = ev["id"]
    track = _make(sys_, owner, e, "tracks", name="Gone")
    s = _make(sys_, owner, e, "sessions", **_session(track_id=track["id"]))
    other = sys_.event(owner, **EVENT)
    assert sys_.get(owner, f"/events/{other['id']}/tracks/{track['id']}").status_code == 404
    assert sys_.delete(owner, f"/events/{other['id']}/tracks/{track['id']}").status_code == 404
    assert sys_.delete(owner, f"/events/{e}/tracks/{track['id']}").status_code == 204
    assert sys_.get(owner, f"/events/{e}/tracks/{track['id']}").status_code == 404
    assert sys_.get(owner, f"/events/{e}/sessions/{s['id']}").json()["track_id"] is None
    assert sys_.get(owner, f"/events/{e}/tracks/nope").status_code == 404


def test_lists_page_in_creation_order(sys_, owner):
    ev = sys_.event(owner, **EVENT)
    made = [_make(sys_, owner, ev["id"], "sponsors", name=f"S{i}")["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        q = f"/events/{ev['id']}/sponsors?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = sys_.get(owner, q).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made


# ---------------------------------------------------------------------------
# The permission table for the programme's services, against the real service

KINDS = {"tracks": {"name": "x"}, "sessions": _session(), "speakers": {"name": "x"},
         "sponsors": {"name": "x"}, "microlocations": {"name": "x"}}
ROLES = ["organizer", "coorganizer", "track_organizer", "moderator"]


def _allowed(role, kind, op):
    if role in ("admin", "super_admin", "organizer"):
        return True
    if role == "coorganizer":
        return op != "delete"
    if role == "track_organizer":
        return op == "read" or kind == "tracks"
    if role == "moderator":
        return op == "read"
    return False


def test_each_role_on_each_programme_service_gets_what_the_table_says(sys_):
    owner = sys_.user()
    people = {role: sys_.user() for role in ROLES}
    people[None] = sys_.user()
    people["admin"] = sys_.admin()
    failures = []
    for published in (False, True):
        ev = sys_.event(owner, **dict(EVENT, state="published" if published else "draft"))
        for role in ROLES:
            sys_.grant(owner, ev["id"], people[role], role)
        for kind, body in KINDS.items():
            for who, user in people.items():
                base = f"/events/{ev['id']}/{kind}"
                mine = _make(sys_, owner, ev["id"], kind, **dict(body, **(
                    {"title": unique("x")} if kind == "sessions" else {})))
                checks = {"create": ("POST", base, body, 201),
                          "read": ("GET", f"{base}/{mine['id']}", None, 200),
                          "update": ("PATCH", f"{base}/{mine['id']}", {}, 200),
                          "delete": ("DELETE", f"{base}/{mine['id']}", None, 204)}
                for op, (method, path, json, ok) in checks.items():
                    if who is None:
                        want = 404 if not published else (ok if op == "read" else 403)
                    else:
                        want = ok if _allowed(who, kind, op) else 403
                    r = sys_.request(method, user, path, json=json)
                    if r.status_code != want:
                        failures.append((published, kind, who, op, want, r.status_code))
    assert failures == []


def test_a_photo_without_the_upload_service_is_503_at_once_and_changes_nothing(sys_, owner, ev):
    """The upload service has no instance here. Its reference is asked for
    under the event's row lock, so the event service does not wait for an
    instance to come (other writers of the event would wait behind it until
    the request's deadline, 504): 503 at once, and nothing is written."""
    before = sys_.get(owner, f"/events/{ev['id']}/speakers").json()["items"]
    r = sys_.post(owner, f"/events/{ev['id']}/speakers",
                  {"name": unique("Photo"), "photo_upload_id": SPEAKER})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert sys_.get(owner, f"/events/{ev['id']}/speakers").json()["items"] == before
    r = sys_.post(owner, f"/events/{ev['id']}/background", {"upload_id": SPEAKER})
    assert r.status_code == 503, r.text
