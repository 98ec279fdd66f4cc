"""A rogue peer on the mesh backend: garbage is logged and dropped, the
gateway keeps serving HTTP and the honest instances keep working."""

import os
import threading
import time

import msgpack
import pytest
import requests
import zmq

from tally import Cluster, instances, metric, wait_for, wait_instances

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def mesh_system():
    c = Cluster()
    gw = c.gateway()
    c.service([gw], workers=2)
    wait_instances(gw, 1)
    c.gw = gw
    yield c
    failures = c.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture
def peer(mesh_system):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(mesh_system.gw.mesh)
    yield sock
    sock.close(0)


def pack(d):
    return msgpack.packb(d, use_bin_type=True)


def now_ms():
    return int(time.time() * 1000)


def warnings(gw):
    """Gateway log lines about dropped or malformed mesh messages."""
    return [line for line in gw.output().splitlines()
            if "mesh: malformed message" in line or "mesh: dropped a message" in line]


def serves(gw):
    r = requests.get(gw.url + "/api/v1/test/echo", timeout=5)
    return r.status_code == 200


def replies(sock, timeout_ms=1500):
    out = []
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0 or not sock.poll(left):
            return out
        frames = sock.recv_multipart()
        out.append(msgpack.unpackb(frames[0], raw=False))


