"""Store monitoring's polled sources and report bound (shared/API.md "Store
monitoring", issue #15): PUT/GET/DELETE /stores/source, the hourly durable
job analytics.stores_poll with conditional GETs against a real HTTP server
written here (Python's http.server on a thread, serving the CSVs with ETag
and Last-Modified and counting every request and its conditional headers),
and the per-user bound on report triggers (429).

The hourly job is driven by `tallyctl jobs run-due analytics --at <time>`,
never by waiting for the hour. The private-address guard (polls refused
without TALLY_WEBHOOK_ALLOW_PRIVATE) is test_stores_source_guard.py, with
a service of its own."""

import http.server
import os
import subprocess
import threading
import time

import pytest
import requests

from tally import Cluster, binary, psql, wait_for
from test_analytics_stores import System as StoresSystem

STATUS = "store_id,status,timestamp_utc\n"
HOURS = "store_id,dayOfWeek,start_time_local,end_time_local\n"
ZONES = "store_id,timezone_str\n"


class CsvServer:
    """Serves `files` ({path: (body bytes, etag, last-modified)}) on
    127.0.0.1: 200 with ETag and Last-Modified, or 304 when If-None-Match
    names the file's ETag, or (without If-None-Match) If-Modified-Since is
    its Last-Modified. Records each request as (path, If-None-Match,
    If-Modified-Since, status answered) when it arrives. A path in `held`
    is answered only once its event is set."""

    def __init__(self):
        self.files, self.requests, self.lock = {}, [], threading.Lock()
        self.held = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                with server.lock:
                    entry = server.files.get(self.path)
                    if entry is None:
                        status = 404
                    elif (inm == entry[1]) if inm is not None else (ims == entry[2]):
                        status = 304
                    else:
                        status = 200
                    server.requests.append((self.path, inm, ims, status))
                    hold = server.held.get(self.path)
                if hold is not None:
                    hold.wait(60)
                self.send_response(status)
                if entry is not None:
                    self.send_header("ETag", entry[1])
                    self.send_header("Last-Modified", entry[2])
                body = entry[0] if status == 200 else b"" if status == 304 else b"no such file"
                if status != 304:
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path, text, etag, last_modified):
        with self.lock:
            self.files[path] = (text.encode(), etag, last_modified)

    def hold(self, path):
        """Answers `path` only when the event returned is set."""
        event = threading.Event()
        with self.lock:
            self.held[path] = event
        return event

    def seen(self):
        with self.lock:
            return list(self.requests)

    def taken(self):
        """The requests since the last call."""
        with self.lock:
            out, self.requests = self.requests, []
        return out

    def stop(self):
        with self.lock:
            for event in self.held.values():
                event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class System(StoresSystem):
    """The store-monitoring system of test_analytics_stores, with the
    analytics settings a test gives."""

    def __init__(self, cluster, analytics_env):
        super().__init__(cluster, analytics_env=analytics_env)

    def source(self, user):
        r = self.request("GET", user, "/stores/source")
        assert r.status_code == 200, r.text
        return r.json()

    def run_due(self, hours_ahead):
        """Runs the analytics jobs due `hours_ahead` hours from now."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + hours_ahead * 3600))
        out = subprocess.run([binary("tallyctl"), "jobs", "run-due", "analytics", "--at", at],
                             env=dict(os.environ, TALLY_MESH=self.gw.mesh),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr


def start(analytics_env):
    c = Cluster()
    try:
        system = System(c, analytics_env)
    except BaseException:
        c.stop()
        raise
    return c, system


@pytest.fixture(scope="module")
def sys_():
    c, system = start({"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
    yield system
    failures = c.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture
def web():
    server = CsvServer()
    yield server
    server.stop()


def polls_of(user):
    return int(psql(f"SELECT count (*) FROM analytics.store_polls WHERE owner = '{user.id}'"))


def status_rows(n, first_store=1):
    """n polls of store `first_store`, one a minute from 2023-01-25 10:00 UTC."""
    return "".join(f"{first_store},{'active' if i % 3 else 'inactive'},"
                   f"2023-01-25 {10 + i // 60:02d}:{i % 60:02d}:00 UTC\n" for i in range(n))


LM1 = "Wed, 25 Jan 2023 12:00:00 GMT"
LM2 = "Wed, 25 Jan 2023 13:00:00 GMT"
LM3 = "Wed, 25 Jan 2023 14:00:00 GMT"


def test_a_source_loads_then_sends_its_validators_and_loads_only_what_changed(sys_, web):
    user = sys_.user()
    web.put("/s.csv", STATUS + status_rows(5), '"s1"', LM1)
    web.put("/h.csv", HOURS + "1,0,09:00:00,17:00:00\n1,1,09:00:00,17:00:00\n", '"h1"', LM1)
    web.put("/z.csv", ZONES + "1,Asia/Kolkata\n", '"z1"', LM1)
    r = sys_.request("PUT", user, "/stores/source",
                     json={"status_url": web.url("/s.csv"), "hours_url": web.url("/h.csv"),
                           "timezones_url": web.url("/z.csv")})
    assert r.status_code == 200, r.text
    assert r.json()["status_url"] == web.url("/s.csv")
    assert r.json()["hours_url"] == web.url("/h.csv")

    # The first poll runs at once (enqueued by the PUT): every file loads
    wait_for(lambda: all(f["polled_at"] for f in sys_.source(user)["files"].values()),
             "the first poll", timeout=60)
    first = sys_.source(user)["files"]
    for kind, rows in (("status", 5), ("hours", 2), ("timezones", 1)):
        assert first[kind]["http_status"] == 200 and first[kind]["error"] is None, first
        assert first[kind]["rows"] == rows and first[kind]["loaded_at"], first
        assert first[kind]["bad_lines"] == []
    assert sorted(web.taken()) == [("/h.csv", None, None, 200), ("/s.csv", None, None, 200),
                                   ("/z.csv", None, None, 200)]
    assert polls_of(user) == 5
    assert psql(f"SELECT zone FROM analytics.store_zones WHERE owner = '{user.id}'") \
        == "Asia/Kolkata"
    # The next poll is due in an hour; a poll the database fails is retried
    # on the jobs' back-off for weeks (it alone carries the chain on)
    assert psql("SELECT j.max_attempts FROM analytics.jobs j JOIN analytics.store_sources s"
                " ON j.unique_key LIKE 'analytics.stores_poll:' || s.generation || ':%'"
                f" WHERE s.owner = '{user.id}' AND j.done_at IS NULL") == "1000"
    assert psql(f"SELECT count (*) FROM analytics.store_hours WHERE owner = '{user.id}'") == "2"

    # An hour later: each file asked with its validators, all 304, nothing loaded
    sys_.run_due(1.01)
    assert sorted(web.taken()) == [("/h.csv", '"h1"', LM1, 304), ("/s.csv", '"s1"', LM1, 304),
                                   ("/z.csv", '"z1"', LM1, 304)]
    second = sys_.source(user)["files"]
    for kind in ("status", "hours", "timezones"):
        assert second[kind]["http_status"] == 304 and second[kind]["error"] is None
        assert second[kind]["loaded_at"] == first[kind]["loaded_at"]
        assert second[kind]["polled_at"] > first[kind]["polled_at"]
        assert second[kind]["rows"] == first[kind]["rows"]
    assert polls_of(user) == 5

    # The status file changes (3 more polls, 2 of them repeats): only it loads
    web.put("/s.csv", STATUS + status_rows(7) + status_rows(1), '"s2"', LM2)
    sys_.run_due(2.02)
    assert sorted(web.taken()) == [("/h.csv", '"h1"', LM1, 304), ("/s.csv", '"s1"', LM1, 200),
                                   ("/z.csv", '"z1"', LM1, 304)]
    third = sys_.source(user)["files"]
    assert third["status"]["http_status"] == 200 and third["status"]["rows"] == 8
    assert third["status"]["loaded_at"] > first["status"]["loaded_at"]
    assert third["hours"]["loaded_at"] == first["hours"]["loaded_at"]
    assert polls_of(user) == 7          # 5 kept, 2 new; repeated times kept once

    # A bad file: nothing of it is loaded, the error and its lines recorded
    bad = STATUS + status_rows(2) + "1,sleeping,2023-01-25 11:00:00 UTC\n" \
        + "x,active,2023-01-25 11:01:00 UTC\n" + status_rows(1, first_store=2)
    web.put("/s.csv", bad, '"s3"', LM3)
    sys_.run_due(3.03)
    assert ("/s.csv", '"s2"', LM2, 200) in web.taken()
    fourth = sys_.source(user)["files"]["status"]
    assert fourth["error"].startswith("invalid_rows: 2 bad lines"), fourth
    assert [b["line"] for b in fourth["bad_lines"]] == [4, 5]
    assert "status" in fourth["bad_lines"][0]["reason"]
    assert "store_id" in fourth["bad_lines"][1]["reason"]
    assert fourth["loaded_at"] == third["status"]["loaded_at"] and fourth["rows"] == 8
    assert polls_of(user) == 7
    assert psql(f"SELECT count (*) FROM analytics.stores WHERE owner = '{user.id}' "
                "AND store_id = 2") == "0"

    # The refused file's validators were not kept: it is fetched whole again
    sys_.run_due(4.04)
    assert ("/s.csv", '"s2"', LM2, 200) in web.taken()
    # Fixed: it loads, and the error is gone
    web.put("/s.csv", STATUS + status_rows(1, first_store=2), '"s4"', LM3)
    sys_.run_due(5.05)
    assert ("/s.csv", '"s2"', LM2, 200) in web.taken()
    fifth = sys_.source(user)["files"]["status"]
    assert fifth["error"] is None and fifth["bad_lines"] == [] and fifth["rows"] == 1
    assert polls_of(user) == 8

    # DELETE stops the polls; the data stays
    assert sys_.request("DELETE", user, "/stores/source").status_code == 204
    assert sys_.request("GET", user, "/stores/source").status_code == 404
    assert sys_.request("DELETE", user, "/stores/source").status_code == 404
    sys_.run_due(6.06)
    sys_.run_due(7.07)
    assert web.taken() == []
    assert polls_of(user) == 8


def test_a_failing_server_and_a_replaced_source(sys_, web):
    user = sys_.user()
    web.put("/z.csv", ZONES + "1,Europe/Paris\n", '"z1"', LM1)
    # Only the zones, at a path that is missing: HTTP 404 recorded
    r = sys_.request("PUT", user, "/stores/source", json={"timezones_url": web.url("/nope.csv")})
    assert r.status_code == 200, r.text
    assert r.json()["status_url"] is None and set(r.json()["files"]) == {"timezones"}
    wait_for(lambda: sys_.source(user)["files"]["timezones"]["polled_at"], "the first poll",
             timeout=60)
    state = sys_.source(user)["files"]["timezones"]
    assert state["http_status"] == 404 and state["loaded_at"] is None
    assert "404" in state["error"]
    assert web.taken() == [("/nope.csv", None, None, 404)]

    # Replaced: the new one is polled at once, the old chain stops
    r = sys_.request("PUT", user, "/stores/source", json={"timezones_url": web.url("/z.csv"),
                                                           "status_url": None})
    assert r.status_code == 200, r.text
    assert r.json()["files"]["timezones"]["polled_at"] is None
    wait_for(lambda: sys_.source(user)["files"]["timezones"]["loaded_at"], "the new poll",
             timeout=60)
    assert web.taken() == [("/z.csv", None, None, 200)]
    sys_.run_due(1.01)
    # One poll due (the new chain's), not two
    assert web.taken() == [("/z.csv", '"z1"', LM1, 304)]
    assert psql(f"SELECT zone FROM analytics.store_zones WHERE owner = '{user.id}'") \
        == "Europe/Paris"
    assert sys_.request("DELETE", user, "/stores/source").status_code == 204


def test_a_source_is_not_changed_while_it_is_polled(sys_, web):
    user = sys_.user()
    web.put("/z.csv", ZONES + "1,Europe/Paris\n", '"z1"', LM1)
    release = web.hold("/z.csv")
    r = sys_.request("PUT", user, "/stores/source", json={"timezones_url": web.url("/z.csv")})
    assert r.status_code == 200, r.text
    # The poll has asked and waits for its answer: the source is held
    wait_for(lambda: web.seen(), "the poll's request", timeout=60)
    for method, body in (("PUT", {"status_url": web.url("/s.csv")}), ("DELETE", None)):
        r = sys_.request(method, user, "/stores/source", json=body)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "poll_running" and int(r.headers["Retry-After"]) > 0
    r = sys_.request("GET", user, "/stores/source")
    assert r.status_code == 200 and r.json()["status_url"] is None, r.text
    release.set()
    wait_for(lambda: sys_.source(user)["files"]["timezones"]["loaded_at"], "the poll's end",
             timeout=60)
    assert web.taken() == [("/z.csv", None, None, 200)]
    assert sys_.request("DELETE", user, "/stores/source").status_code == 204


@pytest.mark.parametrize("body, field", [
    ({}, None),
    ({"status_url": None}, None),
    ({"status_url": "ftp://example.com/s.csv"}, "status_url"),
    ({"hours_url": "example.com/h.csv"}, "hours_url"),
    ({"timezones_url": "http://example.com/" + "a" * 2040}, "timezones_url"),
    ({"status_url": 7}, "status_url"),
    ({"status_url": "http://example.com/s.csv#frag"}, "status_url"),
])
def test_a_bad_source_is_refused_and_nothing_changes(sys_, body, field):
    user = sys_.user()
    jobs = "SELECT count (*) FROM analytics.jobs WHERE kind = 'analytics.stores_poll'"
    before = psql(jobs)
    r = sys_.request("PUT", user, "/stores/source", json=body)
    assert r.status_code == 400, r.text
    if field:
        assert field in r.text
    assert sys_.request("GET", user, "/stores/source").status_code == 404
    assert psql(jobs) == before


def test_the_source_needs_a_user(sys_):
    for method in ("GET", "PUT", "DELETE"):
        body = {"status_url": "http://example.com/s.csv"} if method == "PUT" else None
        r = requests.request(method, sys_.url("/stores/source"), timeout=30, json=body)
        assert r.status_code == 401, r.text


def test_report_triggers_are_bounded_per_user(sys_):
    user, other = sys_.user(), sys_.user()
    r = sys_.request("POST", user, "/stores/data?kind=status",
                     data=(STATUS + status_rows(3)).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    # Three reports running or queued (made running by hand: no job runs them)
    ids = [psql(f"INSERT INTO analytics.store_reports (owner) VALUES ('{user.id}') RETURNING id")
           .splitlines()[0] for _ in range(3)]
    r = sys_.request("POST", user, "/stores/reports")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_reports"
    assert int(r.headers["Retry-After"]) > 0
    count = f"SELECT count (*) FROM analytics.store_reports WHERE owner = '{user.id}'"
    assert psql(count) == "3"
    # Another user is not bound by them
    assert sys_.request("POST", other, "/stores/reports").status_code == 202
    # One failed, one older than the 30 days reports are kept: two places free
    psql(f"UPDATE analytics.store_reports SET status = 'failed' WHERE id = '{ids[0]}'")
    psql(f"UPDATE analytics.store_reports SET created_at = now () - interval '31 days' "
         f"WHERE id = '{ids[1]}'")
    r = sys_.request("POST", user, "/stores/reports")
    assert r.status_code == 202, r.text
    report_id = r.json()["report_id"]
    wait_for(lambda: sys_.request("GET", user, f"/stores/reports/{report_id}").json()["status"]
             == "complete", "the report", timeout=60)
    # Once complete it no longer counts: one more fits, then the bound again
    r = sys_.request("POST", user, "/stores/reports")
    assert r.status_code == 202, r.text
