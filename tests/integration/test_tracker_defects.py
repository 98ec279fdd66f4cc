"""Defects of the tracker service (issue 9 §5), each proven by a test that
failed before its fix:
- a log is checked against its tracker's type under the tracker's row lock
  (a PATCH that changed the type meanwhile let a wrong value in), and no
  stored row of any shape can crash or derail stats, charts, boards,
  reports or exports;
- quotas: trackers per user, logs per tracker (422);
- at most two expensive requests per user at once (429, Retry-After);
- reminders and monthly reports are mailed to verified addresses only.

Logs carry fixed dates in the past; jobs run on the test's clock
(sys.run_jobs). The harness checks at teardown that every process exits
cleanly under ASan."""

import subprocess
import threading

import pytest

import tally
from tally import psql, unique, wait_for

pytestmark = pytest.mark.skipif(not tally.DATABASE_URL, reason="needs DATABASE_URL")



@pytest.fixture(scope="module")
def sys_(tracker_system):
    return tracker_system


class PsqlSession:
    """One psql session kept open, so that a transaction (and the locks it
    holds) spans several steps of a test."""

    def __init__(self):
        self.proc = subprocess.Popen(["psql", tally.DATABASE_URL, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)

    def run(self, sql):
        """Runs one statement; returns its output once it has finished."""
        marker = unique("done")
        self.proc.stdin.write(f"{sql.rstrip().rstrip(';')};\n\\echo {marker}\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line, f"psql ended: {self.proc.stderr.read()}"
            if line.rstrip("\n") == marker:
                return "\n".join(lines)
            lines.append(line.rstrip("\n"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def session():
    s = PsqlSession()
    yield s
    s.close()


def in_background(fn):
    """Runs fn in a thread; returns a function that waits for its result."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(result=fn()), daemon=True)
    thread.start()

    def join():
        thread.join(timeout=90)
        assert "result" in out, "the request did not end"
        return out["result"]
    return join


def waiting_for_lock():
    """How many tracker connections wait for a lock (a row lock here)."""
    return int(psql("SELECT count (*) FROM pg_stat_activity "
                    "WHERE application_name = 'tally-tracker' AND wait_event_type = 'Lock'"))


def count_logs(tracker_id):
    return int(psql(f"SELECT count (*) FROM tracker.logs WHERE tracker_id = '{tracker_id}'"))


# ---------------------------------------------------------------------------
# 1. A log of the wrong type, then a crash

@pytest.mark.parametrize("new_type, choices, status, code", [
    ("multiple_choice", "'{a,b}'", 400, "invalid"),
    # The caller carries their zone: a tracker that became a mood tracker is
    # checked as one (true is not a mood), no longer 409 for want of a zone
    ("mood", "NULL", 400, "invalid"),
])
def test_a_log_is_checked_against_the_type_its_tracker_has_under_the_lock(
        sys_, session, new_type, choices, status, code):
    u = sys_.user()
    t = sys_.tracker(u, "Flag", "boolean")
    # Another writer holds the tracker's row: the log's POST reads the
    # tracker (boolean), finds true fitting, then waits for the row...
    session.run("BEGIN")
    session.run(f"SELECT 1 FROM tracker.trackers WHERE id = '{t['id']}' FOR UPDATE")
    post = in_background(lambda: sys_.post(u, f"/trackers/{t['id']}/logs",
                                           {"value": True, "timestamp": "2025-03-01T10:00:00Z"}))
    wait_for(lambda: waiting_for_lock() == 1, "the log's write waiting for the tracker's row")
    # ...which that writer changes to another type (as a PATCH of a tracker
    # without logs does) before letting go
    session.run(f"UPDATE tracker.trackers SET type = '{new_type}', choices = {choices} "
                f"WHERE id = '{t['id']}'")
    session.run("COMMIT")
    r = post()
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert count_logs(t["id"]) == 0
    assert sys_.get(u, f"/trackers/{t['id']}/stats").status_code == 200


# Rows no write of the service makes: a value of another type, or one out of
# the type's bounds, each (num, flag, choice) with one column set as the
# schema demands. Every tracker also gets one good log.
BAD_ROWS = {
    "numerical": ["NULL, true, NULL", "NULL, NULL, 'x'", "'NaN', NULL, NULL",
                  "'Infinity', NULL, NULL", "'-Infinity', NULL, NULL", "1e300, NULL, NULL"],
    "duration": ["-5, NULL, NULL", "'NaN', NULL, NULL", "NULL, false, NULL", "1e300, NULL, NULL"],
    "boolean": ["1, NULL, NULL", "NULL, NULL, 'true'"],
    "multiple_choice": ["NULL, true, NULL", "2, NULL, NULL", "NULL, NULL, repeat ('x', 5000)"],
    "mood": ["7, NULL, NULL", "3.5, NULL, NULL", "0, NULL, NULL", "'NaN', NULL, NULL",
             "1e300, NULL, NULL", "NULL, true, NULL", "NULL, NULL, 'great'"],
}
GOOD = {"numerical": 2.5, "duration": 60, "boolean": True, "multiple_choice": "a", "mood": 4}
DAY = "2025-03-10"


def insert_rows(user, tracker_id, rows, day=DAY):
    for i, row in enumerate(rows):
        psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num, flag, choice) VALUES "
             f"('{tracker_id}', '{user.id}', '{day}T{10 + i % 10:02d}:00:00Z', {row})")


def read_everything(sys_, user, tracker):
    """Every read that adds logs up; each must answer 200."""
    tid = tracker["id"]
    paths = [f"/trackers/{tid}/stats", f"/trackers/{tid}/stats?from=2025-03-01T00:00:00Z"
             f"&to=2025-03-31T23:59:59Z", f"/trackers/{tid}/chart.png",
             f"/trackers/{tid}/chart.svg?from=2025-03-01T00:00:00Z&to=2025-03-31T23:59:59Z",
             f"/trackers/{tid}/logs.csv", f"/trackers/{tid}/logs", f"/trackers/{tid}",
             "/trackers", "/trackers.csv", "/reports/monthly?month=2025-03&format=html",
             "/reports/monthly?month=2025-03&format=pdf"]
    if tracker["type"] == "mood":
        paths += [f"/trackers/{tid}/board?year=2025", f"/trackers/{tid}/board.png?year=2025"]
    answers = {}
    for path in paths:
        r = sys_.get(user, path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        answers[path] = r
    return answers


@pytest.mark.parametrize("type_", sorted(BAD_ROWS))
def test_rows_of_any_shape_are_skipped_by_stats_charts_boards_and_reports(sys_, type_):
    u = sys_.user()
    extra = {"choices": ["a", "b"]} if type_ == "multiple_choice" else {}
    t = sys_.tracker(u, f"Odd {type_}", type_, **extra)
    if type_ == "mood":       # a mood is logged on its own day only
        insert_rows(u, t["id"], ["4, NULL, NULL"], day="2025-03-09")
    else:
        sys_.log(u, t["id"], GOOD[type_], timestamp=f"{DAY}T09:00:00Z")
    insert_rows(u, t["id"], BAD_ROWS[type_])
    got = read_everything(sys_, u, t)
    stats = got[f"/trackers/{t['id']}/stats"].json()
    assert stats["count"] == 1, stats            # the good log alone
    if type_ in ("numerical", "duration"):
        assert stats["min"] == stats["max"] == GOOD[type_]
    if type_ == "boolean":
        assert stats["true_count"] == 1 and stats["false_count"] == 0
    if type_ == "multiple_choice":
        assert stats["counts"] == {"a": 1, "b": 0}
    if type_ == "mood":
        assert stats["counts"] == {"awful": 0, "bad": 0, "okay": 0, "good": 1, "great": 0}
        board = got[f"/trackers/{t['id']}/board?year=2025"].json()
        assert [d["moods"] for d in board["days"] if d["moods"]] == [[4]]
    csv = got[f"/trackers/{t['id']}/logs.csv"].text.strip().split("\r\n")
    assert len(csv) == 2, csv                     # the header and the good log


def test_a_row_with_no_value_at_all_is_skipped_too(sys_):
    # The schema refuses such a row; lift its check for a moment to make one
    u = sys_.user()
    made = [sys_.tracker(u, "Numbers", "numerical"), sys_.tracker(u, "Mood", "mood"),
            sys_.tracker(u, "Pick", "multiple_choice", choices=["a", "b"]),
            sys_.tracker(u, "Flag", "boolean")]
    psql("ALTER TABLE tracker.logs DROP CONSTRAINT logs_check")
    try:
        for t in made:
            insert_rows(u, t["id"], ["NULL, NULL, NULL"])
        for t in made:
            stats = read_everything(sys_, u, t)[f"/trackers/{t['id']}/stats"].json()
            assert stats["count"] == 0, stats
    finally:
        psql(f"DELETE FROM tracker.logs WHERE owner = '{u.id}'")
        psql("ALTER TABLE tracker.logs ADD CONSTRAINT logs_check "
             "CHECK (num_nonnulls (num, flag, choice) = 1)")


# ---------------------------------------------------------------------------
# 2. Quotas (services/tracker/trk_limits.h)

MAX_TRACKERS = 200
MAX_LOGS = 100000


def add_trackers(user, count):
    psql(f"INSERT INTO tracker.trackers (owner, name, type) SELECT '{user.id}', 'T' || g, "
         f"'numerical' FROM generate_series (1, {count}) AS g")


def add_logs(user, tracker_id, count):
    psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num) SELECT '{tracker_id}', "
         f"'{user.id}', timestamptz '2024-01-01 00:00Z' + g * interval '1 minute', g "
         f"FROM generate_series (1, {count}) AS g")


def owners_trackers(user):
    return int(psql(f"SELECT count (*) FROM tracker.trackers WHERE owner = '{user.id}'"))


def test_a_user_has_at_most_200_trackers(sys_):
    u = sys_.user()
    add_trackers(u, MAX_TRACKERS - 1)
    sys_.tracker(u, "The last one", "boolean")
    r = sys_.post(u, "/trackers", {"name": "One too many", "type": "boolean"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "too_many_trackers"
    assert owners_trackers(u) == MAX_TRACKERS
    # Room again once one goes
    first = sys_.get(u, "/trackers?limit=1").json()["items"][0]
    assert sys_.delete(u, f"/trackers/{first['id']}").status_code == 204
    sys_.tracker(u, "In its place", "boolean")


def test_two_concurrent_creates_cannot_pass_the_tracker_quota(sys_, session):
    u = sys_.user()
    add_trackers(u, MAX_TRACKERS - 1)
    # Hold the owner's lock (the one creates take) while both are sent
    session.run("BEGIN")
    session.run(f"SELECT pg_advisory_xact_lock (hashtextextended ('tracker.trackers:{u.id}', 0))")
    posts = [in_background(lambda: sys_.post(u, "/trackers", {"name": "Race", "type": "mood"}))
             for _ in range(2)]
    wait_for(lambda: waiting_for_lock() == 2, "both creates waiting for the owner's lock")
    session.run("COMMIT")
    statuses = sorted(post().status_code for post in posts)
    assert statuses == [201, 422]
    assert owners_trackers(u) == MAX_TRACKERS


def test_a_tracker_holds_at_most_100000_logs(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Busy", "numerical")
    add_logs(u, t["id"], MAX_LOGS - 1)
    sys_.log(u, t["id"], 1, timestamp="2025-01-01T00:00:00Z")
    r = sys_.post(u, f"/trackers/{t['id']}/logs", {"value": 2, "timestamp": "2025-01-02T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "too_many_logs"
    assert count_logs(t["id"]) == MAX_LOGS


def test_a_csv_import_past_the_log_quota_imports_nothing(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Imported", "numerical")
    add_logs(u, t["id"], MAX_LOGS - 1)
    body = "timestamp,value,note\r\n2025-01-01T00:00:00Z,1,\r\n2025-01-02T00:00:00Z,2,\r\n"
    r = sys_.post(u, f"/trackers/{t['id']}/logs.csv", data=body.encode(),
                  headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "too_many_logs"
    assert count_logs(t["id"]) == MAX_LOGS - 1
    # One row still fits
    one = "timestamp,value,note\r\n2025-01-01T00:00:00Z,1,\r\n"
    r = sys_.post(u, f"/trackers/{t['id']}/logs.csv", data=one.encode(),
                  headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert count_logs(t["id"]) == MAX_LOGS


def test_a_full_tracker_has_room_again_once_a_log_goes(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Full", "numerical")
    add_logs(u, t["id"], MAX_LOGS - 1)
    last = sys_.log(u, t["id"], 1, timestamp="2025-01-01T00:00:00Z")
    path = f"/trackers/{t['id']}/logs"
    assert sys_.post(u, path, {"value": 2}).status_code == 422
    assert sys_.delete(u, f"{path}/{last['id']}").status_code == 204
    assert sys_.post(u, path, {"value": 2}).status_code == 201
    assert count_logs(t["id"]) == MAX_LOGS
    # The count the quota reads is the count of the rows
    assert int(psql(f"SELECT log_count FROM tracker.trackers WHERE id = '{t['id']}'")) == MAX_LOGS


def test_two_concurrent_logs_cannot_pass_the_log_quota(sys_, session):
    u = sys_.user()
    t = sys_.tracker(u, "Raced", "numerical")
    add_logs(u, t["id"], MAX_LOGS - 1)
    session.run("BEGIN")
    session.run(f"SELECT 1 FROM tracker.trackers WHERE id = '{t['id']}' FOR UPDATE")
    posts = [in_background(lambda: sys_.post(u, f"/trackers/{t['id']}/logs",
                                              {"value": 1, "timestamp": "2025-01-01T00:00:00Z"}))
             for _ in range(2)]
    wait_for(lambda: waiting_for_lock() == 2, "both writes waiting for the tracker's row")
    session.run("COMMIT")
    statuses = sorted(post().status_code for post in posts)
    assert statuses == [201, 422]
    assert count_logs(t["id"]) == MAX_LOGS


# ---------------------------------------------------------------------------
# 3. At most two expensive requests per user at once

def slot_key(user, slot):
    return f"hashtextextended ('tracker.expensive:{user.id}:{slot}', 0)"


def tracker_advisory_locks():
    """Advisory locks the tracker service's connections hold."""
    return int(psql("SELECT count (*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND a.application_name = 'tally-tracker'"))


def expensive_requests(sys_, user):
    """One request of each expensive kind: (method, path, kwargs)."""
    numbers = sys_.tracker(user, "Weight", "numerical")
    mood = sys_.tracker(user, "Mood", "mood")
    sys_.log(user, numbers["id"], 70, timestamp="2025-03-10T08:00:00Z")
    csv = "timestamp,value,note\r\n2025-03-11T08:00:00Z,71,\r\n"
    return [("GET", f"/trackers/{numbers['id']}/stats", {}),
            ("GET", f"/trackers/{numbers['id']}/chart.png", {}),
            ("GET", f"/trackers/{numbers['id']}/chart.svg", {}),
            ("GET", f"/trackers/{mood['id']}/board.png?year=2025", {}),
            ("GET", "/reports/monthly?month=2025-03&format=html", {}),
            ("GET", f"/trackers/{numbers['id']}/logs.csv", {}),
            ("GET", "/trackers.csv", {}),
            ("POST", f"/trackers/{numbers['id']}/logs.csv",
             {"data": csv.encode(), "headers": {"Content-Type": "text/csv"}})]


def test_a_third_expensive_request_at_once_is_429_with_retry_after(sys_, session):
    u = sys_.user()
    requests_ = expensive_requests(sys_, u)
    # Two requests of this user running elsewhere: both slots are taken
    session.run(f"SELECT pg_advisory_lock ({slot_key(u, 1)}), pg_advisory_lock ({slot_key(u, 2)})")
    for method, path, kw in requests_:
        r = sys_.request(method, u, path, **kw)
        assert r.status_code == 429, (path, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "too_many_requests"
        assert r.headers["Retry-After"] == "1"
    # Cheap reads and other users are not held back
    assert sys_.get(u, "/trackers").status_code == 200
    other = sys_.user()
    assert sys_.get(other, "/trackers.csv").status_code == 200
    # One slot free again: every kind runs, and gives its slot back
    session.run(f"SELECT pg_advisory_unlock ({slot_key(u, 2)})")
    for method, path, kw in requests_:
        r = sys_.request(method, u, path, **kw)
        assert r.status_code in (200, 201), (path, r.status_code, r.text[:200])
    assert tracker_advisory_locks() == 0


def test_an_expensive_request_gives_its_slot_back_on_every_answer(sys_, session):
    u = sys_.user()
    t = sys_.tracker(u, "Steps", "numerical")
    session.run(f"SELECT pg_advisory_lock ({slot_key(u, 1)})")
    failing = [("GET", "/trackers/00000000-0000-4000-8000-000000000000/stats", {}, 404),
               ("GET", f"/trackers/{t['id']}/stats?from=yesterday", {}, 400),
               ("GET", f"/trackers/{t['id']}/board.png", {}, 422),
               ("GET", "/reports/monthly?month=2025-13", {}, 400),
               ("POST", f"/trackers/{t['id']}/logs.csv",
                {"data": b"timestamp,value,note\r\nnot a time,1,\r\n",
                 "headers": {"Content-Type": "text/csv"}}, 422),
               ("POST", f"/trackers/{t['id']}/logs.csv",
                {"data": b"timestamp,value,note\r\nnot a time,1,\r\n",
                 "headers": {"Content-Type": "text/csv", "Idempotency-Key": unique("k")}}, 422)]
    for method, path, kw, status in failing:
        r = sys_.request(method, u, path, **kw)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        assert tracker_advisory_locks() == 0, path
    assert sys_.get(u, f"/trackers/{t['id']}/stats").status_code == 200
    # ...and the slots still count
    session.run(f"SELECT pg_advisory_lock ({slot_key(u, 2)})")
    assert sys_.get(u, f"/trackers/{t['id']}/stats").status_code == 429
