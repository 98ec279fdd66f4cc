"""The mailer (services/mailer) as its callers and operators see it: real
tally-mailer processes reached over the mesh (mesh_client.py), delivering to
a real SMTP server (smtp_sink.py), to the spool folder, or to a local HTTP
server for webhooks, with `tallyctl jobs ...` for the durable jobs.

The mailer's jobs are claimed by any tally-mailer connected to the same
database, so this module runs against a database of its own (created in the
test run's PostgreSQL, dropped at the end), emptied before each test: a
mailer started by anyone else cannot take these tests' mail, and no test
sees another's leftovers."""

import datetime
import email
import email.policy
import email.utils
import http.server
import json
import os
import re
import stat
import subprocess
import threading
import time
import urllib.parse

import pytest

import tally
from mesh_client import MeshClient
from smtp_sink import SmtpSink
from tally import binary, mailer, unique, wait_for, wait_instances

pytestmark = pytest.mark.skipif(not tally.DATABASE_URL, reason="needs DATABASE_URL")

FROM = "Tally Test <noreply@tally.test>"
SPOOL_SUFFIX = "@tally.eml"
#  Delivery jobs, not the mailer's schedules (mailer.purge)
DELIVERIES = "kind IN ('mail.deliver', 'webhook.deliver')"


# ---------------------------------------------------------------------------
# The module's own database

