"""A small Tally mesh peer (TMP/1), written from proto/PROTOCOL.md alone:
one DEALER socket per gateway backend, one frame per message, each frame a
MessagePack map (the envelope).

    client = MeshClient("tcp://127.0.0.1:5555")
    reply = client.call("testsvc", "echo.post", body={"text": "hi"})
    reply["status"], reply.get("body")

    worker = Worker(["tcp://127.0.0.1:5555"], "pyworker", handler)
    worker.start()          # ready, heartbeats, requests → handler → reply
    ...
    worker.stop()           # disconnect ("drain"), serve until answered, close

A handler takes the request envelope (a dict) and returns
(status, body) or (status, body, headers). A handler that takes a second
argument gets a `Nested` caller: `nested.call(service, method, ...)` sends a
nested request on the connection the request came in on, with `parent` set
to its id, so that the gateway runs it as the same caller (PROTOCOL.md §4).

Who the peer is (PROTOCOL.md §1): on a mesh with CURVE, its key says so
(`curve=(public, secret, server_public)`, Z85 keys); on an insecure
loopback mesh it claims it (`peer="operator"`, `peer="service:tracker"`).

It deliberately depends on nothing but pyzmq and msgpack, so that it also
shows that the protocol document is enough to take part in the mesh."""

import inspect
import itertools
import os
import threading
import time

import msgpack
import zmq

VERSION = 1
HEARTBEAT_MS = 1000
LIVENESS = 3
MAX_FRAME = 12 * 1024 * 1024


def now_ms():
    return int(time.time() * 1000)


def pack(envelope):
    return msgpack.packb(envelope, use_bin_type=True)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False, strict_map_key=True)


def _socket(context, endpoint, identity=None, curve=None):
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
    if identity:
        sock.setsockopt(zmq.IDENTITY, identity)
    if curve:
        public, secret, server = curve
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = (
            public.encode(), secret.encode(), server.encode())
    sock.connect(endpoint)
    return sock


class MeshError(Exception):
    pass


class MeshClient:
    """Calls services (and the gateway's own `mesh` service) through one
    gateway's backend. Not thread-safe: one client per thread."""

    _ids = itertools.count(1)

    def __init__(self, endpoint, context=None, peer=None, curve=None):
        self.context = context or zmq.Context.instance()
        self.endpoint = endpoint
        self.peer = peer
        self.sock = _socket(self.context, endpoint, curve=curve)
        self.prefix = f"py{os.getpid()}-{id(self) & 0xffffff:x}-"

    def close(self):
        self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def new_id(self):
        return f"{self.prefix}{next(self._ids)}"

    def request(self, service, method, params=None, body=None, timeout_ms=5000,
                idem=None, trace=None, request_id=None):
        """Builds a request envelope (not sent)."""
        envelope = {
            "v": VERSION,
            "kind": "request",
            "id": request_id or self.new_id(),
            "service": service,
            "method": method,
            "deadline": now_ms() + timeout_ms,
        }
        if params:
            envelope["params"] = {str(k): str(v) for k, v in params.items()}
        if body is not None:
            envelope["body"] = body
        if idem:
            envelope["idem"] = idem
        if trace:
            envelope["trace"] = trace
        if self.peer:
            envelope["peer"] = self.peer
        return envelope

    def send(self, envelope):
        self.sock.send(pack(envelope))

    def receive(self, timeout_ms):
        """The next message (any kind), or None after timeout_ms."""
        if self.sock.poll(timeout_ms, zmq.POLLIN):
            frames = self.sock.recv_multipart()
            if len(frames) != 1:
                raise MeshError(f"a message of {len(frames)} frames")
            return unpack(frames[0])
        return None

    def call(self, service, method, params=None, body=None, timeout_ms=5000, **kw):
        """Sends a request and waits for its reply (until its deadline plus a
        second: the gateway answers 504 itself at the deadline)."""
        envelope = self.request(service, method, params, body, timeout_ms, **kw)
        self.send(envelope)
        until = time.monotonic() + timeout_ms / 1000 + 1
        while True:
            left = int((until - time.monotonic()) * 1000)
            if left <= 0:
                raise MeshError(f"no reply to {service}.{method} in {timeout_ms} ms")
            msg = self.receive(left)
            if msg and msg.get("kind") == "reply" and msg.get("id") == envelope["id"]:
                return msg
            # heartbeats, or replies to requests we gave up on: ignore

    def status(self, timeout_ms=3000):
        reply = self.call("mesh", "status", timeout_ms=timeout_ms)
        if reply.get("status") != 200:
            raise MeshError(f"mesh.status answered {reply.get('status')}")
        return reply["body"]

    def ping(self, timeout_ms=3000):
        return self.call("mesh", "ping", timeout_ms=timeout_ms)


class Nested:
    """Nested calls from inside a Worker's handler (see Worker)."""

    _ids = itertools.count(1)

    def __init__(self, worker, link, parent):
        self.worker, self.link, self.parent = worker, link, parent

    def call(self, service, method, params=None, body=None, timeout_ms=3000, parent=True):
        """Calls through the gateway the parent came from; `parent=False`
        leaves the parent out (the gateway then gives no caller)."""
        rid = f"nested-{os.getpid()}-{next(self._ids)}"
        deadline = min(now_ms() + timeout_ms, self.parent.get("deadline", 2 ** 62))
        envelope = {"v": VERSION, "kind": "request", "id": rid, "service": service,
                    "method": method, "deadline": deadline}
        if parent:
            envelope["parent"] = self.parent["id"]
        if params:
            envelope["params"] = {str(k): str(v) for k, v in params.items()}
        if body is not None:
            envelope["body"] = body
        self.worker._send(self.link, envelope)
        return self.worker._await_reply(self.link, rid, deadline)


