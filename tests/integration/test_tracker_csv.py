"""Tracker CSV end to end (API.md "Trackers"): GET /trackers/{id}/logs.csv,
POST /trackers/{id}/logs.csv (all rows or none; a 422 lists every bad line
with its physical line number) and GET /trackers.csv, through the real
gateways, auth and tracker service.

An export imported into a fresh tracker of the same type exports the very
same bytes: quoting, line ends inside notes, canonical values and the order
of logs with equal timestamps all survive."""

import csv
import datetime as dt
import io

import pytest

from tally import psql

UTC = dt.timezone.utc
MiB = 1024 * 1024
CSV = {"Content-Type": "text/csv"}
HEADER = b"timestamp,value,note\r\n"


@pytest.fixture(scope="module")
def sys_(tracker_system):
    return tracker_system


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export(sys_, user, tracker_id, **kw):
    r = sys_.get(user, f"/trackers/{tracker_id}/logs.csv", **kw)
    assert r.status_code == 200, r.text
    return r


def import_(sys_, user, tracker_id, data, headers=CSV):
    return sys_.post(user, f"/trackers/{tracker_id}/logs.csv", data=data, headers=headers)


def rows_of(body):
    """The records of a CSV body (bytes), header included."""
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def count_logs(tracker_id):
    return int(psql(f"SELECT count (*) FROM tracker.logs WHERE tracker_id = '{tracker_id}'"))


def bad_rows(r, code="invalid_rows"):
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    assert list(error)[:3] == ["code", "message", "rows"]
    return [(row["line"], row["reason"]) for row in error["rows"]]


# ---------------------------------------------------------------------------
# Round trips

NASTY_NOTES = [
    "commas, everywhere, here",
    'she said "hello", then ""nothing""',
    "CRLF\r\nin the middle",
    "LF\nin the middle\nand again",
    "lone CR\rhere",
    "emoji 🙂🎉 and accents: café",
    "=SUM(A1:A9)",
    "-1+2",
    "  leading and trailing spaces  ",
    "\ttab first",
    "",
    '"',
    "\ufeffa byte order mark first",
]


def test_nasty_notes_and_choices_round_trip_export_import_export_identical(sys_):
    u = sys_.user()
    choices = ["swim, fast", 'say "hi"', "=1+1", "plain"]
    a = sys_.tracker(u, 'Sport, "daily" 🏊', "multiple_choice", choices=choices)
    base = dt.datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for i, note in enumerate(NASTY_NOTES):
        sys_.log(u, a["id"], choices[i % len(choices)], note=note,
                 timestamp=iso(base + dt.timedelta(minutes=i)))
    first = export(sys_, u, a["id"]).content
    assert first.startswith(HEADER) and first.endswith(b"\r\n")
    records = rows_of(first)
    assert records[0] == ["timestamp", "value", "note"]
    assert [r[2] for r in records[1:]] == NASTY_NOTES
    assert [r[1] for r in records[1:]] == [choices[i % 4] for i in range(len(NASTY_NOTES))]

    b = sys_.tracker(u, "Copy", "multiple_choice", choices=choices)
    r = import_(sys_, u, b["id"], first)
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": len(NASTY_NOTES)}
    assert export(sys_, u, b["id"]).content == first


TYPES = [
    ("numerical", {"unit": "kg"},
     [(0.1, "0.1"), (1e-300, "1e-300"), (-2.5, "-2.5"), (1e15, "1000000000000000"),
      (0, "0"), (123456789.125, "123456789.125"), (5e-324, "5e-324"), (-1e15, "-1000000000000000")]),
    ("duration", {"unit": "s"},
     [(0, "0"), (1.5, "1.5"), (3600, "3600"), (316224000, "316224000"), (0.001, "0.001")]),
    ("boolean", {}, [(True, "true"), (False, "false"), (True, "true")]),
]


@pytest.mark.parametrize("type_,fields,values", TYPES, ids=[t[0] for t in TYPES])
def test_values_round_trip_by_type(sys_, type_, fields, values):
    u = sys_.user()
    a = sys_.tracker(u, f"A {type_}", type_, **fields)
    base = dt.datetime(2026, 1, 1, tzinfo=UTC)
    for i, (value, _) in enumerate(values):
        sys_.log(u, a["id"], value, timestamp=iso(base + dt.timedelta(hours=i)))
    first = export(sys_, u, a["id"]).content
    assert [r[1] for r in rows_of(first)[1:]] == [text for _, text in values]
    b = sys_.tracker(u, f"B {type_}", type_, **fields)
    r = import_(sys_, u, b["id"], first)
    assert r.status_code == 201, r.text
    assert export(sys_, u, b["id"]).content == first
    logs = sys_.get(u, f"/trackers/{b['id']}/logs?limit=100").json()["items"]
    assert sorted(log["value"] for log in logs) == sorted(value for value, _ in values)


