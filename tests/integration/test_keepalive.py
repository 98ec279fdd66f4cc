"""Connections: keep-alive after early answers, no request smuggling through
an unread body, and clients that hang up while they wait."""

import re
import socket

import requests

from tally import metric, wait_for


def address(gw):
    host, port = gw.url.split("//", 1)[1].split(":")
    return host, int(port)


def read_all(sock, timeout=5):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def statuses(data):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def test_keep_alive_connection_serves_the_next_request_after_an_error(system):
    with socket.create_connection(address(system.gw)) as s:
        s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /api/v1/test/echo?second=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_all(s)
    assert statuses(data) == [404, 200, 200], data[:600]
    assert b'"second":"1"' in data


def test_a_body_left_unread_is_never_taken_for_a_request(system):
    # The body of a refused request (415: answered from the headers alone)
    # is itself a request. The gateway must not run it.
    inner = b"GET /api/v1/test/echo?smuggled=1 HTTP/1.1\r\nHost: t\r\n\r\n"
    for head in (b"POST /api/v1/test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n",
                 b"GET /api/v1/test/echo HTTP/1.1\r\nHost: t\r\n"):
        with socket.create_connection(address(system.gw)) as s:
            s.sendall(head + b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
            data = read_all(s, timeout=3)
        assert len(statuses(data)) == 1, data[:800]
        assert statuses(data)[0] in (400, 415)
        assert b"smuggled" not in data


def test_client_that_hangs_up_while_waiting_frees_its_request(system):
    gw = system.gw
    with socket.create_connection(address(gw)) as s:
        s.sendall(b"GET /api/v1/test/sleep-long?ms=1500&hangup=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: (metric(gw, "tally_mesh_in_flight", {"service": "testsvc"}) or 0) >= 1,
                 "the request in flight", timeout=5)
    # The instance finishes the work it started; then nothing is left over.
    wait_for(lambda: metric(gw, "tally_mesh_pending") == 0, "no request left", timeout=10)
    wait_for(lambda: metric(gw, "http_requests_total",
                            {"route": "/api/v1/test/sleep-long", "code": "499"}) == 1,
             "the hang-up counted as 499", timeout=5)
    assert requests.get(gw.url + "/api/v1/test/echo", timeout=5).status_code == 200
