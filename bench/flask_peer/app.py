"""The Flask peer of bench/peer.sh (issue #10): a tracker's logs served the
way the seed projects serve them — Flask, psycopg2 with one connection per
worker process, gunicorn with sync workers — against Tally's own database.

Two endpoints, with the API's paths, status codes and JSON (shared/API.md):

    GET  /api/v1/trackers/<id>/logs?limit=&cursor=&from=&to=
    POST /api/v1/trackers/<id>/logs   {timestamp?, value, note?}

It reads and writes Tally's tables (auth.sessions, auth.users,
tracker.trackers, tracker.logs), so both stacks serve the very same rows,
and it does the work Tally does for each request, no less:

- the bearer token (or the tally_session cookie) is checked like
  tally-auth's session.check: the BLAKE2b-256 of the token looked up in
  auth.sessions joined to its user, unexpired; last_used_at and the sliding
  expiry written at most once a minute;
- the tracker is read by id *and* owner (another user's tracker: 404);
- GET: a keyset page (limit + 1 rows, newest first) with the columns and
  SQL of tally-tracker's logs_page, next_cursor as Tally writes it;
- POST: the body checked as tally-tracker checks it (JSON object; value of
  the tracker's type: 400 for a wrong JSON type, 422 for a value out of
  range; an RFC 3339 timestamp at most 24 h ahead; a note of at most 2000
  characters), then one transaction: the tracker row locked, the value
  checked again against it, the quota of 100 000 logs counted, the mood
  rules for a mood tracker, the INSERT ... RETURNING; 201 with Location;
- the JSON built per request, with the same keys in the same order; a GET
  carries a strong ETag (BLAKE2b-128 of the body; If-None-Match: 304) and
  every answer X-Request-Id and the gateway's security headers.

Not done, as the bench does not exercise them: Idempotency-Key replays,
per-user rate limits. Statements are sent as text each time (psycopg2 has
no prepared statements; Tally prepares its own).

Run: DATABASE_URL=postgresql://... gunicorn -w 5 -b 127.0.0.1:PORT app:app
"""
import calendar
import datetime
import hashlib
import itertools
import json
import math
import os
import re
import time

import psycopg2
from flask import Flask, Response, g, request

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")          # auth_token_valid
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")  # tl_valid_uuid
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
CURSOR_TIME_RE = re.compile(r"^[0-9:.TZ+-]{20,32}$")
RFC3339_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})"
                        r"(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")

SESSION_TOUCH_SEC = 60          # auth_limits.h
SESSION_IDLE_DAYS = 30
LIMIT_DEFAULT, LIMIT_MAX = 50, 500
NOTE_MAX = 2000                 # trk_limits.h
VALUE_MAX_ABS = 1e15
DURATION_MAX_SEC = 316224000
FUTURE_SLACK_MS = 24 * 3600 * 1000
MAX_LOGS_PER_TRACKER = 100000
CHOICE_MAX_LEN = 100
#  What proto/services/tracker.json declares of logs.create's body, which
#  the gateway checks before the service reads it
LOG_FIELDS = {"timestamp": ("string", 64), "note": ("string", 2000)}

