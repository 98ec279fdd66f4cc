"""Reminders and monthly reports (services/tracker/tracker_reports.c) end to
end: the real auth, mailer (to a real SMTP server, webhooks to a local HTTP
server) and tracker services, the jobs driven by a controlled clock
(`tallyctl jobs run-due tracker --at TIME`, sys.run_jobs).

The tracker of this module runs with TALLY_RUN_JOBS=0: it has no jobs thread
of its own, so its jobs run only when a test says so, at the time the test
says. Every day and month under test is a fixed date chosen by the test
(in the past, since logs may be at most a day ahead of real time), never
today's: what a test expects does not depend on when it runs.

A schedule occurrence (tracker.plan at a full hour) plans once for good
(its unique key), so before each test every plan is forgotten: the test's
new users get planned."""

import datetime
import http.server
import json
import re
import subprocess
import tempfile
import threading
import time
from zoneinfo import ZoneInfo

import pytest
import requests

import tally

pytestmark = pytest.mark.skipif(not tally.DATABASE_URL, reason="needs DATABASE_URL")

UTC = datetime.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
REMINDER_SUBJECT = "A gentle reminder to log your day"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def clock(moment):
    """RFC 3339 UTC of an aware datetime, for run_jobs."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(day, hhmm, zone):
    hour, minute = map(int, hhmm.split(":"))
    return datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def reminders(sink, user):
    return [m for m in sink.messages(rcpt=user.email) if m.parsed()["Subject"] == REMINDER_SUBJECT]


def reports(sink, user, month_title):
    subject = f"Your Tally report for {month_title}"
    return [m for m in sink.messages(rcpt=user.email) if m.parsed()["Subject"] == subject]


def wait_reports(sink, user, month_title, timeout=60):
    tally.wait_for(lambda: reports(sink, user, month_title), f"the report to {user.email}",
                   timeout=timeout)
    return reports(sink, user, month_title)


def pdf_text(data):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True,
                             timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


#  The day the reminder tests start from: a fixed date, any day would do.
DAY = datetime.date(2026, 6, 10)


class HookServer:
    """Records every POST (path, headers, JSON body) and answers 204."""

    def __init__(self):
        posts = self.posts = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_user(self, user):
        return [body for _, _, body in self.posts if body.get("user_id") == user.id]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tracker_system():
    """This module's system: its tracker runs jobs only on the test's clock."""
    from tracker_system import TrackerSystem
    c = tally.Cluster()
    system = TrackerSystem(c, tracker_env={"TALLY_RUN_JOBS": "0"})
    yield system
    failures = c.stop()
    system.stop()
    assert not failures, "\n".join(failures)


@pytest.fixture(autouse=True)
def fresh_plans(tracker_system):
    tally.psql("DELETE FROM tracker.jobs WHERE kind = 'tracker.plan'")


@pytest.fixture
def hooks():
    server = HookServer()
    yield server
    server.close()


# ---------------------------------------------------------------------------
# Reminders

def test_a_user_who_logged_nothing_gets_one_reminder_mail_at_their_time(tracker_system):
    sys = tracker_system
    day = DAY
    user = sys.user(settings={"timezone": "Europe/Paris", "reminder_time": "20:00",
                              "reminder_channel": "email"})
    sys.tracker(user, "Water", "numerical", unit="l")
    # A minute before their time: planned, not sent
    sys.run_jobs(clock(local(day, "19:59", PARIS)))
    time.sleep(1.5)
    assert reminders(sys.sink, user) == []
    # At 20:00 in Paris: one reminder, from the template, with a link
    sys.run_jobs(clock(local(day, "20:00", PARIS)))
    tally.wait_for(lambda: reminders(sys.sink, user), "the reminder", timeout=30)
    msg = reminders(sys.sink, user)[0].parsed()
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert user.username in text and "http" in text
    # The same clock again, and a later clock that day: still one
    sys.run_jobs(clock(local(day, "20:00", PARIS)))
    sys.run_jobs(clock(local(day, "22:30", PARIS)))
    time.sleep(2)
    assert len(reminders(sys.sink, user)) == 1
    # The mailer knows whom it is for (and forgets it when they go)
    assert tally.psql(f"SELECT user_id FROM mailer.outbox"
                      f" WHERE idem_key LIKE 'tracker.remind:{user.id}:%'") == user.id


def test_no_reminder_for_a_user_who_logged_that_day_or_chose_none(tracker_system):
    sys = tracker_system
    day = DAY + datetime.timedelta(days=1)
    paris = {"timezone": "Europe/Paris", "reminder_time": "18:00"}
    idle = sys.user(settings={**paris, "reminder_channel": "email"})
    busy = sys.user(settings={**paris, "reminder_channel": "email"})
    quiet = sys.user(settings={**paris, "reminder_channel": "none"})
    for u in (idle, busy, quiet):
        sys.tracker(u, "Steps", "numerical")
    # busy logs on that local day (a boolean tracker: any tracker counts)
    done = sys.tracker(busy, "Walked", "boolean")
    sys.log(busy, done["id"], True, timestamp=clock(local(day, "09:30", PARIS)))
    sys.run_jobs(clock(local(day, "18:00", PARIS)))
    tally.wait_for(lambda: reminders(sys.sink, idle), "idle's reminder", timeout=30)
    time.sleep(2)
    assert reminders(sys.sink, busy) == []
    assert reminders(sys.sink, quiet) == []
    assert len(reminders(sys.sink, idle)) == 1


def test_a_webhook_reminder_posts_json_once(tracker_system, hooks):
    sys = tracker_system
    day = DAY + datetime.timedelta(days=3)
    user = sys.user(settings={"timezone": "Europe/Paris", "reminder_time": "07:15",
                              "reminder_channel": "webhook",
                              "webhook_url": hooks.url + "/tally/reminders"})
    sys.tracker(user, "Mood", "mood")
    sys.run_jobs(clock(local(day, "07:15", PARIS)))
    sys.run_jobs(clock(local(day, "07:15", PARIS)))
    tally.wait_for(lambda: hooks.for_user(user), "the webhook", timeout=30)
    time.sleep(2)
    assert len(hooks.for_user(user)) == 1
    path, headers, body = next(p for p in hooks.posts if p[2].get("user_id") == user.id)
    assert path == "/tally/reminders"
    assert headers["Content-Type"].startswith("application/json")
    assert body["type"] == "daily_reminder" and body["date"] == day.isoformat()
    assert body["username"] == user.username and body["timezone"] == "Europe/Paris"
    assert reminders(sys.sink, user) == []          # not by mail as well
    assert tally.psql(f"SELECT user_id FROM mailer.outbox"
                      f" WHERE idem_key LIKE 'tracker.remind:{user.id}:%'") == user.id


def test_a_reminder_time_moved_later_after_planning_is_kept(tracker_system, hooks):
    sys = tracker_system
    day = DAY + datetime.timedelta(days=7)
    user = sys.user(settings={"timezone": "Europe/Paris", "reminder_time": "20:00",
                              "reminder_channel": "webhook", "webhook_url": hooks.url})
    sys.tracker(user, "Water", "numerical")
    sys.run_jobs(clock(local(day, "06:00", PARIS)))          # planned for 20:00
    r = sys.patch(user, "/me", {"settings": {"reminder_time": "21:30"}})
    assert r.status_code == 200, r.text
    sys.run_jobs(clock(local(day, "20:00", PARIS)))
    time.sleep(1.5)
    assert hooks.for_user(user) == []
    sys.run_jobs(clock(local(day, "21:30", PARIS)))
    tally.wait_for(lambda: hooks.for_user(user), "the webhook", timeout=30)
    time.sleep(1)
    assert [b["date"] for b in hooks.for_user(user)] == [day.isoformat()]
    assert hooks.for_user(user)[0]["reminder_time"] == "21:30"


def test_reminders_on_daylight_saving_days_run_once(tracker_system, hooks):
    """America/New_York: 02:30 does not exist on 2027-03-14 (spring forward),
    01:30 happens twice on 2027-11-07 (fall back). Each day gets one
    reminder, dated that day, however the clock steps over the change."""
    sys = tracker_system
    ny = {"timezone": "America/New_York", "reminder_channel": "webhook",
          "webhook_url": hooks.url + "/dst"}
    spring = sys.user(settings={**ny, "reminder_time": "02:30"})
    autumn = sys.user(settings={**ny, "reminder_time": "01:30"})
    for u in (spring, autumn):
        sys.tracker(u, "Sleep", "duration")
    for at in ("2027-03-13T12:00:00Z",      # plans the 13th (long past: dropped) and the 14th
               "2027-03-14T06:00:00Z",      # 01:00 EST: not yet
               "2027-03-14T07:00:00Z",      # 03:00 EDT, just after the gap
               "2027-03-14T08:00:00Z", "2027-03-14T13:00:00Z"):
        sys.run_jobs(at)
    for at in ("2027-11-06T12:00:00Z",
               "2027-11-07T05:00:00Z",      # 01:00 EDT
               "2027-11-07T05:45:00Z",      # 01:45 EDT
               "2027-11-07T06:45:00Z",      # 01:45 EST, the second 01:30 has passed
               "2027-11-07T08:00:00Z", "2027-11-07T13:00:00Z"):
        sys.run_jobs(at)
    tally.wait_for(lambda: hooks.for_user(spring) and hooks.for_user(autumn), "both webhooks",
                   timeout=30)
    time.sleep(2)
    # One reminder each day for each (the 13th and the 6th were planned
    # hours after their time, and a reminder that late is dropped)
    assert [b["date"] for b in hooks.for_user(spring)] == ["2027-03-14", "2027-11-07"]
    assert [b["date"] for b in hooks.for_user(autumn)] == ["2027-03-14", "2027-11-07"]


def test_the_plan_pages_through_every_user_with_trackers(tracker_system, hooks):
    """600 owners (unknown to auth) sort before the real user: the plan's
    first page (500) does not reach them, the next page's job does."""
    sys = tracker_system
    fake = "'00000000-0000-4000-8000-' || lpad (g::text, 12, '0')"
    tally.psql(f"INSERT INTO tracker.trackers (owner, name, type) "
               f"SELECT {fake}, 'filler', 'numerical' FROM generate_series (1, 600) AS g")
    try:
        day = DAY + datetime.timedelta(days=5)
        user = sys.user(settings={"timezone": "Europe/Paris", "reminder_time": "11:00",
                                  "reminder_channel": "webhook", "webhook_url": hooks.url})
        assert user.id > "00000000-0000-4000-8000-000000000600"
        sys.tracker(user, "Water", "numerical")
        sys.run_jobs(clock(local(day, "11:00", PARIS)))
        tally.wait_for(lambda: hooks.for_user(user), "the webhook", timeout=30)
        assert [b["date"] for b in hooks.for_user(user)] == [day.isoformat()]
    finally:
        tally.psql("DELETE FROM tracker.trackers WHERE owner LIKE '00000000-0000-4000-8000-%'")