def test_moods_round_trip_by_digit_and_by_name(sys_):
    u = sys_.user()
    now = dt.datetime.now(UTC).replace(microsecond=0)
    today = [iso(now - dt.timedelta(seconds=2)), iso(now - dt.timedelta(seconds=1))]
    a = sys_.tracker(u, "Mood", "mood")
    body = f"timestamp,value,note\r\n{today[0]},great,by name\r\n{today[1]},2,by digit\r\n"
    r = import_(sys_, u, a["id"], body.encode())
    assert r.status_code == 201, r.text
    first = export(sys_, u, a["id"]).content
    assert rows_of(first)[1:] == [[today[0], "5", "by name"], [today[1], "2", "by digit"]]
    b = sys_.tracker(u, "Mood again", "mood")
    assert import_(sys_, u, b["id"], first).status_code == 201
    assert export(sys_, u, b["id"]).content == first


def test_logs_with_equal_timestamps_keep_the_order_of_the_file(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Same time", "numerical")
    body = HEADER + b"".join(b"2026-02-02T10:00:00Z,%d,n%d\r\n" % (v, v) for v in (3, 1, 2, 9, 0))
    assert import_(sys_, u, t["id"], body).status_code == 201
    assert export(sys_, u, t["id"]).content == body


def test_header_is_case_insensitive_and_the_note_column_optional(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "No notes", "numerical")
    r = import_(sys_, u, t["id"], b"\xef\xbb\xbfTimeStamp,VALUE\n2026-01-05T10:00:00+02:00,4\n",
                headers={"Content-Type": "application/csv; charset=UTF-8"})
    assert r.status_code == 201, r.text
    assert export(sys_, u, t["id"]).content == HEADER + b"2026-01-05T08:00:00Z,4,\r\n"


def test_import_of_many_rows_inserts_them_all_in_order(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Steps", "numerical")
    base = dt.datetime(2025, 1, 1, tzinfo=UTC)
    lines = [f"{iso(base + dt.timedelta(minutes=i))},{i},note {i}\r\n" for i in range(2500)]
    body = HEADER + "".join(lines).encode()
    r = import_(sys_, u, t["id"], body)
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": 2500}
    assert export(sys_, u, t["id"]).content == body


# ---------------------------------------------------------------------------
# Refusals: every bad line, nothing imported

def test_every_bad_line_is_listed_and_nothing_is_imported(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Weight", "numerical")
    sys_.log(u, t["id"], 70, timestamp="2026-01-01T07:00:00Z")
    body = "\r\n".join([
        "timestamp,value,note",
        "2026-01-01T08:00:00Z,1.5,fine",            # 2
        "yesterday,2,x",                            # 3
        "2026-01-01T09:00:00Z,abc,x",               # 4
        ",3,x",                                     # 5
        "2026-01-01T10:00:00Z,4",                   # 6
        "2026-01-01T11:00:00Z,5," + "é" * 2001,     # 7
        "2026-01-01T12:00:00Z,1e16,x",              # 8
        "2999-01-01T00:00:00Z,1,x",                 # 9
        "2026-02-30T00:00:00Z,,x",                  # 10
        "2026-01-01T13:00:00Z,7,fine too",          # 11
    ]) + "\r\n"
    before = count_logs(t["id"])
    rows = bad_rows(import_(sys_, u, t["id"], body.encode()))
    assert [line for line, _ in rows] == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = dict(rows)
    assert "timestamp must be an RFC 3339 time" in reasons[3]
    assert reasons[4] == "value must be a number"
    assert reasons[5] == "timestamp is required"
    assert reasons[6] == "expected 3 fields, found 2"
    assert reasons[7] == "note is longer than 2000 characters"
    assert reasons[8].startswith("value must be between")
    assert reasons[9] == "timestamp is in the future"
    assert reasons[10] == ("timestamp must be an RFC 3339 time such as 2026-01-31T08:00:00Z; "
                           "value is required")
    assert count_logs(t["id"]) == before == 1


def test_multiline_quoted_note_shifts_the_line_numbers_of_later_records(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Lines", "numerical")
    body = (b"timestamp,value,note\r\n"                                 # 1
            b'2026-01-01T08:00:00Z,1,"first\r\nsecond\nthird"\r\n'      # 2-4
            b"2026-01-01T09:00:00Z,oops,x\r\n"                          # 5
            b'2026-01-01T10:00:00Z,2,"a\n\nb\rc"\n'                     # 6-9
            b"\n"                                                       # 10, empty
            b"bad,3,x\n")                                               # 11
    rows = bad_rows(import_(sys_, u, t["id"], body))
    assert [line for line, _ in rows] == [5, 11]
    assert count_logs(t["id"]) == 0


def test_a_line_that_cannot_be_read_is_the_last_one_listed(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Quotes", "numerical")
    body = (b"timestamp,value,note\n"
            b"2026-01-01T08:00:00Z,x,fine\n"                # 2: bad value
            b'2026-01-01T09:00:00Z,1,a "stray" quote\n'     # 3: cannot be read
            b"2026-01-01T10:00:00Z,y,never checked\n")
    r = import_(sys_, u, t["id"], body)
    rows = bad_rows(r)
    assert rows == [(2, "value must be a number"), (3, "stray quote in a field")]
    assert "could not be read past line 3" in r.json()["error"]["message"]
    assert count_logs(t["id"]) == 0


def test_bad_header_is_422_on_line_1(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Header", "numerical")
    for header in (b"time,value,note", b"timestamp,value,note,extra", b"value,timestamp",
                   b"timestamp"):
        rows = bad_rows(import_(sys_, u, t["id"], header + b"\r\n2026-01-01T08:00:00Z,1,x\r\n"),
                        "invalid_header")
        assert rows == [(1, "the header must be timestamp,value,note (or timestamp,value)")]
    rows = bad_rows(import_(sys_, u, t["id"], b""), "invalid_header")
    assert rows == [(1, "the file is empty: the first line must be the header "
                        "timestamp,value,note")]
    assert count_logs(t["id"]) == 0


def test_wrong_content_type_is_415(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Types", "numerical")
    body = HEADER + b"2026-01-01T08:00:00Z,1,x\r\n"
    for content_type in ("application/json", "text/plain", "text/csv; charset=latin1",
                         "application/octet-stream"):
        r = import_(sys_, u, t["id"], body, headers={"Content-Type": content_type})
        assert r.status_code == 415, (content_type, r.text)
        assert r.json()["error"]["code"] == "unsupported_media_type"
    assert count_logs(t["id"]) == 0


def test_body_over_10_mib_is_413(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Big", "numerical")
    body = HEADER + b"2026-01-01T08:00:00Z,1," + b"x" * (10 * MiB + 1 - len(HEADER) - 23)
    assert len(body) == 10 * MiB + 1
    r = import_(sys_, u, t["id"], body)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert count_logs(t["id"]) == 0


def test_more_than_100000_rows_is_422(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Many", "boolean")
    base = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    lines = (f"{dt.datetime.fromtimestamp(base + i, UTC):%Y-%m-%dT%H:%M:%SZ},true\n"
             for i in range(100001))
    body = b"timestamp,value\n" + "".join(lines).encode()
    r = import_(sys_, u, t["id"], body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "too_many_rows"
    assert count_logs(t["id"]) == 0


def test_exactly_100000_rows_are_imported(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Many ok", "boolean")
    base = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    lines = (f"{dt.datetime.fromtimestamp(base + i, UTC):%Y-%m-%dT%H:%M:%SZ},false\n"
             for i in range(100000))
    r = import_(sys_, u, t["id"], b"timestamp,value\n" + "".join(lines).encode())
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": 100000}
    assert count_logs(t["id"]) == 100000
    assert len(rows_of(export(sys_, u, t["id"]).content)) == 100001


def test_mood_import_refuses_other_days_and_a_third_mood_counting_existing_logs(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Mood", "mood")
    now = dt.datetime.now(UTC).replace(microsecond=0)
    sys_.log(u, t["id"], 3, timestamp=iso(now - dt.timedelta(seconds=3)))
    body = "\n".join([
        "timestamp,value,note",
        f"{iso(now - dt.timedelta(days=2))},good,old day",     # 2
        f"{iso(now - dt.timedelta(seconds=2))},good,second",   # 3
        f"{iso(now - dt.timedelta(seconds=1))},awful,third",   # 4
    ]) + "\n"
    rows = bad_rows(import_(sys_, u, t["id"], body.encode()))
    assert rows == [(2, "day_closed"), (4, "more than two moods that day")]
    assert count_logs(t["id"]) == 1
    ok = f"timestamp,value\n{iso(now - dt.timedelta(seconds=2))},good\n"
    assert import_(sys_, u, t["id"], ok.encode()).status_code == 201
    assert count_logs(t["id"]) == 2


# ---------------------------------------------------------------------------
# Ownership, the whole account, HTTP caching

def test_another_users_tracker_is_404_on_export_and_import(sys_):
    owner, other = sys_.user(), sys_.user()
    t = sys_.tracker(owner, "Mine", "numerical")
    sys_.log(owner, t["id"], 1, timestamp="2026-01-01T08:00:00Z")
    r = sys_.get(other, f"/trackers/{t['id']}/logs.csv")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = import_(sys_, other, t["id"], HEADER + b"2026-01-02T08:00:00Z,2,x\r\n")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert count_logs(t["id"]) == 1
    assert sys_.get(other, "/trackers/not-a-uuid/logs.csv").status_code == 404


def test_trackers_csv_lists_every_tracker_and_log_including_trackers_without_logs(sys_):
    u, other = sys_.user(), sys_.user()
    a = sys_.tracker(u, "Sleep, nightly", "duration", unit="s")
    b = sys_.tracker(u, "Empty", "boolean")
    c = sys_.tracker(u, "Choice", "multiple_choice", choices=["x, y", "z"])
    sys_.tracker(other, "Not mine", "numerical")
    sys_.log(u, a["id"], 28800, timestamp="2026-01-02T07:00:00Z", note="late")
    sys_.log(u, a["id"], 25200.5, timestamp="2026-01-01T07:00:00.250Z")
    sys_.log(u, c["id"], "x, y", timestamp="2026-01-01T09:00:00Z")
    r = sys_.get(u, "/trackers.csv")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="trackers.csv"'
    assert rows_of(r.content) == [
        ["tracker_id", "tracker", "type", "unit", "timestamp", "value", "note"],
        [a["id"], "Sleep, nightly", "duration", "s", "2026-01-01T07:00:00.250Z", "25200.5", ""],
        [a["id"], "Sleep, nightly", "duration", "s", "2026-01-02T07:00:00Z", "28800", "late"],
        [b["id"], "Empty", "boolean", "", "", "", ""],
        [c["id"], "Choice", "multiple_choice", "", "2026-01-01T09:00:00Z", "x, y", ""],
    ]
    fresh = sys_.user()
    assert sys_.get(fresh, "/trackers.csv").content == \
        b"tracker_id,tracker,type,unit,timestamp,value,note\r\n"


def test_export_is_a_csv_attachment_with_a_safe_file_name(sys_):
    u = sys_.user()
    t = sys_.tracker(u, 'My "water"; \\ intake/день', "numerical")
    r = export(sys_, u, t["id"])
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="My_water_intake.csv"'
    assert r.content == HEADER


def test_exports_carry_an_etag_and_answer_304_to_if_none_match(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Cached", "numerical")
    sys_.log(u, t["id"], 1, timestamp="2026-01-01T08:00:00Z")
    for path in (f"/trackers/{t['id']}/logs.csv", "/trackers.csv"):
        first = sys_.get(u, path)
        etag = first.headers["ETag"]
        again = sys_.get(u, path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert sys_.get(u, path, headers={"If-None-Match": '"other"'}).status_code == 200
    etag = sys_.get(u, f"/trackers/{t['id']}/logs.csv").headers["ETag"]
    sys_.log(u, t["id"], 2, timestamp="2026-01-01T09:00:00Z")
    changed = sys_.get(u, f"/trackers/{t['id']}/logs.csv", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_more_than_1000_bad_lines_lists_1000_and_counts_the_rest(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Flags", "boolean")
    body = HEADER + b"".join(b"2026-01-01T08:00:00Z,yes,%d\r\n" % i for i in range(1500))
    r = import_(sys_, u, t["id"], body)
    rows = bad_rows(r)
    assert rows == [(i + 2, "value must be true or false") for i in range(1000)]
    error = r.json()["error"]
    assert list(error) == ["code", "message", "rows", "more"] and error["more"] == 500
    assert error["message"].startswith("1500 lines are invalid: nothing was imported")


def big_body(first_day):
    """Exactly 10 MiB of CSV: rows of 2000-character notes, then padding."""
    note = b"n" * 2000
    out = bytearray(HEADER)
    i = 0
    while True:
        row = b"%sT00:00:%02dZ,%d,%s\r\n" % (first_day.encode(), i % 60, i, note)
        if len(out) + len(row) > 10 * MiB:
            break
        out += row
        i += 1
    out += b"\r\n" * ((10 * MiB - len(out)) // 2) + b" " * ((10 * MiB - len(out)) % 2)
    assert len(out) == 10 * MiB
    return bytes(out), i


def test_exactly_10_mib_is_imported_and_an_export_past_11_mib_is_413(sys_):
    u = sys_.user()
    t = sys_.tracker(u, "Journal", "numerical")
    total = 0
    for day in ("2026-01-01", "2026-01-02"):
        body, rows = big_body(day)
        r = import_(sys_, u, t["id"], body)
        assert r.status_code == 201, r.text
        assert r.json() == {"imported": rows}
        total += rows
    assert count_logs(t["id"]) == total
    r = sys_.get(u, f"/trackers/{t['id']}/logs.csv")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert "11 MiB" in r.json()["error"]["message"]
    assert sys_.get(u, "/trackers.csv").status_code == 413
