"""A real SMTP server for tests (aiosmtpd), on 127.0.0.1 only.

    sink = SmtpSink().start()            # a free port, or SmtpSink(port=N)
    url = sink.url                       # "smtp://127.0.0.1:N"
    ...
    sink.wait_for(1, rcpt="ana@example.com")
    msg = sink.messages(rcpt="ana@example.com")[0]
    msg.mail_from, msg.rcpt_tos, msg.data (the DATA bytes, as received)
    msg.parsed()                         # an email.message.EmailMessage

    sink.refuse("550 5.1.1 no such user")                # at RCPT, every recipient
    sink.refuse("451 4.3.0 try later", stage="data", rcpt="bo@example.com")
    sink.accept()                        # forget every refusal
    sink.delay = 0.1                     # wait this long before each 250 to DATA
    sink.stop(); sink.start()            # down for a while, back on the same port

Every message the server accepts is kept (the envelope and the exact bytes
of DATA, stored before the 250 is sent, as a real MTA queues before it
answers), and every refusal it answers is recorded in `refusals`, so that a
test sees what a client tried as well as what arrived.

Run as a program it serves until killed, writing each accepted message to
DIR/msg-N.eml and its envelope to DIR/msg-N.env (from, then recipients one
a line), both renamed into place once complete:

    python3 smtp_sink.py --port N --dir DIR [--delay SECONDS]
"""

import argparse
import asyncio
import email
import email.policy
import os
import signal
import socket
import threading
import time

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Received:
    """One accepted message."""

    def __init__(self, mail_from, rcpt_tos, data, peer):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = bytes(data)
        self.peer = peer
        self.at = time.time()

    def parsed(self):
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def header(self, name):
        return self.parsed()[name]

    @property
    def message_id(self):
        return self.parsed()["Message-ID"]

    def __repr__(self):
        return f"<Received from={self.mail_from} to={self.rcpt_tos} {len(self.data)} bytes>"


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink._refusal("rcpt", address)
        if reply:
            self.sink._refused("rcpt", address, reply)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            reply = self.sink._refusal("data", address)
            if reply:
                self.sink._refused("data", address, reply)
                return reply
        self.sink._store(Received(envelope.mail_from, envelope.rcpt_tos,
                                  envelope.original_content or b"", session.peer))
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """The server, run by an aiosmtpd Controller in a thread of this
    process. Thread-safe: the test thread reads while the server stores."""

    def __init__(self, port=None, host="127.0.0.1", delay=0.0, on_store=None):
        self.host = host
        self.port = port or free_port()
        self.delay = delay
        self.on_store = on_store        # called with each Received (server thread)
        self.refusals = []              # (stage, address, reply, time)
        self._received = []
        self._rules = []                # (stage, rcpt or None, reply)
        self._lock = threading.Condition()
        self._controller = None

    @property
    def url(self):
        return f"smtp://{self.host}:{self.port}"

    @property
    def running(self):
        return self._controller is not None

    # --- life ----------------------------------------------------------

    def start(self, timeout=10):
        """Listens on self.port (the same one after a stop). Retries for a
        while if the port is not free yet."""
        assert self._controller is None, "already running"
        deadline = time.monotonic() + timeout
        while True:
            controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                    ready_timeout=5, decode_data=False,
                                    ident="tally-test-sink", data_size_limit=64 * 1024 * 1024)
            try:
                controller.start()
                break
            except Exception:
                try:
                    controller.stop()
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._controller = controller
        return self

    def stop(self):
        """Stops listening; open connections are dropped."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start() if not self.running else self

    def __exit__(self, *exc):
        self.stop()

    # --- answers ---------------------------------------------------------

    def refuse(self, reply, stage="rcpt", rcpt=None):
        """Answers `reply` (e.g. "550 5.1.1 no such user") at RCPT TO or at
        the end of DATA, for every recipient or only `rcpt`."""
        assert stage in ("rcpt", "data")
        assert reply[:1] in ("4", "5") and reply[1:3].isdigit(), reply
        with self._lock:
            self._rules.append((stage, rcpt.lower() if rcpt else None, reply))

    def accept(self, rcpt=None):
        """Drops the refusals (of `rcpt` only, when given)."""
        with self._lock:
            self._rules = [r for r in self._rules
                           if rcpt is not None and r[1] != rcpt.lower()]

    def _refusal(self, stage, address):
        with self._lock:
            for rule_stage, rcpt, reply in self._rules:
                if rule_stage == stage and (rcpt is None or rcpt == address.lower()):
                    return reply
        return None

    def _refused(self, stage, address, reply):
        with self._lock:
            self.refusals.append((stage, address, reply, time.time()))
            self._lock.notify_all()

    def _store(self, received):
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()
        if self.on_store:
            self.on_store(received)

    # --- what arrived ----------------------------------------------------

    def messages(self, rcpt=None):
        """Accepted messages, oldest first (only those to `rcpt`)."""
        with self._lock:
            items = list(self._received)
        if rcpt is not None:
            items = [m for m in items if rcpt.lower() in (a.lower() for a in m.rcpt_tos)]
        return items

    def count(self, rcpt=None):
        return len(self.messages(rcpt))

    def refused(self, rcpt=None):
        with self._lock:
            items = list(self.refusals)
        return [r for r in items if rcpt is None or r[1].lower() == rcpt.lower()]

    def wait_for(self, count, rcpt=None, timeout=30):
        """Waits until at least `count` messages (to `rcpt`) arrived; returns
        them. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                items = [m for m in self._received
                         if rcpt is None or rcpt.lower() in (a.lower() for a in m.rcpt_tos)]
                if len(items) >= count:
                    return items
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} message(s)"
                                         f"{' to ' + rcpt if rcpt else ''}: have {len(items)}")
                self._lock.wait(min(left, 0.5))

    def wait_refused(self, count, rcpt=None, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.refused(rcpt)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} refusal(s)")
            time.sleep(0.05)
        return self.refused(rcpt)


def _put(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    counter = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def write(received):
        with lock:
            n = next(counter)
        base = os.path.join(args.dir, f"msg-{n}")
        _put(base + ".eml", received.data)
        _put(base + ".env", ("\n".join([received.mail_from] + received.rcpt_tos) + "\n").encode())

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sink = SmtpSink(port=args.port, delay=args.delay, on_store=write).start()
    print(f"listening on {sink.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