# ---------------------------------------------------------------------------
# Monthly reports by mail

def month_end(first):
    """The instant the Paris month starting on `first` ends."""
    return local((first + datetime.timedelta(days=32)).replace(day=1), "00:00", PARIS)


def month_title(first):
    return f"{MONTHS[first.month - 1]} {first.year}"


def mood_logged(user, tracker_id, value, at):
    """A mood as if logged at `at` (a past day, which the API closes)."""
    tally.psql(f"INSERT INTO tracker.logs (tracker_id, owner, at, num) "
               f"VALUES ('{tracker_id}', '{user.id}', '{at}', {int(value)})")


def make_trackers(sys, user, day):
    """One tracker of each type with logs at noon (Paris) on `day`; returns
    their names."""
    at = clock(local(day, "12:00", PARIS))
    water = sys.tracker(user, "Water intake", "numerical", unit="l")
    sys.log(user, water["id"], 1.5, timestamp=at)
    sys.log(user, water["id"], 2.25, timestamp=at)
    gym = sys.tracker(user, "Went to the gym", "boolean")
    sys.log(user, gym["id"], True, timestamp=at)
    coffee = sys.tracker(user, "Coffee kind", "multiple_choice", choices=["espresso", "latte"])
    sys.log(user, coffee["id"], "latte", timestamp=at)
    nap = sys.tracker(user, "Nap time", "duration")
    sys.log(user, nap["id"], 5400, timestamp=at)
    mood = sys.tracker(user, "Daily mood", "mood")
    mood_logged(user, mood["id"], 4, at)
    return ["Water intake", "Went to the gym", "Coffee kind", "Nap time", "Daily mood"]


