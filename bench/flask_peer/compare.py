"""compare.py TALLY_BASE FLASK_BASE TRACKER_ID TOKEN — before bench/peer.sh
measures anything: do Tally and the Flask peer answer the same?

- GET /api/v1/trackers/{id}/logs?limit=50, then the page after it (each
  stack following its own next_cursor): the same JSON, equal value for
  value, keys in the same order, 200, a strong ETag, X-Request-Id;
- POST /api/v1/trackers/{id}/logs: 201, the same keys in the same order,
  the value and note as sent, a Location to the new log;
- the refusals the bench's requests could meet: a bad token (401), another
  tracker (404), a value of the wrong JSON type (400), out of range (422),
  no value (400), with the same error codes and fields.

Prints one line per check; exits 1 at the first difference, showing both.
Standard library only (/usr/bin/python3).
"""
import json
import re
import sys
import urllib.error
import urllib.request

tally, flask, tracker, token = sys.argv[1:5]
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
failed = False


def call(base, method, path, body=None, auth=token):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method)
    if auth:
        req.add_header("Authorization", "Bearer " + auth)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def fail(what, a, b):
    print(f"compare: DIFFERENT: {what}\n  tally: {a}\n  flask: {b}", file=sys.stderr)
    sys.exit(1)


def same(what, a, b):
    if a != b:
        fail(what, a, b)


def shape(value):
    """The JSON shape: keys in order, types of the leaves."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}, list(value)
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def both(method, path, body=None, auth=token):
    t, f = call(tally, method, path, body, auth), call(flask, method, path, body, auth)
    try:
        tj = json.loads(t[2]) if t[2] else None
        fj = json.loads(f[2]) if f[2] else None
    except ValueError as e:
        fail(f"{method} {path}: a body that is not JSON ({e})", t[2][:200], f[2][:200])
    same(f"{method} {path}: status", t[0], f[0])
    return t, f, tj, fj


# --- GET: two pages, each stack following its own cursor
path = f"/trackers/{tracker}/logs?limit=50"
for page in (1, 2):
    t, f, tj, fj = both("GET", path)
    same(f"GET page {page}: status 200", t[0], 200)
    same(f"GET page {page}: shape (keys in order, types)", shape(tj), shape(fj))
    same(f"GET page {page}: 50 items", (len(tj["items"]), len(fj["items"])), (50, 50))
    for i, (a, b) in enumerate(zip(tj["items"], fj["items"])):
        same(f"GET page {page}: item {i}", a, b)
    same(f"GET page {page}: next_cursor", tj["next_cursor"], fj["next_cursor"])
    identical = t[2] == f[2]
    for name in ("ETag", "X-Request-Id", "Content-Type"):
        same(f"GET page {page}: header {name} present", bool(t[1].get(name)), bool(f[1].get(name)))
    same(f"GET page {page}: Content-Type", t[1]["Content-Type"].split(";")[0],
         f[1]["Content-Type"].split(";")[0])
    print(f"compare: GET page {page}: the same JSON from both (50 items, "
          f"{tj['items'][0]['timestamp']} to {tj['items'][-1]['timestamp']}); "
          + (f"byte for byte ({len(t[2])} bytes), ETag {'equal' if t[1]['ETag'] == f[1]['ETag'] else 'DIFFERENT'}"
             if identical else f"written differently: {len(t[2])} and {len(f[2])} bytes"))
    if not tj["next_cursor"]:
        fail("GET page 1: a next page", None, None)
    path = f"/trackers/{tracker}/logs?limit=50&cursor={tj['next_cursor']}"

# --- POST: the same answer for the same log
body = {"value": 12.25, "note": "compare: \"quoted\", é ✓"}
t, f, tj, fj = both("POST", f"/trackers/{tracker}/logs", body)
same("POST: status 201", t[0], 201)
same("POST: shape (keys in order, types)", shape(tj), shape(fj))
for key in ("tracker_id", "value", "note"):
    same(f"POST: {key}", tj[key], fj[key])
same("POST: value and note as sent", (tj["value"], tj["note"]), (body["value"], body["note"]))
for key in ("timestamp", "created_at"):
    same(f"POST: {key} in RFC 3339", (bool(TIME_RE.match(tj[key])), bool(TIME_RE.match(fj[key]))),
         (True, True))
same("POST: Location", (t[1].get("Location"), f[1].get("Location")),
     (f"/api/v1/trackers/{tracker}/logs/{tj['id']}", f"/api/v1/trackers/{tracker}/logs/{fj['id']}"))
print("compare: POST: 201 and the same log from both")

# --- The refusals
cases = [
    ("GET", f"/trackers/{tracker}/logs?limit=50", None, "x" * 43, 401),
    ("GET", f"/trackers/{tracker}/logs?limit=50", None, None, 401),
    ("GET", "/trackers/00000000-0000-0000-0000-000000000000/logs?limit=50", None, token, 404),
    ("GET", f"/trackers/{tracker}/logs?limit=501", None, token, 400),
    ("POST", f"/trackers/{tracker}/logs", {"value": "2.5"}, token, 400),
    ("POST", f"/trackers/{tracker}/logs", {"value": True}, token, 400),
    ("POST", f"/trackers/{tracker}/logs", {"value": 1e16}, token, 422),
    ("POST", f"/trackers/{tracker}/logs", {"note": "no value"}, token, 400),
    ("POST", f"/trackers/{tracker}/logs", {"value": 1, "timestamp": "yesterday"}, token, 400),
    ("POST", f"/trackers/{tracker}/logs", {"value": 1, "timestamp": "2999-01-01T00:00:00Z"}, token, 422),
    ("POST", f"/trackers/{tracker}/logs", {"value": 1, "note": "n" * 2001}, token, 400),
]
for method, path, body, auth, status in cases:
    t, f, tj, fj = both(method, path, body, auth)
    what = f"{method} {path[:60]} {json.dumps(body)[:40] if body else ''}"
    same(f"{what}: status {status}", t[0], status)
    same(f"{what}: error code", tj["error"]["code"], fj["error"]["code"])
    same(f"{what}: error fields", sorted((tj["error"].get("fields") or {}).keys()),
         sorted((fj["error"].get("fields") or {}).keys()))
    print(f"compare: {what}: {status} {tj['error']['code']} from both")
print("compare: Tally and the Flask peer answer the same")
