"""The system the tracker tests run against: two gateways with every
built-in route, the real auth service (verification off: the accounts
tests cover it), the mailer delivering to a real SMTP server, and the
tracker service; plus helpers that make users, trackers and logs over
HTTP.

    sys = TrackerSystem(cluster)         # see conftest.py: `tracker_system`
    user = sys.user()                    # .token, .id, .headers, .username
    t = sys.tracker(user, "Water", "numerical", unit="l")
    sys.log(user, t["id"], 1.5, timestamp="2026-11-01T08:00:00Z")
    sys.get(user, f"/trackers/{t['id']}/stats?from=...&to=...")
"""

import itertools
import os
import subprocess

import requests

import tally
from smtp_sink import SmtpSink
from tally import binary, unique, wait_instances

API = "/api/v1"
PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def new_address():
    """A client address of its own for each user the tests make: auth
    counts registrations per address (100 in 15 minutes), and the tracker
    tests make more users than that."""
    n = next(_addresses) + os.getpid() % 100 * 1000
    return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}"


class User:
    def __init__(self, username, uid, token):
        self.username, self.id, self.token = username, uid, token
        self.email = f"{username}@example.com"
        self.headers = {"Authorization": f"Bearer {token}"}


class TrackerSystem:
    def __init__(self, cluster, tracker_env=None):
        self.cluster = cluster
        self.sink = SmtpSink().start()
        env = {"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"}
        self.gw = cluster.gateway(env=env)
        self.gw2 = cluster.gateway(env=env)
        gws = [self.gw, self.gw2]
        tally.auth(cluster, gws, env={"TALLY_REQUIRE_VERIFICATION": "false",
                                      "TALLY_PROTO_EXTRA": ""})
        tally.mailer(cluster, gws, smtp_url=self.sink.url,
                     env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
        self.tracker_env = dict(tracker_env or {})
        self.trackers = [tally.tracker(cluster, gws, env=self.tracker_env)]
        tally.notification(cluster, gws)       # hears auth.user.deleted too
        for gw in gws:
            wait_instances(gw, 1, service="auth", timeout=60)
            wait_instances(gw, 1, service="mailer", timeout=60)
            wait_instances(gw, 1, service="tracker", timeout=60)

    def stop(self):
        self.sink.stop()

    # --- HTTP ---------------------------------------------------------------
    def url(self, path, gw=None):
        return (gw or self.gw).url + API + path

    def request(self, method, user, path, json=None, gw=None, **kw):
        headers = dict(user.headers) if user else {}
        headers.update(kw.pop("headers", {}))
        return requests.request(method, self.url(path, gw), json=json, headers=headers,
                                timeout=kw.pop("timeout", 60), **kw)

    def get(self, user, path, **kw):
        return self.request("GET", user, path, **kw)

    def post(self, user, path, json=None, **kw):
        return self.request("POST", user, path, json=json, **kw)

    def patch(self, user, path, json=None, **kw):
        return self.request("PATCH", user, path, json=json, **kw)

    def delete(self, user, path, **kw):
        return self.request("DELETE", user, path, **kw)

    # --- Fixtures over HTTP ---------------------------------------------------
    def user(self, settings=None):
        name = unique("t")
        client = {"X-Forwarded-For": new_address()}
        r = requests.post(self.url("/auth/register"),
                          json={"username": name, "email": f"{name}@example.com",
                                "password": PASSWORD}, headers=client, timeout=30)
        assert r.status_code == 201, r.text
        r = requests.post(self.url("/auth/login"), json={"login": name, "password": PASSWORD},
                          headers=client, timeout=30)
        assert r.status_code == 200, r.text
        user = User(name, r.json()["user"]["id"], r.json()["token"])
        if settings:
            r = self.patch(user, "/me", {"settings": settings})
            assert r.status_code == 200, r.text
        return user

    def tracker(self, user, name, type_, **fields):
        body = {"name": name, "type": type_}
        body.update(fields)
        r = self.post(user, "/trackers", body)
        assert r.status_code == 201, r.text
        return r.json()

    def log(self, user, tracker_id, value, **fields):
        body = {"value": value}
        body.update(fields)
        r = self.post(user, f"/trackers/{tracker_id}/logs", body)
        assert r.status_code == 201, r.text
        return r.json()

    # --- Operators ------------------------------------------------------------
    def tallyctl(self, *args):
        env = dict(os.environ, TALLY_MESH=self.gw.mesh)
        return subprocess.run([binary("tallyctl"), *args], capture_output=True, text=True,
                              timeout=150, env=env)

    def run_jobs(self, at):
        """Runs every tracker job due at `at` (RFC 3339): the test clock."""
        out = self.tallyctl("jobs", "run-due", "tracker", "--at", at)
        assert out.returncode == 0, out.stderr
        return out.stdout
