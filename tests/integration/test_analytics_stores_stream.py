"""Streamed request bodies (proto/PROTOCOL.md §3 "Streamed bodies") through
POST /stores/data, a route declared "body": "stream": a body larger than
one mesh frame loads whole; the gateway holds about one chunk of it, not
the body; a client that stops sending mid-body loads nothing and frees its
handler; a service that dies mid-body loads nothing and the client is
answered."""

import os
import socket
import time

import pytest

import tally
from tally import Cluster, wait_instances
from test_analytics_stores import STATUS, System

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def sys_():
    c = Cluster()
    try:
        # Without ASan's quarantine of freed memory, the gateway's peak RSS
        # tells what it held at once
        asan = os.environ.get("ASAN_OPTIONS", "")
        system = System(c, gateway_env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=0"})
    except BaseException:
        c.stop()
        raise
    system.cluster = c
    yield system
    failures = c.stop()
    assert not failures, "\n".join(failures)


def status_body(store, rows, start=1_674_000_000):
    """A status CSV of `rows` polls of `store`, one a minute."""
    lines = [STATUS]
    for i in range(rows):
        t = start + 60 * i
        lines.append("%d,%s,%s.123456 UTC\n" % (
            store, "active" if i % 3 else "inactive",
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))))
    return "".join(lines).encode()


def polls_of(user):
    return int(tally.psql(f"SELECT count (*) FROM analytics.store_polls WHERE owner = '{user.id}'"))


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def raw_post(sys_, user, length):
    """A socket with the headers of a POST /stores/data of `length` bytes sent."""
    port = int(sys_.gw.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall((f"POST /api/v1/stores/data?kind=status HTTP/1.1\r\nHost: t\r\n"
                  f"Authorization: Bearer {user.token}\r\nContent-Type: text/csv\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode())
    return sock


def answer_of(sock, timeout):
    """The status line the gateway sent, or "" when it closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def test_a_body_larger_than_a_frame_loads_whole(sys_):
    u = sys_.user()
    body = status_body(31, 420_000)                # about 17 MiB: more than a 12 MiB frame
    assert len(body) > 12 * MiB
    before = vm_hwm_kib(sys_.gw.pid)
    r = sys_.load(u, "status", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"kind": "status", "rows": 420_000}
    assert polls_of(u) == 420_000
    # The gateway held chunks, not the body: its peak grew by far less than
    # the body's size
    grew = vm_hwm_kib(sys_.gw.pid) - before
    assert grew < len(body) // 1024 // 2, f"the gateway's peak grew {grew} KiB"


def test_a_bad_line_far_into_a_streamed_body_loads_nothing(sys_):
    u = sys_.user()
    body = status_body(32, 200_000) + b"32,open,2023-01-18 00:00:00 UTC\n"
    r = sys_.load(u, "status", body)
    assert r.status_code == 422, r.text
    assert [row["line"] for row in r.json()["error"]["rows"]] == [200_002]
    assert polls_of(u) == 0


def test_a_client_that_stops_mid_body_loads_nothing(sys_):
    u = sys_.user()
    body = status_body(33, 300_000)
    sock = raw_post(sys_, u, len(body))
    sock.sendall(body[: 5 * MiB])                  # then nothing: the handler waits on a read
    # The gateway drops the silent connection (its idle timeout, 15 s); the
    # waiting read is answered, the transaction rolls back
    assert answer_of(sock, 40) == ""
    sock.close()
    deadline = time.time() + 20
    r = None
    while time.time() < deadline:
        r = sys_.load(u, "status", status_body(33, 10))
        if r.status_code == 200:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    assert polls_of(u) == 10                       # none of the cut-off body


def test_a_service_that_dies_mid_body_loads_nothing_and_the_client_is_answered():
    c = Cluster()
    try:
        system = System(c)
        u = system.user()
        analytics = [p for p in c.processes if p.name.startswith("analytics")][0]
        body = status_body(34, 300_000)
        sock = raw_post(system, u, len(body))
        sock.sendall(body[: 4 * MiB])
        time.sleep(1)                              # the handler has the request
        analytics.kill9()
        try:
            sock.sendall(body[4 * MiB: 8 * MiB])
        except (BrokenPipeError, ConnectionResetError):
            pass
        status = answer_of(sock, 30)
        assert status in ("", "HTTP/1.1 503 Service Unavailable"), status
        sock.close()
        # A new instance: nothing of the body was loaded
        tally.analytics(c, [system.gw], name="analytics-again")
        wait_instances(system.gw, 1, service="analytics", timeout=60)
        assert polls_of(u) == 0
        assert system.loaded(u, "status", status_body(34, 5))["rows"] == 5
    finally:
        failures = c.stop()
    assert not failures, "\n".join(failures)