def reply_to(sock, request_id, timeout_ms):
    """The reply with `request_id`, or None after timeout_ms."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0 or not sock.poll(left):
            return None
        msg = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
        if msg.get("kind") == "reply" and msg.get("id") == request_id:
            return msg


GARBAGE = {
    "random_bytes": [os.urandom(200)],
    "two_frames": [pack({"v": 1, "kind": "heartbeat"}), b"extra"],
    "huge_str_count": [b"\xdd\xff\xff\xff\xff"],
    "huge_map_count": [b"\xdf\xff\xff\xff\xff"],
    "not_a_map": [pack([1, 2, 3])],
    "non_string_key": [pack({1: 2, "v": 1, "kind": "heartbeat"})],
    "trailing_bytes": [pack({"v": 1, "kind": "heartbeat"}) + b"\x00"],
    "wrong_version": [pack({"v": 2, "kind": "heartbeat"})],
    "unknown_kind": [pack({"v": 1, "kind": "bogus"})],
    "ready_capacity_0": [pack({"v": 1, "kind": "ready", "service": "testsvc",
                               "instance": "rogue", "capacity": 0})],
    "ready_capacity_257": [pack({"v": 1, "kind": "ready", "service": "testsvc",
                                 "instance": "rogue", "capacity": 257})],
    "ready_bad_service_name": [pack({"v": 1, "kind": "ready", "service": "Test Svc",
                                     "instance": "rogue", "capacity": 1})],
    "instance_too_long": [pack({"v": 1, "kind": "ready", "service": "testsvc",
                                "instance": "x" * 65, "capacity": 1})],
    "request_empty_method": [pack({"v": 1, "kind": "request", "id": "r", "service": "testsvc",
                                   "method": "", "deadline": now_ms() + 5000})],
    "request_param_not_a_string": [pack({"v": 1, "kind": "request", "id": "r",
                                         "service": "testsvc", "method": "echo.get",
                                         "deadline": now_ms() + 5000, "params": {"a": 1}})],
    "request_no_deadline": [pack({"v": 1, "kind": "request", "id": "r", "service": "testsvc",
                                  "method": "echo.get"})],
    "deep_body": [b"\x87" + b"".join(pack(x) for x in (
        "v", 1, "kind", "request", "id", "r", "service", "testsvc", "method", "echo.get",
        "deadline", now_ms() + 5000, "body")) + b"\x91" * 100000 + b"\xc0"],
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_from_a_peer_is_logged_and_dropped_and_http_still_serves(mesh_system, peer, name):
    gw = mesh_system.gw
    before = len(warnings(gw))
    peer.send_multipart(GARBAGE[name]) if len(GARBAGE[name]) > 1 else peer.send(GARBAGE[name][0])
    wait_for(lambda: len(warnings(gw)) > before, f"a log line about {name}", timeout=10, proc=gw)
    # Nothing was dispatched for it: at most a `disconnect` comes back.
    for msg in replies(peer, 500):
        assert msg["kind"] == "disconnect", msg
    assert serves(gw)
    assert instances(gw) == 1


def test_wrong_version_is_answered_with_disconnect(peer):
    peer.send(pack({"v": 2, "kind": "heartbeat", "instance": "old"}))
    got = replies(peer)
    assert [m["kind"] for m in got] == ["disconnect"]
    assert got[0]["v"] == 1


def test_reply_from_an_unknown_peer_is_answered_with_disconnect(mesh_system, peer):
    peer.send(pack({"v": 1, "kind": "reply", "id": "never-sent", "status": 200, "body": {}}))
    got = replies(peer)
    assert [m["kind"] for m in got] == ["disconnect"]
    assert serves(mesh_system.gw)


def test_5_mb_frame_is_read_and_answered(mesh_system, peer):
    blob = os.urandom(5 * MiB)
    peer.send(pack({"v": 1, "kind": "request", "id": "big", "service": "testsvc",
                    "method": "echo.post", "deadline": now_ms() + 10000,
                    "body": {"blob": blob}}))
    got = reply_to(peer, "big", 10000)
    assert got["status"] == 200
    assert got["body"]["body"]["blob"] == blob
    assert serves(mesh_system.gw)


def test_frame_over_12_mib_is_dropped_and_the_gateway_survives(mesh_system, peer):
    gw = mesh_system.gw
    # A valid request, were it not 13 MiB: ZMQ_MAXMSGSIZE drops it (and the
    # connection) before the gateway reads it, so it gets no answer.
    peer.send(pack({"v": 1, "kind": "request", "id": "too-big", "service": "testsvc",
                    "method": "echo.post", "deadline": now_ms() + 5000,
                    "body": {"blob": b"\x00" * (13 * MiB)}}))
    assert reply_to(peer, "too-big", 3000) is None
    assert serves(gw)
    assert instances(gw) == 1
    assert gw.alive()


def test_a_peer_cannot_claim_a_caller(mesh_system, peer):
    # PROTOCOL.md §2: "A gateway overwrites any caller a peer sends, except
    # for a peer whose request is itself handling a caller's request". This
    # peer handles nothing: it must not act as user "root" with role admin.
    peer.send(pack({"v": 1, "kind": "request", "id": "impersonate", "service": "testsvc",
                    "method": "whoami.mesh", "deadline": now_ms() + 5000,
                    "caller": {"kind": "user", "user_id": "root", "roles": ["admin"]}}))
    got = reply_to(peer, "impersonate", 5000)
    assert got["status"] == 200
    assert got["body"]["caller"] == "anonymous", got
    assert got["body"].get("user_id") in (None, ""), got
    assert got["body"].get("roles") in (None, []), got


def test_a_peer_cannot_borrow_the_caller_of_a_request_running_elsewhere(mesh_system, peer):
    # PROTOCOL.md §2 `parent`: only the connection that a request is in
    # flight on may name it as parent. A rogue peer guessing the gateway's
    # request ids gets no caller.
    gw = mesh_system.gw
    started = threading.Event()
    result = {}

    def slow_write():
        started.set()
        result["r"] = requests.post(gw.url + "/api/v1/test/items",
                                    json={"name": "victim", "delay_ms": 2000},
                                    headers={"Authorization": "Bearer test-token-victim"},
                                    timeout=10)

    auth = mesh_system.service([gw], role="auth", workers=1)
    wait_instances(gw, 1, service="auth")
    t = threading.Thread(target=slow_write)
    t.start()
    wait_for(lambda: (metric(gw, "tally_mesh_in_flight", {"service": "testsvc"}) or 0) >= 1,
             "the victim's write in flight", timeout=5)
    ids = [f"guess-{n}" for n in range(1, 301)]
    for n, rid in enumerate(ids, start=1):
        peer.send(pack({"v": 1, "kind": "request", "id": rid, "service": "testsvc",
                        "method": "whoami.mesh", "deadline": now_ms() + 5000, "parent": str(n)}))
    users = set()
    for rid in ids:
        got = reply_to(peer, rid, 5000)
        assert got is not None, rid
        users.add(got["body"].get("user_id"))
    assert users <= {None, ""}, users
    t.join()
    assert result["r"].status_code == 201
    auth.stop()
