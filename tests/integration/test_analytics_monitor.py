"""API monitoring (issue #14) over HTTP against real processes: a gateway,
the auth service, the analytics service (its jobs run on the test's clock
through `tallyctl jobs run-due`), a flask-monitoring-dashboard stand-in
(fmd_peer.py) and a Python peer standing in for the notification service.
Every statistic is compared with numpy on the same calls."""

import collections
import datetime
import math
import os
import subprocess
import threading
import time

import numpy as np
import pytest
import requests

import tally
from fmd_peer import FmdPeer, unix
from mesh_client import MeshClient, Worker
from tally import binary, unique, wait_for, wait_instances
from tracker_system import PASSWORD, User, new_address

API = "/api/v1"
# The test's clock: calls from Monday 2031-01-06, the jobs run on the 28th
CLOCK = datetime.datetime(2031, 1, 28, tzinfo=datetime.timezone.utc)
FMD_TOKEN = "tally-exports-itself-0123456789"


def rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class System:
    def __init__(self, cluster):
        self.cluster = cluster
        # The notification service's own declaration (built in); a Python
        # peer plays the service and records what it is asked to create
        self.gw = cluster.gateway(env={"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"})
        tally.auth(cluster, [self.gw], env={"TALLY_REQUIRE_VERIFICATION": "false",
                                            "TALLY_PROTO_EXTRA": ""})
        tally.analytics(cluster, [self.gw], env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1",
                                                 "TALLY_RUN_JOBS": "0",
                                                 "TALLY_FMD_TOKEN": FMD_TOKEN})
        self.notifications, self.lock = [], threading.Lock()

        def notify(request):
            if request.get("method") != "notification.create":
                return 200, {}      # an event delivered to the service: taken
            with self.lock:
                self.notifications.append((request["caller"]["kind"], request["body"]))
            return 201, {"id": unique("n"), "seq": len(self.notifications)}

        self.notifier = Worker([self.gw.mesh], "notification", notify, capacity=2).start()
        wait_instances(self.gw, 1, service="auth", timeout=60)
        wait_instances(self.gw, 1, service="analytics", timeout=60)
        wait_instances(self.gw, 1, service="notification", timeout=60)

    def stop(self):
        self.notifier.stop()

    def request(self, method, user, path, **kw):
        return requests.request(method, self.gw.url + API + path,
                                headers=user.headers if user else {}, timeout=60, **kw)

    def user(self):
        name = unique("m")
        client = {"X-Forwarded-For": new_address()}
        r = requests.post(self.gw.url + API + "/auth/register",
                          json={"username": name, "email": f"{name}@example.com",
                                "password": PASSWORD}, headers=client, timeout=30)
        assert r.status_code == 201, r.text
        r = requests.post(self.gw.url + API + "/auth/login",
                          json={"login": name, "password": PASSWORD}, headers=client, timeout=30)
        assert r.status_code == 200, r.text
        return User(name, r.json()["user"]["id"], r.json()["token"])

    def super_admin(self):
        """A super admin, made by the operator's tool."""
        name = unique("root")
        out = subprocess.run([binary("tallyctl"), "user", "create", "--super-admin",
                              "--username", name, "--email", f"{name}@example.com"],
                             input=PASSWORD + "\n", capture_output=True, text=True, timeout=150,
                             env=dict(os.environ, TALLY_MESH=self.gw.mesh))
        assert out.returncode == 0, out.stderr
        r = requests.post(self.gw.url + API + "/auth/login",
                          json={"login": name, "password": PASSWORD},
                          headers={"X-Forwarded-For": new_address()}, timeout=30)
        assert r.status_code == 200, r.text
        return User(name, r.json()["user"]["id"], r.json()["token"])

    def run_jobs(self, at):
        out = subprocess.run([binary("tallyctl"), "jobs", "run-due", "analytics",
                              "--at", rfc3339(at)],
                             env=dict(os.environ, TALLY_MESH=self.gw.mesh),
                             capture_output=True, text=True, timeout=150)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def add(self, user, peer, name="api"):
        r = self.request("POST", user, "/dashboards",
                         json={"name": name, "url": peer.url, "token": peer.token})
        assert r.status_code == 201, r.text
        return r.json()

    def stat(self, user, dash, statistic, start, end, **params):
        params.update({"statistic": statistic, "start_date": start, "end_date": end})
        return self.request("GET", user, f"/dashboards/{dash['id']}/statistics", params=params)


@pytest.fixture(scope="module")
def system():
    c = tally.Cluster()
    try:
        s = System(c)
    except BaseException:
        c.stop()
        raise
    yield s
    s.stop()
    failures = c.stop()
    assert not failures, "\n".join(failures)