#  A January (charts only) and a December (charts and the mood board of the
#  year, one image per mood tracker)
@pytest.mark.parametrize("first,boards", [(datetime.date(2026, 1, 1), 0),
                                          (datetime.date(2025, 12, 1), 1)],
                         ids=["january", "december"])
def test_the_monthly_report_is_mailed_on_the_first_as_pdf_or_html(tracker_system, first, boards):
    sys = tracker_system
    end = month_end(first)
    settings = {"timezone": "Europe/Paris", "reminder_channel": "none"}
    pdf_user = sys.user(settings={**settings, "report_format": "pdf"})
    html_user = sys.user(settings={**settings, "report_format": "html"})
    nothing = sys.user(settings={**settings, "report_format": "pdf"})   # no trackers
    names = make_trackers(sys, pdf_user, first.replace(day=14))
    html_names = make_trackers(sys, html_user, first.replace(day=14))
    # Planned before the month ends, sent at 00:00 Paris time on the 1st
    sys.run_jobs(clock(end - datetime.timedelta(minutes=30)))
    time.sleep(1)
    assert reports(sys.sink, pdf_user, month_title(first)) == []
    sys.run_jobs(clock(end))

    msg = wait_reports(sys.sink, pdf_user, month_title(first))[0].parsed()
    files = list(msg.iter_attachments())
    pdfs = [f for f in files if f.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    assert pdfs[0].get_filename() == f"tally-report-{first:%Y-%m}.pdf"
    data = pdfs[0].get_content()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for name in names:
        assert name in text, (name, text)
    assert month_title(first) in text
    assert "Logs: 2" in text
    assert pdf_user.username in msg.get_body(preferencelist=("plain",)).get_content()
    board_files = [f for f in files if (f.get_filename() or "").startswith("mood-board-")]
    assert len(board_files) == boards

    msg = wait_reports(sys.sink, html_user, month_title(first))[0].parsed()
    html = msg.get_body(preferencelist=("html",)).get_content()
    for name in html_names:
        assert name in html, name
    # Every cid: in the html names an inline PNG of the mail: one per chart,
    # and in December one per mood board
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    images = {p["Content-ID"].strip("<>"): p for p in related.iter_parts()
              if p.get_content_type() == "image/png"}
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == len(html_names) + boards and sorted(cids) == sorted(images)
    for part in images.values():
        assert part.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Water intake" in text and "Logs: 2" in text

    # Once only, whatever runs again; nothing for a user without trackers
    sys.run_jobs(clock(end))
    time.sleep(2)
    assert len(reports(sys.sink, pdf_user, month_title(first))) == 1
    assert len(reports(sys.sink, html_user, month_title(first))) == 1
    assert sys.sink.messages(rcpt=nothing.email) == []
    for u in (pdf_user, html_user):
        assert tally.psql(f"SELECT user_id FROM mailer.outbox"
                          f" WHERE idem_key LIKE 'tracker.report:{u.id}:%'") == u.id


def test_the_december_report_carries_each_mood_board_of_the_year(tracker_system):
    sys = tracker_system
    first = datetime.date(2025, 12, 1)
    end = month_end(first)
    user = sys.user(settings={"timezone": "Europe/Paris", "reminder_channel": "none",
                              "report_format": "pdf"})
    mood = sys.tracker(user, "Evening mood", "mood")
    mood_logged(user, mood["id"], 5, clock(local(datetime.date(2025, 3, 3), "21:00", PARIS)))
    sys.tracker(user, "Pages read", "numerical")
    sys.run_jobs(clock(end - datetime.timedelta(minutes=30)))
    sys.run_jobs(clock(end))
    msg = wait_reports(sys.sink, user, "December 2025")[0].parsed()
    files = {f.get_filename(): f for f in msg.iter_attachments()}
    assert "tally-report-2025-12.pdf" in files
    boards = [f for name, f in files.items() if name.startswith("mood-board-2025")]
    assert len(boards) == 1                          # one mood tracker, one board
    assert boards[0].get_content().startswith(b"\x89PNG\r\n\x1a\n")
    text = pdf_text(files["tally-report-2025-12.pdf"].get_content())
    assert "Evening mood" in text and "Pages read" in text


# ---------------------------------------------------------------------------
# GET /reports/monthly

def test_the_monthly_report_is_served_as_html_and_pdf(tracker_system):
    sys = tracker_system
    user = sys.user(settings={"timezone": "Europe/Paris", "reminder_channel": "none"})
    names = make_trackers(sys, user, datetime.date(2025, 3, 14))
    sys.tracker(user, 'Tea & "Biscuits" <3', "numerical")
    month = "2025-03"

    r = sys.get(user, f"/reports/monthly?month={month}&format=pdf")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content)
    for name in names:
        assert name in text, (name, text)
    assert "Logs: 2" in text

    r = sys.get(user, f"/reports/monthly?month={month}&format=html")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    html = r.text
    assert html.startswith("<!DOCTYPE html>") and "<?xml" not in html
    for name in names:
        assert name in html, name
    assert "Tea &amp; &quot;Biscuits&quot; &lt;3" in html and "<3" not in html
    assert html.count("<svg") == len(names) + 1
    # Ids are each chart's own, references stay inside their chart
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert set(re.findall(r'href="#([^"]+)"', html)) <= set(ids)
    # The same document each time: a strong ETag, 304 with it
    etag = r.headers["ETag"]
    again = sys.get(user, f"/reports/monthly?month={month}&format=html",
                    headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    # December's adds the mood board of the year (a PNG in the page)
    r = sys.get(user, "/reports/monthly?month=2025-12&format=html")
    assert r.status_code == 200
    assert r.text.count('src="data:image/png;base64,iVBORw0KGgo') == 1   # one mood tracker
    r = sys.get(user, "/reports/monthly?month=2025-12&format=pdf")
    assert r.status_code == 200 and "Daily mood" in pdf_text(r.content)

    # Defaults: last month in the user's zone, in their report format
    # (html). "Last month" is the service's own clock's: the month before
    # the one under way when the request ran, which the test brackets.
    def last_month():
        return (datetime.datetime.now(PARIS).date().replace(day=1) - datetime.timedelta(days=1))
    before = last_month()
    r = sys.get(user, "/reports/monthly")
    after = last_month()
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert any(f"Your Tally report for {month_title(m)}" in r.text for m in (before, after))


def test_the_monthly_report_refuses_bad_months_and_formats(tracker_system):
    sys = tracker_system
    user = sys.user()
    for query, field in (("month=2026-13", "month"), ("month=2026-1", "month"),
                         ("month=abcd-ef", "month"), ("month=1969-12", "month"),
                         ("month=2026-11-01", "month"), ("format=docx", "format"),
                         ("month=2026-11&format=PDF", "format")):
        r = sys.get(user, f"/reports/monthly?{query}")
        assert r.status_code == 400, (query, r.text)
        assert field in r.json()["error"]["fields"], (query, r.text)
    assert requests.get(sys.url("/reports/monthly"), timeout=30).status_code == 401


def test_a_user_without_trackers_gets_an_empty_report_over_http(tracker_system):
    sys = tracker_system
    user = sys.user()
    r = sys.get(user, "/reports/monthly?month=2026-10&format=html")
    assert r.status_code == 200
    assert "You have no trackers yet." in r.text and "<svg" not in r.text


# ---------------------------------------------------------------------------
# Mail only to verified addresses (webhooks are not mail)

def unverify(user):
    tally.psql(f"UPDATE auth.users SET verified = false WHERE id = '{user.id}'")


def test_reminders_are_mailed_to_verified_addresses_only(tracker_system, hooks):
    sys = tracker_system
    day = DAY + datetime.timedelta(days=11)
    settings = {"timezone": "Europe/Paris", "reminder_time": "20:00"}
    verified = sys.user(settings={**settings, "reminder_channel": "email"})
    unverified = sys.user(settings={**settings, "reminder_channel": "email"})
    hooked = sys.user(settings={**settings, "reminder_channel": "webhook",
                                "webhook_url": hooks.url})
    for u in (verified, unverified, hooked):
        sys.tracker(u, "Steps", "numerical")
    unverify(unverified)
    unverify(hooked)
    sys.run_jobs(clock(local(day, "19:59", PARIS)))
    sys.run_jobs(clock(local(day, "20:00", PARIS)))
    tally.wait_for(lambda: reminders(sys.sink, verified), "the verified user's reminder",
                   timeout=30)
    tally.wait_for(lambda: hooks.for_user(hooked), "the webhook of an unverified user",
                   timeout=30)
    time.sleep(2)
    assert sys.sink.messages(rcpt=unverified.email) == []


def test_monthly_reports_are_mailed_to_verified_addresses_only(tracker_system):
    sys = tracker_system
    first = datetime.date(2026, 2, 1)
    end = month_end(first)
    settings = {"timezone": "Europe/Paris", "reminder_channel": "none", "report_format": "html"}
    verified = sys.user(settings=settings)
    unverified = sys.user(settings=settings)
    for u in (verified, unverified):
        sys.tracker(u, "Pages read", "numerical")
    unverify(unverified)
    sys.run_jobs(clock(end - datetime.timedelta(minutes=30)))
    sys.run_jobs(clock(end))
    wait_reports(sys.sink, verified, month_title(first))
    time.sleep(2)
    assert sys.sink.messages(rcpt=unverified.email) == []
