"""Oversized and slow clients: big headers, long URLs, slowloris, and many
connections at once."""

import hashlib
import json
import socket
import threading
import time

import pytest
import requests

from tally import raw_http, wait_for

ECHO = b"/api/v1/test/echo"
IDLE_TIMEOUT = 15     # TL_HTTP_IDLE_TIMEOUT_SEC


def address(gw):
    host, port = gw.url.split("//", 1)[1].split(":")
    return host, int(port)


def still_serves(gw):
    r = requests.get(gw.url + "/api/v1/test/echo", timeout=5)
    return r.status_code == 200


def test_headers_over_32_kib_are_431_or_closed_and_the_gateway_survives(system):
    gw = system.gw
    big = b"GET " + ECHO + b" HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (33 * 1024) + b"\r\n\r\n"
    status, _, _ = raw_http(gw.url, big)
    assert status in (None, 431), status
    many = b"GET " + ECHO + b" HTTP/1.1\r\nHost: t\r\n" + \
        b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 30) for i in range(1500)) + b"\r\n"
    status, _, _ = raw_http(gw.url, many)
    assert status in (None, 431), status
    assert still_serves(gw)


def test_16_kib_of_headers_are_served_and_the_connection_kept_alive(system):
    # TL_HTTP_MAX_HEADER_BYTES: the main daemon's pools take 16 KiB heads,
    # one after another on one connection (only stream requests with a
    # small head go to the small pools)
    gw = system.gw
    head = (b"GET " + ECHO + b"?n=%d HTTP/1.1\r\nHost: t\r\nX-Big: " +
            b"b" * (16 * 1024 - 200) + b"\r\nCookie: " + b"k=v; " * 20 + b"z=1\r\n\r\n")
    with socket.create_connection(address(gw), timeout=10) as s:
        f = s.makefile("rb")
        for n in range(3):
            s.sendall(head % n)
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            headers = {}
            while True:
                line = f.readline().rstrip(b"\r\n")
                if not line:
                    break
                k, _, v = line.partition(b":")
                headers[k.strip().lower()] = v.strip()
            body = f.read(int(headers[b"content-length"]))
            assert json.loads(body)["params"] == {"n": str(n)}
            assert headers.get(b"connection", b"").lower() != b"close"