def make_calls(peer, seed, count=400, days=21, endpoints=("main.index", "api.users", "api.orders"),
               start=datetime.datetime(2031, 1, 6, 0, 0, 7), ips=11):
    """`count` calls over `days` days from `start`, random but fixed by
    `seed`, from `ips` addresses (an endpoint named twice is picked twice as
    often)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        at = start + datetime.timedelta(microseconds=int(rng.integers(0, days * 86400 * 10**6)))
        endpoint = endpoints[int(rng.integers(0, len(endpoints)))]
        ms = round(float(rng.gamma(2.0, 40.0)), 3)
        address = int(rng.integers(1, ips + 1))
        call = {"endpoint": endpoint, "ms": ms, "at": at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "ip": f"10.0.{address // 250}.{address % 250}"}
        peer.add(call["endpoint"], call["ms"], call["at"], ip=call["ip"])
        out.append(call)
    return out


def expected(statistic, calls):
    """The statistic of `calls` as numpy computes it (linear percentiles)."""
    d = np.array([c["ms"] for c in calls], dtype=float)
    ips = [c["ip"] for c in calls]
    counts = {"total_visits": len(calls), "unique_visitors": len(set(ips)),
              "visits_per_ip": dict(collections.Counter(ips))}
    if statistic in counts:
        return counts[statistic]
    if len(d) == 0:
        return None
    return {
        "total_execution_time": d.sum(),
        "average_execution_time": d.mean(),
        "fastest_measured_execution_time": d.min(),
        "fastest_quartile_execution_time": np.percentile(d, 25),
        "median_execution_time": np.percentile(d, 50),
        "slowest_quartile_execution_time": np.percentile(d, 75),
        "ninetieth_percentile_execution_time": np.percentile(d, 90),
        "ninety-ninth_percentile_execution_time": np.percentile(d, 99),
        "slowest_measured_execution_time": d.max(),
    }[statistic]


STATISTICS = ["total_visits", "total_execution_time", "average_execution_time", "visits_per_ip",
              "unique_visitors", "fastest_measured_execution_time",
              "fastest_quartile_execution_time", "median_execution_time",
              "slowest_quartile_execution_time", "ninetieth_percentile_execution_time",
              "ninety-ninth_percentile_execution_time", "slowest_measured_execution_time"]


def same(got, want):
    if want is None or isinstance(want, (int, dict)) and not isinstance(want, bool):
        return got == want
    return got is not None and abs(got - want) <= 1e-9 * max(1.0, abs(want))


def between(calls, start, end, endpoint=None):
    lo, hi = start.timestamp(), end.timestamp()
    return [c for c in calls if lo <= unix(c["at"]) < hi
            and (endpoint is None or c["endpoint"] == endpoint)]


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def backfilled(system):
    """A user's dashboard over 400 calls, back-filled at CLOCK."""
    peer = FmdPeer(token="tok-" + unique()).start()
    calls = make_calls(peer, seed=14)
    user = system.user()
    dash = system.add(user, peer)
    assert dash["state"] == "backfilling"
    assert {e["name"] for e in dash["endpoints"]} == {"main.index", "api.users", "api.orders"}
    system.run_jobs(CLOCK)
    yield user, dash, peer, calls
    peer.stop()


