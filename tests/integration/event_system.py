"""The system the event service's tests run against: two gateways with
every built-in route, the real auth service (verification off), the mailer
delivering to a real SMTP server, and two instances of the event service;
plus helpers that make users, staff and events over HTTP.

    sys = EventSystem(cluster)           # see conftest.py: `event_system`
    user = sys.user()                    # .token, .id, .headers, .email
    ev = sys.event(user, state="published")
    sys.get(user, f"/events/{ev['id']}", gw=sys.gw2)
"""

import datetime
import os
import re
import subprocess

import requests

import tally
from smtp_sink import SmtpSink
from tally import binary, unique, wait_for, wait_instances
from tracker_system import PASSWORD, User, new_address

API = "/api/v1"


class EventSystem:
    def __init__(self, cluster, event_env=None):
        self.cluster = cluster
        self.sink = SmtpSink().start()
        env = {"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"}
        self.gw = cluster.gateway(env=env)
        self.gw2 = cluster.gateway(env=env)
        gws = [self.gw, self.gw2]
        tally.auth(cluster, gws, env={"TALLY_REQUIRE_VERIFICATION": "false",
                                      "TALLY_PROTO_EXTRA": ""})
        tally.mailer(cluster, gws, smtp_url=self.sink.url)
        self.event_env = {"TALLY_PUBLIC_URL": "http://tally.test"}
        self.event_env.update(event_env or {})
        self.events = [tally.event(cluster, gws, env=self.event_env, name=f"event-{i}")
                       for i in range(2)]
        self.notifications = [tally.notification(cluster, gws)]    # what events tell users
        for gw in gws:
            wait_instances(gw, 1, service="auth", timeout=60)
            wait_instances(gw, 1, service="mailer", timeout=60)
            wait_instances(gw, 2, service="event", timeout=60)
            wait_instances(gw, 1, service="notification", timeout=60)
        self._staff = {}

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

    def put(self, user, path, json=None, **kw):
        return self.request("PUT", user, path, json=json, **kw)

    def delete(self, user, path, **kw):
        return self.request("DELETE", user, path, **kw)

    # --- Users ----------------------------------------------------------------
    def _login(self, name, client):
        r = requests.post(self.url("/auth/login"), json={"login": name, "password": PASSWORD},
                          headers=client, timeout=30)
        assert r.status_code == 200, r.text
        return User(name, r.json()["user"]["id"], r.json()["token"])

    def user(self):
        name = unique("e")
        client = {"X-Forwarded-For": new_address()}
        r = requests.post(self.url("/auth/register"),
                          json={"username": name, "email": f"{name}@example.com",
                                "password": PASSWORD}, headers=client, timeout=30)
        assert r.status_code == 201, r.text
        return self._login(name, client)

    def super_admin(self):
        """A super admin, made by the operator's tool (one per system)."""
        if "super" not in self._staff:
            name = unique("root")
            out = self.tallyctl("user", "create", "--super-admin", "--username", name,
                                "--email", f"{name}@example.com", stdin=PASSWORD + "\n")
            assert out.returncode == 0, out.stderr
            self._staff["super"] = self._login(name, {"X-Forwarded-For": new_address()})
        return self._staff["super"]

    def admin(self):
        """An admin who is not a super admin (one per system)."""
        if "admin" not in self._staff:
            user = self.user()
            r = self.patch(self.super_admin(), f"/admin/users/{user.id}", {"is_admin": True})
            assert r.status_code == 200, r.text
            self._staff["admin"] = self._login(user.username,
                                               {"X-Forwarded-For": new_address()})
        return self._staff["admin"]

    # --- Events ---------------------------------------------------------------
    def event(self, user, **fields):
        body = {"name": unique("Event "), "starts_at": "2030-06-01T09:00:00Z",
                "ends_at": "2030-06-03T18:00:00Z", "timezone": "Europe/Paris",
                "location": "Lyon"}
        body.update(fields)
        r = self.post(user, "/events", body)
        assert r.status_code == 201, r.text
        return r.json()

    # --- Roles ----------------------------------------------------------------
    def invite_codes(self, address):
        """The codes of every invite mailed to `address`, oldest first."""
        out = []
        for msg in self.sink.messages(rcpt=address):
            text = msg.parsed().get_body(preferencelist=("plain",)).get_content()
            m = re.search(r"http://tally\.test/invites\?code=([A-Za-z0-9_-]+)&event=", text)
            if m:
                out.append(m.group(1))
        return out

    def invite(self, by, event_id, email, role, count=None):
        """Invites `email` as `role` and returns the code mailed (the
        `count`-th mail to the address: one more than before by default)."""
        count = count or len(self.invite_codes(email)) + 1
        r = self.post(by, f"/events/{event_id}/roles", {"email": email, "role": role})
        assert r.status_code == 201, r.text
        if self.event_env.get("TALLY_RUN_JOBS") == "0":
            # The mail job runs when the test says: now, by the real clock
            # (a few seconds ahead: the job is due, no 15-minute hold is)
            now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
            self.run_jobs(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        wait_for(lambda: len(self.invite_codes(email)) >= count, f"invite to {email}",
                 timeout=30)
        return self.invite_codes(email)[count - 1]

    def grant(self, by, event_id, user, role):
        """Gives `user` `role` on the event: an invite and its acceptance."""
        code = self.invite(by, event_id, user.email, role)
        r = self.post(user, f"/events/{event_id}/roles/accept", {"code": code})
        assert r.status_code == 200, r.text
        return r.json()

    # --- Operators ------------------------------------------------------------
    def tallyctl(self, *args, stdin=None):
        env = dict(os.environ, TALLY_MESH=self.gw.mesh)
        return subprocess.run([binary("tallyctl"), *args], capture_output=True, text=True,
                              input=stdin, timeout=150, env=env)

    def run_jobs(self, at):
        """Runs every event job due at `at` (RFC 3339): the test clock."""
        out = self.tallyctl("jobs", "run-due", "event", "--at", at)
        assert out.returncode == 0, out.stderr
        return out.stdout
