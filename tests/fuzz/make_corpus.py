#!/usr/bin/python3
"""make_corpus.py — writes the seed corpora of the fuzz targets.

Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py
Each seed is a small file with a name that says what it exercises; the
ctest tests fuzz_corpus_<name> replay them all. Inputs that once crashed a
target are kept here too (the regress_* entries), so that the corpus can
always be regenerated. Files this script did not write (new finds saved by
libFuzzer) are left alone.
"""
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def mp(value):
    return msgpack.packb(value, use_bin_type=True)


def nested(depth, inner=1):
    value = inner
    for _ in range(depth):
        value = [value]
    return value


# --------------------------------------------------------------------------
# json: request bodies (and, after a 0xC1 byte, MessagePack reply bodies)

def json_corpus():
    w = lambda name, data: write("json", name, data)
    w("valid_tracker.json", '{"name": "Water", "description": "glasses a day",'
      ' "type": "numerical", "unit": "glass"}')
    w("valid_all_types.json", '{"name": "n", "type": "mood", "choices": ["a", "b"],'
      ' "value": 2.5, "count": 3, "hidden": false, "settings": {"x": null}}')
    w("valid_order.json", '{"items": [{"ticket_id": "7f1c", "quantity": 2},'
      ' {"ticket_id": "8a2d", "quantity": 1}]}')
    w("valid_scalar.json", '"just a string"')
    w("valid_empty_object.json", "{}")
    w("valid_whitespace.json", ' \t\r\n[ 1 , { } , [ ] ] \n')
    w("deep_32.json", "[" * 32 + "]" * 32)
    w("deep_33.json", "[" * 33 + "]" * 33)
    w("deep_objects_33.json", '{"a":' * 33 + "1" + "}" * 33)
    w("deep_2100_unclosed.json", "[" * 2100)
    w("unicode_escapes.json", '{"t": "\\u00e9\\u20ac\\ud83d\\ude00 \\u2028\\u2029 \\u001f"}')
    w("unicode_raw.json", '{"caf\u00e9": "\U0001F600 \u2028 \u00e9"}')
    w("unicode_escapes_all.json", '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041"')
    w("invalid_lone_surrogate.json", '"\\ud800"')
    w("invalid_reversed_surrogates.json", '"\\udc00\\ud800"')
    w("invalid_utf8_overlong.json", b'"\xc0\x80"')
    w("invalid_utf8_surrogate.json", b'"\xed\xa0\x80"')
    w("invalid_utf8_truncated.json", b'"\xe2\x82"')
    w("invalid_trailing_comma.json", '{"a": 1,}')
    w("invalid_trailing_garbage.json", '{"a": 1} x')
    w("invalid_duplicate_key.json", '{"name": "a", "name": "b"}')
    w("invalid_nul_escape.json", '{"name": "a\\u0000b"}')
    w("invalid_raw_nul.json", b'{"name": "a\x00b"}')
    w("invalid_empty.json", b"")
    w("invalid_unclosed_string.json", '{"name": "abc')
    w("big_ints.json", "[9223372036854775807, -9223372036854775808, 0, -0]")
    w("big_int_overflow.json", "[9223372036854775808]")
    w("floats.json", "[0.1, 1.0, 1e2, -0.0, 1.5e300, 2.5e-308, 5e-324,"
      " 0.30000000000000004, 3.141592653589793]")
    w("float_overflow.json", "[1e400]")
    w("validation_errors.json", '{"name": 5, "type": null, "choices": ['
      + ",".join(["1"] * 21) + '], "count": 1.5, "hidden": "no",'
      ' "settings": [], "value": "1"}')
    w("validation_long_name.json", '{"name": "' + "\u00e9" * 101 + '", "type": "x"}')
    w("validation_not_object.json", "[1, 2]")
    # After 0xC1: a MessagePack reply body written out as JSON.
    reply = lambda value: b"\xc1" + mp(value)
    w("reply_valid.bin", reply({"items": [{"id": "1", "value": 2.5, "ok": True}],
                                "next_cursor": None}))
    w("reply_escapes.bin", reply({"s": "a\"b\\c\n\x01\u2028\u2029\U0001F600"}))
    w("reply_uint64_max.bin", reply([18446744073709551615, -9223372036854775808]))
    w("reply_float32.bin", b"\xc1\xca\x3d\xcc\xcc\xcd")
    w("reply_nan.bin", b"\xc1\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00")
    w("reply_bin.bin", reply({"png": b"\x89PNG"}))
    w("reply_int_key.bin", b"\xc1\x81\x01\x02")
    w("reply_bad_utf8.bin", b"\xc1\xa3\xed\xa0\x80")
    w("reply_nul_in_str.bin", b"\xc1\xa3a\x00b")
    w("reply_deep_32.bin", reply(nested(31, {"k": []})))
    w("reply_duplicate_keys.bin", b"\xc1\x82\xa1a\x01\xa1a\x02")
    w("reply_huge_array_claim.bin", b"\xc1\xdd\xff\xff\xff\xff")
    # For the streamed transcoder (tl_json_from_mp_bytes): every width of
    # ints, strs, arrays and maps; ext; cut short; a byte too many; 33 deep
    w("reply_widths.bin", b"\xc1\xdf\x00\x00\x00\x03"
      b"\xd9\x01a\xdc\x00\x04\xcc\x01\xcd\x00\x02\xce\x00\x00\x00\x03\xcf" + b"\xff" * 8 +
      b"\xda\x00\x01b\xdd\x00\x00\x00\x04\xd0\xff\xd1\xff\xfe\xd2\x00\x00\x00\x07\xd3" + b"\x80" + b"\x00" * 7 +
      b"\xdb\x00\x00\x00\x01c\xde\x00\x01\xa1d\xe0")
    w("reply_ext.bin", b"\xc1\x92\x01\xc7\x01\x05x")
    w("reply_truncated.bin", reply({"items": [1, 2, 3]})[:-2])
    w("reply_trailing.bin", reply([1]) + b"\xc0")
    w("reply_deep_33.bin", b"\xc1" + b"\x91" * 32 + b"\x90")
    # Found by libFuzzer: msgpack-c hands an empty str over with a NULL
    # pointer, and tl_json_from_mp did pointer arithmetic on it (UBSan).
    w("regress_empty_string.json", '""')
    # Found by libFuzzer: a NUL in a map key gives the valid JSON key
    # "\u0000", which jansson refuses to read back (the target's check).
    w("regress_reply_nul_key.bin", b"\xc1\x82\xa1\x00\x08\xa1a\x02")