def test_backfill_goes_week_by_week_from_the_first_request(system, backfilled):
    user, dash, peer, calls = backfilled
    windows = [tuple(int(x) for x in p.split("/")[1:]) for p in peer.requests
               if p.startswith("get_json_data/")]
    first = int(min(unix(c["at"]) for c in calls))
    assert windows[0][0] == first - 1
    for (a, b), (c, _) in zip(windows, windows[1:]):
        assert b - a == 7 * 86400 and c == b
    assert windows[-1][1] == int(CLOCK.timestamp())
    r = system.request("GET", user, f"/dashboards/{dash['id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "ok" and body["error"] is None
    assert body["last_fetch_at"] == "2031-01-28T00:00:00Z"
    per_endpoint = collections.Counter(c["endpoint"] for c in calls)
    assert {e["name"]: e["calls"] for e in body["endpoints"]} == dict(per_endpoint)
    assert all(e["enabled"] for e in body["endpoints"])
    # The hourly fetch is next; one the database fails is retried on the
    # jobs' back-off for weeks (it alone carries the chain on)
    assert tally.psql("SELECT max_attempts FROM analytics.jobs WHERE done_at IS NULL"
                      f" AND unique_key LIKE 'analytics.fetch:{dash['id']}:%'") == "1000"


@pytest.mark.parametrize("statistic", STATISTICS)
def test_statistic_over_a_range_matches_numpy(system, backfilled, statistic):
    user, dash, peer, calls = backfilled
    # Whole days (the hourly aggregates answer counts and sums) and an
    # unaligned range (the calls answer), all endpoints and one
    for start, end, endpoint in [(utc(2031, 1, 1), utc(2031, 2, 1), None),
                                 (utc(2031, 1, 8, 3, 17, 5), utc(2031, 1, 19, 22, 0, 31), None),
                                 (utc(2031, 1, 7), utc(2031, 1, 21), "api.users")]:
        params = {"endpoint": endpoint} if endpoint else {}
        r = system.stat(user, dash, statistic, rfc3339(start), rfc3339(end), **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["statistic"] == statistic
        want = expected(statistic, between(calls, start, end, endpoint))
        assert same(body["value"], want), (start, end, endpoint, body["value"], want)


@pytest.mark.parametrize("statistic", ["total_visits", "average_execution_time",
                                       "median_execution_time", "unique_visitors",
                                       "slowest_measured_execution_time"])
def test_statistic_in_time_slices_matches_numpy(system, backfilled, statistic):
    user, dash, peer, calls = backfilled
    cases = [
        # static days from a date: calendar days in UTC
        ("2031-01-05", "2031-01-29", "day", "true", 24 * 3600, utc(2031, 1, 5)),
        # static hours over one day (aggregates)
        ("2031-01-10", "2031-01-11", "hour", "true", 3600, utc(2031, 1, 10)),
        # dynamic days stepping from an unaligned start
        ("2031-01-06T05:30:00Z", "2031-01-20T05:30:00Z", "day", "false", 24 * 3600,
         utc(2031, 1, 6, 5, 30)),
    ]
    for start, end, unit, static, step, origin in cases:
        r = system.stat(user, dash, statistic, start, end, timeslice=unit,
                        timeslice_is_static=static)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["timeslice"] == unit
        slices = body["slices"]
        span = datetime.datetime.fromisoformat(end.replace("Z", "+00:00")) if "T" in end \
            else datetime.datetime.fromisoformat(end + "T00:00:00+00:00")
        assert len(slices) == round((span - origin).total_seconds() / step)
        for i, item in enumerate(slices):
            lo = origin + datetime.timedelta(seconds=i * step)
            hi = min(lo + datetime.timedelta(seconds=step), span)
            assert item["start"] == rfc3339(lo)
            want = expected(statistic, between(calls, lo, hi))
            assert same(item["value"], want), (unit, static, i, item["value"], want)


@pytest.mark.parametrize("statistic", ["unique_visitors", "visits_per_ip"])
def test_visitors_of_one_endpoint_in_time_slices_match_numpy(system, backfilled, statistic):
    """With an endpoint picked the addresses come from the calls, slice by
    slice (whole days and an unaligned dynamic slicing)."""
    user, dash, peer, calls = backfilled
    for start, end, unit, static, step in [(utc(2031, 1, 5), utc(2031, 1, 29), "day", "true",
                                            86400),
                                           (utc(2031, 1, 6, 5, 30), utc(2031, 1, 20, 5, 30),
                                            "day", "false", 86400)]:
        r = system.stat(user, dash, statistic, rfc3339(start), rfc3339(end), timeslice=unit,
                        timeslice_is_static=static, endpoint="api.users")
        assert r.status_code == 200, r.text
        slices = r.json()["slices"]
        assert len(slices) == round((end - start).total_seconds() / step)
        for i, item in enumerate(slices):
            lo = start + datetime.timedelta(seconds=i * step)
            want = expected(statistic, between(calls, lo, min(lo + datetime.timedelta(
                seconds=step), end), "api.users"))
            assert same(item["value"], want), (statistic, i, item["value"], want)


def test_static_months_and_weeks_are_calendar_slices(system, backfilled):
    user, dash, peer, calls = backfilled
    r = system.stat(user, dash, "total_visits", "2030-12-15", "2031-02-10",
                    timeslice="month", timeslice_is_static="true")
    assert r.status_code == 200, r.text
    assert [(s["start"], s["value"]) for s in r.json()["slices"]] == [
        ("2030-12-15T00:00:00Z", 0), ("2031-01-01T00:00:00Z", len(calls)),
        ("2031-02-01T00:00:00Z", 0)]
    r = system.stat(user, dash, "total_visits", "2031-01-08", "2031-01-22",
                    timeslice="week", timeslice_is_static="true")
    starts = [s["start"] for s in r.json()["slices"]]
    assert starts == ["2031-01-08T00:00:00Z", "2031-01-13T00:00:00Z", "2031-01-20T00:00:00Z"]
    assert r.json()["slices"][1]["value"] == len(between(calls, utc(2031, 1, 13),
                                                         utc(2031, 1, 20)))


def test_boxplots_per_endpoint_match_numpy(system, backfilled):
    user, dash, peer, calls = backfilled
    start, end = utc(2031, 1, 9), utc(2031, 1, 24, 12)
    r = system.request("GET", user, f"/dashboards/{dash['id']}/boxplots",
                       params={"start_date": rfc3339(start), "end_date": rfc3339(end)})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["endpoint"] for i in items] == sorted({c["endpoint"] for c in calls})
    for item in items:
        d = np.array([c["ms"] for c in between(calls, start, end, item["endpoint"])])
        assert item["count"] == len(d)
        for key, want in [("min", d.min()), ("q1", np.percentile(d, 25)),
                          ("median", np.percentile(d, 50)), ("q3", np.percentile(d, 75)),
                          ("max", d.max())]:
            assert same(item[key], want), (item, key, want)


def test_a_range_without_calls_answers_zero_or_null(system, backfilled):
    user, dash, peer, calls = backfilled
    for statistic in STATISTICS:
        r = system.stat(user, dash, statistic, "2030-01-01", "2030-02-01")
        assert r.status_code == 200, r.text
        want = {"total_visits": 0, "unique_visitors": 0, "visits_per_ip": {}}.get(statistic)
        assert r.json()["value"] == want, statistic


@pytest.mark.parametrize("params, code", [
    ({}, "statistic"),
    ({"statistic": "fastest_visits"}, "statistic"),
    ({"statistic": "total_visits", "start_date": "2031-13-01"}, "start_date"),
    ({"statistic": "total_visits", "end_date": "tomorrow"}, "end_date"),
    ({"statistic": "total_visits", "start_date": "2031-02-01"}, "end_date"),
    ({"statistic": "total_visits", "timeslice": "day"}, "timeslice_is_static"),
    ({"statistic": "total_visits", "timeslice": "day", "timeslice_is_static": "maybe"},
     "timeslice_is_static"),
    ({"statistic": "total_visits", "timeslice": "month", "timeslice_is_static": "false"},
     "timeslice"),
    ({"statistic": "total_visits", "timeslice": "year", "timeslice_is_static": "false"},
     "timeslice"),
    ({"statistic": "total_visits", "timeslice": "fortnight", "timeslice_is_static": "true"},
     "timeslice"),
    ({"statistic": "total_visits", "timeslice": "minute", "timeslice_is_static": "true"},
     "timeslice"),       # 44 640 slices in January
    ({"statistic": "total_visits", "endpoint": "no.such"}, "endpoint"),
])
def test_malformed_parameters_are_400_naming_them(system, backfilled, params, code):
    user, dash, peer, calls = backfilled
    query = {"start_date": "2031-01-01", "end_date": "2031-02-01"}
    query.update(params)
    r = system.request("GET", user, f"/dashboards/{dash['id']}/statistics", params=query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


def test_another_users_dashboard_is_403_and_an_unknown_one_404(system, backfilled):
    user, dash, peer, calls = backfilled
    other = system.user()
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""),
                         ("GET", "/statistics?statistic=total_visits&start_date=2031-01-01"
                                 "&end_date=2031-02-01"),
                         ("GET", "/boxplots?start_date=2031-01-01&end_date=2031-02-01")]:
        kw = {"json": {"name": "mine now"}} if method == "PATCH" else {}
        r = system.request(method, other, f"/dashboards/{dash['id']}{path}", **kw)
        assert r.status_code == 403, (method, path, r.text)
        r = system.request(method, other, f"/dashboards/00000000-0000-4000-8000-000000000000{path}",
                           **kw)
        assert r.status_code == 404, (method, path, r.text)
    assert system.request("GET", other, "/dashboards").json()["items"] == []
    assert system.request("GET", None, "/dashboards").status_code == 401
    r = system.request("GET", user, f"/dashboards/{dash['id']}")
    assert r.json()["name"] == "api"


