"""Store monitoring end to end (shared/API.md "Store monitoring", issue
#15): POST /stores/data (CSV, all rows or none, 422 listing bad lines),
POST /stores/reports (202, a durable job), GET /stores/reports/{id} and
its CSV and PDF, through real gateways, the real auth service and
tally-analytics against a real PostgreSQL.

Each hand-made case has its own user (a report's "now" is the newest poll
of all the user's stores) and its arithmetic written beside it. A generated
data set is checked against an independent implementation of the rules in
Python (zoneinfo) written below."""

import csv
import datetime as dt
import io
import random
import time
from zoneinfo import ZoneInfo

import pytest
import requests

import tally
from tally import Cluster, psql, unique, wait_for, wait_instances
from tracker_system import PASSWORD, User, new_address

API = "/api/v1"
UTC = dt.timezone.utc
CSV = {"Content-Type": "text/csv"}
STATUS = "store_id,status,timestamp_utc\n"
HOURS = "store_id,dayOfWeek,start_time_local,end_time_local\n"
ZONES = "store_id,timezone_str\n"


class System:
    def __init__(self, cluster, gateway_env=None, analytics_env=None):
        env = {"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"}
        env.update(gateway_env or {})
        self.gw = cluster.gateway(env=env)
        gws = [self.gw]
        tally.auth(cluster, gws, env={"TALLY_REQUIRE_VERIFICATION": "false",
                                      "TALLY_PROTO_EXTRA": ""})
        tally.analytics(cluster, gws, env=analytics_env)
        wait_instances(self.gw, 1, service="auth", timeout=60)
        wait_instances(self.gw, 1, service="analytics", timeout=60)

    def url(self, path):
        return self.gw.url + API + path

    def user(self):
        name = unique("s")
        client = {"X-Forwarded-For": new_address()}
        r = requests.post(self.url("/auth/register"),
                          json={"username": name, "email": f"{name}@example.com",
                                "password": PASSWORD}, headers=client, timeout=30)
        assert r.status_code == 201, r.text
        r = requests.post(self.url("/auth/login"), json={"login": name, "password": PASSWORD},
                          headers=client, timeout=30)
        assert r.status_code == 200, r.text
        return User(name, r.json()["user"]["id"], r.json()["token"])

    def request(self, method, user, path, **kw):
        headers = dict(user.headers) if user else {}
        headers.update(kw.pop("headers", {}))
        return requests.request(method, self.url(path), headers=headers, timeout=60, **kw)

    def load(self, user, kind, text, headers=CSV):
        body = text.encode() if isinstance(text, str) else text
        return self.request("POST", user, f"/stores/data?kind={kind}", data=body,
                            headers=headers)

    def loaded(self, user, kind, text):
        r = self.load(user, kind, text)
        assert r.status_code == 200, r.text
        return r.json()

    def report(self, user):
        """Triggers a report, waits for it, returns (status body, CSV rows
        as {store_id: [six floats]})."""
        r = self.request("POST", user, "/stores/reports")
        assert r.status_code == 202, r.text
        report_id = r.json()["report_id"]
        deadline = time.time() + 60
        while True:
            r = self.request("GET", user, f"/stores/reports/{report_id}")
            assert r.status_code == 200, r.text
            if r.json()["status"] != "running":
                break
            assert time.time() < deadline, "the report did not complete"
            time.sleep(0.05)
        status = r.json()
        assert status["status"] == "complete", status
        r = requests.get(self.gw.url + status["csv_url"], headers=user.headers, timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text, newline="")))
        assert rows[0] == ["store_id", "uptime_last_hour", "uptime_last_day",
                           "uptime_last_week", "downtime_last_hour", "downtime_last_day",
                           "downtime_last_week"]
        ids = [int(row[0]) for row in rows[1:]]
        assert ids == sorted(ids)
        return status, {int(row[0]): [float(v) for v in row[1:]] for row in rows[1:]}, \
            report_id, r.text


@pytest.fixture(scope="module")
def sys_():
    c = Cluster()
    try:
        system = System(c)
    except BaseException:
        c.stop()
        raise
    yield system
    failures = c.stop()
    assert not failures, "\n".join(failures)


def polls(*rows):
    return STATUS + "".join(f"{s},{st},{t}\n" for s, st, t in rows)