class Worker:
    """Serves one service on every gateway it is given: `ready` once per
    connection, `heartbeat` every second, requests handed to `handler` one
    at a time (capacity 1 by default), `disconnect` on stop. Reconnects to a
    gateway silent for 3 heartbeats and announces itself again when a
    gateway answers `disconnect` (it did not know us). stop() drains: it
    sends `disconnect`, keeps serving until every gateway has answered
    `disconnect` (or 3 heartbeats passed), then closes."""

    def __init__(self, endpoints, service, handler, instance=None, capacity=1,
                 db_ok=True):
        if isinstance(endpoints, str):
            endpoints = endpoints.split(",")
        self.endpoints = list(endpoints)
        self.service = service
        self.handler = handler
        self.instance = instance or f"{service}@py:{os.getpid()}"
        self.capacity = capacity
        self.db_ok = db_ok
        self.context = zmq.Context.instance()
        self.handled = 0
        self.readies = 0
        try:
            self._wants_nested = len(inspect.signature(handler).parameters) >= 2
        except (TypeError, ValueError):
            self._wants_nested = False
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    # --- the worker thread owns every socket ---------------------------

    def _send(self, link, envelope):
        link["sock"].send(pack(envelope))
        link["sent"] = time.monotonic()

    def _ready(self, link):
        self._send(link, {"v": VERSION, "kind": "ready", "service": self.service,
                          "instance": self.instance, "capacity": self.capacity,
                          "db_ok": self.db_ok})
        self.readies += 1

    def _open(self, link):
        if link.get("sock") is not None:
            link["sock"].close(0)
        link["sock"] = _socket(self.context, link["endpoint"])
        link["heard"] = time.monotonic()
        link["pending"] = []
        self._ready(link)

    def _await_reply(self, link, rid, deadline):
        """Reads the link until the reply `rid` (other messages are kept for
        the main loop), or returns None at the deadline."""
        sock = link["sock"]
        while True:
            left = deadline + 1000 - now_ms()
            if left <= 0 or not sock.poll(left):
                return None
            frames = sock.recv_multipart()
            link["heard"] = time.monotonic()
            if len(frames) != 1:
                continue
            msg = unpack(frames[0])
            if msg.get("kind") == "reply" and msg.get("id") == rid:
                return msg
            if msg.get("kind") in ("request", "disconnect"):
                link["pending"].append(msg)

    def _reply(self, link, request):
        try:
            if self._wants_nested:
                result = self.handler(request, Nested(self, link, request))
            else:
                result = self.handler(request)
        except Exception as e:  # a handler bug is the service's fault: 500
            result = (500, {"error": {"code": "internal", "message": str(e)}})
        status, body = result[0], result[1]
        headers = result[2] if len(result) > 2 else None
        envelope = {"v": VERSION, "kind": "reply", "id": request["id"], "status": status}
        if body is not None:
            envelope["body"] = body
        if headers:
            envelope["headers"] = headers
        self._send(link, envelope)
        self.handled += 1

    def _run(self):
        links = [{"endpoint": ep, "sock": None} for ep in self.endpoints]
        try:
            for link in links:
                self._open(link)
            draining_since = None
            while True:
                if self._stop.is_set() and draining_since is None:
                    # Drain: no new work. Every request a gateway sent before
                    # its answering `disconnect` arrives before it.
                    draining_since = time.monotonic()
                    for link in links:
                        self._send(link, {"v": VERSION, "kind": "disconnect",
                                          "instance": self.instance})
                        link["drained"] = False
                if draining_since is not None and (
                        all(link["drained"] for link in links)
                        or time.monotonic() - draining_since > LIVENESS * HEARTBEAT_MS / 1000):
                    break
                poller = zmq.Poller()
                for link in links:
                    poller.register(link["sock"], zmq.POLLIN)
                events = dict(poller.poll(100))
                now = time.monotonic()
                for link in links:
                    inbox = link["pending"]
                    link["pending"] = []
                    if link["sock"] in events:
                        frames = link["sock"].recv_multipart()
                        link["heard"] = now
                        if len(frames) == 1:
                            inbox.append(unpack(frames[0]))
                    for msg in inbox:
                        if msg.get("v") != VERSION:
                            continue
                        kind = msg.get("kind")
                        if kind == "request":
                            if msg.get("deadline", 0) <= now_ms():
                                self._send(link, {"v": VERSION, "kind": "reply",
                                                  "id": msg["id"], "status": 504,
                                                  "body": {"error": {"code": "deadline",
                                                           "message": "deadline passed"}}})
                            else:
                                self._reply(link, msg)
                        elif kind == "disconnect":
                            if draining_since is not None:
                                link["drained"] = True     # nothing more will come
                            else:
                                self._ready(link)          # the gateway forgot us
                    if draining_since is not None:
                        continue
                    if now - link["heard"] > LIVENESS * HEARTBEAT_MS / 1000:
                        self._open(link)
                    elif now - link["sent"] >= HEARTBEAT_MS / 1000:
                        self._send(link, {"v": VERSION, "kind": "heartbeat",
                                          "instance": self.instance, "db_ok": self.db_ok})
        except Exception as e:  # surfaced by stop()
            self.error = e
        finally:
            for link in links:
                if link.get("sock") is not None:
                    link["sock"].setsockopt(zmq.LINGER, 500)
                    link["sock"].close()

    def start(self):
        self._thread = threading.Thread(target=self._run, name=f"worker-{self.service}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if self.error:
            raise self.error