#  The columns of a log as the API shows it, then the list cursor
#  (tally-tracker's S_COLUMNS).
LOG_COLUMNS = ("id, tracker_id, tracker.rfc3339 (at), num, flag, choice, note, "
               "tracker.rfc3339 (created_at), "
               "to_char (at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
SQL_SESSION = (
    "SELECT s.user_id, u.is_admin, u.is_super_admin, "
    "       s.last_used_at < now () - make_interval (secs => %s) "
    "FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id "
    "WHERE s.token_hash = %s AND s.expires_at > now ()")
SQL_SESSION_TOUCH = (
    "UPDATE auth.sessions SET last_used_at = now (), "
    "       expires_at = now () + make_interval (days => %s) WHERE token_hash = %s")
SQL_TRACKER = ("SELECT id, owner, name, type, coalesce (unit, ''), choices "
               "FROM tracker.trackers WHERE id = %s AND owner = %s")
SQL_TRACKER_LOCK = SQL_TRACKER + " FOR UPDATE"
SQL_PAGE = (
    "SELECT " + LOG_COLUMNS + " FROM tracker.logs WHERE tracker_id = %s AND owner = %s "
    "AND at >= to_timestamp (%s::float8 / 1000) AND at <= to_timestamp (%s::float8 / 1000) "
    "AND (%s::timestamptz IS NULL OR (at, id) < (%s::timestamptz, %s::uuid)) "
    "ORDER BY at DESC, id DESC LIMIT %s")
SQL_COUNT = ("SELECT count (*) FROM (SELECT 1 FROM tracker.logs WHERE tracker_id = %s "
             "LIMIT %s) AS l")
SQL_INSERT = (
    "INSERT INTO tracker.logs (tracker_id, owner, at, num, flag, choice, note) "
    "VALUES (%s, %s, to_timestamp (%s::float8 / 1000), %s, %s, %s, %s) "
    "RETURNING " + LOG_COLUMNS)
SQL_ZONE = "SELECT timezone FROM auth.users WHERE id = %s"
SQL_MOOD_DAY = (
    "SELECT (t.at AT TIME ZONE %(zone)s)::date = (now () AT TIME ZONE %(zone)s)::date, "
    "       (SELECT count (*) FROM tracker.logs l WHERE l.tracker_id = %(tracker)s "
    "        AND (l.at AT TIME ZONE %(zone)s)::date = (t.at AT TIME ZONE %(zone)s)::date) "
    "FROM (SELECT to_timestamp (%(at)s::float8 / 1000) AS at) AS t")

app = Flask(__name__)
app.json.sort_keys = False      # the keys in Tally's order
app.json.ensure_ascii = False   # UTF-8 as Tally writes it
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024      # TL_HTTP_MAX_JSON_BODY

#  One connection per worker process, opened on its first request.
_conn = None
_request_ids = itertools.count(1)
_request_prefix = os.urandom(8).hex()


def db():
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg2.connect(os.environ["DATABASE_URL"])
        _conn.autocommit = True     # one statement, one transaction, as libpq in Tally
    return _conn


def json_response(obj, status=200):
    """`obj` as compact JSON, UTF-8, no trailing newline: as the gateway writes it."""
    return Response(app.json.dumps(obj, separators=(",", ":")), status=status,
                    content_type="application/json; charset=utf-8")


class Refusal(Exception):
    def __init__(self, status, code, message, fields=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}


def field_error(status, field, why):
    return Refusal(status, "invalid", f"{field} {why}", {field: why})


@app.errorhandler(Refusal)
def on_refusal(e):
    error = {"code": e.code, "message": e.message}
    if e.fields:
        error["fields"] = e.fields
    response = json_response({"error": error}, e.status)
    response.headers.update(e.headers)
    return response


@app.errorhandler(psycopg2.Error)
def on_database_error(e):
    global _conn
    if _conn is not None and (_conn.closed or isinstance(e, psycopg2.OperationalError)):
        try:
            _conn.close()
        except psycopg2.Error:
            pass
        _conn = None
    return on_refusal(Refusal(503, "database", "the database is not available now"))


@app.errorhandler(404)
def on_not_found(e):
    return on_refusal(Refusal(404, "not_found", "no such resource"))


@app.errorhandler(405)
def on_method(e):
    refusal = Refusal(405, "method_not_allowed", "this path does not take this method",
                      headers={"Allow": ", ".join(e.valid_methods or [])})
    return on_refusal(refusal)


@app.errorhandler(413)
def on_too_large(e):
    return on_refusal(Refusal(413, "too_large", "the body is too large"))


@app.before_request
def request_id():
    given = request.headers.get("X-Request-Id")
    g.request_id = (given if given and REQUEST_ID_RE.match(given)
                    else "%s%016x" % (_request_prefix, next(_request_ids)))


@app.after_request
def common_headers(response):
    h = response.headers
    if request.method == "GET" and response.status_code == 200:
        body = response.get_data()
        etag = '"%s"' % hashlib.blake2b(body, digest_size=16).hexdigest()
        h["ETag"] = etag
        h["Cache-Control"] = "private, no-cache"
        inm = request.headers.get("If-None-Match")
        if inm and (inm.strip() == "*" or etag in [t.strip().removeprefix("W/")
                                                   for t in inm.split(",")]):
            response.status_code = 304
            response.set_data(b"")
            del h["Content-Type"]
    else:
        h.setdefault("Cache-Control", "no-store")
    h["X-Request-Id"] = g.get("request_id", "")
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response


def current_user(cur):
    """The caller's user id, as tally-auth's session.check finds it, or 401."""
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else request.cookies.get("tally_session")
    if not token:
        raise Refusal(401, "unauthenticated", "a session token is required")
    if not TOKEN_RE.match(token):
        raise Refusal(401, "unauthenticated", "no such session")
    token_hash = hashlib.blake2b(token.encode(), digest_size=32).digest()
    cur.execute(SQL_SESSION, (SESSION_TOUCH_SEC, token_hash))
    row = cur.fetchone()
    if row is None:
        raise Refusal(401, "unauthenticated", "no such session")
    if row[3]:      # sliding expiry, written at most once a minute
        cur.execute(SQL_SESSION_TOUCH, (SESSION_IDLE_DAYS, token_hash))
    return str(row[0])


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def json_body(fields):
    """The request's JSON body checked against the route's declared
    `fields` ({name: (type, max characters)}), as the gateway checks it
    before the service sees it: 400 malformed_json, 400 invalid_body."""
    data = request.get_data()
    body = None
    if data:
        try:
            body = json.loads(data, parse_constant=_no_constant)
        except ValueError as e:
            raise Refusal(400, "malformed_json", str(e))
    errors = {}
    if not isinstance(body, dict):
        errors["body"] = "must be a JSON object"
    else:
        for name, (kind, limit) in fields.items():
            value = body.get(name)
            if value is None:
                continue
            if kind == "string" and not isinstance(value, str):
                errors[name] = "must be a string"
            elif len(value) > limit:
                errors[name] = f"must be at most {limit} characters"
    if errors:
        raise Refusal(400, "invalid_body", "the body does not match the declaration", errors)
    return body


def load_tracker(cur, tracker_id, user, lock=False):
    """The caller's tracker as a dict, or 404 (another user's, or none)."""
    if not UUID_RE.match(tracker_id):
        raise Refusal(404, "not_found", "no such tracker")
    cur.execute(SQL_TRACKER_LOCK if lock else SQL_TRACKER, (tracker_id, user))
    row = cur.fetchone()
    if row is None:
        raise Refusal(404, "not_found", "no such tracker")
    return {"id": str(row[0]), "owner": row[1], "name": row[2], "type": row[3],
            "unit": row[4], "choices": row[5] or []}


def parse_time_ms(text):
    """Milliseconds since the epoch of an RFC 3339 time (tl_time_parse), or None."""
    m = RFC3339_RE.match(text) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    millis = int((m.group(7) or "0")[:3].ljust(3, "0"))
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * (-1 if m.group(9) == "-" else 1)
    if year < 1970 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 60:
        return None
    try:
        datetime.date(year, month, day)     # no such day: ValueError
    except ValueError:
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
    value = (seconds - offset * 60) * 1000 + millis
    return value if value > 0 else None


def log_json(row, tracker_type):
    """A log row (LOG_COLUMNS) as the API shows it."""
    num, flag, choice = row[3], row[4], row[5]
    if tracker_type == "boolean":
        value = flag
    elif tracker_type == "multiple_choice":
        value = choice
    elif num is None:
        value = None
    elif tracker_type == "mood":
        value = int(num) if num == math.floor(num) and 1 <= num <= 5 else None
    else:
        lo, hi = (0, DURATION_MAX_SEC) if tracker_type == "duration" else (-VALUE_MAX_ABS, VALUE_MAX_ABS)
        if not lo <= num <= hi:
            value = None
        elif num == math.trunc(num) and abs(num) < 9.2e18:
            value = int(num)
        else:
            value = num
    return {"id": str(row[0]), "tracker_id": str(row[1]), "timestamp": row[2],
            "value": value, "note": row[6], "created_at": row[7]}


def check_value(tracker, value):
    """The SQL parameters (num, flag, choice) of `value` for `tracker`, or
    400 (wrong JSON type) / 422 (wrong value), as tally-tracker answers."""
    kind = tracker["type"]
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise field_error(400, "value", "must be true or false")
        return None, value, None
    if kind == "multiple_choice":
        if not isinstance(value, str):
            raise field_error(400, "value", "must be one of the choices")
        if value not in tracker["choices"] or len(value.encode()) > CHOICE_MAX_LEN:
            raise field_error(422, "value", "must be one of the tracker's choices")
        return None, None, value
    if not is_number:
        raise field_error(400, "value", "must be a number")
    if kind == "mood":
        if not (1 <= value <= 5) or value != math.floor(value):
            raise field_error(422, "value", "must be an integer from 1 (awful) to 5 (great)")
        return int(value), None, None
    number = float(value)
    if math.isnan(number):
        raise field_error(422, "value", "must be a finite number")
    if kind == "numerical":
        if abs(number) > VALUE_MAX_ABS:
            raise field_error(422, "value", "must be a finite number" if math.isinf(number)
                              else "must be between -1e15 and 1e15")
    else:
        if number < 0:
            raise field_error(422, "value", "must not be negative")
        if number > DURATION_MAX_SEC:
            raise field_error(422, "value", "must be at most 316224000 seconds (ten years)")
    return (0.0 if number == 0 else number), None, None


@app.get("/healthz")
def healthz():
    return Response("ok", mimetype="text/plain")


@app.get("/api/v1/trackers/<tracker_id>/logs")
def logs_list(tracker_id):
    with db().cursor() as cur:
        user = current_user(cur)
        tracker = load_tracker(cur, tracker_id, user)
        from_ms, to_ms = "-infinity", "infinity"
        for name in ("from", "to"):
            text = request.args.get(name)
            if text:
                ms = parse_time_ms(text)
                if ms is None:
                    raise field_error(400, name, "must be an RFC 3339 time")
                if name == "from":
                    from_ms = str(ms)
                else:
                    to_ms = str(ms)
        if from_ms != "-infinity" and to_ms != "infinity" and int(from_ms) > int(to_ms):
            raise field_error(400, "from", "must not be after to")
        limit = LIMIT_DEFAULT
        text = request.args.get("limit")
        if text is not None:
            if not text.isdigit() or not 1 <= int(text) <= LIMIT_MAX:
                raise field_error(400, "limit", "must be 1 to 500")
            limit = int(text)
        after_time = after_id = None
        cursor = request.args.get("cursor")
        if cursor:
            head, sep, tail = cursor.rpartition("_")
            if not sep or not CURSOR_TIME_RE.match(head) or not UUID_RE.match(tail):
                raise field_error(400, "cursor", "is not a cursor from this list")
            after_time, after_id = head, tail
        try:
            cur.execute(SQL_PAGE, (tracker["id"], user, from_ms, to_ms,
                                   after_time, after_time, after_id, limit + 1))
        except psycopg2.DataError:
            raise field_error(400, "cursor", "is not a cursor from this list")
        rows = cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [log_json(row, tracker["type"]) for row in rows]
    next_cursor = f"{rows[-1][8]}_{rows[-1][0]}" if more and rows else None
    return json_response({"items": items, "next_cursor": next_cursor})


@app.post("/api/v1/trackers/<tracker_id>/logs")
def logs_create(tracker_id):
    conn = db()
    with conn.cursor() as cur:
        if request.content_length and request.mimetype != "application/json":
            raise Refusal(415, "unsupported_media_type", "send the body as application/json")
        user = current_user(cur)
        body = json_body(LOG_FIELDS)
        tracker = load_tracker(cur, tracker_id, user)
        now_ms = int(time.time() * 1000)
        at_ms = now_ms
        stamp = body.get("timestamp")
        if stamp is not None:
            at_ms = parse_time_ms(stamp)
            if at_ms is None:
                raise field_error(400, "timestamp",
                                  "must be an RFC 3339 time such as 2026-11-23T18:05:00Z")
            if at_ms > now_ms + FUTURE_SLACK_MS:
                raise field_error(422, "timestamp", "is in the future")
        value = body.get("value")
        if value is None:
            raise field_error(400, "value", "is required")
        check_value(tracker, value)
        note = body.get("note")
        if note is not None and len(note) > NOTE_MAX:
            raise field_error(400, "note", "must be at most 2000 characters")
        zone = None
        if tracker["type"] == "mood":
            cur.execute(SQL_ZONE, (user,))
            row = cur.fetchone()
            zone = row[0] if row else "UTC"
        #  One transaction: the tracker row locked, then what it allows
        cur.execute("BEGIN")
        try:
            locked = load_tracker(cur, tracker_id, user, lock=True)
            num, flag, choice = check_value(locked, value)
            cur.execute(SQL_COUNT, (locked["id"], MAX_LOGS_PER_TRACKER + 1))
            if cur.fetchone()[0] >= MAX_LOGS_PER_TRACKER:
                raise Refusal(422, "too_many_logs",
                              f"a tracker holds at most {MAX_LOGS_PER_TRACKER} logs")
            if locked["type"] == "mood":
                if zone is None:
                    raise Refusal(409, "conflict", "the tracker changed during the write: retry")
                cur.execute(SQL_MOOD_DAY, {"zone": zone, "tracker": locked["id"], "at": at_ms})
                today, others = cur.fetchone()
                if not today:
                    raise Refusal(409, "day_closed",
                                  "a mood can be added, changed or deleted only on its own day")
                if others > 1:
                    raise Refusal(409, "too_many_moods", "a mood tracker takes two logs a day")
            cur.execute(SQL_INSERT, (locked["id"], user, at_ms, num, flag, choice, note or ""))
            row = cur.fetchone()
            cur.execute("COMMIT")
        except BaseException:
            if not conn.closed:
                cur.execute("ROLLBACK")
            raise
    response = json_response(log_json(row, locked["type"]), 201)
    response.headers["Location"] = f"/api/v1/trackers/{locked['id']}/logs/{row[0]}"
    return response