def hours(*rows):
    return HOURS + "".join(f"{s},{d},{a},{b}\n" for s, d, a, b in rows)


def zones(*rows):
    return ZONES + "".join(f"{s},{z}\n" for s, z in rows)


def figures(sys_, user, store):
    """[up hour (min), up day (h), up week (h), down hour, down day, down week]"""
    return sys_.report(user)[1][store]


# --- Hand-made cases ------------------------------------------------------------

def test_store_open_overnight_counts_past_midnight(sys_):
    # UTC store open Wednesday 22:00 -> 02:00. now = Thu 2025-01-16 01:00Z
    # (the newest poll). Active since Mon, inactive from 00:30.
    # hour [00:00, 01:00): 30 min up, 30 down.
    # day [Wed 01:00, Thu 01:00): Wed 22:00-Thu 01:00 = 3 h: 2.5 up, 0.5 down.
    # week: plus the previous Wednesday's row, Thu 01-09 01:00-02:00 inside
    # the week (starts 01-09 01:00), up by back-fill: 3.5 up, 0.5 down.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((1, "Etc/UTC")))
    sys_.loaded(u, "hours", hours((1, 2, "22:00:00", "02:00:00")))
    sys_.loaded(u, "status", polls((1, "active", "2025-01-12 21:00:00 UTC"),
                                   (1, "inactive", "2025-01-16 00:30:00 UTC"),
                                   (1, "inactive", "2025-01-16 01:00:00 UTC")))
    assert figures(sys_, u, 1) == [30.0, 2.5, 3.5, 30.0, 0.5, 0.5]


def test_split_shift_rows_are_unioned_and_23_59_59_is_midnight(sys_):
    # New York (EST, -5), Wednesday 2025-01-15: 09-11 and 10-12 (union
    # 09-12: 3 h) and 17:00-23:59:59 (to midnight: 7 h). now = Thu 05:00Z =
    # midnight local. Inactive from 18:00 local (23:00Z): up 09-12 and
    # 17-18 = 4 h, down 18-24 = 6 h. hour = 23:00-24:00 local: 60 min down.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((7, "America/New_York")))
    sys_.loaded(u, "hours", HOURS.replace("dayOfWeek", "day_of_week")
                + "7,2,09:00:00,11:00:00\n7,2,10:00:00,12:00:00\n7,2,17:00:00,23:59:59\n")
    sys_.loaded(u, "status", polls((7, "active", "2025-01-14 05:00:00 UTC"),
                                   (7, "inactive", "2025-01-15 23:00:00 UTC"),
                                   (7, "inactive", "2025-01-16 05:00:00 UTC")))
    assert figures(sys_, u, 7) == [0.0, 4.0, 4.0, 60.0, 6.0, 6.0]


def test_store_without_hours_is_open_all_week(sys_):
    # No hours: 24x7. now = 2025-01-15 12:00Z. Inactive at -2 h, active at
    # -30 min: hour 30/30; day 0.5 up, 23.5 down; week 0.5 up, 167.5 down
    # (the first poll back-fills the week).
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((3, "Etc/UTC")))
    sys_.loaded(u, "status", polls((3, "inactive", "2025-01-15 10:00:00 UTC"),
                                   (3, "active", "2025-01-15 11:30:00 UTC"),
                                   (3, "active", "2025-01-15 12:00:00 UTC")))
    assert figures(sys_, u, 3) == [30.0, 0.5, 0.5, 30.0, 23.5, 167.5]