def test_url_over_4_kib_is_refused_and_the_gateway_survives(system):
    gw = system.gw
    status, headers, body = raw_http(gw.url, b"GET " + ECHO + b"?q=" + b"x" * 5000 +
                                     b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status in (None, 400, 414, 431), status
    status, _, _ = raw_http(gw.url, b"GET /" + b"a/" * 3000 +
                            b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status in (None, 400, 404, 414, 431), status
    assert still_serves(gw)


def test_slowloris_clients_are_cut_off_after_the_idle_timeout(system):
    # Two slow clients at once: one sends part of its headers and stalls,
    # the other trickles a header line every 3 s and never finishes. Both
    # must be cut off about TL_HTTP_IDLE_TIMEOUT_SEC after they start, and
    # the gateway serves everyone else meanwhile.
    gw = system.gw
    result = {}

    def stalled():
        s = socket.create_connection(address(gw), timeout=IDLE_TIMEOUT + 15)
        s.sendall(b"GET " + ECHO + b" HTTP/1.1\r\nHost: t\r\nX-Partial: ")
        start = time.monotonic()
        try:
            data = s.recv(1024)
        except (ConnectionResetError, socket.timeout) as e:
            data = e
        result["stalled"] = (time.monotonic() - start, data)
        s.close()

    def trickle():
        s = socket.create_connection(address(gw), timeout=5)
        s.sendall(b"GET " + ECHO + b" HTTP/1.1\r\nHost: t\r\n")
        start = time.monotonic()
        closed_after = None
        for i in range(9):                     # up to 27 s
            time.sleep(3)
            try:
                s.sendall(b"X-Slow-%d: y\r\n" % i)
                s.setblocking(False)
                try:
                    if s.recv(1024) == b"":
                        closed_after = time.monotonic() - start
                        break
                except BlockingIOError:
                    pass
                finally:
                    s.setblocking(True)
                    s.settimeout(5)
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
        result["trickle"] = closed_after
        s.close()

    threads = [threading.Thread(target=stalled), threading.Thread(target=trickle)]
    for t in threads:
        t.start()
    time.sleep(1)
    assert still_serves(gw)
    for t in threads:
        t.join(40)
    took, data = result["stalled"]
    assert data == b"" or isinstance(data, ConnectionResetError), data
    assert IDLE_TIMEOUT - 3 <= took <= IDLE_TIMEOUT + 10, took
    assert result["trickle"] is not None, "a client trickling headers was never cut off"
    assert result["trickle"] <= IDLE_TIMEOUT + 10, result["trickle"]
    assert still_serves(gw)


def test_300_concurrent_connections_are_served(system):
    gw = system.gw
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(address(gw), timeout=30))
        for n, s in enumerate(socks):
            s.sendall(b"GET " + ECHO + b"?n=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % n)
        for n, s in enumerate(socks):
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert json.loads(body)["params"] == {"n": str(n)}
    finally:
        for s in socks:
            s.close()
    assert still_serves(gw)


@pytest.mark.parametrize("path,content_type,size", [
    (b"/api/v1/test/private-upload", b"application/octet-stream", 9 * 1024 * 1024),
    (b"/api/v1/test/items", b"application/json", 1000 * 1000),
])
def test_large_body_without_a_token_on_an_auth_route_is_401_before_the_body_is_read(
        system, path, content_type, size):
    # Only the head is sent: the answer must come without the body.
    head = (b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: %d\r\n\r\n" % size)
    started = time.monotonic()
    status, headers, body = raw_http(system.gw.url, head + b"x" * 4096, timeout=5)
    assert status == 401, (status, body[:200])
    assert json.loads(body)["error"]["code"] == "unauthenticated"
    assert time.monotonic() - started < 3
    assert still_serves(system.gw)


BUFFERED_MAX = 256 * 1024 * 1024      # TL_HTTP_MAX_BUFFERED_BYTES
UPLOAD = 10 * 1024 * 1024             # TL_HTTP_MAX_UPLOAD_BODY


def test_bodies_past_the_bound_of_all_connections_together_are_503_at_once(system):
    gw = system.gw
    held = BUFFERED_MAX // UPLOAD
    socks = []
    try:
        for _ in range(held + 3):
            s = socket.create_connection(address(gw), timeout=10)
            s.sendall(b"POST /api/v1/test/upload HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % UPLOAD + b"x" * 65536)
            socks.append(s)
        time.sleep(1.0)
        answers = []
        for s in socks:
            s.settimeout(0.2)
            try:
                answers.append(s.recv(65536))
            except socket.timeout:
                answers.append(None)
        refused = [a for a in answers if a]
        assert len(refused) == 3, [a[:40] if a else a for a in answers]
        for a in refused:
            assert a.startswith(b"HTTP/1.1 503"), a[:100]
            assert b"Retry-After: 1" in a and b'"overloaded"' in a
        assert answers[:held] == [None] * held    # the first ones are still being read
    finally:
        for s in socks:
            s.close()
    # Their part of the bound is given back when they go.
    def upload_ok():
        r = requests.post(gw.url + "/api/v1/test/upload", data=b"y" * UPLOAD,
                          headers={"Content-Type": "application/octet-stream"}, timeout=30)
        return r.status_code == 201
    wait_for(upload_ok, "an upload accepted again", timeout=20)


def test_large_body_with_an_unknown_token_is_401_from_the_session_check_before_the_body(system):
    # The session is checked with the auth service before the body is read:
    # only the head is sent, and the answer comes.
    head = (b"POST /api/v1/test/private-upload HTTP/1.1\r\nHost: t\r\n"
            b"Authorization: Bearer not-a-session\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
            % (9 * 1024 * 1024))
    started = time.monotonic()
    status, _, body = raw_http(system.gw.url, head, timeout=5)
    assert status == 401, (status, body[:200])
    assert json.loads(body)["error"]["code"] == "unauthenticated"
    assert time.monotonic() - started < 3
    assert still_serves(system.gw)


def test_large_body_with_a_valid_session_is_read_after_the_session_check(system):
    data = bytes(range(256)) * (32 * 1024)            # 8 MiB
    r = requests.post(system.gw.url + "/api/v1/test/private-upload", data=data,
                      headers={"Authorization": "Bearer test-token-uploader",
                               "Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["bytes"] == len(data)
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_expect_100_continue_comes_only_after_the_session_check(system):
    body = b"z" * (2 * 1024 * 1024)

    def head(token):
        return (b"POST /api/v1/test/private-upload HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: Bearer " + token + b"\r\n"
                b"Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))

    with socket.create_connection(address(system.gw), timeout=10) as s:
        s.sendall(head(b"unknown"))
        assert s.recv(65536).startswith(b"HTTP/1.1 401 ")
    with socket.create_connection(address(system.gw), timeout=10) as s:
        s.sendall(head(b"test-token-expect"))
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        data = b""
        while b"}" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 201 "), data[:100]
