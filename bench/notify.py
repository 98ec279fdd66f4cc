"""notify.py — the measuring half of bench/notify.sh (which starts the
processes): in one run on this machine,

  (1) a bare ZeroMQ PUB→SUB hop over tcp loopback (pyzmq, the subscriber
      in a process of its own), with a body the size of a push: the floor
      of any push through a broker;
  (2) notification.create over the mesh (a peer that is a service) to the
      `event: notification` line read on a Server-Sent Event stream of the
      gateway, one at a time; and to the later of the two lines read on a
      stream of each of two gateways (the fan-out);
  (3) the gateway's resident memory with no stream, then with N idle
      streams (opened from several loopback addresses, since a gateway
      admits TL_HTTP_MAX_PER_IP connections from one address).

Prints one JSON object. Run by /usr/bin/python3 (pyzmq, msgpack)."""

import argparse
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import threading
import time
import uuid

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from mesh_client import MeshClient  # noqa: E402

PUSH_BYTES = 320            # a push body of a short notification, as msgpack


def percentile(values, p):
    """Nearest-rank percentile of `values` (sorted copy)."""
    ordered = sorted(values)
    rank = max(1, int(round(p / 100.0 * len(ordered) + 0.5)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values_ms):
    return {"n": len(values_ms), "p50_ms": round(percentile(values_ms, 50), 3),
            "p99_ms": round(percentile(values_ms, 99), 3),
            "mean_ms": round(statistics.mean(values_ms), 3),
            "max_ms": round(max(values_ms), 3)}


# ---------------------------------------------------------------------------
# (1) ZeroMQ PUB→SUB

def _subscriber(endpoint, count, ready, out):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    ready.set()
    got = []
    while len(got) < count:
        frame = sub.recv()
        now = time.monotonic_ns()
        if frame[:1] == b"W":
            continue                # warm-up (the slow joiner)
        got.append((now - int(frame[1:20])) / 1e6)
    out.put(got)
    sub.close(0)
    ctx.term()


def zmq_hop(count):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    ready, out = multiprocessing.Event(), multiprocessing.Queue()
    proc = multiprocessing.Process(target=_subscriber,
                                   args=(f"tcp://127.0.0.1:{port}", count, ready, out))
    proc.start()
    ready.wait(10)
    pad = b"x" * PUSH_BYTES
    for _ in range(50):
        pub.send(b"W" + pad)
        time.sleep(0.01)
    for _ in range(count):
        pub.send(b"M" + b"%019d" % time.monotonic_ns() + pad)
        time.sleep(0.002)           # one at a time, as the notifications below
    got = out.get(timeout=60)
    proc.join(10)
    pub.close(0)
    ctx.term()
    return summary(got)


# ---------------------------------------------------------------------------
# (2) notification.create → the event on a stream

class Stream:
    """A raw SSE reader: records the arrival of each `id:` line."""

    def __init__(self, host, port, token):
        self.sock = socket.create_connection((host, port))
        self.sock.sendall((f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: {host}\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        self.arrived, self.cond, self.opened = {}, threading.Condition(), threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            buf += data
            if b"unread_count" in buf:
                self.opened.set()
            # Chunk framing does not matter here: ids are whole lines
            while b"\nid: " in buf:
                head, _, rest = buf.partition(b"\nid: ")
                if b"\n" not in rest:
                    break
                line, _, buf = rest.partition(b"\n")
                with self.cond:
                    self.arrived[int(line)] = now
                    self.cond.notify_all()

    def wait(self, seq, timeout=10):
        with self.cond:
            self.cond.wait_for(lambda: seq in self.arrived, timeout)
            return self.arrived.get(seq)

    def close(self):
        self.sock.close()


def notify_latency(host, port, mesh, count, port2=None):
    """create → event on a stream of the gateway; with `port2`, also on a
    stream of the second gateway (the fan-out: the later of the two)."""
    user = str(uuid.uuid4())
    stream = Stream(host, port, f"test-token-{user}")
    other = Stream(host, port2, f"test-token-{user}") if port2 else None
    for s in (stream, other):
        if s and not s.opened.wait(10):
            raise SystemExit("the stream did not open")
    client = MeshClient(mesh, peer="service:bench")
    latencies, calls, both = [], [], []
    for i in range(count + 20):
        start = time.monotonic()
        reply = client.call("notification", "notification.create", timeout_ms=10000,
                            body={"user_id": user, "key": f"bench-{i}",
                                  "title": "Order completed",
                                  "message": "Your order for Jazz night is complete.",
                                  "target_url": "/events/1/orders/2"})
        replied = time.monotonic()
        if reply.get("status") != 201:
            raise SystemExit(f"create answered {reply}")
        arrived = stream.wait(reply["body"]["seq"])
        arrived2 = other.wait(reply["body"]["seq"]) if other else arrived
        if arrived is None or arrived2 is None:
            raise SystemExit(f"seq {reply['body']['seq']} never arrived")
        if i >= 20:                 # warm-up
            latencies.append((arrived - start) * 1000)
            calls.append((replied - start) * 1000)
            both.append((max(arrived, arrived2) - start) * 1000)
    stream.close()
    if other:
        other.close()
    client.close()
    return summary(latencies), summary(calls), summary(both) if other else None


# ---------------------------------------------------------------------------
# (3) RSS with idle streams

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(ops, name):
    import urllib.request
    text = urllib.request.urlopen(ops + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _open_stream(host, port, index, user, per_address):
    s = socket.socket()
    s.bind((f"127.0.{1 + index // (per_address * 250)}.{2 + (index // per_address) % 250}", 0))
    s.connect((host, port))
    s.sendall((f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: {host}\r\n"
               f"Authorization: Bearer test-token-{user}\r\n\r\n").encode())
    return s


def _caught_up(s, timeout):
    """Reads what the stream sent until its catch-up ended (the first
    `unread_count` event). False when the gateway refused it (a 503 when
    the notification service's queue is full) or closed it."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"unread_count" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return False
            buf += chunk
            if len(buf) >= 12 and not buf.startswith(b"HTTP/1.1 200"):
                return False
    except OSError:
        return False
    return True


def idle_streams(host, port, ops, pid, count, per_user=20, per_address=500, batch=500):
    """Opens `count` streams, `batch` at a time; each batch is read until
    every stream has had its catch-up (a refused one is opened again after
    a second, as an EventSource would), so that the streams measured are
    idle ones, and the service's queue never overflows by the bench's
    own haste."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    time.sleep(1)
    before = rss_kib(pid)
    socks, users = [], [str(uuid.uuid4()) for _ in range((count + per_user - 1) // per_user)]
    retried = 0
    start = time.monotonic()
    for first in range(0, count, batch):
        pending = {i: _open_stream(host, port, i, users[i // per_user], per_address)
                   for i in range(first, min(first + batch, count))}
        for attempt in range(30):
            refused = [i for i, s in pending.items() if not _caught_up(s, 10)]
            for i, s in pending.items():
                if i not in refused:
                    socks.append(s)
            if not refused:
                break
            retried += len(refused)
            for i in refused:
                pending[i].close()
            time.sleep(1)
            pending = {i: _open_stream(host, port, i, users[i // per_user], per_address)
                       for i in refused}
        else:
            raise SystemExit(f"{len(pending)} streams never opened")
    deadline = time.monotonic() + 60
    while metric(ops, "tally_streams_open") < count and time.monotonic() < deadline:
        time.sleep(0.2)
    opened = int(metric(ops, "tally_streams_open"))
    took = time.monotonic() - start
    time.sleep(2)
    after = rss_kib(pid)
    memory = memory_kib(pid)
    for s in socks:
        s.close()
    return {"streams": opened, "open_s": round(took, 1), "retried": retried,
            "rss_0_kib": before, "rss_n_kib": after,
            "per_stream_kib": round((after - before) / max(opened, 1), 2),
            "heap_kib": memory["heap"], "anon_kib": memory["anon"]}


def memory_kib(pid):
    """Resident KiB of the gateway's heap (brk: small allocations, the
    connections' pools of 32 KiB and less) and of its other anonymous
    mappings (thread stacks, large allocations), from /proc/PID/smaps."""
    totals, kind = {"heap": 0, "anon": 0}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
                name = fields[5] if len(fields) > 5 else ""
                kind = "heap" if name == "[heap]" else "anon" if name == "" else None
            elif fields[0] == "Rss:" and kind:
                totals[kind] += int(fields[1])
    return totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--base2", help="a second gateway: the fan-out to both")
    ap.add_argument("--ops", required=True)
    ap.add_argument("--mesh", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=10000)
    args = ap.parse_args()
    host, port = args.base.split("//")[1].split(":")
    port = int(port)
    result = {"zmq_pub_sub": zmq_hop(args.count)}
    port2 = int(args.base2.rsplit(":", 1)[1]) if args.base2 else None
    result["create_to_event"], result["create_reply"], result["fan_out"] = \
        notify_latency(host, port, args.mesh, args.count, port2)
    result["idle"] = idle_streams(host, port, args.ops, args.pid, args.streams)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