# --------------------------------------------------------------------------
# router: "METHOD path" on the first line; the whole file as a declaration

def router_corpus():
    w = lambda name, data: write("router", name, data)
    w("match_list", "GET /api/v1/trackers\n")
    w("match_param", "GET /api/v1/trackers/123\n")
    w("match_two_params", "HEAD /api/v1/trackers/1/logs/2\n")
    w("match_delete", "DELETE /api/v1/trackers/abc\n")
    w("match_literal_dot", "GET /api/v1/trackers.csv\n")
    w("match_upload", "POST /api/v1/trackers/7/logs.csv\n")
    w("match_three_params", "GET /api/v1/events/e1/tracks/t2\n")
    w("match_query", "GET /healthz?verbose=1&x=%zz\n")
    w("status_405", "PUT /api/v1/trackers\n")
    w("status_405_options", "OPTIONS /api/v1/trackers/1\n")
    w("status_405_unknown_method", "BREW /api/v1/events\n")
    w("status_404", "GET /api/v1/nothing\n")
    w("status_404_trailing_slash", "GET /api/v1/trackers/\n")
    w("status_404_empty_segment", "GET /api/v1//trackers\n")
    w("status_404_relative", "GET api/v1/trackers\n")
    w("status_404_dotdot", "GET /api/v1/trackers/..\n")
    w("percent_space_slash", "GET /api/v1/trackers/a%20b%2Fc%C3%A9\n")
    w("percent_literal", "GET /api/v1/tr%61ckers/%31\n")
    w("percent_bad_hex", "GET /api/v1/trackers/%zz\n")
    w("percent_short", "GET /api/v1/trackers/%4\n")
    w("percent_nul", "GET /api/v1/trackers/%00\n")
    w("percent_overlong", "GET /api/v1/trackers/%C0%80\n")
    w("percent_surrogate", "GET /api/v1/trackers/%ED%A0%80\n")
    w("raw_bad_utf8", b"GET /api/v1/trackers/\xff\xfe\n")
    w("long_path_4096", "GET /api/v1/trackers/" + "x" * (4096 - 17) + "\n")
    w("long_path_4097", "GET /api/v1/trackers/" + "x" * (4097 - 17) + "\n")
    w("segments_32", "GET " + "/s" * 32 + "\n")
    w("segments_33", "GET " + "/s" * 33 + "\n")
    w("no_newline", "GET /api/v1/events")
    decl = ('{"service": "demo", "description": "d", "methods": ['
            '{"name": "items.get", "route": "GET /api/v1/items/{id}", "auth": true,'
            ' "idempotent": true, "timeout_ms": 5000},'
            '{"name": "items.create", "route": "POST /api/v1/items", "body": "json",'
            ' "fields": {"name": {"type": "string", "required": true, "max": 100},'
            ' "tags": {"type": "array", "max": 5}}},'
            '{"name": "items.export", "route": "GET /api/v1/items/export"},'
            '{"name": "items.upload", "route": "PUT /api/v1/items/{id}/image",'
            ' "body": "upload"},'
            '{"name": "root", "route": "GET /", "auth": false},'
            '{"name": "internal.sweep"}]}')
    w("decl_valid.json", decl)
    w("decl_duplicate_route.json", '{"service": "d", "methods": ['
      '{"name": "a", "route": "GET /x/{id}"}, {"name": "b", "route": "GET /x/{other}"}]}')
    w("decl_duplicate_method.json", '{"service": "d", "methods": [{"name": "a"}, {"name": "a"}]}')
    w("decl_bad_segment.json", '{"service": "d", "methods": [{"name": "a", "route": "GET /x/{id}y"}]}')
    w("decl_bad_method.json", '{"service": "d", "methods": [{"name": "a", "route": "HEAD /x"}]}')
    w("decl_fields_without_body.json", '{"service": "d", "methods": [{"name": "a",'
      ' "route": "GET /x", "fields": {"a": {"type": "string"}}}]}')
    w("decl_bad_field.json", '{"service": "d", "methods": [{"name": "a",'
      ' "route": "POST /x", "fields": {"a": {"type": "integer", "max": 3}}}]}')
    w("decl_unknown_key.json", '{"service": "d", "methods": [{"name": "a", "rout": "GET /"}]}')
    w("decl_bad_timeout.json", '{"service": "d", "methods": [{"name": "a", "timeout_ms": 120001}]}')
    w("decl_deep_route.json", '{"service": "d", "methods": [{"name": "a", "route": "GET '
      + "/{p%d}" % 0 + "".join("/s%d" % i for i in range(1, 32)) + '"}]}')
    w("decl_dup_params.json", '{"service": "d", "methods": [{"name": "a", "route": "GET /{x}/{x}"}]}')
    # A request line first, so that both halves of the target run.
    w("request_then_decl", "GET /api/v1/items/1\n" + decl)