def test_adding_checks_the_url_and_token_and_stores_nothing_otherwise(system):
    peer = FmdPeer(token="right").start()
    peer.add("main.index", 3.0, "2031-01-06 00:00:00")
    user = system.user()
    try:
        cases = [
            ({"url": f"http://127.0.0.1:{tally.free_port()}/dashboard"}, "unreachable"),
            ({"url": peer.url.replace("/dashboard", "/nothing")}, "unreachable"),
            ({"token": "wrong"}, "bad_token"),
        ]
        for change, code in cases:
            body = {"name": "x", "url": peer.url, "token": peer.token}
            body.update(change)
            r = system.request("POST", user, "/dashboards", json=body)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == code
        peer.mode = "slow"
        r = system.request("POST", user, "/dashboards",
                           json={"name": "x", "url": peer.url, "token": peer.token})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unreachable"
        for body in [{"name": "x", "url": "ftp://example.com/", "token": "t"},
                     {"name": "", "url": peer.url, "token": "t"},
                     {"name": "x", "url": peer.url, "token": ""}]:
            assert system.request("POST", user, "/dashboards", json=body).status_code == 400
        assert system.request("GET", user, "/dashboards").json()["items"] == []
    finally:
        peer.stop()


def test_hourly_fetch_starts_after_the_last_fetched_call(system):
    peer = FmdPeer(token="hourly").start()
    peer.add("main.index", 10.0, "2031-01-27 23:00:00.500000", ip="10.1.0.1")
    user = system.user()
    dash = system.add(user, peer)
    system.run_jobs(CLOCK)
    # Newer calls, one in the same second as the last one fetched
    peer.add("main.index", 20.0, "2031-01-27 23:00:00.750000", ip="10.1.0.2")
    peer.add("api.new", 30.0, "2031-01-28 00:30:00", ip="10.1.0.2")
    peer.requests.clear()
    system.run_jobs(CLOCK + datetime.timedelta(minutes=30))      # not due yet
    assert peer.requests == []
    system.run_jobs(CLOCK + datetime.timedelta(hours=1))
    last = int(unix("2031-01-27 23:00:00.500000"))
    assert f"get_json_data/{last}/{int(CLOCK.timestamp()) + 3600}" in peer.requests
    r = system.stat(user, dash, "total_visits", "2031-01-27", "2031-01-29")
    assert r.json()["value"] == 3
    r = system.stat(user, dash, "total_execution_time", "2031-01-27", "2031-01-29")
    assert r.json()["value"] == 60.0
    names = {e["name"] for e in system.request("GET", user, f"/dashboards/{dash['id']}")
             .json()["endpoints"]}
    assert names == {"main.index", "api.new"}
    peer.stop()


@pytest.fixture(scope="module")
def skewed(system):
    """A dashboard of 1 500 calls from 300 addresses over ten days: main.index
    60 %, api.users 30 %, api.orders 10 %."""
    peer = FmdPeer(token="skew-" + unique()).start()
    calls = make_calls(peer, seed=21, count=1500, days=10, ips=300,
                       endpoints=("main.index",) * 6 + ("api.users",) * 3 + ("api.orders",))
    user = system.user()
    dash = system.add(user, peer)
    system.run_jobs(CLOCK)
    yield user, dash, calls
    peer.stop()


# Each case: the endpoints disabled and the one picked. The service reads
# the addresses either from the counted endpoints' calls or from the daily
# aggregates less the other endpoints' calls, whichever set of calls is
# smaller in the range; the comments say which each case takes.
VISITOR_CASES = [
    ({"api.orders"}, None),             # 90 % counted: less 10 %
    ({"main.index"}, None),             # 40 % counted: read directly
    ({"api.orders"}, "main.index"),     # 60 % counted: less 40 %
    (set(), "api.users"),               # 30 % counted: read directly
    (set(), None),                      # everything: the daily aggregates alone
    ({"api.users"}, "api.users"),       # the one picked is disabled: nothing
]


@pytest.mark.parametrize("statistic", ["unique_visitors", "visits_per_ip"])
@pytest.mark.parametrize("disabled,endpoint", VISITOR_CASES)
def test_visitors_of_some_endpoints_match_numpy_either_way(system, skewed, statistic, disabled,
                                                            endpoint):
    user, dash, calls = skewed
    r = system.request("PATCH", user, f"/dashboards/{dash['id']}",
                       json={"endpoints": [{"name": name, "enabled": name not in disabled}
                                           for name in ("main.index", "api.users",
                                                        "api.orders")]})
    assert r.status_code == 200, r.text
    counted = [c for c in calls if c["endpoint"] not in disabled
               and (endpoint is None or c["endpoint"] == endpoint)]
    # Whole and unaligned ranges, static and dynamic days, and hours (day
    # slices without a whole day, and across midnight)
    cases = [(utc(2031, 1, 1), utc(2031, 2, 1), None, None, None),
             (utc(2031, 1, 7, 3, 17, 5), utc(2031, 1, 13, 22, 0, 31), None, None, None),
             (utc(2031, 1, 5), utc(2031, 1, 17), "day", "true", 86400),
             (utc(2031, 1, 6, 5, 30), utc(2031, 1, 12, 5, 30), "day", "false", 86400),
             (utc(2031, 1, 9, 19), utc(2031, 1, 10, 5), "hour", "true", 3600),
             (utc(2031, 1, 9, 21, 30), utc(2031, 1, 10, 2, 30), "hour", "false", 3600)]
    for start, end, unit, static, step in cases:
        params = {"endpoint": endpoint} if endpoint else {}
        if unit:
            params.update(timeslice=unit, timeslice_is_static=static)
        r = system.stat(user, dash, statistic, rfc3339(start), rfc3339(end), **params)
        assert r.status_code == 200, r.text
        body = r.json()
        if not unit:
            assert body["value"] == expected(statistic, between(counted, start, end)), (start, end)
            continue
        slices = body["slices"]
        assert len(slices) == round((end - start).total_seconds() / step)
        for i, item in enumerate(slices):
            lo = start + datetime.timedelta(seconds=i * step)
            want = expected(statistic, between(counted, lo, lo + datetime.timedelta(seconds=step)))
            assert item["value"] == want, (unit, static, i, item["value"], want)


