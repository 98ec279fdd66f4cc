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

import datetime
import subprocess
import threading
import time
from zoneinfo import ZoneInfo

import pytest

import tally
from tally import psql, unique, wait_for

pytestmark = pytest.mark.skipif(not tally.DATABASE_URL, reason="needs DATABASE_URL")

UTC = datetime.timezone.utc
PARIS = ZoneInfo("Europe/Paris")


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
    ("mood", "NULL", 409, "conflict"),
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
