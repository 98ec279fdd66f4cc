"""The notification service (services/notification) and the gateways'
Server-Sent Event streams (gateway/gw_streams.c), against real processes:
two gateways, the auth service, the mailer and two notification instances.
Notifications are created over the mesh as a service does (a peer that is
service:testsvc); streams are read raw from a socket (HTTP/1.1 chunked,
then the SSE lines), so that what is checked is the bytes a browser gets."""

import datetime
import json
import os
import random
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

import tally
from mesh_client import MeshClient
from tally import Cluster, psql, unique, wait_for, wait_instances
from tracker_system import PASSWORD, User, new_address

API = "/api/v1"


# ---------------------------------------------------------------------------
# The system

class NotifySystem:
    def __init__(self, cluster, tmpdir):
        env = {"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"}
        self.gw = cluster.gateway(env=env)
        self.gw2 = cluster.gateway(env=env)
        gws = [self.gw, self.gw2]
        tally.auth(cluster, gws, env={"TALLY_REQUIRE_VERIFICATION": "false",
                                      "TALLY_PROTO_EXTRA": ""})
        tally.mailer(cluster, gws, data_dir=str(tmpdir))
        # Every other subscriber of auth.user.deleted runs too: one that is
        # down holds auth's jobs thread for a delivery's deadline per attempt
        tally.tracker(cluster, gws, workers=2)
        tally.event(cluster, gws, env={"TALLY_PUBLIC_URL": "http://tally.test"}, workers=2)
        for i in range(2):
            tally.program(cluster, "notification", gws, name=f"notification-{i}", workers=4)
        for gw in gws:
            wait_instances(gw, 1, service="auth", timeout=60)
            wait_instances(gw, 2, service="notification", timeout=60)
        self.mesh = MeshClient(self.gw.mesh, peer="service:testsvc")

    def url(self, path, gw=None):
        return (gw or self.gw).url + API + path

    def login(self, name):
        r = requests.post(self.url("/auth/login"), json={"login": name, "password": PASSWORD},
                          headers={"X-Forwarded-For": new_address()}, timeout=30)
        assert r.status_code == 200, r.text
        return User(name, r.json()["user"]["id"], r.json()["token"])

    def user(self):
        name = unique("n")
        r = requests.post(self.url("/auth/register"),
                          json={"username": name, "email": f"{name}@example.com",
                                "password": PASSWORD},
                          headers={"X-Forwarded-For": new_address()}, timeout=30)
        assert r.status_code == 201, r.text
        return self.login(name)

    def request(self, method, user, path, gw=None, **kw):
        return requests.request(method, self.url(path, gw), headers=user.headers, timeout=30,
                                **kw)

    def create(self, user_id, title="Hello", message="A message", key=None, **fields):
        body = {"user_id": user_id, "key": key or unique("k"), "title": title,
                "message": message}
        body.update(fields)
        return self.mesh.call("notification", "notification.create", body=body,
                              timeout_ms=10000)


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    c = Cluster()
    try:
        system = NotifySystem(c, tmp_path_factory.mktemp("mail"))
    except BaseException:
        c.stop()
        raise
    yield system
    system.mesh.close()
    failures = c.stop()
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# A raw SSE client

class SseStream:
    """GET /notifications/stream on a socket of its own; a thread decodes
    the chunked body into SSE events: (time, event, id, data) in `events`,
    comments in `comments`. `closed` is set when the server ends it."""

    def __init__(self, gw, token, last_event_id=None, query="", rcvbuf=None, read=True,
                 extra=""):
        host, port = gw.url.split("//")[1].split(":")
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, int(port)))
        head = (f"GET {API}/notifications/stream{query} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n")
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + extra + "\r\n").encode())
        self.events, self.comments = [], []
        self.status, self.headers = None, {}
        self.closed = threading.Event()
        self.lock = threading.Lock()
        if read:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _run(self):
        buf = b""
        try:
            f = self.sock.makefile("rb")
            status = f.readline().decode()
            self.status = int(status.split()[1])
            while True:
                line = f.readline().decode().rstrip("\r\n")
                if not line:
                    break
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
            if self.status != 200:
                self.closed.set()
                return
            event = {}
            while True:
                size = int(f.readline().strip(), 16)
                if size == 0:
                    break
                buf += f.read(size)
                f.readline()
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._line(line.decode(), event)
        except (OSError, ValueError, IndexError):
            pass
        self.closed.set()

    def _line(self, line, event):
        if line == "":
            if event:
                with self.lock:
                    self.events.append((time.monotonic(), event.get("event", "message"),
                                        event.get("id"), event.get("data")))
                event.clear()
        elif line.startswith(":"):
            self.comments.append(line)
        else:
            k, _, v = line.partition(":")
            event[k] = v[1:] if v.startswith(" ") else v

    def notifications(self):
        with self.lock:
            return [(t, int(i), d) for t, e, i, d in self.events if e == "notification"]

    def counts(self):
        with self.lock:
            return [json.loads(d)["count"] for _, e, _, d in self.events if e == "unread_count"]

    def seqs(self):
        return [i for _, i, _ in self.notifications()]

    def wait_open(self, timeout=10):
        """Until the catch-up is done (its unread_count event came)."""
        wait_for(lambda: self.counts() or self.closed.is_set(), "stream open", timeout)
        assert self.status == 200 and not self.closed.is_set()