def test_visits_per_ip_lists_the_1000_most_visited_ties_in_byte_order(system):
    """Past 1 000 addresses in a slice, visits_per_ip keeps the most visited
    first and breaks ties in the addresses' byte order, whichever way the
    addresses are read: every endpoint (the daily aggregates), api.a (its
    calls: fewer than the others') and api.b (the daily aggregates less
    api.a's calls)."""
    peer = FmdPeer(token="many").start()
    calls = []
    for i in range(1010):
        # '10.4.1.9' sorts after '10.4.1.10' in bytes: not numeric order
        ip = f"10.4.{i // 100}.{i % 100}"
        endpoints = ["api.a", "api.b"] + (["api.b", "api.b"] if i % 200 == 7 else [])
        for day, endpoint in enumerate(endpoints):
            at = f"2031-01-1{day} {i // 60 % 24:02d}:{i % 60:02d}:00"
            peer.add(endpoint, 1.0 + day, at, ip=ip)
            calls.append({"endpoint": endpoint, "ip": ip})
    user = system.user()
    dash = system.add(user, peer)
    system.run_jobs(CLOCK)

    def top(endpoint):
        counts = collections.Counter(c["ip"] for c in calls
                                     if endpoint is None or c["endpoint"] == endpoint)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:1000]

    for endpoint in [None, "api.a", "api.b"]:
        params = {"endpoint": endpoint} if endpoint else {}
        r = system.stat(user, dash, "visits_per_ip", "2031-01-01", "2031-02-01", **params)
        assert r.status_code == 200, r.text
        assert list(r.json()["value"].items()) == top(endpoint), endpoint
        r = system.stat(user, dash, "visits_per_ip", "2031-01-01", "2031-02-01",
                        timeslice="month", timeslice_is_static="true", **params)
        assert r.status_code == 200, r.text
        assert list(r.json()["slices"][0]["value"].items()) == top(endpoint), endpoint
    peer.stop()


def test_disabled_endpoints_are_left_out_and_dashboards_renamed(system):
    peer = FmdPeer(token="enable").start()
    calls = make_calls(peer, seed=7, count=60, days=3)
    user = system.user()
    dash = system.add(user, peer)
    system.run_jobs(CLOCK)
    r = system.request("PATCH", user, f"/dashboards/{dash['id']}",
                       json={"name": "renamed", "endpoints": [{"name": "api.users",
                                                                "enabled": False}]})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed"
    assert {e["name"]: e["enabled"] for e in r.json()["endpoints"]}["api.users"] is False
    kept = [c for c in calls if c["endpoint"] != "api.users"]
    r = system.stat(user, dash, "median_execution_time", "2031-01-01", "2031-02-01")
    assert same(r.json()["value"], expected("median_execution_time", kept))
    r = system.stat(user, dash, "total_visits", "2031-01-01", "2031-02-01")
    assert r.json()["value"] == len(kept)
    # Addresses without the disabled endpoint: whole and in daily slices
    for statistic in ["unique_visitors", "visits_per_ip"]:
        r = system.stat(user, dash, statistic, "2031-01-01", "2031-02-01")
        assert r.json()["value"] == expected(statistic, kept), statistic
        r = system.stat(user, dash, statistic, "2031-01-05", "2031-01-10", timeslice="day",
                        timeslice_is_static="true")
        for i, item in enumerate(r.json()["slices"]):
            lo = utc(2031, 1, 5 + i)
            want = expected(statistic, between(kept, lo, lo + datetime.timedelta(days=1)))
            assert item["value"] == want, (statistic, i, item["value"], want)
    r = system.request("PATCH", user, f"/dashboards/{dash['id']}",
                       json={"endpoints": [{"name": "no.such", "enabled": False}]})
    assert r.status_code == 400
    r = system.request("PATCH", user, f"/dashboards/{dash['id']}",
                       json={"endpoints": [{"name": "api.users", "enabled": "no"}]})
    assert r.status_code == 400
    assert system.request("DELETE", user, f"/dashboards/{dash['id']}").status_code == 204
    assert system.request("GET", user, f"/dashboards/{dash['id']}").status_code == 404
    for table in ["calls", "calls_hourly", "calls_daily_ip", "calls_daily_hist",
                  "calls_daily_endpoint_ip", "endpoints"]:
        assert tally.psql(f"SELECT count (*) FROM analytics.{table} "
                          f"WHERE dashboard_id = '{dash['id']}'") == "0", table
    peer.stop()