def _with_database(url, name):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="module")
def maildb():
    name = f"tally_mailer_test_{os.getpid()}_{time.time_ns() % 10**9}"
    tally.psql(f"CREATE DATABASE {name}")
    try:
        yield _with_database(tally.DATABASE_URL, name)
    finally:
        tally.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Env:
    """One test's world: a gateway, the database, helpers."""

    def __init__(self, cluster, db_url):
        self.cluster = cluster
        self.db_url = db_url
        self.gw = cluster.gateway()
        self.client = MeshClient(self.gw.mesh, peer="service:auth")   # as a service would

    def sql(self, statement):
        out = subprocess.run(["psql", self.db_url, "-XAtc", statement],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def mailer(self, smtp_url=None, data_dir=None, env=None, name=None):
        full = {"TALLY_MAIL_FROM": FROM}
        full.update(env or {})
        proc = mailer(self.cluster, [self.gw], smtp_url=smtp_url, data_dir=data_dir,
                      env=full, name=name, database_url=self.db_url)
        wait_for(lambda: tally.instances(self.gw, "mailer") >= 1, "a mailer instance",
                 timeout=30, proc=proc)
        return proc

    def call(self, method, body=None, params=None, timeout_ms=10000):
        reply = self.client.call("mailer", method, body=body, params=params,
                                 timeout_ms=timeout_ms)
        return reply["status"], reply.get("body")

    def send(self, **body):
        return self.call("mail.send", body)

    def outbox(self, oid):
        status, body = self.call("outbox.get", {"id": oid})
        assert status == 200, body
        return body

    def wait_outbox(self, oid, status, timeout=30):
        wait_for(lambda: self.outbox(oid)["status"] == status,
                 f"outbox {oid} {status}", timeout=timeout)
        return self.outbox(oid)

    def job(self, oid, columns="attempts, max_attempts, last_error, done_at IS NOT NULL,"
                              " dead_at IS NOT NULL"):
        """The delivery job of outbox entry `oid`, as a list of strings."""
        row = self.sql(f"SELECT {columns} FROM mailer.jobs"
                       f" WHERE unique_key IN ('mail.deliver:{oid}', 'webhook.deliver:{oid}')")
        return row.split("|") if row else None

    def tallyctl(self, *args, timeout=150):
        out = subprocess.run([binary("tallyctl"), *args],
                             env=dict(os.environ, TALLY_MESH=self.gw.mesh),
                             capture_output=True, text=True, timeout=timeout)
        return out.returncode, out.stdout, out.stderr

    def run_due(self, at=None):
        """`tallyctl jobs run-due mailer [--at AT]`: every job due then runs
        now on one instance. Returns (exit code, output)."""
        args = ["jobs", "run-due", "mailer"]
        if at is not None:
            args += ["--at", at]
        rc, out, err = self.tallyctl(*args)
        return rc, out + err


def rfc3339(delta_seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def env(cluster, maildb):
    e = Env(cluster, maildb)
    e.sql("DO $$ BEGIN IF to_regclass('mailer.outbox') IS NOT NULL THEN"
          " TRUNCATE mailer.outbox, mailer.jobs; END IF; END $$")
    yield e
    e.client.close()


@pytest.fixture
def sink():
    s = SmtpSink().start()
    yield s
    s.stop()


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


# ---------------------------------------------------------------------------
# A local HTTP server for webhooks

class HookServer:
    """Records every request; answers the statuses in `answers` in turn,
    then 200."""

    def __init__(self, answers=()):
        self.requests = []
        self.answers = list(answers)
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.requests.append({"method": "POST", "path": self.path,
                                          "headers": dict(self.headers.items()),
                                          "body": body, "at": time.time()})
                    status = hook.answers.pop(0) if hook.answers else 200
                reply = json.dumps({"ok": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    servers = []

    def make(answers=()):
        s = HookServer(answers)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


# ---------------------------------------------------------------------------
# 1. A templated mail

def test_a_templated_mail_arrives_with_its_headers_both_parts_and_escaped_html(env, sink):
    env.mailer(smtp_url=sink.url)
    to = [f"ana.{unique()}@example.com", "bo@example.org"]
    status, body = env.send(key=unique("k"), to=to, template="monthly_report", vars={
        "username": '<b>&"', "month": "März 2026", "tracker_count": "3",
        "link": "https://app.example/report?a=1&b=2"})
    assert status == 202, body
    assert body["status"] == "pending" and body["duplicate"] is False
    oid = body["id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", oid)

    got = sink.wait_for(1, rcpt=to[0])
    assert len(got) == 1
    m = got[0]
    # The envelope: the sender of TALLY_MAIL_FROM, every recipient
    assert m.mail_from == "noreply@tally.test"
    assert sorted(m.rcpt_tos) == sorted(to)
    msg = parse(m.data)
    assert msg["From"].addresses[0].addr_spec == "noreply@tally.test"
    assert msg["From"].addresses[0].display_name == "Tally Test"
    assert sorted(a.addr_spec for a in msg["To"].addresses) == sorted(to)
    # A non-ASCII subject travels RFC 2047-encoded as UTF-8, and decodes back
    assert re.search(rb"(?m)^Subject: =\?UTF-8\?[BQ]\?", m.data, re.I), m.data[:400]
    assert msg["Subject"] == "Your Tally report for März 2026"
    assert msg["Message-ID"] == f"<{oid}@tally>"
    assert msg["MIME-Version"] == "1.0"
    sent = email.utils.parsedate_to_datetime(msg["Date"])
    assert sent.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds()) < 600
    # Both parts, as an alternative; variables raw in the text, escaped in the HTML
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert 'Hello <b>&",' in text
    assert "März 2026" in text and "https://app.example/report?a=1&b=2" in text
    assert "Hello &lt;b&gt;&amp;&quot;," in html
    assert '<b>&"' not in html
    assert 'href="https://app.example/report?a=1&amp;b=2"' in html
    assert "<strong>März 2026</strong>" in html

    entry = env.wait_outbox(oid, "sent")
    assert entry["kind"] == "mail" and entry["last_error"] is None
    assert entry["sent_at"] and entry["created_at"]
    assert entry["id"] == oid


# ---------------------------------------------------------------------------
# 2. Attachments

def test_attachments_arrive_byte_for_byte(env, sink):
    env.mailer(smtp_url=sink.url)
    every_byte = bytes(range(256))
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + every_byte * 64 + b"\r\n.\r\n\n%%EOF\n"
    png = b"\x89PNG\r\n\x1a\n" + bytes(reversed(every_byte)) * 64 + b"\x00\x00IEND\xaeB`\x82"
    to = f"att.{unique()}@example.com"
    status, body = env.send(key=unique("k"), to=to, subject="Your files", text="Two files.",
                            html="<p>Two files.</p>", attachments=[
                                {"name": "Bericht-März.pdf", "content_type": "application/pdf",
                                 "data": pdf},
                                {"name": "chart.png", "content_type": "image/png", "data": png}])
    assert status == 202, body
    m = sink.wait_for(1, rcpt=to)[0]
    msg = parse(m.data)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg["Message-ID"] == f"<{body['id']}@tally>"
    files = list(msg.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == \
        [("Bericht-März.pdf", "application/pdf"), ("chart.png", "image/png")]
    for part in files:
        assert part["Content-Transfer-Encoding"].lower() == "base64"
    assert files[0].get_content() == pdf
    assert files[1].get_content() == png
    # The body parts are still there
    assert msg.get_body(preferencelist=("plain",)).get_content().strip() == "Two files."
    assert "<p>Two files.</p>" in msg.get_body(preferencelist=("html",)).get_content()
    env.wait_outbox(body["id"], "sent")


def test_inline_images_go_with_the_html_in_a_multipart_related(env, sink):
    env.mailer(smtp_url=sink.url)
    png1 = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    png2 = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 8
    to = f"inline.{unique()}@example.com"
    html = ('<p>Charts:</p><img src="cid:chart-1@tally" alt="one">'
            '<img src="cid:chart-2@tally" alt="two">')
    status, body = env.send(key=unique("k"), to=to, subject="Report", text="Charts.",
                            html=html, attachments=[
                                {"name": "chart-1.png", "content_type": "image/png",
                                 "data": png1, "content_id": "chart-1@tally"},
                                {"name": "report.pdf", "content_type": "application/pdf",
                                 "data": b"%PDF-1.4\n%%EOF\n"},
                                {"name": "chart-2.png", "content_type": "image/png",
                                 "data": png2, "content_id": "chart-2@tally"}])
    assert status == 202, body
    msg = parse(sink.wait_for(1, rcpt=to)[0].data)
    assert msg.get_content_type() == "multipart/mixed"
    alternative, pdf = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, related = alternative.get_payload()
    assert text.get_content().strip() == "Charts."
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html_part, *images = related.get_payload()
    assert html_part.get_content().strip() == html
    # Each cid: in the html names one inline part, with the right bytes
    cids = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
    by_id = {p["Content-ID"].strip("<>"): p for p in images}
    assert sorted(cids) == sorted(by_id) == ["chart-1@tally", "chart-2@tally"]
    assert by_id["chart-1@tally"].get_content() == png1
    assert by_id["chart-2@tally"].get_content() == png2
    assert all(p.get_content_disposition() == "inline" for p in images)
    assert pdf.get_filename() == "report.pdf" and pdf.get_content_disposition() == "attachment"
    # Bad or repeated content ids are refused, nothing stored for them
    image = {"name": "a.png", "content_type": "image/png", "data": png1}
    for n, cids in enumerate([["no-at-sign"], ["<a@b>"], ["a@b\r\nBcc: x@example.com"],
                              ["x" * 60 + "@tally"], ["same@t", "same@t"], [17]]):
        status, reply = env.send(key=f"bad-cid-{n}", to=to, subject="s", html="<p>x</p>",
                                 attachments=[{**image, "content_id": c} for c in cids])
        assert status == 400 and "attachments" in reply["error"]["fields"], (cids, reply)
    assert sink.count(rcpt=to) == 1


# ---------------------------------------------------------------------------
# 3. One key, one mail

def test_the_same_key_twice_makes_one_mail_and_the_second_reply_names_the_first(env, sink):
    env.mailer(smtp_url=sink.url)
    key = unique("once")
    first_to, second_to = f"first.{unique()}@example.com", f"second.{unique()}@example.com"
    s1, b1 = env.send(key=key, to=first_to, subject="First", text="the first content")
    s2, b2 = env.send(key=key, to=second_to, subject="Second", text="other content",
                      html="<p>other</p>")
    assert s1 == 202 and b1["duplicate"] is False, b1
    assert s2 == 200, b2
    assert b2["duplicate"] is True and b2["id"] == b1["id"]
    assert b2["status"] in ("pending", "sent")
    sink.wait_for(1, rcpt=first_to)
    env.wait_outbox(b1["id"], "sent")
    # Once delivered, the key still answers with the first message
    s3, b3 = env.send(key=key, to=second_to, subject="Third", text="third")
    assert s3 == 200 and b3 == {"id": b1["id"], "status": "sent", "duplicate": True}
    # Everything due has run: still one message, the first one
    rc, out = env.run_due()
    assert rc == 0, out
    assert sink.count(rcpt=second_to) == 0
    got = sink.messages(rcpt=first_to)
    assert len(got) == 1 and parse(got[0].data)["Subject"] == "First"
    assert env.sql(f"SELECT count(*) FROM mailer.outbox WHERE idem_key = '{key}'") == "1"
    assert env.sql(f"SELECT count(*) FROM mailer.jobs WHERE {DELIVERIES}") == "1"


def test_the_same_key_sent_at_once_from_many_callers_makes_one_mail(env, sink):
    env.mailer(smtp_url=sink.url)
    key, to = unique("race"), f"race.{unique()}@example.com"
    replies, start = [], threading.Barrier(8)

    def one(n):
        with MeshClient(env.gw.mesh, peer="service:auth") as client:
            start.wait()
            r = client.call("mailer", "mail.send", timeout_ms=10000,
                            body={"key": key, "to": to, "subject": f"from {n}", "text": "x"})
            replies.append((r["status"], r["body"]))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(replies) == 8, replies
    assert sorted(s for s, _ in replies) == [200] * 7 + [202], replies
    assert len({b["id"] for _, b in replies}) == 1
    assert [b["duplicate"] for s, b in replies if s == 202] == [False]
    sink.wait_for(1, rcpt=to)
    env.wait_outbox(replies[0][1]["id"], "sent")
    rc, out = env.run_due()
    assert rc == 0, out
    assert sink.count(rcpt=to) == 1


# ---------------------------------------------------------------------------
# 4. The SMTP server away for a while

def test_mail_sent_while_the_smtp_server_is_down_arrives_once_when_it_is_back(env, sink):
    sink.stop()
    env.mailer(smtp_url=sink.url)
    to = f"down.{unique()}@example.com"
    status, body = env.send(key=unique("k"), to=to, subject="Patience", text="later")
    assert status == 202, body
    oid = body["id"]
    # The mailer tried (and failed: connection refused)
    wait_for(lambda: int((env.job(oid) or ["0"])[0]) >= 1, "a first attempt", timeout=15)
    time.sleep(0.5)
    assert env.outbox(oid)["status"] == "pending"
    assert sink.count() == 0

    sink.start()                                # the same port
    # Due now, whatever its back-off or lease says
    rc, out = env.run_due(rfc3339(3 * 3600))
    assert rc == 0, out
    got = sink.wait_for(1, rcpt=to)
    entry = env.wait_outbox(oid, "sent")
    assert entry["last_error"] is None
    rc, out = env.run_due(rfc3339(6 * 3600))
    assert rc == 0, out
    assert len(sink.messages(rcpt=to)) == 1
    assert parse(got[0].data)["Message-ID"] == f"<{oid}@tally>"


# ---------------------------------------------------------------------------
# 5. Refusals: 5xx for good, 4xx for now

@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_550_refusal_fails_the_mail_for_good_without_retry(env, sink, stage):
    env.mailer(smtp_url=sink.url)
    to = f"nobody.{unique()}@example.com"
    sink.refuse("550 5.1.1 no such user here", stage=stage, rcpt=to)
    status, body = env.send(key=unique("k"), to=to, subject="Hello", text="anyone?")
    assert status == 202, body
    entry = env.wait_outbox(body["id"], "failed")
    assert "550" in entry["last_error"] and "no such user here" in entry["last_error"]
    assert entry["sent_at"] is None
    # Recorded once, done: no attempt later either
    rc, out = env.run_due(rfc3339(3 * 3600))
    assert rc == 0, out
    assert len(sink.refused(rcpt=to)) == 1
    assert sink.count(rcpt=to) == 0
    attempts, _, _, done, dead = env.job(body["id"])
    assert (attempts, done, dead) == ("1", "t", "f")
    assert env.outbox(body["id"])["status"] == "failed"


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_451_refusal_is_retried_and_the_mail_delivered_once_accepted(env, sink, stage):
    env.mailer(smtp_url=sink.url)
    to = f"busy.{unique()}@example.com"
    sink.refuse("451 4.3.0 try again later", stage=stage, rcpt=to)
    status, body = env.send(key=unique("k"), to=to, subject="Retry me", text="soon")
    assert status == 202, body
    oid = body["id"]
    sink.wait_refused(1, rcpt=to, timeout=15)
    assert env.outbox(oid)["status"] == "pending"
    assert sink.count(rcpt=to) == 0

    sink.accept()
    rc, out = env.run_due(rfc3339(3 * 3600))
    assert rc == 0, out
    sink.wait_for(1, rcpt=to)
    entry = env.wait_outbox(oid, "sent")
    assert entry["last_error"] is None
    rc, out = env.run_due(rfc3339(6 * 3600))
    assert rc == 0, out
    assert sink.count(rcpt=to) == 1


# A temporary failure is one failed attempt: recorded on the job with the
# server's answer, retried after a back-off, one try per attempt.
def test_a_temporary_refusal_is_one_recorded_attempt_with_back_off(env, sink):
    env.mailer(smtp_url=sink.url)
    to = f"slow.{unique()}@example.com"
    sink.refuse("451 4.3.0 try again later", rcpt=to)
    status, body = env.send(key=unique("k"), to=to, subject="Back off", text="please")
    assert status == 202, body
    oid = body["id"]
    seen = {}

    def settled():
        # One try per attempt, seen while the job waits out its back-off
        before = len(sink.refused(rcpt=to))
        row = env.job(oid, "attempts, max_attempts, last_error, done_at IS NOT NULL,"
                           " dead_at IS NOT NULL, run_at > now (),"
                           " locked_until IS NULL OR locked_until < now ()")
        after = len(sink.refused(rcpt=to))
        seen["row"], seen["refusals"] = row, (before, after)
        return ("451" in row[2] and row[5:] == ["t", "t"]
                and before == after == int(row[0]) >= 1)
    try:
        wait_for(settled, "a recorded attempt waiting for its back-off", timeout=20)
    except AssertionError:
        raise AssertionError(f"last seen: job {seen.get('row')}, refusals {seen.get('refusals')}")
    attempts, max_attempts, error, done, dead = seen["row"][:5]
    assert "try again later" in error and (done, dead) == ("f", "f")
    assert max_attempts == "25"
    assert env.outbox(oid)["status"] == "pending"


def test_a_mail_that_never_gets_through_ends_failed_after_its_last_attempt(env, sink):
    env.mailer(smtp_url=sink.url)
    to = f"never.{unique()}@example.com"
    sink.refuse("451 4.3.0 not today", rcpt=to)
    status, body = env.send(key=unique("k"), to=to, subject="Never", text="x")
    assert status == 202, body
    oid = body["id"]
    # Each run-due, two hours later than the last, passes any back-off (<= 1 h 15)
    for i in range(1, 31):
        rc, out = env.run_due(rfc3339(i * 2 * 3600))
        assert rc == 0, out
        if env.outbox(oid)["status"] != "pending":
            break
    attempts, max_attempts, error, done, dead = env.job(oid)
    assert attempts == max_attempts == "25", env.job(oid)
    assert "t" in (done, dead)                  # finished, one way or the other
    assert len(sink.refused(rcpt=to)) == 25     # one try per attempt
    entry = env.outbox(oid)
    assert entry["status"] == "failed" and entry["sent_at"] is None
    assert "451" in entry["last_error"] and "25" in entry["last_error"], entry
    # Nothing more, however late
    rc, out = env.run_due(rfc3339(100 * 3600))
    assert rc == 0, out
    assert len(sink.refused(rcpt=to)) == 25 and sink.count(rcpt=to) == 0


# ---------------------------------------------------------------------------
# 6. Killed mid-batch

def test_a_mailer_killed_mid_batch_delivers_every_mail_with_duplicates_identical(env, sink):
    sink.delay = 0.1
    first = env.mailer(smtp_url=sink.url, name="mailer_victim")
    to = f"batch.{unique()}@example.com"
    sent = {}
    for n in range(30):
        status, body = env.send(key=unique(f"b{n}-"), to=to, subject=f"Mail number {n}",
                                text=f"This is mail number {n}.\n")
        assert status == 202, body
        sent[f"<{body['id']}@tally>"] = n
    sink.wait_for(10, rcpt=to, timeout=60)
    first.kill9()
    at_kill = sink.count(rcpt=to)
    assert at_kill < 30, "the batch was over before the kill: nothing was tested"
    wait_instances(env.gw, 0, service="mailer", timeout=20)

    env.mailer(smtp_url=sink.url, name="mailer_survivor")
    # The job the victim held is leased for a minute: a clock past the lease
    # takes it over now.
    rc, out = env.run_due(rfc3339(300))
    assert rc == 0, out

    def distinct():
        return {m.message_id for m in sink.messages(rcpt=to)}
    wait_for(lambda: set(sent) <= distinct(), "all 30 mails", timeout=90)
    for mid in sent:
        wait_for(lambda: env.outbox(mid[1:-len("@tally>")])["status"] == "sent",
                 f"{mid} sent", timeout=30)
    rc, out = env.run_due(rfc3339(600))
    assert rc == 0, out

    got = sink.messages(rcpt=to)
    by_id = {}
    for m in got:
        by_id.setdefault(m.message_id, []).append(m.data)
    assert set(by_id) == set(sent)                  # every mail, no stranger
    for mid, copies in by_id.items():
        assert all(c == copies[0] for c in copies), f"{mid}: copies differ"
        assert parse(copies[0])["Subject"] == f"Mail number {sent[mid]}"
    # No content under two Message-IDs
    subjects = [parse(copies[0])["Subject"] for copies in by_id.values()]
    assert len(subjects) == len(set(subjects)) == 30
    print(f"\n{len(got)} deliveries for 30 mails ({len(got) - 30} duplicate(s));"
          f" {at_kill} had arrived at the kill")


# ---------------------------------------------------------------------------
# 7. No SMTP URL: the spool folder

def test_without_an_smtp_url_the_mail_is_written_to_the_spool_folder(env, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()                    # the mailer makes mail/ inside, not its parents
    env.mailer(data_dir=str(data_dir))
    to = f"spool.{unique()}@example.com"
    status, body = env.send(key=unique("k"), to=to, template="verify_email",
                            vars={"username": "Zoë", "code": "123456",
                                  "link": "https://app.example/verify?t=abc"})
    assert status == 202, body
    oid = body["id"]
    path = data_dir / "mail" / f"{oid}{SPOOL_SUFFIX}"
    wait_for(path.exists, f"{path}", timeout=30)
    entry = env.wait_outbox(oid, "sent")
    assert entry["last_error"] is None
    msg = parse(path.read_bytes())
    assert msg["Message-ID"] == f"<{oid}@tally>"
    assert [a.addr_spec for a in msg["To"].addresses] == [to]
    assert msg["From"].addresses[0].addr_spec == "noreply@tally.test"
    assert msg["Subject"] == "Verify your email address for Tally"
    assert "Hello Zoë," in msg.get_body(preferencelist=("plain",)).get_content()
    assert "123456" in msg.get_body(preferencelist=("html",)).get_content()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600       # mail carries codes
    visible = [p.name for p in (data_dir / "mail").iterdir() if not p.name.startswith(".")]
    assert visible == [path.name]


# ---------------------------------------------------------------------------
# 8. Webhooks

def test_a_webhook_posts_its_json_with_an_idempotency_key(env, hooks):
    server = hooks()
    env.mailer(env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
    key = unique("hook ü ")                 # any key: the header carries the outbox id
    payload = json.dumps({"reminder": "log your day", "user": "zoë", "n": 3})
    status, body = env.call("webhook.send", {"key": key, "url": server.url + "/hooks/tally?x=1",
                                             "json": payload})
    assert status == 202, body
    assert body["duplicate"] is False
    wait_for(lambda: len(server.received()) >= 1, "the POST", timeout=30)
    entry = env.wait_outbox(body["id"], "sent")
    assert entry["kind"] == "webhook"
    (req,) = server.received()
    assert req["method"] == "POST" and req["path"] == "/hooks/tally?x=1"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == body["id"]
    assert json.loads(req["body"]) == json.loads(payload)
    assert req["body"] == payload.encode()
    # The same key again: no second POST
    status, again = env.call("webhook.send", {"key": key, "url": server.url + "/other",
                                              "json": "{}"})
    assert status == 200 and again["duplicate"] is True and again["id"] == body["id"]
    rc, out = env.run_due()
    assert rc == 0, out
    assert len(server.received()) == 1


def test_a_webhook_to_a_loopback_address_is_refused_without_allow_private(env, hooks):
    server = hooks()
    env.mailer()
    status, body = env.call("webhook.send", {"key": unique("hook"), "url": server.url + "/x",
                                             "json": "{\"a\": 1}"})
    assert status == 202, body
    entry = env.wait_outbox(body["id"], "failed")
    assert "private" in entry["last_error"]
    rc, out = env.run_due(rfc3339(3 * 3600))
    assert rc == 0, out
    assert server.received() == []
    # localhost by name too
    port = server.url.rsplit(":", 1)[1]
    status, body = env.call("webhook.send", {"key": unique("hook"),
                                             "url": f"http://localhost:{port}/x", "json": "{}"})
    assert status == 202, body
    assert "private" in env.wait_outbox(body["id"], "failed")["last_error"]
    assert server.received() == []


def test_a_webhook_answering_500_is_retried_until_it_succeeds(env, hooks):
    server = hooks(answers=[500])
    env.mailer(env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
    key = unique("hook")
    status, body = env.call("webhook.send", {"key": key, "url": server.url + "/flaky",
                                             "json": "{\"try\": true}"})
    assert status == 202, body
    wait_for(lambda: len(server.received()) >= 1, "the first POST", timeout=30)
    # Due now, whatever its back-off says
    rc, out = env.run_due(rfc3339(3 * 3600))
    wait_for(lambda: env.outbox(body["id"])["status"] == "sent", "sent", timeout=30)
    got = server.received()
    assert len(got) == 2, got
    for req in got:
        headers = {k.lower(): v for k, v in req["headers"].items()}
        assert headers["idempotency-key"] == body["id"]
        assert req["body"] == b'{"try": true}'


def test_a_webhook_500_is_one_attempt_and_the_retry_another(env, hooks):
    server = hooks(answers=[500])
    env.mailer(env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
    status, body = env.call("webhook.send", {"key": unique("hook"), "url": server.url + "/f",
                                             "json": "{}"})
    assert status == 202, body
    env.wait_outbox(body["id"], "sent", timeout=40)
    assert len(server.received()) == 2
    attempts, _, _, done, _ = env.job(body["id"])
    assert (attempts, done) == ("2", "t")


# ---------------------------------------------------------------------------
# 9. Bad input

def test_bad_input_is_refused_and_nothing_is_stored(env, sink):
    env.mailer(smtp_url=sink.url)
    good = {"to": "ok@example.com", "subject": "s", "text": "t"}
    vars_ok = {"username": "a", "code": "1", "link": "https://app.example/v"}
    pdf = {"name": "a.pdf", "content_type": "application/pdf", "data": b"%PDF"}
    cases = [
        ("missing key", {**good}, 400, "key"),
        ("empty key", {**good, "key": ""}, 400, "key"),
        ("key over 255 bytes", {**good, "key": "k" * 256}, 400, "key"),
        ("bad address", {**good, "key": "bad-1", "to": "not-an-address"}, 400, "to"),
        ("header in an address", {**good, "key": "bad-2",
                                  "to": "a@example.com>\r\nBcc: x@example.com"}, 400, "to"),
        ("one bad address in a list", {**good, "key": "bad-3",
                                       "to": ["a@example.com", "b@"]}, 400, "to"),
        ("no recipient", {**good, "key": "bad-4", "to": []}, 400, "to"),
        ("a to-list of 51", {**good, "key": "bad-5",
                             "to": [f"r{i}@example.com" for i in range(51)]}, 400, "to"),
        ("unknown template", {"key": "bad-6", "to": "a@example.com",
                              "template": "no_such_template", "vars": vars_ok}, 400, "template"),
        ("missing template vars", {"key": "bad-7", "to": "a@example.com",
                                   "template": "verify_email", "vars": {"username": "a"}},
         422, None),
        ("a link var that is not http(s)", {"key": "bad-8", "to": "a@example.com",
                                            "template": "verify_email",
                                            "vars": {**vars_ok, "link": "javascript:alert(1)"}},
         422, None),
        ("65 attachments", {**good, "key": "bad-9", "attachments": [pdf] * 65}, 400,
         "attachments"),
        ("an attachment without data", {**good, "key": "bad-10",
                                        "attachments": [{"name": "a", "content_type": "a/b"}]},
         400, "attachments"),
        ("neither template nor content", {"key": "bad-11", "to": "a@example.com"}, 400, None),
        ("a subject with a line break", {**good, "key": "bad-12",
                                         "subject": "Hi\r\nBcc: x@example.com"}, 400, None),
    ]
    for what, body, expected, field in cases:
        status, reply = env.send(**body)
        assert status == expected, (what, reply)
        if field:
            assert field in reply["error"].get("fields", {}), (what, reply)
    hook_cases = [
        ("webhook without key", {"url": "http://127.0.0.1:9/h", "json": "{}"}, "key"),
        ("webhook to ftp", {"key": "bad-h1", "url": "ftp://127.0.0.1:9/h", "json": "{}"}, "url"),
        ("webhook without json", {"key": "bad-h2", "url": "http://127.0.0.1:9/h"}, "json"),
    ]
    for what, body, field in hook_cases:
        status, reply = env.call("webhook.send", body)
        assert status == 400, (what, reply)
        assert field in reply["error"]["fields"], (what, reply)
    # outbox.get of what does not exist
    for bad in ("0b7e6a2c-1f00-4b51-9a3e-7d1c2e3f4a5b", "x" * 36, "short"):
        status, reply = env.call("outbox.get", {"id": bad})
        assert status == 404, (bad, reply)

    # Nothing stored, nothing enqueued, nothing sent
    assert env.sql("SELECT count(*) FROM mailer.outbox") == "0"
    assert env.sql(f"SELECT count(*) FROM mailer.jobs WHERE {DELIVERIES}") == "0"
    rc, out = env.run_due()
    assert rc == 0, out
    assert sink.count() == 0 and sink.refused() == []
    # ... and a refused request did not use up its key
    status, reply = env.send(**{**good, "key": "bad-9"})
    assert status == 202 and reply["duplicate"] is False, reply


def test_webhook_send_refuses_a_json_that_is_not_json(env):
    env.mailer()
    for text in ("not json", "{\"a\": ", "", "{} trailing"):
        status, reply = env.call("webhook.send", {"key": unique("j"),
                                                  "url": "http://127.0.0.1:9/h", "json": text})
        assert status == 400, (text, reply)
        assert "json" in reply["error"]["fields"]
    assert env.sql("SELECT count(*) FROM mailer.outbox") == "0"


# ---------------------------------------------------------------------------
# 9. Retention: bodies go a week after sending, and with their user

def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def _code_mail(env, user_id=None, code="246810"):
    """Queues a verification mail carrying `code`; returns its outbox id."""
    body = {"key": unique("k"), "to": f"r.{unique()}@example.com", "template": "verify_email",
            "vars": {"username": "Zoë", "code": code,
                     "link": f"https://app.example/verify?code={code}"}}
    if user_id is not None:
        body["user_id"] = user_id
    status, reply = env.send(**body)
    assert status == 202, reply
    return reply["id"]


def _has_body(env, oid):
    return env.sql(f"SELECT message IS NOT NULL FROM mailer.outbox WHERE id = '{oid}'") == "t"


def test_the_purge_drops_bodies_sent_over_a_week_before_its_clock_and_keeps_younger_ones(
        env, tmp_path):
    env.mailer(data_dir=str(tmp_path))
    old, young = _code_mail(env), _code_mail(env)
    for oid in (old, young):
        env.wait_outbox(oid, "sent")
    # The clock of the test is the old mail's own sending time: the young one
    # went two days later; neither depends on today's date.
    sent = float(env.sql(f"SELECT extract (epoch FROM sent_at) FROM mailer.outbox"
                         f" WHERE id = '{old}'"))
    env.sql(f"UPDATE mailer.outbox SET sent_at = to_timestamp ({sent + 2 * 86400})"
            f" WHERE id = '{young}'")
    assert _has_body(env, old) and _has_body(env, young)
    # Eight days after the old one: its body is gone, the young one's stays
    rc, out = env.run_due(_utc(sent + 8 * 86400))
    assert rc == 0, out
    assert env.sql("SELECT count(*) FROM mailer.jobs WHERE kind = 'mailer.purge'"
                   f" AND unique_key LIKE 'mailer.purge@{_utc(sent + 8 * 86400)[:13]}%'"
                   " AND done_at IS NOT NULL") == "1"
    assert not _has_body(env, old)
    assert _has_body(env, young)
    assert "246810" not in env.sql(f"SELECT encode (message, 'escape') FROM mailer.outbox"
                                   f" WHERE id = '{old}'")
    # The row stays: its status still answers
    entry = env.outbox(old)
    assert entry["status"] == "sent" and entry["sent_at"]
    # A day and an hour later the young one is over a week old too
    rc, out = env.run_due(_utc(sent + 9 * 86400 + 3600))
    assert rc == 0, out
    assert not _has_body(env, young)


def test_the_purge_keeps_the_body_of_a_mail_not_yet_delivered(env, sink):
    sink.stop()                             # nobody answers: the mail stays pending
    env.mailer(smtp_url=sink.url)
    oid = _code_mail(env)
    wait_for(lambda: env.job(oid) and int(env.job(oid)[0]) >= 1, "a first attempt",
             timeout=30)
    created = float(env.sql(f"SELECT extract (epoch FROM created_at) FROM mailer.outbox"
                            f" WHERE id = '{oid}'"))
    rc, out = env.run_due(_utc(created + 8 * 86400))
    assert rc == 0, out
    assert env.outbox(oid)["status"] == "pending"
    assert _has_body(env, oid)


def test_user_deleted_drops_every_message_of_that_user_and_no_other(env, tmp_path, hooks):
    server = hooks([500] * 50)              # the user's webhook keeps failing: pending
    env.mailer(data_dir=str(tmp_path), env={"TALLY_WEBHOOK_ALLOW_PRIVATE": "1"})
    gone, kept = unique("user-"), unique("user-")
    mine = _code_mail(env, user_id=gone)
    theirs = _code_mail(env, user_id=kept)
    nobody = _code_mail(env)
    status, hook = env.call("webhook.send", {"key": unique("h"), "url": server.url + "/h",
                                             "json": json.dumps({"user": "zoë"}),
                                             "user_id": gone})
    assert status == 202, hook
    for oid in (mine, theirs, nobody):
        env.wait_outbox(oid, "sent")
    wait_for(lambda: len(server.received()) >= 1, "a first POST", timeout=30)
    assert env.sql(f"SELECT user_id FROM mailer.outbox WHERE id = '{mine}'") == gone

    status, reply = env.call("user.deleted", {"user_id": gone})
    assert status == 200, reply
    for oid in (mine, hook["id"]):
        row = env.sql(f"SELECT message IS NULL, subject, recipients FROM mailer.outbox"
                      f" WHERE id = '{oid}'")
        assert row == "t||", (oid, row)
    assert _has_body(env, theirs) and _has_body(env, nobody)
    # The pending webhook ends: failed, and never posted again
    entry = env.outbox(hook["id"])
    assert entry["status"] == "failed" and entry["last_error"] == "the user was deleted"
    posts = len(server.received())
    rc, out = env.run_due(rfc3339(3 * 3600))
    assert rc == 0, out
    assert len(server.received()) == posts
    # Told twice (auth retries until it hears 2xx): the same answer
    status, reply = env.call("user.deleted", {"user_id": gone})
    assert status == 200, reply
    assert _has_body(env, theirs)


def test_user_deleted_and_user_id_refuse_bad_input(env):
    env.mailer()
    for body in ({}, {"user_id": ""}, {"user_id": 7}):
        status, reply = env.call("user.deleted", body)
        assert status == 400, (body, reply)
    for user_id in ("", 7, "u" * 65):
        status, reply = env.send(key=unique("k"), to="a@example.com", subject="s", text="t",
                                 user_id=user_id)
        assert status == 400, (user_id, reply)
        assert "user_id" in reply["error"]["fields"]
    assert env.sql("SELECT count(*) FROM mailer.outbox") == "0"