def streams_open(gw):
    return tally.metric(gw, "tally_streams_open") or 0


# ---------------------------------------------------------------------------
# Stored notifications

def test_create_is_one_per_key_and_checks_its_fields(ns):
    user = ns.user()
    r = ns.create(user.id, key="order-1")
    assert r["status"] == 201, r
    first = r["body"]
    assert first["seq"] == 1 and uuid.UUID(first["id"])
    again = ns.create(user.id, key="order-1", title="Another title")
    assert again["status"] == 200 and again["body"] == first
    assert ns.create(user.id, key="order-2")["body"]["seq"] == 2
    # The same key for another user is another notification
    other = ns.user()
    assert ns.create(other.id, key="order-1")["status"] == 201
    bad = [
        {"title": "x" * 201}, {"title": ""}, {"title": "two\nlines"}, {"message": ""},
        {"message": "m" * 2001}, {"message": "bell\x07"}, {"action": "a" * 65},
        {"target_url": "u" * 2001}, {"title": 5}, {"key": "k" * 129}, {"key": "sp ace"},
    ]
    for fields in bad:
        body = {"user_id": user.id, "key": unique("k"), "title": "t", "message": "m"}
        body.update(fields)
        r = ns.mesh.call("notification", "notification.create", body=body)
        assert r["status"] == 422, (fields, r)
    for missing in ("user_id", "key", "title", "message"):
        body = {"user_id": user.id, "key": unique("k"), "title": "t", "message": "m"}
        del body[missing]
        r = ns.mesh.call("notification", "notification.create", body=body)
        assert r["status"] == 422 and missing in r["body"]["error"]["fields"], r
    assert ns.mesh.call("notification", "notification.create",
                        body={"user_id": "not-a-uuid", "key": "k", "title": "t",
                              "message": "m"})["status"] == 422
    # Nothing of the refused ones was kept: two notifications, seq 1 and 2
    r = ns.request("GET", user, "/notifications")
    assert [n["seq"] for n in r.json()["items"]] == [2, 1]
    # A user cannot create one: the method has no route
    assert ns.request("POST", user, "/notifications", json={}).status_code == 405


def test_list_count_read_and_delete_with_ownership(ns):
    user, other = ns.user(), ns.user()
    ids = [ns.create(user.id, title=f"T{i}", message=f"M{i}", action="open",
                     target_url=f"/orders/{i}")["body"]["id"] for i in range(5)]
    r = ns.request("GET", user, "/notifications")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [n["id"] for n in items] == ids[::-1]
    assert items[0] == {"id": ids[4], "seq": 5, "title": "T4", "message": "M4",
                        "action": "open", "target_url": "/orders/4",
                        "received_at": items[0]["received_at"], "has_read": False}
    # Keyset pages
    page1 = ns.request("GET", user, "/notifications?limit=2").json()
    page2 = ns.request("GET", user, f"/notifications?limit=2&cursor={page1['next_cursor']}").json()
    page3 = ns.request("GET", user, f"/notifications?limit=2&cursor={page2['next_cursor']}").json()
    assert [n["id"] for n in page1["items"] + page2["items"] + page3["items"]] == ids[::-1]
    assert page3["next_cursor"] is None
    assert ns.request("GET", user, "/notifications?cursor=nope").status_code == 400
    assert ns.request("GET", user, "/notifications?unread=maybe").status_code == 400
    assert ns.request("GET", user, "/notifications/unread-count").json() == {"count": 5}
    # Another user's: 404 for every operation, nothing changed
    for method, path in (("POST", f"/notifications/{ids[0]}/read"),
                         ("DELETE", f"/notifications/{ids[0]}"),
                         ("POST", "/notifications/nonsense/read"),
                         ("DELETE", "/notifications/nonsense")):
        r = ns.request(method, other, path)
        assert r.status_code == 404, (method, path, r.text)
    assert ns.request("GET", other, "/notifications").json()["items"] == []
    assert ns.request("GET", user, "/notifications/unread-count").json() == {"count": 5}
    # Read one (twice is fine), then the unread list and count
    assert ns.request("POST", user, f"/notifications/{ids[0]}/read").status_code == 204
    assert ns.request("POST", user, f"/notifications/{ids[0]}/read").status_code == 204
    unread = ns.request("GET", user, "/notifications?unread=true").json()["items"]
    assert [n["id"] for n in unread] == ids[1:][::-1]
    assert ns.request("GET", user, "/notifications/unread-count").json() == {"count": 4}
    assert ns.request("POST", other, "/notifications/read-all").json() == {"updated": 0}
    assert ns.request("POST", user, "/notifications/read-all").json() == {"updated": 4}
    assert ns.request("GET", user, "/notifications/unread-count").json() == {"count": 0}
    assert all(n["has_read"] for n in ns.request("GET", user, "/notifications").json()["items"])
    # Delete: gone, then 404
    assert ns.request("DELETE", user, f"/notifications/{ids[2]}").status_code == 204
    assert ns.request("DELETE", user, f"/notifications/{ids[2]}").status_code == 404
    assert ids[2] not in [n["id"] for n in ns.request("GET", user, "/notifications").json()["items"]]
    # Either gateway serves the list; none without a session
    assert ns.request("GET", user, "/notifications", gw=ns.gw2).json()["items"][0]["id"] == ids[4]
    assert requests.get(ns.url("/notifications"), timeout=10).status_code == 401