def test_store_without_timezone_is_in_chicago(sys_):
    # No zone row: America/Chicago (CST, -6 in January). Open Wednesday
    # 09:00-10:00 local = 15:00-16:00Z on 2025-01-15. now = 16:00Z, active
    # throughout: hour = 60 min up; day = week = 1 h up. In UTC the same
    # row would be 09:00-10:00Z and count 0 in the last hour.
    u = sys_.user()
    sys_.loaded(u, "hours", hours((5, 2, "09:00:00", "10:00:00")))
    sys_.loaded(u, "status", polls((5, "active", "2025-01-15 08:00:00 UTC"),
                                   (5, "active", "2025-01-15 16:00:00 UTC")))
    assert figures(sys_, u, 5) == [60.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_poll_exactly_on_a_window_start_counts_inside(sys_):
    # 24x7 UTC. now = 12:00Z. Inactive at 06:00 the day before (-30 h),
    # active exactly at now - 1 h (11:00Z). Half-open windows: the hour
    # [11:00, 12:00) is all up: 60 min; day 1 up, 23 down; week 1 up, 167 down.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((9, "Etc/UTC")))
    sys_.loaded(u, "status", polls((9, "inactive", "2025-01-14 06:00:00 UTC"),
                                   (9, "active", "2025-01-15 11:00:00 UTC"),
                                   (9, "active", "2025-01-15 12:00:00.000000 UTC")))
    assert figures(sys_, u, 9) == [60.0, 1.0, 1.0, 0.0, 23.0, 167.0]


def test_single_poll_holds_back_and_forward(sys_):
    # One poll, inactive, at 2025-01-15 12:00Z = now; 24x7: every window all
    # down (60 min, 24 h, 168 h), nothing up.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((11, "Etc/UTC")))
    sys_.loaded(u, "status", polls((11, "inactive", "2025-01-15 12:00:00 UTC")))
    assert figures(sys_, u, 11) == [0.0, 0.0, 0.0, 60.0, 24.0, 168.0]


def test_spring_forward_day_in_new_york_is_an_hour_short(sys_):
    # Sunday 2025-03-09, open 00:00-05:00 local; 02:00-03:00 never happens:
    # 00:00 EST = 05:00Z to 05:00 EDT = 09:00Z = 4 h. now = 12:00Z, active.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((13, "America/New_York")))
    sys_.loaded(u, "hours", hours((13, 6, "00:00:00", "05:00:00")))
    sys_.loaded(u, "status", polls((13, "active", "2025-03-09 12:00:00 UTC")))
    assert figures(sys_, u, 13) == [0.0, 4.0, 4.0, 0.0, 0.0, 0.0]


def test_spring_forward_gap_start_moves_after_the_gap(sys_):
    # Sunday 2025-03-09 open 02:30-04:00 local: 02:30 does not exist and
    # moves to the first instant after the gap, 03:00 EDT = 07:00Z; 04:00
    # EDT = 08:00Z: 1 h. now 12:00Z, inactive: 1 h down.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((14, "America/New_York")))
    sys_.loaded(u, "hours", hours((14, 6, "02:30:00", "04:00:00")))
    sys_.loaded(u, "status", polls((14, "inactive", "2025-03-09 12:00:00 UTC")))
    assert figures(sys_, u, 14) == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_fall_back_day_in_new_york_is_an_hour_long(sys_):
    # Sunday 2025-11-02, open 00:00-05:00 local; 01:00-02:00 happens twice:
    # 00:00 EDT = 04:00Z to 05:00 EST = 10:00Z = 6 h. Open 01:30-03:00 on
    # the same day for store 16: 01:30 is ambiguous and takes its first
    # occurrence (EDT, 05:30Z); 03:00 EST = 08:00Z: 2.5 h. now 12:00Z.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((15, "America/New_York"), (16, "America/New_York")))
    sys_.loaded(u, "hours", hours((15, 6, "00:00:00", "05:00:00"),
                                  (16, 6, "01:30:00", "03:00:00")))
    sys_.loaded(u, "status", polls((15, "inactive", "2025-11-02 12:00:00 UTC"),
                                   (16, "active", "2025-11-02 12:00:00 UTC")))
    got = sys_.report(u)[1]
    assert got[15] == [0.0, 0.0, 0.0, 0.0, 6.0, 6.0]
    assert got[16] == [0.0, 2.5, 2.5, 0.0, 0.0, 0.0]


def test_thirty_minute_offset_zone(sys_):
    # Asia/Kolkata (+05:30): Monday 2025-01-13 09:00-10:00 local =
    # 03:30-04:30Z. now 04:00Z; inactive before, active from 03:45Z.
    # hour [03:00, 04:00): 30 min of business, 15 down, 15 up; day alike;
    # week also holds Monday 01-06 04:00-04:30Z (the week starts 04:00Z),
    # down by back-fill: 45 min down = 0.75 h.
    u = sys_.user()
    sys_.loaded(u, "timezones", zones((17, "Asia/Kolkata")))
    sys_.loaded(u, "hours", hours((17, 0, "09:00:00", "10:00:00")))
    sys_.loaded(u, "status", polls((17, "inactive", "2025-01-12 23:00:00 UTC"),
                                   (17, "active", "2025-01-13 03:45:00 UTC"),
                                   (17, "active", "2025-01-13 04:00:00 UTC")))
    assert figures(sys_, u, 17) == [15.0, 0.25, 0.25, 15.0, 0.25, 0.75]


# --- Loading --------------------------------------------------------------------

def test_bad_lines_are_listed_with_their_numbers_and_nothing_loads(sys_):
    u = sys_.user()
    body = (STATUS
            + "1,active,2025-01-15 12:00:00 UTC\n"       # line 2: fine
            + "x1,active,2025-01-15 12:00:00 UTC\n"      # 3: bad store id
            + "2,open,2025-01-15 12:00:00 UTC\n"         # 4: bad status
            + "\n"                                        # 5: empty, skipped
            + "3,active,2025-02-30 12:00:00 UTC\n"       # 6: no such date
            + "4,inactive\n")                             # 7: too few fields
    r = sys_.load(u, "status", body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_rows"
    assert [row["line"] for row in error["rows"]] == [3, 4, 6, 7]
    assert "store_id" in error["rows"][0]["reason"]
    assert "status" in error["rows"][1]["reason"]
    # Nothing of the good line was kept
    assert tally.psql(f"SELECT count (*) FROM analytics.store_polls WHERE owner = '{u.id}'") == "0"

    r = sys_.load(u, "hours", hours((1, 7, "09:00:00", "10:00:00"),
                                    (1, 0, "9am", "10:00:00"),
                                    (1, 0, "09:00:00", "25:00:00")))
    assert [row["line"] for row in r.json()["error"]["rows"]] == [2, 3, 4]
    r = sys_.load(u, "timezones", zones((1, "Mars/Olympus"), (2, "../../etc/passwd"),
                                        (3, "Asia/Kolkata")))
    assert r.status_code == 422
    assert [row["line"] for row in r.json()["error"]["rows"]] == [2, 3]


def test_bad_header_quotes_and_media_type(sys_):
    u = sys_.user()
    r = sys_.load(u, "status", "store,status,time\n1,active,2025-01-15 12:00:00 UTC\n")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_header"
    r = sys_.load(u, "status", STATUS + '1,"act"ive,2025-01-15 12:00:00 UTC\n')
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_csv"
    assert "line 2" in r.json()["error"]["message"]
    r = sys_.load(u, "status", STATUS, headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    r = sys_.load(u, "weather", STATUS)
    assert r.status_code == 400


def test_repeated_polls_are_kept_once_and_hours_replace(sys_):
    u = sys_.user()
    row = (21, "active", "2025-01-15 12:00:00.5 UTC")
    assert sys_.loaded(u, "status", polls(row, row)) == {"kind": "status", "rows": 2}
    sys_.loaded(u, "status", polls(row, (21, "inactive", "2025-01-15T11:00:00Z")))
    assert tally.psql(f"SELECT count (*) FROM analytics.store_polls WHERE owner = '{u.id}'") == "2"
    sys_.loaded(u, "hours", hours((21, 0, "09:00:00", "10:00:00"), (21, 1, "09:00:00", "10:00:00")))
    sys_.loaded(u, "hours", '\ufeff' + hours((21, 2, "08:00:00", "09:00:00")))
    assert tally.psql("SELECT string_agg (dow::text, ',') FROM analytics.store_hours "
                      f"WHERE owner = '{u.id}'") == "2"


def test_reports_belong_to_their_owner_and_pdf_downloads(sys_):
    u, other = sys_.user(), sys_.user()
    sys_.loaded(u, "status", polls((31, "active", "2025-01-15 12:00:00 UTC")))
    status, rows, report_id, _ = sys_.report(u)
    assert status["stores"] == 1 and status["now"] == "2025-01-15T12:00:00Z"
    r = requests.get(sys_.gw.url + status["pdf_url"], headers=u.headers, timeout=60)
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    assert r.headers["Content-Type"] == "application/pdf"
    for path in ("", "/report.csv", "/report.pdf"):
        r = sys_.request("GET", other, f"/stores/reports/{report_id}{path}")
        assert r.status_code == 404, r.text
    assert sys_.request("GET", u, "/stores/reports/not-a-uuid").status_code == 404
    # Another user's report sees none of u's stores
    sys_.loaded(other, "status", polls((32, "inactive", "2025-01-15 12:00:00 UTC")))
    assert list(sys_.report(other)[1]) == [32]


def test_a_user_without_polls_gets_an_empty_report(sys_):
    u = sys_.user()
    status, rows, _, _ = sys_.report(u)
    assert status["stores"] == 0 and status["now"] is None and rows == {}


# --- A generated data set against an independent implementation ------------------

def to_utc(zone, local):
    """The instant of naive local time `local` in `zone` by API.md's rules:
    the first occurrence of an ambiguous time; the first instant after a
    gap (found by bisection on the zone's offsets)."""
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    candidates = [t.astimezone(UTC) for t in (first, second)
                  if t.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local]
    if candidates:
        return min(candidates)
    lo = min(first.astimezone(UTC), second.astimezone(UTC))
    hi = max(first.astimezone(UTC), second.astimezone(UTC))
    # the offset changes in (lo, hi]: find the first second of the new one
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) // 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def reference(now, store_hours, zone, store_polls):
    """[up hour min, up day h, up week h, down hour, down day, down week]"""
    week = now - dt.timedelta(days=7)
    spans = []
    if not store_hours:
        spans = [(week, now)]
    else:
        first_day = week.astimezone(zone).date() - dt.timedelta(days=2)
        last_day = now.astimezone(zone).date() + dt.timedelta(days=1)
        day = first_day
        while day <= last_day:
            for dow, start, end in store_hours:
                if dow != day.weekday() or start == end:
                    continue
                a = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=start)
                b = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=end)
                if end < start:
                    b += dt.timedelta(days=1)
                spans.append((to_utc(zone, a), to_utc(zone, b)))
            day += dt.timedelta(days=1)
    out = []
    for length in (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=7)):
        lo = now - length
        up = total = dt.timedelta()
        # business time in the window: the union of the spans, clipped
        cut = sorted((max(a, lo), min(b, now)) for a, b in spans if min(b, now) > max(a, lo))
        merged = []
        for a, b in cut:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        for a, b in merged:
            total += b - a
            # status at each instant: the last poll at or before it, else the first
            points = sorted(set([a, b] + [t for t, _ in store_polls if a < t < b]))
            for x, y in zip(points, points[1:]):
                earlier = [s for t, s in store_polls if t <= x]
                status = earlier[-1] if earlier else store_polls[0][1]
                if status:
                    up += y - x
        down = total - up
        out.append((up, down))
    us = lambda d: d // dt.timedelta(microseconds=1)
    return [round(us(out[0][0]) / 60e6, 2), round(us(out[1][0]) / 3600e6, 2),
            round(us(out[2][0]) / 3600e6, 2), round(us(out[0][1]) / 60e6, 2),
            round(us(out[1][1]) / 3600e6, 2), round(us(out[2][1]) / 3600e6, 2)]


