"""Trackers and logs end to end (API.md "Trackers"): create, list with the
last log, ownership, type and choice rules, log values by type, ranges and
pages, the mood rules in the user's time zone, fresh reads from any
gateway, and a deleted user's data leaving the tracker service even when it
was down at the time."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
import requests

import tally
from tally import psql, wait_for, wait_instances

UTC = dt.timezone.utc


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def sys_(tracker_system):
    return tracker_system


# ---------------------------------------------------------------------------
# Trackers

def test_create_each_type_and_read_it_back(sys_):
    u = sys_.user()
    made = [
        sys_.tracker(u, "Water", "numerical", unit="l", description="glasses\nper day"),
        sys_.tracker(u, "Sport", "multiple_choice", choices=["run", "swim, fast", 'say "hi"']),
        sys_.tracker(u, "Meditated", "boolean"),
        sys_.tracker(u, "Sleep", "duration", unit="s"),
        sys_.tracker(u, "Mood", "mood"),
    ]
    for t in made:
        assert set(t) == {"id", "name", "description", "type", "choices", "unit", "created_at",
                          "updated_at", "last_log"}
        assert t["last_log"] is None
        again = sys_.get(u, f"/trackers/{t['id']}")
        assert again.status_code == 200 and again.json() == t
    assert made[0]["unit"] == "l" and made[0]["description"] == "glasses\nper day"
    assert made[1]["choices"] == ["run", "swim, fast", 'say "hi"']
    assert made[2]["choices"] is None and made[2]["unit"] is None


BAD_TRACKERS = [
    ({"type": "numerical"}, "name"),
    ({"name": "", "type": "numerical"}, "name"),
    ({"name": "x" * 101, "type": "numerical"}, "name"),
    ({"name": "tab\tname", "type": "numerical"}, "name"),
    ({"name": "ok"}, "type"),
    ({"name": "ok", "type": "integer"}, "type"),
    ({"name": "ok", "type": 3}, "type"),
    ({"name": "ok", "type": "multiple_choice"}, "choices"),
    ({"name": "ok", "type": "multiple_choice", "choices": ["one"]}, "choices"),
    ({"name": "ok", "type": "multiple_choice", "choices": ["a", "a"]}, "choices"),
    ({"name": "ok", "type": "multiple_choice", "choices": ["a", ""]}, "choices"),
    ({"name": "ok", "type": "multiple_choice", "choices": ["a", 2]}, "choices"),
    ({"name": "ok", "type": "multiple_choice", "choices": [str(i) for i in range(51)]},
     "choices"),
    ({"name": "ok", "type": "numerical", "choices": ["a", "b"]}, "choices"),
    ({"name": "ok", "type": "numerical", "description": "d" * 2001}, "description"),
    ({"name": "ok", "type": "numerical", "unit": "u" * 33}, "unit"),
    ({"name": {"nested": ["junk"]}, "type": "numerical"}, "name"),
]


@pytest.mark.parametrize("body, field", BAD_TRACKERS)
def test_bad_tracker_bodies_are_400_and_create_nothing(sys_, body, field):
    u = sys_.user()
    r = sys_.post(u, "/trackers", body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"].get("fields", {}), r.text
    assert sys_.get(u, "/trackers").json()["items"] == []


def test_list_shows_each_trackers_last_log_and_pages(sys_):
    u = sys_.user()
    ids = []
    for i in range(5):
        t = sys_.tracker(u, f"T{i}", "numerical")
        ids.append(t["id"])
        for j in range(i):
            sys_.log(u, t["id"], i * 10 + j, timestamp=f"2026-01-0{j + 1}T10:00:00Z")
    first = sys_.get(u, "/trackers?limit=2").json()
    assert [t["id"] for t in first["items"]] == ids[:2] and first["next_cursor"]
    second = sys_.get(u, f"/trackers?limit=2&cursor={first['next_cursor']}").json()
    third = sys_.get(u, f"/trackers?limit=2&cursor={second['next_cursor']}").json()
    assert [t["id"] for t in second["items"] + third["items"]] == ids[2:]
    assert third["next_cursor"] is None
    every = sys_.get(u, "/trackers").json()["items"]
    assert every[0]["last_log"] is None
    for i in range(1, 5):
        last = every[i]["last_log"]
        assert last["value"] == i * 10 + i - 1
        assert last["timestamp"] == f"2026-01-0{i}T10:00:00Z"
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=nope"):
        assert sys_.get(u, f"/trackers?{bad}").status_code == 400


def test_another_users_tracker_is_404_whatever_the_verb(sys_):
    owner, other = sys_.user(), sys_.user()
    t = sys_.tracker(owner, "Mine", "numerical")
    log = sys_.log(owner, t["id"], 1)
    tid, lid = t["id"], log["id"]
    calls = [
        ("GET", f"/trackers/{tid}", None), ("PATCH", f"/trackers/{tid}", {"name": "x"}),
        ("DELETE", f"/trackers/{tid}", None), ("GET", f"/trackers/{tid}/logs", None),
        ("POST", f"/trackers/{tid}/logs", {"value": 2}),
        ("GET", f"/trackers/{tid}/logs/{lid}", None),
        ("PATCH", f"/trackers/{tid}/logs/{lid}", {"value": 3}),
        ("DELETE", f"/trackers/{tid}/logs/{lid}", None),
    ]
    for method, path, body in calls:
        r = sys_.request(method, other, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
    # Nothing changed for the owner
    assert sys_.get(owner, f"/trackers/{tid}").json()["name"] == "Mine"
    assert sys_.get(owner, f"/trackers/{tid}/logs/{lid}").json()["value"] == 1
    # Malformed ids are 404 too, never 500
    for path in ("/trackers/not-a-uuid", "/trackers/%00", f"/trackers/{tid}/logs/x"):
        assert sys_.get(owner, path).status_code == 404


def test_another_users_tracker_is_404_even_for_a_bad_request(sys_):
    owner, other = sys_.user(), sys_.user()
    tid = sys_.tracker(owner, "Mine", "boolean")["id"]
    calls = [
        ("GET", f"/trackers/{tid}/logs?limit=0", None),
        ("GET", f"/trackers/{tid}/logs?cursor=2026-01-01T00:00:00.000000Z_" + "0" * 32, None),
        ("GET", f"/trackers/{tid}/logs/x", None),
        ("POST", f"/trackers/{tid}/logs", {"value": "yes"}),
        ("POST", f"/trackers/{tid}/logs", {"timestamp": "soon"}),
        ("PATCH", f"/trackers/{tid}/logs/{'0' * 8}-0000-4000-8000-{'0' * 12}", {"value": 3}),
    ]
    for method, path, body in calls:
        r = sys_.request(method, other, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert r.json()["error"]["message"] == "no such tracker", (method, path, r.text)
    # The owner is told what is wrong
    r = sys_.post(owner, f"/trackers/{tid}/logs", {"value": 1})
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"value": "must be true or false"}
    r = sys_.post(owner, f"/trackers/{tid}/logs", {"value": True, "timestamp": "soon"})
    assert r.status_code == 400 and "timestamp" in r.json()["error"]["fields"]
    assert sys_.get(owner, f"/trackers/{tid}/logs?limit=0").status_code == 400


def test_the_type_changes_only_while_there_are_no_logs(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Steps", "numerical")
    r = sys_.patch(u, f"/trackers/{t['id']}", {"type": "duration", "name": "Walk"})
    assert r.status_code == 200 and r.json()["type"] == "duration" and r.json()["name"] == "Walk"
    sys_.log(u, t["id"], 60)
    r = sys_.patch(u, f"/trackers/{t['id']}", {"type": "numerical"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "type_locked"
    assert sys_.get(u, f"/trackers/{t['id']}").json()["type"] == "duration"
    # Other fields still change
    r = sys_.patch(u, f"/trackers/{t['id']}", {"unit": "min", "description": "outside"})
    assert r.status_code == 200 and r.json()["unit"] == "min"


def test_a_choice_in_use_cannot_be_removed(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Drink", "multiple_choice", choices=["tea", "coffee", "water"])
    sys_.log(u, t["id"], "coffee")
    r = sys_.patch(u, f"/trackers/{t['id']}", {"choices": ["tea", "water"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "choice_in_use"
    assert "coffee" in r.json()["error"]["fields"]["choices"]
    r = sys_.patch(u, f"/trackers/{t['id']}", {"choices": ["coffee", "juice"]})
    assert r.status_code == 200 and r.json()["choices"] == ["coffee", "juice"]
    assert sys_.patch(u, f"/trackers/{t['id']}", {"choices": ["solo"]}).status_code == 400


def test_deleting_a_tracker_deletes_its_logs(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Gone", "boolean")
    sys_.log(u, t["id"], True)
    assert sys_.delete(u, f"/trackers/{t['id']}").status_code == 204
    assert sys_.get(u, f"/trackers/{t['id']}").status_code == 404
    assert sys_.delete(u, f"/trackers/{t['id']}").status_code == 404
    assert psql(f"SELECT count(*) FROM tracker.logs WHERE tracker_id = '{t['id']}'") == "0"


# ---------------------------------------------------------------------------
# Log values

VALUES = [
    ("numerical", {}, 2.5, 201), ("numerical", {}, -7, 201), ("numerical", {}, "2.5", 400),
    ("numerical", {}, True, 400), ("numerical", {}, 1e16, 422),
    ("boolean", {}, True, 201), ("boolean", {}, False, 201), ("boolean", {}, 1, 400),
    ("boolean", {}, "yes", 400), ("boolean", {}, "true", 400),
    ("duration", {}, 3600, 201), ("duration", {}, 0.5, 201), ("duration", {}, -1, 422),
    ("duration", {}, "1h", 400),
    ("mood", {}, 5, 201), ("mood", {}, 0, 422), ("mood", {}, 6, 422), ("mood", {}, 3.5, 422),
    ("mood", {}, "good", 400),
    ("multiple_choice", {"choices": ["a", "b"]}, "a", 201),
    ("multiple_choice", {"choices": ["a", "b"]}, "A", 422),
    ("multiple_choice", {"choices": ["a", "b"]}, ["a"], 400),
]


@pytest.mark.parametrize("type_, extra, value, status", VALUES)
def test_a_value_must_fit_the_type(sys_, type_, extra, value, status):
    u = sys_.user()
    t = sys_.tracker(u, "V", type_, **extra)
    r = sys_.post(u, f"/trackers/{t['id']}/logs", {"value": value})
    assert r.status_code == status, r.text
    if status == 201:
        assert r.json()["value"] == value
        assert r.headers["Location"].endswith(r.json()["id"])
    else:
        assert "value" in r.json()["error"]["fields"]
        assert sys_.get(u, f"/trackers/{t['id']}/logs").json()["items"] == []


@pytest.mark.parametrize("body", [
    {}, {"value": None}, {"value": 1, "note": "n" * 2001}, {"value": 1, "note": 5},
    {"value": 1, "timestamp": "yesterday"}, {"value": 1, "timestamp": "2026-13-01T00:00:00Z"},
    {"value": 1, "timestamp": 1700000000}, [1, 2], "text",
])
def test_bad_log_bodies_are_400(sys_, body):
    u = sys_.user()
    t = sys_.tracker(u, "N", "numerical")
    assert sys_.post(u, f"/trackers/{t['id']}/logs", body).status_code == 400


def test_a_log_far_in_the_future_is_422(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "N", "numerical")
    later = iso(dt.datetime.now(UTC) + dt.timedelta(days=3))
    assert sys_.post(u, f"/trackers/{t['id']}/logs", {"value": 1, "timestamp": later}) \
        .status_code == 422


def test_logs_list_newest_first_within_from_to_and_pages(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Count", "numerical")
    base = dt.datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(120):
        sys_.log(u, t["id"], i, timestamp=iso(base + dt.timedelta(hours=i)))
    seen, cursor = [], None
    while True:
        q = f"/trackers/{t['id']}/logs?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = sys_.get(u, q).json()
        assert len(page["items"]) <= 50
        seen += [x["value"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(119, -1, -1))
    frm, to = iso(base + dt.timedelta(hours=10)), iso(base + dt.timedelta(hours=20))
    ranged = sys_.get(u, f"/trackers/{t['id']}/logs?from={frm}&to={to}").json()["items"]
    assert [x["value"] for x in ranged] == list(range(20, 9, -1))          # inclusive
    assert sys_.get(u, f"/trackers/{t['id']}/logs?from={to}&to={frm}").status_code == 400
    assert sys_.get(u, f"/trackers/{t['id']}/logs?from=junk").status_code == 400


def test_a_log_is_read_changed_and_deleted(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Drink", "multiple_choice", choices=["tea", "coffee"])
    log = sys_.log(u, t["id"], "tea", note="green", timestamp="2026-02-01T07:00:00.250Z")
    assert log["timestamp"] == "2026-02-01T07:00:00.250Z" and log["note"] == "green"
    path = f"/trackers/{t['id']}/logs/{log['id']}"
    r = sys_.patch(u, path, {"value": "coffee"})
    assert r.status_code == 200 and r.json()["value"] == "coffee" and r.json()["note"] == "green"
    r = sys_.patch(u, path, {"note": "black", "timestamp": "2026-02-02T08:00:00Z"})
    assert r.json()["note"] == "black" and r.json()["timestamp"] == "2026-02-02T08:00:00Z"
    assert sys_.patch(u, path, {"value": "milk"}).status_code == 422
    assert sys_.get(u, path).json()["value"] == "coffee"
    assert sys_.delete(u, path).status_code == 204
    assert sys_.get(u, path).status_code == 404
    assert sys_.delete(u, path).status_code == 404


# ---------------------------------------------------------------------------
# Mood rules (local days of the user's zone)

def test_a_third_mood_on_one_day_is_409(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Mood", "mood")
    sys_.log(u, t["id"], 4)
    sys_.log(u, t["id"], 2)
    r = sys_.post(u, f"/trackers/{t['id']}/logs", {"value": 3})
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_moods"
    assert len(sys_.get(u, f"/trackers/{t['id']}/logs").json()["items"]) == 2


def test_moods_of_other_days_are_closed(sys_):
    zone = "Pacific/Pago_Pago"                          # UTC-11
    u = sys_.user(settings={"timezone": zone})
    t = sys_.tracker(u, "Mood", "mood")
    local_midnight = dt.datetime.now(ZoneInfo(zone)).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)
    before = iso(local_midnight - dt.timedelta(minutes=1))       # yesterday, locally
    r = sys_.post(u, f"/trackers/{t['id']}/logs", {"value": 3, "timestamp": before})
    assert r.status_code == 409 and r.json()["error"]["code"] == "day_closed"
    today = sys_.log(u, t["id"], 3, timestamp=iso(local_midnight + dt.timedelta(seconds=1)))
    # Moving today's mood to yesterday is closed too; changing it today is fine
    path = f"/trackers/{t['id']}/logs/{today['id']}"
    assert sys_.patch(u, path, {"timestamp": before}).status_code == 409
    assert sys_.patch(u, path, {"value": 5}).json()["value"] == 5
    # A mood of an earlier day (as if logged then) can be neither changed nor deleted
    old = psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num) VALUES "
               f"('{t['id']}', '{u.id}', now() - interval '3 days', 2) RETURNING id")
    old = old.splitlines()[0]
    old_path = f"/trackers/{t['id']}/logs/{old}"
    assert sys_.patch(u, old_path, {"value": 4}).json()["error"]["code"] == "day_closed"
    assert sys_.delete(u, old_path).status_code == 409
    assert sys_.get(u, old_path).json()["value"] == 2
    assert sys_.delete(u, path).status_code == 204


def test_mood_logs_older_than_a_year_are_removed_by_the_daily_job(sys_):
    u = sys_.user()
    mood = sys_.tracker(u, "Mood", "mood")
    numbers = sys_.tracker(u, "Weight", "numerical")
    # The job's clock: a day not run before in this database (each daily
    # occurrence runs once), ages measured from it
    clock = dt.datetime.now(UTC).replace(hour=0, minute=0, second=30, microsecond=0) \
        + dt.timedelta(days=2 + time.time_ns() // 1000 % 800)
    for tid, age in ((mood["id"], 400), (mood["id"], 200), (numbers["id"], 400)):
        at = clock - dt.timedelta(days=age)
        psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num) VALUES "
             f"('{tid}', '{u.id}', '{iso(at)}', 3)")
    # Other modules may have left jobs due by then: run until this day's is done
    key = f"tracker.purge_moods@{clock.strftime('%Y-%m-%dT00:00:00Z')}"
    for _ in range(30):
        sys_.run_jobs(iso(clock))
        if psql(f"SELECT count(*) FROM tracker.jobs WHERE unique_key = '{key}' "
                f"AND done_at IS NOT NULL") == "1":
            break
    assert psql(f"SELECT count(*) FROM tracker.logs WHERE tracker_id = '{mood['id']}'") == "1"
    assert psql(f"SELECT count(*) FROM tracker.logs WHERE tracker_id = '{numbers['id']}'") == "1"


# ---------------------------------------------------------------------------
# Fresh reads and ETags

def test_a_read_after_a_write_sees_it_from_either_gateway(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Fresh", "numerical")
    path = f"/trackers/{t['id']}"
    first = sys_.get(u, path)
    etag = first.headers["ETag"]
    assert sys_.get(u, path, headers={"If-None-Match": etag}).status_code == 304
    sys_.log(u, t["id"], 42)
    for gw in (sys_.gw, sys_.gw2):
        r = sys_.get(u, path, gw=gw, headers={"If-None-Match": etag})
        assert r.status_code == 200 and r.json()["last_log"]["value"] == 42
        assert r.headers["ETag"] != etag


# ---------------------------------------------------------------------------
# A deleted user

def test_a_deleted_users_trackers_go_even_if_the_tracker_service_was_down(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Kept while down", "numerical")
    sys_.log(u, t["id"], 1)
    for proc in sys_.trackers:
        proc.stop()
    wait_for(lambda: tally.instances(sys_.gw, "tracker") == 0, "tracker gone", timeout=30)
    r = requests.delete(sys_.url("/me"), json={"password": "correct horse battery"},
                        headers=u.headers, timeout=30)
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    assert psql(f"SELECT count(*) FROM tracker.trackers WHERE owner = '{u.id}'") == "1"
    sys_.trackers = [tally.tracker(sys_.cluster, [sys_.gw, sys_.gw2], env=sys_.tracker_env)]
    for gw in (sys_.gw, sys_.gw2):
        wait_instances(gw, 1, service="tracker", timeout=60)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3700))
    out = sys_.tallyctl("jobs", "run-due", "auth", "--at", at)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: psql(f"SELECT count(*) FROM tracker.trackers WHERE owner = '{u.id}'")
             == "0", "the tracker service to forget the user", timeout=60)
    assert psql(f"SELECT count(*) FROM tracker.logs WHERE owner = '{u.id}'") == "0"
