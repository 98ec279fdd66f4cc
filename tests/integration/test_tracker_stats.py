"""Tracker stats, charts and mood boards (services/tracker/tracker_stats.c):
GET /trackers/{id}/stats, chart.png, chart.svg, board and board.png.
Expected figures are computed here, independently, from the logs each test
makes; days are the caller's local days."""

import datetime as dt
import os
import re
import statistics
import struct
import time
from zoneinfo import ZoneInfo

import pytest

from tally import psql

LIMITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "services",
                      "tracker", "trk_limits.h")
MOODS = ["awful", "bad", "okay", "good", "great"]


def limit(name):
    with open(LIMITS) as f:
        m = re.search(rf"#define\s+{name}\s+(\d+)", f.read())
    assert m, name
    return int(m.group(1))


def png_size(data):
    """The width and height in a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def expected_numbers(logs, zone):
    """{count, min, max, mean, median, series} of (utc datetime, value) logs."""
    values = [v for _, v in logs]
    days = {}
    for at, v in logs:
        days.setdefault(at.astimezone(ZoneInfo(zone)).date().isoformat(), []).append(v)
    return {
        "count": len(values), "min": min(values), "max": max(values),
        "mean": statistics.mean(values), "median": statistics.median(values),
        "series": [{"date": d, "count": len(vs), "min": min(vs), "max": max(vs),
                    "mean": statistics.mean(vs)} for d, vs in sorted(days.items())],
    }


def assert_numbers(got, want):
    assert got["count"] == want["count"]
    for key in ("min", "max", "mean", "median"):
        assert got[key] == pytest.approx(want[key]), key
    assert [s["date"] for s in got["series"]] == [s["date"] for s in want["series"]]
    for g, w in zip(got["series"], want["series"]):
        assert g["count"] == w["count"], g["date"]
        for key in ("min", "max", "mean"):
            assert g[key] == pytest.approx(w[key]), (g["date"], key)


def add_logs(sys, user, tracker_id, logs):
    for at, value in logs:
        sys.log(user, tracker_id, value, timestamp=rfc3339(at))


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def midday_zone():
    """A zone whose local time is now far from midnight, so that mood logs
    a minute or two old are on the same local day as now."""
    zones = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris", "Asia/Kolkata",
             "America/Los_Angeles", "Pacific/Auckland"]
    now = dt.datetime.now(dt.timezone.utc)

    def distance(zone):
        local = now.astimezone(ZoneInfo(zone))
        return abs(local.hour * 60 + local.minute - 12 * 60)
    return min(zones, key=distance)


# --- stats -------------------------------------------------------------------

def test_numerical_stats_and_series_by_local_day_in_tokyo(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": "Asia/Tokyo"})
    t = sys.tracker(user, "Water", "numerical", unit="l")
    logs = [
        (utc(2026, 3, 1, 2, 0), 7.5),       # 11:00 on 1 March in Tokyo
        (utc(2026, 3, 1, 14, 30), 10),      # 23:30 on 1 March in Tokyo (UTC: 1 March)
        (utc(2026, 3, 1, 15, 30), 4),       # 00:30 on 2 March in Tokyo (UTC: 1 March)
        (utc(2026, 3, 3, 0, 0), -2),
        (utc(2026, 3, 3, 1, 0), 3.25),
        (utc(2026, 3, 3, 2, 0), 1.125),
    ]
    add_logs(sys, user, t["id"], logs)
    r = sys.get(user, f"/trackers/{t['id']}/stats")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"count", "min", "max", "mean", "median", "series"}
    assert_numbers(body, expected_numbers(logs, "Asia/Tokyo"))
    days = {s["date"]: s for s in body["series"]}
    assert days["2026-03-01"]["count"] == 2 and days["2026-03-01"]["max"] == 10
    assert days["2026-03-02"]["count"] == 1 and days["2026-03-02"]["min"] == 4


def test_duration_stats_put_a_2330_log_on_its_new_york_day(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": "America/New_York"})
    t = sys.tracker(user, "Sleep", "duration")
    logs = [
        (utc(2026, 3, 2, 4, 30), 27000),    # 23:30 on 1 March in New York (UTC: 2 March)
        (utc(2026, 3, 2, 12, 0), 1800),
        (utc(2026, 3, 2, 20, 0), 5400.5),
        (utc(2026, 3, 5, 3, 59), 600),      # 22:59 on 4 March in New York
    ]
    add_logs(sys, user, t["id"], logs)
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    want = expected_numbers(logs, "America/New_York")
    assert_numbers(body, want)
    assert [s["date"] for s in body["series"]] == ["2026-03-01", "2026-03-02", "2026-03-04"]


def test_boolean_stats_count_true_and_false(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Ran", "boolean")
    values = [True, False, True, True, False, True]
    add_logs(sys, user, t["id"], [(utc(2026, 4, 1 + i), v) for i, v in enumerate(values)])
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    assert body == {"count": len(values), "true_count": values.count(True),
                    "false_count": values.count(False)}


def test_multiple_choice_counts_an_unused_choice_as_0_and_least_used(tracker_system):
    sys = tracker_system
    user = sys.user()
    choices = ["tea", "coffee", "water", "juice"]
    t = sys.tracker(user, "Drink", "multiple_choice", choices=choices)
    values = ["coffee", "tea", "coffee", "juice", "tea", "juice", "coffee"]
    add_logs(sys, user, t["id"], [(utc(2026, 5, 1, i), v) for i, v in enumerate(values)])
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    counts = {c: values.count(c) for c in choices}
    assert body == {"count": len(values), "counts": counts,
                    "most_used": "coffee", "least_used": "water"}
    assert list(body["counts"]) == choices          # the tracker's order


def test_multiple_choice_ties_go_to_the_first_choice(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Snack", "multiple_choice", choices=["apple", "nuts", "bar"])
    values = ["bar", "nuts", "apple", "bar", "nuts", "apple"]  # all used twice
    add_logs(sys, user, t["id"], [(utc(2026, 5, 2, i), v) for i, v in enumerate(values)])
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    assert body["most_used"] == "apple" and body["least_used"] == "apple"


def test_mood_stats_count_by_mood_name(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": midday_zone()})
    t = sys.tracker(user, "Mood", "mood")
    sys.log(user, t["id"], 4)
    sys.log(user, t["id"], 2)
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    assert body == {"count": 2,
                    "counts": {"awful": 0, "bad": 1, "okay": 0, "good": 1, "great": 0},
                    "most_used": "bad", "least_used": "awful"}


def test_stats_bounds_are_inclusive(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Steps", "numerical")
    first, last = utc(2026, 6, 1, 8, 0, 0, 250000), utc(2026, 6, 3, 8, 0)
    logs = [(first - dt.timedelta(milliseconds=1), 100), (first, 1), (utc(2026, 6, 2), 2),
            (last, 4), (last + dt.timedelta(milliseconds=1), 100)]
    add_logs(sys, user, t["id"], logs)
    r = sys.get(user, f"/trackers/{t['id']}/stats",
                params={"from": rfc3339(first), "to": rfc3339(last)})
    assert r.status_code == 200, r.text
    assert_numbers(r.json(), expected_numbers(logs[1:4], "UTC"))
    only_from = sys.get(user, f"/trackers/{t['id']}/stats", params={"from": rfc3339(last)}).json()
    assert only_from["count"] == 2 and only_from["min"] == 4


def test_stats_of_an_empty_range_are_zero_and_null(tracker_system):
    sys = tracker_system
    user = sys.user()
    num = sys.tracker(user, "Weight", "numerical")
    choice = sys.tracker(user, "Place", "multiple_choice", choices=["home", "gym"])
    flag = sys.tracker(user, "Meditated", "boolean")
    sys.log(user, num["id"], 70, timestamp="2026-01-10T10:00:00Z")
    sys.log(user, choice["id"], "gym", timestamp="2026-01-10T10:00:00Z")
    empty = {"from": "2026-02-01T00:00:00Z", "to": "2026-02-28T23:59:59Z"}
    assert sys.get(user, f"/trackers/{num['id']}/stats", params=empty).json() == {
        "count": 0, "min": None, "max": None, "mean": None, "median": None, "series": []}
    assert sys.get(user, f"/trackers/{choice['id']}/stats", params=empty).json() == {
        "count": 0, "counts": {"home": 0, "gym": 0}, "most_used": None, "least_used": None}
    assert sys.get(user, f"/trackers/{flag['id']}/stats").json() == {
        "count": 0, "true_count": 0, "false_count": 0}


@pytest.mark.parametrize("params", [
    {"from": "yesterday"},
    {"to": "2026-13-01T00:00:00Z"},
    {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
])
@pytest.mark.parametrize("route", ["stats", "chart.png", "chart.svg"])
def test_bad_from_or_to_is_400(tracker_system, route, params):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Water", "numerical")
    r = sys.get(user, f"/trackers/{t['id']}/{route}", params=params)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]["fields"]) & {"from", "to"}


@pytest.mark.parametrize("route", ["stats", "chart.png", "chart.svg", "board", "board.png"])
def test_another_users_tracker_is_404(tracker_system, route):
    sys = tracker_system
    owner, other = sys.user(), sys.user()
    t = sys.tracker(owner, "Mood", "mood")
    assert sys.get(owner, f"/trackers/{t['id']}/{route}").status_code == 200
    r = sys.get(other, f"/trackers/{t['id']}/{route}")
    assert r.status_code == 404, r.text
    missing = sys.get(other, f"/trackers/00000000-0000-4000-8000-000000000000/{route}")
    assert missing.status_code == 404


def test_stats_and_chart_of_over_max_points_logs_answer_quickly(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": "Europe/Paris"})
    t = sys.tracker(user, "Pulse", "numerical")
    n = limit("TRK_CHART_MAX_POINTS") + 5000
    psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num) "
         f"SELECT '{t['id']}', '{user.id}', "
         f"timestamptz '2026-01-01T00:00:00Z' + i * interval '2 minutes', i % 101 "
         f"FROM generate_series (0, {n - 1}) AS i")
    started = time.monotonic()
    body = sys.get(user, f"/trackers/{t['id']}/stats").json()
    assert time.monotonic() - started < 5
    values = [i % 101 for i in range(n)]
    assert body["count"] == n
    assert (body["min"], body["max"]) == (0, 100)
    assert body["median"] == statistics.median(values)
    assert body["mean"] == pytest.approx(statistics.mean(values))
    assert sum(s["count"] for s in body["series"]) == n
    started = time.monotonic()
    r = sys.get(user, f"/trackers/{t['id']}/chart.png")    # per-day means past the limit
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 10
    assert png_size(r.content) == (limit("TRK_CHART_DEFAULT_WIDTH"),
                                   limit("TRK_CHART_DEFAULT_HEIGHT"))


# --- charts ------------------------------------------------------------------

@pytest.mark.parametrize("type_,fields,value", [
    ("numerical", {"unit": "kg"}, 71.5),
    ("duration", {}, 3600),
    ("boolean", {}, True),
    ("multiple_choice", {"choices": ["a", "b"]}, "b"),
    ("mood", {}, 5),
])
def test_chart_png_is_a_png_of_the_default_size(tracker_system, type_, fields, value):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, f"Chart {type_}", type_, **fields)
    sys.log(user, t["id"], value)
    r = sys.get(user, f"/trackers/{t['id']}/chart.png")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    assert png_size(r.content) == (limit("TRK_CHART_DEFAULT_WIDTH"),
                                   limit("TRK_CHART_DEFAULT_HEIGHT"))


def test_chart_svg_is_an_svg_document(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Weight", "numerical", unit="kg")
    sys.log(user, t["id"], 70, timestamp="2026-02-01T08:00:00Z")
    sys.log(user, t["id"], 69, timestamp="2026-02-05T08:00:00Z")
    r = sys.get(user, f"/trackers/{t['id']}/chart.svg")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("image/svg+xml")
    assert r.content.startswith(b"<?xml")
    assert b"<svg" in r.content


def test_chart_of_an_empty_range_is_still_an_image(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Weight", "numerical")
    sys.log(user, t["id"], 70, timestamp="2026-02-01T08:00:00Z")
    empty = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-31T00:00:00Z"}
    r = sys.get(user, f"/trackers/{t['id']}/chart.png", params=empty)
    assert r.status_code == 200, r.text
    assert png_size(r.content) == (limit("TRK_CHART_DEFAULT_WIDTH"),
                                   limit("TRK_CHART_DEFAULT_HEIGHT"))
    r = sys.get(user, f"/trackers/{t['id']}/chart.svg", params=empty)
    assert r.status_code == 200 and b"<svg" in r.content


@pytest.mark.parametrize("kind", ["png", "svg"])
def test_chart_etag_gives_304_and_changes_when_a_log_is_added(tracker_system, kind):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Weight", "numerical")
    sys.log(user, t["id"], 70, timestamp="2026-02-01T08:00:00Z")
    path = f"/trackers/{t['id']}/chart.{kind}"
    first = sys.get(user, path)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)
    again = sys.get(user, path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    sys.log(user, t["id"], 75, timestamp="2026-02-03T08:00:00Z")
    after = sys.get(user, path, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag and after.content != first.content


def test_stats_etag_changes_when_a_log_is_added(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Ran", "boolean")
    path = f"/trackers/{t['id']}/stats"
    etag = sys.get(user, path).headers["ETag"]
    assert sys.get(user, path, headers={"If-None-Match": etag}).status_code == 304
    sys.log(user, t["id"], True)
    r = sys.get(user, path, headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json()["true_count"] == 1


# --- mood boards -----------------------------------------------------------

@pytest.mark.parametrize("year,days", [(2024, 366), (2025, 365), (2100, 365)])
def test_board_has_every_day_of_the_year(tracker_system, year, days):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Mood", "mood")
    r = sys.get(user, f"/trackers/{t['id']}/board", params={"year": str(year)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["year"] == year
    first = dt.date(year, 1, 1)
    assert [d["date"] for d in body["days"]] == [
        (first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    assert all(d["moods"] == [] for d in body["days"])


def test_board_shows_the_two_moods_of_a_day_in_the_order_logged(tracker_system):
    sys = tracker_system
    zone = midday_zone()
    user = sys.user(settings={"timezone": zone})
    t = sys.tracker(user, "Mood", "mood")
    now = dt.datetime.now(dt.timezone.utc)
    # Added later but logged earlier: the board orders by the log's time.
    sys.log(user, t["id"], 2, timestamp=rfc3339(now - dt.timedelta(seconds=60)))
    sys.log(user, t["id"], 4, timestamp=rfc3339(now - dt.timedelta(seconds=120)))
    today = now.astimezone(ZoneInfo(zone)).date()
    r = sys.get(user, f"/trackers/{t['id']}/board")      # the current year by default
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["year"] == today.year
    moods = {d["date"]: d["moods"] for d in body["days"]}
    assert moods[today.isoformat()] == [4, 2]
    assert sum(len(m) for m in moods.values()) == 2


def test_board_of_a_tracker_that_is_not_a_mood_tracker_is_422(tracker_system):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Water", "numerical")
    for route in ("board", "board.png"):
        r = sys.get(user, f"/trackers/{t['id']}/{route}", params={"year": "2026"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "not_a_mood_tracker"


@pytest.mark.parametrize("year", ["26", "20266", "abcd", "1899", "-202", "2026.0", " 2026"])
@pytest.mark.parametrize("route", ["board", "board.png"])
def test_bad_year_is_400(tracker_system, route, year):
    sys = tracker_system
    user = sys.user()
    t = sys.tracker(user, "Mood", "mood")
    r = sys.get(user, f"/trackers/{t['id']}/{route}", params={"year": year})
    assert r.status_code == 400, r.text
    assert "year" in r.json()["error"]["fields"]


def test_board_png_is_a_png_of_the_board_size(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": midday_zone()})
    t = sys.tracker(user, "Mood", "mood")
    sys.log(user, t["id"], 3)
    r = sys.get(user, f"/trackers/{t['id']}/board.png", params={"year": "2026"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    assert png_size(r.content) == (limit("TRK_BOARD_PNG_WIDTH"), limit("TRK_BOARD_PNG_HEIGHT"))