def test_a_bad_signature_stores_nothing_and_three_failures_notify_the_owner(system):
    peer = FmdPeer(token="sig").start()
    peer.add("main.index", 5.0, "2031-01-20 10:00:00")
    user = system.user()
    dash = system.add(user, peer)
    peer.mode = "wrong_signature"
    system.run_jobs(CLOCK)
    body = system.request("GET", user, f"/dashboards/{dash['id']}").json()
    assert body["state"] == "failing" and "signature" in body["error"]
    assert system.stat(user, dash, "total_visits", "2031-01-01", "2031-02-01").json()["value"] == 0
    # Down twice more, on the back-off's clock: the third failure notifies
    peer.mode = "down"
    system.run_jobs(CLOCK + datetime.timedelta(minutes=1))
    assert not [n for n in system.notifications if n[1]["user_id"] == user.id]
    system.run_jobs(CLOCK + datetime.timedelta(minutes=3))
    wait_for(lambda: [n for n in system.notifications if n[1]["user_id"] == user.id],
             "the owner's notification", timeout=10)
    kind, note = [n for n in system.notifications if n[1]["user_id"] == user.id][0]
    assert kind == "service:analytics"
    assert note["key"].startswith("analytics.dashboard_down:" + dash["id"])
    assert "api" in note["message"] and len(note["title"]) <= 200
    body = system.request("GET", user, f"/dashboards/{dash['id']}").json()
    assert body["state"] == "failing" and "503" in body["error"]
    # Back up: the window is fetched again, and the state is ok
    peer.mode = "ok"
    system.run_jobs(CLOCK + datetime.timedelta(minutes=8))
    body = system.request("GET", user, f"/dashboards/{dash['id']}").json()
    assert body["state"] == "ok" and body["error"] is None
    assert system.stat(user, dash, "total_visits", "2031-01-01", "2031-02-01").json()["value"] == 1
    assert len([n for n in system.notifications if n[1]["user_id"] == user.id]) == 1
    peer.stop()


BUILTIN = "00000000-0000-4000-8000-00000000a001"


def shipped(gw):
    return tally.metric(gw, "tally_calls_shipped_total") or 0