def test_generated_stores_match_an_independent_implementation(sys_):
    rng = random.Random(15)
    names = ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London",
             "America/Los_Angeles", "Asia/Kathmandu", None]
    # Polls for 9 days around New York's fall-back day, every ~50-70 min
    start = dt.datetime(2025, 10, 27, 0, 0, tzinfo=UTC)
    end = dt.datetime(2025, 11, 5, 0, 0, tzinfo=UTC)
    status_rows, hour_rows, zone_rows, stores = [], [], [], {}
    for store in range(1000, 1040):
        zone_name = rng.choice(names)
        if zone_name:
            zone_rows.append((store, zone_name))
        rows = []
        if rng.random() < 0.8:
            for dow in range(7):
                for _ in range(rng.choice([0, 1, 1, 2])):
                    a = rng.randrange(0, 86400 // 900) * 900
                    b = rng.choice([rng.randrange(0, 86400 // 900) * 900, 86399])
                    rows.append((dow, a, b))
        for dow, a, b in rows:
            hour_rows.append((store, dow, "%02d:%02d:%02d" % (a // 3600, a // 60 % 60, a % 60),
                              "%02d:%02d:%02d" % (b // 3600, b // 60 % 60, b % 60)))
        t = start + dt.timedelta(seconds=rng.randrange(0, 3600))
        ps = []
        while t < end:
            ps.append((t, rng.random() < 0.7))
            t += dt.timedelta(seconds=rng.randrange(3000, 4200), microseconds=rng.randrange(10 ** 6))
        stores[store] = ([(d, a, 86400 if b == 86399 else b) for d, a, b in rows],
                         ZoneInfo(zone_name or "America/Chicago"), ps)
        for t, active in ps:
            status_rows.append((store, "active" if active else "inactive",
                                t.strftime("%Y-%m-%d %H:%M:%S.%f UTC")))
    rng.shuffle(status_rows)
    u = sys_.user()
    assert sys_.loaded(u, "status", polls(*status_rows))["rows"] == len(status_rows)
    sys_.loaded(u, "hours", hours(*hour_rows))
    sys_.loaded(u, "timezones", zones(*zone_rows))
    status, got, _, _ = sys_.report(u)
    now = max(t for _, _, ps in stores.values() for t, _ in ps)
    fraction = f".{now.microsecond:06d}" if now.microsecond else ""
    assert status["now"] == now.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    assert sorted(got) == sorted(stores)
    for store, (rows, zone, ps) in stores.items():
        want = reference(now, rows, zone, ps)
        assert got[store] == want, (store, rows, zone, got[store], want)


def test_reports_are_kept_thirty_days(sys_):
    import os
    import subprocess
    from tally import binary
    u = sys_.user()
    sys_.loaded(u, "status", polls((41, "active", "2025-01-15 12:00:00 UTC")))
    _, _, old_id, _ = sys_.report(u)
    _, _, new_id, _ = sys_.report(u)
    tally.psql("UPDATE analytics.store_reports SET created_at = now () - interval '31 days' "
               f"WHERE id = '{old_id}'")
    # Past 30 days a report is gone for its owner at once ...
    assert sys_.request("GET", u, f"/stores/reports/{old_id}").status_code == 404
    assert sys_.request("GET", u, f"/stores/reports/{old_id}/report.csv").status_code == 404
    assert sys_.request("GET", u, f"/stores/reports/{new_id}").status_code == 200
    # ... and the daily purge deletes it (run as if a day later; an
    # occurrence an earlier run of the tests already purged is forgotten, so
    # that the schedule enqueues it again)
    tally.psql("DELETE FROM analytics.jobs WHERE kind = 'analytics.stores_purge'")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 25 * 3600))
    out = subprocess.run([binary("tallyctl"), "jobs", "run-due", "analytics", "--at", at],
                         env=dict(os.environ, TALLY_MESH=sys_.gw.mesh), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    left = tally.psql(f"SELECT string_agg (id::text, ',') FROM analytics.store_reports "
                      f"WHERE owner = '{u.id}'")
    assert left == new_id


def test_a_store_with_more_hours_rows_than_a_report_reads_is_refused(sys_):
    u = sys_.user()
    sys_.loaded(u, "hours", hours((51, 0, "09:00:00", "10:00:00")))
    rows = [(51, i % 7, "09:00:00", "10:00:00") for i in range(1001)]   # 1 000 is the bound
    r = sys_.load(u, "hours", hours(*rows))
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_hours", r.text
    assert tally.psql(f"SELECT count (*) FROM analytics.store_hours WHERE owner = '{u.id}'") == "1"
    assert sys_.loaded(u, "hours", hours(*rows[:1000]))["rows"] == 1000


def test_a_deleted_users_stores_go_with_the_account(sys_):
    gone, kept = sys_.user(), sys_.user()
    for u in (gone, kept):
        sys_.loaded(u, "status", STATUS + "1,active,2023-01-25 18:13:22.47922 UTC\n")
        sys_.loaded(u, "hours", HOURS + "1,0,09:00:00,17:00:00\n")
        sys_.loaded(u, "timezones", ZONES + "1,Asia/Kolkata\n")
        sys_.report(u)
    r = sys_.request("DELETE", gone, "/me", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    tables = ("store_polls", "store_hours", "store_zones", "store_reports", "stores")
    count = lambda u, t: psql(f"SELECT count (*) FROM analytics.{t} WHERE owner = '{u.id}'")
    wait_for(lambda: all(count(gone, t) == "0" for t in tables),
             "the deleted user's stores to go", timeout=60)
    assert all(count(kept, t) == "1" for t in tables)