def test_at_most_ten_thousand_kept_per_user_the_oldest_go(ns):
    user = ns.user()
    # 10 000 made in SQL (the service's own shape), then one through the mesh
    psql(f"INSERT INTO notification.notifications (user_id, seq, title, message, sender) "
         f"SELECT '{user.id}', s, 't' || s, 'm', 'service:testsvc' "
         f"FROM generate_series (1, 10000) s")
    psql(f"INSERT INTO notification.counters VALUES ('{user.id}', 10000)")
    r = ns.create(user.id)
    assert r["status"] == 201 and r["body"]["seq"] == 10001
    assert psql(f"SELECT count(*), min(seq), max(seq) FROM notification.notifications "
                f"WHERE user_id = '{user.id}'") == "10000|2|10001"


def test_daily_job_removes_notifications_older_than_ninety_days(ns):
    user = ns.user()
    old = ns.create(user.id, title="old")["body"]["id"]
    recent = ns.create(user.id, title="recent")["body"]["id"]
    # The job runs by the clock it is given: a day of its own for this run
    # (each day's occurrence runs once, and the database outlives a run),
    # with the two notifications' times set relative to it
    at = (datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc)
          + datetime.timedelta(days=random.randrange(20000))).strftime("%Y-%m-%dT%H:%M:%SZ")
    psql(f"UPDATE notification.notifications SET created_at = "
         f"timestamptz '{at}' - interval '91 days' WHERE id = '{old}'")
    psql(f"UPDATE notification.notifications SET created_at = "
         f"timestamptz '{at}' - interval '89 days' WHERE id = '{recent}'")
    out = subprocess.run([tally.binary("tallyctl"), "jobs", "run-due", "notification",
                                "--at", at],
                               env=dict(os.environ, TALLY_MESH=ns.gw.mesh),
                               capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = [n["id"] for n in ns.request("GET", user, "/notifications").json()["items"]]
    assert ids == [recent]


def test_a_deleted_user_loses_every_notification(ns):
    user = ns.user()
    ns.create(user.id)
    ns.create(user.id)
    r = ns.request("DELETE", user, "/me", json={"password": PASSWORD})
    assert r.status_code in (200, 202, 204), r.text
    wait_for(lambda: psql(f"SELECT count(*) FROM notification.notifications "
                          f"WHERE user_id = '{user.id}'") == "0", "notifications gone",
             timeout=30)
    assert psql(f"SELECT count(*) FROM notification.keys WHERE user_id = '{user.id}'") == "0"


# ---------------------------------------------------------------------------
# Streams

def test_a_notification_reaches_streams_on_both_gateways_within_a_second(ns):
    user = ns.user()
    s1, s2 = SseStream(ns.gw, user.token), SseStream(ns.gw2, user.token)
    try:
        s1.wait_open()
        s2.wait_open()
        assert s1.headers["content-type"].startswith("text/event-stream")
        assert s1.counts() == [0] and s2.counts() == [0]
        for round_ in range(3):
            start = time.monotonic()
            r = ns.create(user.id, title=f"Order {round_} paid", message="Thanks\nfor it")
            assert r["status"] == 201
            seq = r["body"]["seq"]
            for s in (s1, s2):
                wait_for(lambda: seq in s.seqs(), "the push", timeout=5)
                t, got, data = [n for n in s.notifications() if n[1] == seq][0]
                assert t - start < 1.0, f"{t - start:.3f} s"
                shown = json.loads(data)
                assert shown["title"] == f"Order {round_} paid"
                assert shown["message"] == "Thanks\nfor it" and shown["has_read"] is False
            wait_for(lambda: s1.counts()[-1] == round_ + 1, "the count", timeout=5)
        # Reading one changes the count on both
        nid = ns.request("GET", user, "/notifications").json()["items"][0]["id"]
        assert ns.request("POST", user, f"/notifications/{nid}/read", gw=ns.gw2).status_code == 204
        for s in (s1, s2):
            wait_for(lambda: s.counts()[-1] == 2, "count after read", timeout=5)
        # Someone else's notification reaches neither
        ns.create(ns.user().id)
        time.sleep(0.5)
        assert s1.seqs() == [1, 2, 3] and s2.seqs() == [1, 2, 3]
    finally:
        s1.close()
        s2.close()


def test_reconnect_with_last_event_id_gets_each_missed_one_exactly_once_in_order(ns):
    user = ns.user()
    s = SseStream(ns.gw, user.token)
    s.wait_open()
    for _ in range(3):
        ns.create(user.id)
    wait_for(lambda: s.seqs() == [1, 2, 3], "live ones")
    s.close()
    for _ in range(4):
        ns.create(user.id)              # 4..7, missed
    # Reconnect on the other gateway while more are created at once: each
    # of 4..N exactly once, in order, across the switch-over
    stop = threading.Event()
    made = []

    def creator():
        while not stop.is_set() and len(made) < 40:
            made.append(ns.create(user.id)["body"]["seq"])

    thread = threading.Thread(target=creator)
    thread.start()
    try:
        again = SseStream(ns.gw2, user.token, last_event_id=3)
        time.sleep(0.3)
        stop.set()
        thread.join()
        assert made, "nothing was created during the catch-up"
        last = made[-1]
        wait_for(lambda: again.seqs() and again.seqs()[-1] >= last, "every one", timeout=10)
        time.sleep(0.3)
        assert again.seqs() == list(range(4, last + 1))
    finally:
        stop.set()
        again.close()


def test_a_catch_up_larger_than_a_streams_backlog_arrives_whole(ns):
    user = ns.user()
    big = "m" * 2000
    for _ in range(120):                # ~290 KB of events, over 4 backlogs
        ns.create(user.id, message=big)
    s = SseStream(ns.gw, user.token, last_event_id=0)
    try:
        wait_for(lambda: len(s.seqs()) >= 120 or s.closed.is_set(), "the catch-up", timeout=20)
        assert s.seqs() == list(range(1, 121)) and not s.closed.is_set()
        assert s.counts() == [120]
        assert json.loads(s.notifications()[-1][2])["message"] == big
    finally:
        s.close()


def test_last_event_id_as_a_query_parameter_and_bad_values_are_ignored(ns):
    user = ns.user()
    for _ in range(2):
        ns.create(user.id)
    # ?last_event_id= for clients that cannot set the header
    s = SseStream(ns.gw, user.token, query="?last_event_id=1")
    s.wait_open()
    assert s.seqs() == [2]
    s.close()
    for bad in ("abc", "-1", "99999999999999999999", "1e3", "", "999999999"):
        s = SseStream(ns.gw, user.token, last_event_id=bad)
        try:
            s.wait_open()
            assert s.seqs() == [], bad          # treated as absent: no replay
            seq = ns.create(user.id)["body"]["seq"]
            wait_for(lambda: seq in s.seqs(), f"live after {bad!r}", timeout=5)
        finally:
            s.close()


def test_a_client_that_does_not_read_is_cut_and_does_not_delay_a_reading_one(ns):
    user = ns.user()
    slow = SseStream(ns.gw, user.token, rcvbuf=4096, read=False)
    fast = SseStream(ns.gw, user.token)
    fast.wait_open()
    cut_before = tally.metric(ns.gw, "tally_streams_cut_total") or 0
    wait_for(lambda: streams_open(ns.gw) >= 2, "both streams open")
    big = "x" * 2000
    worst = 0.0
    for i in range(150):
        start = time.monotonic()
        seq = ns.create(user.id, message=big)["body"]["seq"]
        wait_for(lambda: seq in fast.seqs(), "the reader's push", timeout=5)
        worst = max(worst, [t for t, n, _ in fast.notifications() if n == seq][0] - start)
    assert worst < 1.0, f"{worst:.3f} s"
    wait_for(lambda: (tally.metric(ns.gw, "tally_streams_cut_total") or 0) > cut_before,
             "the slow client cut", timeout=10)
    assert not fast.closed.is_set()
    slow.close()
    fast.close()


def test_logout_closes_that_sessions_streams_on_every_gateway(ns):
    user = ns.user()
    other_session = ns.login(user.username)
    s1, s2 = SseStream(ns.gw, user.token), SseStream(ns.gw2, user.token)
    keep = SseStream(ns.gw2, other_session.token)
    try:
        for s in (s1, s2, keep):
            s.wait_open()
        r = requests.post(ns.url("/auth/logout"), headers=user.headers, timeout=10)
        assert r.status_code == 200, r.text
        assert s1.closed.wait(5) and s2.closed.wait(5)
        assert not keep.closed.is_set()
        seq = ns.create(user.id)["body"]["seq"]
        wait_for(lambda: seq in keep.seqs(), "the other session's stream", timeout=5)
        # The ended session cannot open one again
        again = SseStream(ns.gw, user.token)
        assert again.closed.wait(5) and again.status == 401
    finally:
        for s in (s1, s2, keep):
            s.close()


def test_a_password_change_closes_the_other_sessions_streams(ns):
    user = ns.user()
    other = ns.login(user.username)
    mine, theirs = SseStream(ns.gw, user.token), SseStream(ns.gw2, other.token)
    try:
        mine.wait_open()
        theirs.wait_open()
        r = ns.request("POST", user, "/me/password",
                       json={"current_password": PASSWORD, "new_password": PASSWORD + "!2"})
        assert r.status_code in (200, 204), r.text
        assert theirs.closed.wait(5)
        time.sleep(0.5)
        assert not mine.closed.is_set()
    finally:
        mine.close()
        theirs.close()


def test_a_stream_needs_a_session(ns):
    s = SseStream(ns.gw, "not-a-token")
    assert s.closed.wait(5) and s.status == 401


def test_streams_with_a_small_head_and_with_16_kib_of_headers_both_work(ns):
    # A stream whose request head is small is served from a small memory
    # pool (gw_http's stream daemon) and its connection ends with it; one
    # with 16 KiB of headers goes to the main daemon. Both
    # get the same pushes, and both end on logout.
    user = ns.user()
    big = "X-Pad: " + "p" * (16 * 1024 - 300) + "\r\nCookie: a=1; b=2\r\n"
    small, large = SseStream(ns.gw, user.token), SseStream(ns.gw, user.token, extra=big)
    try:
        small.wait_open()
        large.wait_open()
        assert small.headers.get("connection") == "close"
        assert large.headers.get("connection") != "close"
        r = ns.create(user.id, title="To both")
        assert r["status"] == 201
        for s in (small, large):
            wait_for(lambda: r["body"]["seq"] in s.seqs(), "the push", timeout=5)
        r = requests.post(ns.url("/auth/logout"), headers=user.headers, timeout=10)
        assert r.status_code == 200, r.text
        for s in (small, large):
            assert s.closed.wait(5), "logout did not end the stream"
    finally:
        small.close()
        large.close()


def test_an_http_1_0_stream_gets_its_events_unchunked(ns):
    # No chunks for HTTP/1.0: libmicrohttpd reads the stream through the
    # response's own block (512 bytes), then closes the connection when the
    # stream ends. A notification longer than the block arrives whole.
    user = ns.user()
    host, port = ns.gw.url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        s.sendall((f"GET {API}/notifications/stream HTTP/1.0\r\nHost: {host}\r\n"
                   f"Authorization: Bearer {user.token}\r\n\r\n").encode())
        buf = b""
        while b"event: unread_count" not in buf:
            chunk = s.recv(65536)
            assert chunk, buf
            buf += chunk
        assert buf.startswith(b"HTTP/1.") and b" 200 " in buf.split(b"\r\n")[0], buf[:80]
        head = buf.split(b"\r\n\r\n", 1)[0].lower()
        assert b"transfer-encoding: chunked" not in head
        message = "m" * 1500
        r = ns.create(user.id, title="Long", message=message)
        assert r["status"] == 201
        want = f"id: {r['body']['seq']}\n".encode()
        while want not in buf or not buf.endswith(b"\n\n"):
            chunk = s.recv(65536)
            assert chunk, buf[-200:]
            buf += chunk
        data = buf.split(want, 1)[1].split(b"\n", 1)[0]
        assert data.startswith(b"data: ")
        assert json.loads(data[6:])["message"] == message
    finally:
        s.close()