def test_tally_records_its_calls_and_monitors_itself_through_its_fmd_export(system):
    user, staff = system.user(), system.super_admin()
    before = shipped(system.gw)
    # The calls the test makes, from three client addresses, inside whole seconds
    time.sleep(1.05 - time.time() % 1)
    start = datetime.datetime.fromtimestamp(int(time.time()), datetime.timezone.utc)
    made = collections.Counter()
    for ip, path, count in [("203.0.113.5", "/dashboards", 5), ("203.0.113.6", "/dashboards", 3),
                            ("203.0.113.7", "/dashboards/" + BUILTIN, 4)]:
        for _ in range(count):
            r = requests.get(system.gw.url + API + path, timeout=30,
                             headers=dict(user.headers, **{"X-Forwarded-For": ip}))
            assert r.status_code == (200 if path == "/dashboards" else 404), r.text
            made[ip] += 1
    time.sleep(1.05 - time.time() % 1)
    end = datetime.datetime.fromtimestamp(int(time.time()), datetime.timezone.utc)
    time.sleep(0.1)
    wait_for(lambda: shipped(system.gw) >= before + 12, "the calls shipped to analytics",
             timeout=30)
    # Staff see the built-in dashboard; others do not
    items = system.request("GET", staff, "/dashboards").json()["items"]
    assert BUILTIN in [d["id"] for d in items]
    assert system.request("GET", user, f"/dashboards/{BUILTIN}").status_code == 404
    assert system.request("DELETE", staff, f"/dashboards/{BUILTIN}").status_code == 403
    builtin = {"id": BUILTIN}
    window = (rfc3339(start), rfc3339(end))
    assert system.stat(staff, builtin, "visits_per_ip", *window).json()["value"] == dict(made)
    r = system.stat(staff, builtin, "total_visits", *window, endpoint="GET /api/v1/dashboards")
    assert r.json()["value"] == 8
    r = system.stat(staff, builtin, "total_visits", *window,
                    endpoint="GET /api/v1/dashboards/{id}")
    assert r.json()["value"] == 4
    # The same Tally, added as a remote dashboard through its FMD export
    r = system.request("POST", user, "/dashboards",
                       json={"name": "myself", "url": system.gw.url + "/dashboard",
                             "token": FMD_TOKEN})
    assert r.status_code == 201, r.text
    remote = r.json()
    bad = system.request("POST", user, "/dashboards",
                         json={"name": "x", "url": system.gw.url + "/dashboard",
                               "token": "not-the-token-at-all"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_token"
    system.run_jobs(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1))
    assert system.request("GET", user, f"/dashboards/{remote['id']}").json()["state"] == "ok"
    for statistic in STATISTICS:
        mine = system.stat(staff, builtin, statistic, *window).json()["value"]
        theirs = system.stat(user, remote, statistic, *window).json()["value"]
        # Sums may add the same durations in another order (the plan reads
        # each dashboard's calls in its own physical order): equal up to rounding
        assert mine == theirs if not isinstance(mine, float) else same(theirs, mine), \
            (statistic, mine, theirs)
    r = system.stat(user, remote, "total_visits", *window, endpoint="GET /api/v1/dashboards")
    assert r.json()["value"] == 8


def test_a_body_that_does_not_parse_stores_nothing(system):
    peer = FmdPeer(token="parse").start()
    for minute in range(3):
        peer.add("main.index", 5.0 + minute, f"2031-01-20 10:0{minute}:00")
    user = system.user()
    dash = system.add(user, peer)
    peer.mode = "bad_data"
    system.run_jobs(CLOCK)
    body = system.request("GET", user, f"/dashboards/{dash['id']}").json()
    assert body["state"] == "failing" and "malformed" in body["error"]
    assert system.stat(user, dash, "total_visits", "2031-01-01", "2031-02-01").json()["value"] == 0
    assert {e["name"]: e["calls"] for e in body["endpoints"]} == {"main.index": 0}
    peer.stop()


def test_partitions_are_made_ahead_and_dropped_past_the_retention(cluster):
    """On a database of its own: the daily job makes the months ahead and
    drops those past TALLY_ANALYTICS_RETENTION_MONTHS."""
    name = "analytics_retention_%d" % os.getpid()
    tally.psql(f"DROP DATABASE IF EXISTS {name}")
    tally.psql(f"CREATE DATABASE {name}")
    url = tally.DATABASE_URL.replace("/tally?", f"/{name}?") if "/tally?" in tally.DATABASE_URL \
        else None
    if url is None:
        pytest.skip("DATABASE_URL does not name its database as /tally?...")
    gw = cluster.gateway(env={"TALLY_PROTO_BUILTIN": "1"})
    tally.program(cluster, "analytics", [gw], database_url=url,
                  env={"TALLY_RUN_JOBS": "0", "TALLY_ANALYTICS_RETENTION_MONTHS": "2"})
    wait_instances(gw, 1, service="analytics", timeout=60)

    def run(at):
        out = subprocess.run([binary("tallyctl"), "jobs", "run-due", "analytics", "--at", at],
                             env=dict(os.environ, TALLY_MESH=gw.mesh), capture_output=True,
                             text=True, timeout=150)
        assert out.returncode == 0, out.stderr

    def sql(statement):
        out = subprocess.run(["psql", url, "-XAtc", statement], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def partitions():
        out = subprocess.run(["psql", url, "-XAtc",
                              "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'calls' "
                              "ORDER BY 1"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    try:
        run("2031-01-15T00:00:00Z")
        assert partitions() == ["calls_203101", "calls_203102", "calls_203103"]
        # The daily aggregates go with the months they count
        dash = "00000000-0000-4000-8000-00000000a001"
        for day in ("2031-03-31", "2031-04-01"):
            sql(f"INSERT INTO analytics.calls_daily_ip VALUES ('{dash}', '{day}', '10.9.9.9', 1);"
                f"INSERT INTO analytics.calls_daily_endpoint_ip "
                f"VALUES ('{dash}', 1, '{day}', '10.9.9.9', 1)")
        run("2031-06-10T00:00:00Z")
        # Kept from April (June − 2 months), three ahead of June
        assert partitions() == ["calls_203106", "calls_203107", "calls_203108"]
        for table in ("calls_daily_ip", "calls_daily_endpoint_ip"):
            assert sql(f"SELECT day FROM analytics.{table}") == "2031-04-01", table
    finally:
        # The service leaves the database before it goes (exit code checked)
        for proc in cluster.processes:
            if proc.name.startswith("analytics"):
                assert proc.stop() == 0, proc.output()[-3000:]
        tally.psql(f"DROP DATABASE IF EXISTS {name}")


def percentiles(d):
    """min, the quartiles, 90th, 99th and max of `d` as numpy computes them."""
    return {"fastest_measured_execution_time": d.min(),
            "fastest_quartile_execution_time": np.percentile(d, 25),
            "median_execution_time": np.percentile(d, 50),
            "slowest_quartile_execution_time": np.percentile(d, 75),
            "ninetieth_percentile_execution_time": np.percentile(d, 90),
            "ninety-ninth_percentile_execution_time": np.percentile(d, 99),
            "slowest_measured_execution_time": d.max()}


def test_exact_percentiles_at_bucket_edges_ties_one_call_and_one_slice(system):
    """Percentiles come from the daily duration histograms (a bucket
    2^(1/16) wide) and a sort of one bucket's calls: durations on bucket
    thresholds and just below them, many ties, 0 ms, a rank pair split
    over two buckets, a range of one call, a range inside one day, and
    calls fetched in two runs (the histograms' upsert) all match numpy."""
    peer = FmdPeer(token="edges").start()
    calls = []

    def add(endpoint, ms, at, ip="10.2.0.1"):
        peer.add(endpoint, ms, at, ip=ip)
        calls.append({"endpoint": endpoint, "ms": ms, "at": at, "ip": ip})

    # Day 1: thresholds (powers of two are thresholds exactly) and the
    # durations just below them, 0 ms, and 25 ties at 5 ms
    edges = [0.0, 0.0, 0.5, math.nextafter(0.5, 0), 1.0, math.nextafter(1.0, 0), 2.0,
             math.nextafter(2.0, 0), 2.0 ** (17 / 16), 4.0, 9.9e11]
    for i, ms in enumerate(edges + [5.0] * 25):
        add(("api.a", "api.b")[i % 2], ms, f"2031-01-10 {i // 6:02d}:{i % 60:02d}:01.{i:06d}")
    # Day 2: two calls whose median lies between two buckets
    add("api.a", 1.0, "2031-01-11 08:00:00")
    add("api.a", 1000.0, "2031-01-11 09:00:00")
    # Day 3: one call
    add("api.b", 7.25, "2031-01-12 12:00:00")
    user = system.user()
    dash = system.add(user, peer)
    system.run_jobs(CLOCK)

    def check(label):
        cases = [(utc(2031, 1, 1), utc(2031, 2, 1), None),            # whole days
                 (utc(2031, 1, 10, 2, 0), utc(2031, 1, 12, 13), None),  # edges and a day
                 (utc(2031, 1, 10), utc(2031, 1, 11), "api.a"),
                 (utc(2031, 1, 11), utc(2031, 1, 12), None),            # split pair
                 (utc(2031, 1, 12, 6), utc(2031, 1, 12, 18), None),     # one call
                 (utc(2031, 1, 10, 3), utc(2031, 1, 10, 5), None)]      # inside a day
        for start, end, endpoint in cases:
            d = np.array([c["ms"] for c in between(calls, start, end, endpoint)])
            want = percentiles(d) if len(d) else {}
            for statistic in want:
                params = {"endpoint": endpoint} if endpoint else {}
                r = system.stat(user, dash, statistic, rfc3339(start), rfc3339(end), **params)
                assert r.status_code == 200, r.text
                assert same(r.json()["value"], want[statistic]), \
                    (label, start, end, endpoint, statistic, r.json()["value"], want[statistic])
        # Daily slices, and one slice inside a day (edges only)
        for start, end in [("2031-01-09", "2031-01-14"),
                           ("2031-01-10T01:30:00Z", "2031-01-10T04:15:00Z")]:
            r = system.stat(user, dash, "median_execution_time", start, end, timeslice="day",
                            timeslice_is_static="true")
            assert r.status_code == 200, r.text
            for item in r.json()["slices"]:
                lo = datetime.datetime.fromisoformat(item["start"].replace("Z", "+00:00"))
                hi = min(datetime.datetime.combine(lo.date() + datetime.timedelta(days=1),
                                                   datetime.time(), datetime.timezone.utc),
                         datetime.datetime.fromisoformat(
                             (end if "T" in end else end + "T00:00:00Z").replace("Z", "+00:00")))
                d = [c["ms"] for c in between(calls, lo, hi)]
                want = np.percentile(d, 50) if d else None
                assert same(item["value"], want), (label, item, want)
        r = system.request("GET", user, f"/dashboards/{dash['id']}/boxplots",
                           params={"start_date": "2031-01-10T00:30:00Z",
                                   "end_date": "2031-01-12T12:00:01Z"})
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            d = np.array([c["ms"] for c in between(calls, utc(2031, 1, 10, 0, 30),
                                                     utc(2031, 1, 12, 12, 0, 1),
                                                     item["endpoint"])])
            assert item["count"] == len(d)
            for key, want in [("min", d.min()), ("q1", np.percentile(d, 25)),
                              ("median", np.percentile(d, 50)),
                              ("q3", np.percentile(d, 75)), ("max", d.max())]:
                assert same(item[key], want), (label, item, key, want)

    check("first fetch")
    # More calls in the same day and buckets as the one call's, fetched an
    # hour later: the histograms add them to the rows they have
    for i in range(12):
        add("api.b", (7.25, 5.0, 1.0)[i % 3], f"2031-01-12 13:{i:02d}:00")
    system.run_jobs(CLOCK + datetime.timedelta(hours=1))
    assert system.stat(user, dash, "total_visits", "2031-01-01", "2031-02-01").json()["value"] \
        == len(calls)
    check("second fetch")
    peer.stop()


def test_a_tally_monitoring_a_tally_loses_no_call_past_the_export_cap(system):
    """Tally's export answers at most 40 000 calls a window; a fetcher given
    that many leaves the answer's newest second out and asks again at once
    from the newest call it kept. 45 000 calls in groups of 7 sharing a
    microsecond (the cap falls inside a group): every one arrives, none
    twice, in the first run and after the hourly one. (Before: the back-fill
    moved on to the next week after 40 000, and a cut inside a group lost
    the rest of it.) The calls are of an endpoint of their own, removed at
    the end, so that runs on a kept database do not add up."""
    staff = system.super_admin()
    endpoint = "GET /api/v1/cap/" + unique()
    now = int(time.time())
    base_us = (now - 2 * 86400) * 10**6
    total, per_us, step_us = 45000, 7, 10000
    sent = []
    for i in range(total):
        sent.append([endpoint, 200, float(i % 97) + 0.5, f"198.51.100.{i % 50}",
                     base_us + (i // per_us) * step_us])
    user, remote = system.user(), None
    try:
        client = MeshClient(system.gw.mesh, peer="operator")
        try:
            for b in range(0, total, 5000):
                reply = client.call("analytics", "calls.ingest",
                                    body={"version": "cap", "calls": sent[b:b + 5000]},
                                    timeout_ms=60000)
                assert reply["status"] == 200 and reply["body"]["stored"] == 5000, reply
        finally:
            client.close()
        start = datetime.datetime.fromtimestamp(base_us // 10**6, datetime.timezone.utc)
        end = start + datetime.timedelta(seconds=total // per_us * step_us // 10**6 + 2)
        window = (rfc3339(start), rfc3339(end))
        builtin = {"id": BUILTIN}
        r = system.stat(staff, builtin, "total_visits", *window, endpoint=endpoint)
        assert r.json()["value"] == total
        r = system.request("POST", user, "/dashboards",
                           json={"name": "capped", "url": system.gw.url + "/dashboard",
                                 "token": FMD_TOKEN})
        assert r.status_code == 201, r.text
        remote = r.json()
        clock = datetime.datetime.now(datetime.timezone.utc)
        system.run_jobs(clock + datetime.timedelta(minutes=1))
        r = system.stat(user, remote, "total_visits", *window, endpoint=endpoint)
        assert r.json()["value"] == total, (remote["id"], r.text)
        system.run_jobs(clock + datetime.timedelta(hours=2))
        for statistic in ["total_visits", "total_execution_time", "median_execution_time",
                          "unique_visitors"]:
            mine = system.stat(staff, builtin, statistic, *window, endpoint=endpoint)
            theirs = system.stat(user, remote, statistic, *window, endpoint=endpoint)
            assert mine.json()["value"] == theirs.json()["value"], (statistic, remote["id"])
    finally:
        if remote:
            system.request("DELETE", user, f"/dashboards/{remote['id']}")
        ids = f"(SELECT id FROM analytics.endpoints WHERE dashboard_id = '{BUILTIN}' " \
              f"AND name = '{endpoint}')"
        for table in ["calls", "calls_hourly", "calls_daily_hist", "calls_daily_endpoint_ip"]:
            tally.psql(f"DELETE FROM analytics.{table} WHERE dashboard_id = '{BUILTIN}' "
                       f"AND endpoint_id IN {ids}")
        tally.psql(f"DELETE FROM analytics.calls_daily_ip WHERE dashboard_id = '{BUILTIN}' "
                   f"AND ip LIKE '198.51.100.%'")
        tally.psql(f"DELETE FROM analytics.endpoints WHERE dashboard_id = '{BUILTIN}' "
                   f"AND name = '{endpoint}'")