# --------------------------------------------------------------------------
# envelope: mesh frames (proto/PROTOCOL.md section 2)

REQUEST = {
    "v": 1, "kind": "request", "id": "r-1", "service": "tracker",
    "method": "trackers.get", "deadline": 1763870000000,
    "caller": {"user_id": "u-1", "roles": ["admin", "user"]},
    "idem": "key-1", "trace": "trace-1", "params": {"id": "42", "limit": "50"},
    "body": {"name": "Water", "value": 2.5, "tags": ["a", None, True]},
    "idempotent": True,
}
REPLY = {
    "v": 1, "kind": "reply", "id": "r-1", "status": 200,
    "headers": {"Content-Type": "application/json", "Location": "/x"},
    "body": {"items": [], "next_cursor": None},
}
READY = {"v": 1, "kind": "ready", "service": "tracker",
         "instance": "tracker@host:4711", "capacity": 4, "db_ok": True}
HEARTBEAT = {"v": 1, "kind": "heartbeat", "instance": "tracker@host:4711", "db_ok": False}
DISCONNECT = {"v": 1, "kind": "disconnect", "instance": "tracker@host:4711"}


def envelope_corpus():
    w = lambda name, data: write("envelope", name, data)
    w("request", mp(REQUEST))
    w("request_minimal", mp({"v": 1, "kind": "request", "id": "1", "service": "mesh",
                             "method": "ping", "deadline": 1}))
    w("reply", mp(REPLY))
    w("reply_bin_body", mp({"v": 1, "kind": "reply", "id": "r-2", "status": 200,
                            "headers": {"Content-Type": "image/png"},
                            "body": b"\x89PNG\r\n\x1a\n"}))
    w("reply_error", mp({"v": 1, "kind": "reply", "id": "r-3", "status": 422,
                         "body": {"error": {"code": "bad", "message": "m",
                                            "fields": {"name": "is required"}}}}))
    w("ready", mp(READY))
    w("heartbeat", mp(HEARTBEAT))
    w("disconnect", mp(DISCONNECT))
    w("unknown_key_ignored", mp(dict(READY, future={"x": [1, 2]})))
    w("wrong_version", mp(dict(READY, v=2)))
    w("unknown_kind", mp(dict(READY, kind="shout")))
    w("wrong_type_id", mp(dict(REQUEST, id=5)))
    w("wrong_type_status", mp(dict(REPLY, status="200")))
    w("id_too_long", mp(dict(REQUEST, id="x" * 65)))
    w("too_many_roles", mp(dict(REQUEST, caller={"user_id": "u", "roles": ["r"] * 17})))
    w("too_many_params", mp(dict(REQUEST, params={"p%d" % i: "v" for i in range(33)})))
    w("capacity_zero", mp(dict(READY, capacity=0)))
    w("capacity_257", mp(dict(READY, capacity=257)))
    w("negative_deadline", mp(dict(REQUEST, deadline=-1)))
    w("params_not_strings", mp(dict(REQUEST, params={"id": 42})))
    w("missing_kind", mp({"v": 1, "id": "x"}))
    w("not_a_map", mp([1, "request"]))
    w("int_keys", mp({1: 1, 2: "request"}))
    w("empty", b"")
    w("lone_c1", b"\xc1")
    full = mp(REQUEST)
    w("truncated_1", full[:1])
    w("truncated_half", full[:len(full) // 2])
    w("truncated_last_byte", full[:-1])
    w("trailing_bytes", full + b"\x00")
    w("two_messages", mp(READY) + mp(HEARTBEAT))
    # Counts that the bytes cannot back: msgpack-c alone would allocate.
    w("array32_4g_claim", b"\xdd\xff\xff\xff\xff")
    w("map32_4g_claim", b"\xdf\xff\xff\xff\xff")
    w("str32_4g_claim", b"\xdb\xff\xff\xff\xff")
    w("bin32_4g_claim", b"\xc6\xff\xff\xff\xff")
    head = mp({"v": 1, "kind": "reply", "id": "1", "status": 200})
    assert head[0] == 0x84
    with_body = lambda raw: b"\x85" + head[1:] + mp("body") + raw
    w("body_array32_claim", with_body(b"\xdd\x7f\xff\xff\xff"))
    for depth in (31, 32, 33, 100):
        w("deep_body_%d" % depth, mp(dict(REPLY, body=nested(depth))))
    w("deep_raw_1000", b"\x91" * 1000 + b"\xc0")
    w("ext_in_body", with_body(b"\xd4\x01\x00"))
    w("bin_in_request_body", mp(dict(REQUEST, body=b"\x00\x01")))
    w("bad_utf8_service", mp({"v": 1, "kind": "ready", "service": "s", "instance": "i",
                              "capacity": 1}).replace(b"\xa1s", b"\xa1\xff"))
    w("many_small_items", mp(dict(REPLY, body=[0] * 5000)))


# --------------------------------------------------------------------------
# streams: broadcast bodies (notification.push, auth.user.changed) as a
# gateway's streams read them; the same bytes as text are a cursor

def streams_corpus():
    def w(name, data):
        write("streams", name, data)
    item = {"id": "6f1c2b1e-0000-4000-8000-000000000001", "seq": 7, "title": "Hi",
            "message": "two\nlines", "action": None, "target_url": "/x",
            "received_at": "2026-01-02T03:04:05Z", "has_read": False}
    w("push", mp({"user_id": "u1", "seq": 7, "notification": item, "unread_count": 3}))
    w("push_other_user", mp({"user_id": "u2", "seq": 7, "notification": item}))
    w("count_only", mp({"user_id": "u1", "unread_count": 0}))
    w("count_versioned", mp({"user_id": "u1", "unread_count": 2, "version": 9}))
    w("version_not_int", mp({"user_id": "u1", "unread_count": 2, "version": "9"}))
    w("version_negative", mp({"user_id": "u1", "unread_count": 2, "version": -1}))
    w("negative_count", mp({"user_id": "u1", "unread_count": -5}))
    w("huge_seq", mp({"user_id": "u1", "seq": 2 ** 64 - 1, "notification": item}))
    w("seq_not_int", mp({"user_id": "u1", "seq": "7", "notification": item}))
    w("notification_not_map", mp({"user_id": "u1", "seq": 8, "notification": [1, 2.5, None]}))
    w("bin_in_notification", mp({"user_id": "u1", "seq": 9, "notification": {"b": b"\x00"}}))
    w("float_nan", b"\x83" + mp("user_id") + mp("u1") + mp("seq") + mp(1) + mp("notification")
      + b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00")
    w("user_id_long", mp({"user_id": "u" * 200, "unread_count": 1}))
    w("user_changed", mp({"user_id": "u1"}))
    w("not_a_map", mp([1, 2, 3]))
    w("cursor_digits", "123456789012345678")
    w("cursor_huge", "99999999999999999999")
    w("cursor_negative", "-1")
    w("text_c1", "c1 \xc2\x85")


# --------------------------------------------------------------------------
# store_csv: the store data's CSV bodies (services/analytics/an_store_csv);
# the first byte cuts the body into chunks of 1..(byte & 0x3f) bytes

def store_csv_corpus():
    w = lambda name, body, control=b"\x07": write("store_csv", name, control + body)
    w("status", b"store_id,status,timestamp_utc\n1,active,2023-01-22 12:09:39.388884 UTC\n")
    w("hours_crlf", b"store_id,dayOfWeek,start_time_local,end_time_local\r\n1,0,00:00:00,23:59:59\r\n")
    w("zones_no_final_newline", b"store_id,timezone_str\n1,America/Chicago")
    w("bom", b"\xef\xbb\xbfstore_id,timezone_str\n")
    w("half_bom", b"\xef\xbb")
    w("quoted", b'"a,""b""\r\nc",d\n"",x\n', b"\x01")
    w("empty_lines", b"a\n\n\r\n\rb\n")
    w("quote_in_unquoted", b'a\nb"c\n')
    w("text_after_quote", b'"a"b\n')
    w("unterminated", b'x\n"abc\n\n')
    w("nul", b"a\nb\x00c\n")
    w("nine_fields", b"1,2,3,4,5,6,7,8,9\n")
    w("field_256", b"x" * 256 + b"\n", b"\x3f")
    w("field_255", b"x" * 255 + b"\n", b"\x3f")
    w("lone_cr_in_quotes", b'"a\rb"\r"c"\n')


# --------------------------------------------------------------------------
# upload: byte 0 picks the reader (0 sniff, 1 data URL, 2 multipart)

def png_head(width, height, size=13):
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", size) + b"IHDR"
            + struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00")


def upload_corpus():
    def w(name, reader, data):
        write("upload", name, bytes([reader]) + (data.encode() if isinstance(data, str) else data))
    w("sniff_png", 0, png_head(300, 200))
    w("sniff_png_huge", 0, png_head(50000, 50000))
    w("sniff_png_zero", 0, png_head(0, 10))
    w("sniff_png_short", 0, png_head(1, 1)[:20])
    w("sniff_jpeg", 0, b"\xff\xd8\xff\xe0\x00\x04JF\xff\xc0\x00\x0b\x08\x01\x00\x02\x80\x03")
    w("sniff_jpeg_scan_first", 0, b"\xff\xd8\xff\xda\x00\x02")
    w("sniff_jpeg_fill", 0, b"\xff\xd8" + b"\xff" * 40)
    w("sniff_gif", 0, b"GIF89a\x10\x00\x20\x00\x00\x00\x00")
    w("sniff_webp_vp8x", 0, b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + b"\x63\x00\x00\x31\x00\x00")
    w("sniff_webp_vp8l", 0, b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f\x06\x00\x02\x00\x00")
    w("sniff_webp_vp8", 0, b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 7 + b"\x9d\x01\x2a\x10\x00\x10\x00")
    w("sniff_svg", 0, '<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>')
    w("sniff_zip", 0, b"PK\x03\x04" + b"\x00" * 30)
    w("data_url_png", 1, "data:image/png;base64,iVBORw0KGgo=")
    w("data_url_untyped", 1, "data:;base64,Zm9vYmFy")
    w("data_url_params", 1, "data:image/png;name=a.png;base64,Zm8=")
    w("data_url_bad_alphabet", 1, "data:image/png;base64,Zm9v*A==")
    w("data_url_bad_padding", 1, "data:image/png;base64,Zm9=")
    w("data_url_pad_inside", 1, "data:image/png;base64,Zg==Zg==")
    w("data_url_not_base64", 1, "data:image/png,hello")
    w("data_url_space", 1, "data:image/png;base64,Zm9v Zm9v")
    w("data_url_empty", 1, "data:image/png;base64,")
    body = ("--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n")
    w("multipart_file", 2, "multipart/form-data; boundary=XyZ\n" + body)
    w("multipart_quoted_boundary", 2, 'multipart/form-data; boundary="XyZ"\n' + body)
    w("multipart_preamble", 2, "multipart/form-data; boundary=XyZ\npreamble\r\n" + body)
    w("multipart_two_files", 2, "multipart/form-data; boundary=b\n"
      "--b\r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ny\r\n--b--")
    w("multipart_no_file", 2, "multipart/form-data; boundary=b\n"
      "--b\r\nContent-Disposition: form-data; name=other\r\n\r\nx\r\n--b--")
    w("multipart_unclosed", 2, "multipart/form-data; boundary=b\n"
      "--b\r\nContent-Disposition: form-data; name=file\r\n\r\nxxxx")
    w("multipart_no_boundary", 2, "multipart/form-data\n--b--")
    w("multipart_unterminated_quote", 2, "multipart/form-data; boundary=\"b\n--b--")
    w("multipart_many_parts", 2, "multipart/form-data; boundary=b\n"
      + "--b\r\nContent-Disposition: form-data; name=n\r\n\r\nv\r\n" * 20 + "--b--")


# --------------------------------------------------------------------------
# fmd: a remote dashboard's export (first byte: 0 JWT, 1 details, 2 calls,
# 3 rules, 4 a time)

def fmd_corpus():
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def token(data, key=b"k", header=None):
        head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps({"data": data}).encode())
        mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(mac)}"

    w = lambda name, kind, data: write("fmd", name, bytes([kind]) + (
        data.encode("utf-8") if isinstance(data, str) else data))
    calls = [{"endpoint": "main.index", "execution_time": 12.5,
              "time": "2031-01-06 10:00:00.250000", "version": "1.0", "group_by": None,
              "ip": "10.0.0.1"}]
    w("jwt_calls", 0, token(json.dumps(calls)))
    w("jwt_empty", 0, token("[]"))
    w("jwt_quoted", 0, '"' + token("[]") + '"\n')
    w("jwt_other_key", 0, token("[]", key=b"other"))
    w("jwt_alg_none", 0, token("[]", header={"alg": "none"}).rsplit(".", 1)[0] + ".")
    w("jwt_data_not_string", 0, token(5))
    w("jwt_padding", 0, token("[]") + "==")
    w("jwt_two_parts", 0, "a.b")
    w("details", 1, json.dumps({"link": "dashboard", "dashboard-version": "1.13.0",
                                 "config-version": 1, "first-request": 1.9e9,
                                 "total-requests": 3}))
    w("details_none", 1, '{"dashboard-version": "1.12", "first-request": -1}')
    w("details_html", 1, "<html>not here</html>")
    w("calls", 2, json.dumps(calls))
    w("calls_bad_time", 2, json.dumps([dict(calls[0], time="2031-02-30 00:00:00")]))
    w("calls_negative", 2, json.dumps([dict(calls[0], execution_time=-1)]))
    w("calls_int_time", 2, json.dumps([dict(calls[0], execution_time=3)]))
    w("calls_no_fraction", 2, json.dumps([dict(calls[0], time="2031-01-06 10:00:00")]))
    w("calls_not_list", 2, '{"endpoint": "x"}')
    w("rules", 3, json.dumps([{"endpoint": "a", "monitor": True, "last_accessed": None,
                                "time_added": "2031-01-01 00:00:00", "version_added": "1"},
                               {"endpoint": "b", "monitor": 2}]))
    w("rules_bad_monitor", 3, '[{"endpoint": "a", "monitor": "yes"}]')
    w("time", 4, "2031-01-06 10:00:00.123456")
    w("time_leap", 4, "2032-02-29 23:59:59")
    w("time_seven_digits", 4, "2031-01-06 10:00:00.1234567")


if __name__ == "__main__":
    streams_corpus()
    json_corpus()
    router_corpus()
    envelope_corpus()
    store_csv_corpus()
    upload_corpus()
    fmd_corpus()
