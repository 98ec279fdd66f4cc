"""The upload service over HTTP (API.md "Uploads"): two gateways, auth, the
event service and two upload instances sharing one local folder. Images
are made by the tests (images.py)."""

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import tempfile
import time

import pytest
import requests

import images
import tally
from event_system import EventSystem
from tally import wait_instances

PER_HOUR = 12
QUOTA = 7 * 1024 * 1024


@pytest.fixture(scope="module")
def up():
    cluster = tally.Cluster()
    try:
        system = EventSystem(cluster)
        system.data_dir = tempfile.mkdtemp(prefix="tally-uploads-")
        gws = [system.gw, system.gw2]
        for i in range(2):
            tally.upload(cluster, gws, data_dir=system.data_dir, name=f"upload-{i}",
                         env={"TALLY_UPLOAD_PER_HOUR": str(PER_HOUR),
                              "TALLY_UPLOAD_QUOTA_BYTES": str(QUOTA)})
        for gw in gws:
            wait_instances(gw, 2, service="upload", timeout=60)
    except BaseException:
        cluster.stop()
        raise
    yield system
    failures = cluster.stop()
    system.stop()
    assert not failures, "\n".join(failures)


def post_raw(up, user, data, content_type="image/png", gw=None):
    return up.post(user, "/uploads", data=data, headers={"Content-Type": content_type}, gw=gw)


def post_multipart(up, user, files, data=None):
    return up.request("POST", user, "/uploads", files=files, data=data)


def post_data_url(up, user, data_url):
    return up.request("POST", user, "/uploads", data=json.dumps({"data_url": data_url}),
                      headers={"Content-Type": "application/json"})


def data_url(data, mime="image/png"):
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def mine(up, user):
    r = up.get(user, "/me/uploads")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def fetch(up, url, **kw):
    path = url.split("/api/v1", 1)[1]
    return up.request("GET", None, path, **kw)


# --- Taking bytes in --------------------------------------------------------

def test_raw_png_is_stored_and_served_with_its_headers(up):
    user = up.user()
    data = images.png(300, 200, seed=1)
    r = post_raw(up, user, data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["content_type"] == "image/png"
    assert (body["width"], body["height"], body["bytes"]) == (300, 200, len(data))
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert set(body["variants"]) == {"thumb", "avatar", "background", "background_thumb"}
    got = fetch(up, body["url"])
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["ETag"].startswith('"') and not got.headers["ETag"].startswith("W/")
    assert images.dimensions(got.content) == (300, 200)
    assert [u["id"] for u in mine(up, user)] == [body["id"]]


def test_multipart_jpeg_is_turned_upright_and_loses_its_exif(up):
    user = up.user()
    data = images.encode("jpeg", 120, 60, orientation=6)
    assert b"Exif" in data
    r = post_multipart(up, user, {"file": ("photo.jpg", data, "image/jpeg")},
                       data={"caption": "hello"})
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (60, 120)
    served = fetch(up, r.json()["url"]).content
    assert b"Exif" not in served
    assert images.dimensions(served) == (60, 120)


def test_data_url_webp_and_gif_are_taken(up):
    user = up.user()
    for fmt, mime in (("webp", "image/webp"), ("gif", "image/gif")):
        r = post_data_url(up, user, data_url(images.encode(fmt, 40, 30), mime))
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == mime
        assert fetch(up, r.json()["url"]).headers["Content-Type"] == mime


def _two_files():
    png = images.png(10, 10)
    return {"file": ("a.png", png, "image/png")}, [("file", ("a.png", png, "image/png")),
                                                   ("file", ("b.png", png, "image/png"))]


BAD = [
    # (name, how, payload, status)
    ("truncated_png", "raw", lambda: images.png(200, 200, seed=3)[:300], 422),
    ("jpeg_renamed_png", "multipart",
     lambda: {"file": ("photo.png", images.encode("jpeg", 20, 20), "image/png")}, 415),
    ("png_declared_jpeg", "raw_jpeg", lambda: images.png(20, 20), 415),
    # the declared type is the header's: a query parameter cannot stand in for it
    ("png_declared_jpeg_query_png", "raw_jpeg_query_png", lambda: images.png(20, 20), 415),
    ("svg", "raw_svg",
     lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415),
    ("huge_png_header", "raw", lambda: images.png_header(50000, 50000) + b"\0" * 64, 422),
    ("zip_bomb_png", "raw", lambda: images.png_bomb(30000, 30000), 422),
    ("ten_mib_plus_one", "raw", lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(10 * 1024 * 1024 - 7), 413),
    ("multipart_without_file", "multipart", lambda: {"other": ("a.png", images.png(5, 5), "image/png")}, 400),
    ("two_files", "multipart_list", lambda: _two_files()[1], 400),
    ("bad_base64", "data_url", lambda: "data:image/png;base64,iVBORw0KGgo*", 400),
    ("bad_padding", "data_url", lambda: "data:image/png;base64,iVBORw0KGg=", 400),
    ("text_body", "raw_text", lambda: b"hello", 415),
]


@pytest.mark.parametrize("name,how,payload,status", BAD, ids=[b[0] for b in BAD])
def test_bad_upload_is_a_clear_4xx_and_stores_nothing(up, name, how, payload, status):
    user = up.user()
    value = payload()
    if how == "raw":
        r = post_raw(up, user, value)
    elif how == "raw_jpeg":
        r = post_raw(up, user, value, "image/jpeg")
    elif how == "raw_jpeg_query_png":
        r = up.post(user, "/uploads?content_type=image/png", data=value,
                    headers={"Content-Type": "image/jpeg"})
    elif how == "raw_svg":
        r = post_raw(up, user, value, "image/svg+xml")
    elif how == "raw_text":
        r = post_raw(up, user, value, "text/plain")
    elif how in ("multipart", "multipart_list"):
        r = post_multipart(up, user, value)
    else:
        r = post_data_url(up, user, value)
    assert r.status_code == status, r.text
    assert "error" in r.json()
    assert mine(up, user) == []


def test_an_announced_body_past_10_mib_is_413_before_it_is_sent(up):
    user = up.user()
    head = (b"POST /api/v1/uploads HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
            b"Authorization: Bearer " + user.token.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % (10 * 1024 * 1024 + 1))
    started = time.monotonic()
    status, _, body = tally.raw_http(up.gw.url, head + b"\x89PNG\r\n\x1a\n", timeout=10)
    assert status == 413, body[:200]
    assert time.monotonic() - started < 5
    assert mine(up, user) == []


def test_a_chunked_body_past_10_mib_is_413_and_not_kept(up):
    user = up.user()
    piece = b"\x89PNG\r\n\x1a\n" + os.urandom(1024 * 1024 - 8)

    def chunks():
        for _ in range(11):
            yield piece

    r = requests.post(up.url("/uploads"), data=chunks(), timeout=60,
                      headers={**user.headers, "Content-Type": "image/png"})
    assert r.status_code == 413, r.text
    assert mine(up, user) == []


def test_a_chunked_body_is_refused_as_soon_as_it_passes_10_mib(up):
    """413 while the body streams in: the answer comes though the client
    never ends its body (no last chunk), and nothing is kept."""
    user = up.user()
    host, port = up.gw.url.split("//", 1)[1].split(":")
    piece = b"\x89PNG\r\n\x1a\n" + os.urandom(1024 * 1024 - 8)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/v1/uploads HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                  b"Authorization: Bearer " + user.token.encode() + b"\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(11):
                s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                    # refused while sending: fine
        s.settimeout(5)
        answer = s.recv(4096)       # no last chunk was sent: only a refusal answers
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert mine(up, user) == []


# --- Serving ----------------------------------------------------------------

def test_range_head_and_etag(up):
    user = up.user()
    data = images.png(64, 64, seed=5)
    url = post_raw(up, user, data).json()["url"]
    whole = fetch(up, url)
    size = len(whole.content)
    part = fetch(up, url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == whole.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{size}"
    tail = fetch(up, url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole.content[-5:]
    past = fetch(up, url, headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{size}"
    multi = fetch(up, url, headers={"Range": "bytes=0-1,4-5"})
    assert multi.status_code == 200 and multi.content == whole.content
    stale = fetch(up, url, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == whole.content
    head = up.request("HEAD", None, url.split("/api/v1", 1)[1])
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == size
    again = fetch(up, url, headers={"If-None-Match": whole.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_unknown_upload_and_variant_are_404(up):
    assert up.get(None, "/uploads/00000000-0000-4000-8000-000000000000").status_code == 404
    assert up.get(None, "/uploads/not-a-uuid").status_code == 404
    user = up.user()
    url = post_raw(up, user, images.png(20, 20, seed=9)).json()["url"]
    assert fetch(up, url + "/huge").status_code == 404


def test_variants_have_their_sizes_and_gif_becomes_png(up):
    user = up.user()
    r = post_raw(up, user, images.encode("gif", 900, 600), "image/gif")
    assert r.status_code == 201, r.text
    sizes = {"thumb": (200, 133), "avatar": (256, 256), "background": (1300, 500),
             "background_thumb": (500, 200)}
    for name, size in sizes.items():
        v = fetch(up, r.json()["variants"][name])
        assert v.status_code == 200, v.text
        assert v.headers["Content-Type"] == "image/png"
        assert images.dimensions(v.content) == size
        again = fetch(up, r.json()["variants"][name], gw=up.gw2)
        assert again.content == v.content and again.headers["ETag"] == v.headers["ETag"]


def test_a_variant_is_made_once_when_both_instances_are_asked_at_once(up):
    user = up.user()
    r = post_raw(up, user, images.encode("jpeg", 1200, 900, noise=True), "image/jpeg")
    assert r.status_code == 201, r.text
    url = r.json()["variants"]["background"]
    gws = [up.gw, up.gw2] * 4
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda gw: fetch(up, url, gw=gw), gws))
    assert all(a.status_code == 200 for a in answers)
    assert len({a.content for a in answers}) == 1
    sha = r.json()["sha256"]
    assert tally.psql(f"SELECT count (*) FROM upload.variants WHERE sha256 = '{sha}'") == "1"
    stored = [f for _, _, files in os.walk(up.data_dir) for f in files if f.startswith(sha)]
    assert sorted(stored) == [sha, sha + ".background"]


def test_same_bytes_are_stored_once(up):
    a, b = up.user(), up.user()
    data = images.png(50, 50, seed=11)
    first = post_raw(up, a, data).json()
    second = post_raw(up, b, data, gw=up.gw2).json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert tally.psql(f"SELECT count (*) FROM upload.blobs WHERE sha256 = '{first['sha256']}'") == "1"
    # one owner deleting theirs leaves the other's bytes
    assert up.delete(a, f"/uploads/{first['id']}").status_code == 204
    assert fetch(up, second["url"]).status_code == 200


# --- Quota ----------------------------------------------------------------------

def test_uploads_past_the_hourly_quota_are_429(up):
    user = up.user()
    for i in range(PER_HOUR):
        r = post_raw(up, user, images.png(8, 8, seed=100 + i))
        assert r.status_code == 201, r.text
    r = post_raw(up, user, images.png(8, 8, seed=99))
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert len(mine(up, user)) == PER_HOUR


def test_uploads_past_the_byte_quota_are_413(up):
    user = up.user()
    big = [images.encode("png", 1000, 1000, noise=True)]
    big.append(images.encode("png", 1000, 1001, noise=True))
    big.append(images.encode("png", 1000, 1002, noise=True))
    assert sum(len(b) for b in big[:2]) <= QUOTA < sum(len(b) for b in big)
    for data in big[:2]:
        assert post_raw(up, user, data).status_code == 201
    r = post_raw(up, user, big[2])
    assert r.status_code == 413 and r.json()["error"]["code"] == "quota_exceeded"


# --- Deleting and referring -----------------------------------------------------

def test_delete_is_the_owners_only(up):
    owner, other = up.user(), up.user()
    body = post_raw(up, owner, images.png(30, 30, seed=21)).json()
    assert up.delete(other, f"/uploads/{body['id']}").status_code == 404
    assert up.delete(owner, f"/uploads/{body['id']}").status_code == 204
    assert fetch(up, body["url"]).status_code == 404
    stored = [f for _, _, files in os.walk(up.data_dir) for f in files
              if f.startswith(body["sha256"])]
    assert stored == []


def test_event_background_holds_its_upload(up):
    organizer = up.user()
    event = up.event(organizer)
    body = post_raw(up, organizer, images.png(400, 300, seed=31)).json()
    r = up.post(organizer, f"/events/{event['id']}/background", {"upload_id": body["id"]})
    assert r.status_code == 200, r.text
    url = r.json()["background_url"]
    assert url.endswith(f"/uploads/{body['id']}/background")
    assert up.get(organizer, f"/events/{event['id']}").json()["background_url"] == url
    assert images.dimensions(fetch(up, url).content) == (1300, 500)
    # shown: 409; cleared: deletable
    assert up.delete(organizer, f"/uploads/{body['id']}").status_code == 409
    assert up.delete(organizer, f"/events/{event['id']}/background").status_code == 200
    assert up.get(organizer, f"/events/{event['id']}").json()["background_url"] is None
    assert up.delete(organizer, f"/uploads/{body['id']}").status_code == 204


def test_a_deleted_events_background_is_no_longer_held(up):
    organizer = up.user()
    event = up.event(organizer)
    body = post_raw(up, organizer, images.png(60, 40, seed=35)).json()
    assert up.post(organizer, f"/events/{event['id']}/background",
                   {"upload_id": body["id"]}).status_code == 200
    assert up.delete(organizer, f"/uploads/{body['id']}").status_code == 409
    assert up.delete(organizer, f"/events/{event['id']}").status_code == 204
    # the event service's job tells the upload service
    tally.wait_for(lambda: up.delete(organizer, f"/uploads/{body['id']}").status_code == 204,
                   "the upload to be deletable", timeout=30)


def test_event_background_needs_update_on_the_event_and_the_callers_upload(up):
    organizer, stranger = up.user(), up.user()
    event = up.event(organizer, state="published")
    theirs = post_raw(up, stranger, images.png(40, 40, seed=41)).json()
    r = up.post(stranger, f"/events/{event['id']}/background", {"upload_id": theirs["id"]})
    assert r.status_code == 403, r.text
    r = up.post(organizer, f"/events/{event['id']}/background", {"upload_id": theirs["id"]})
    assert r.status_code == 404, r.text
    assert up.get(organizer, f"/events/{event['id']}").json()["background_url"] is None


def test_event_background_from_a_data_url(up):
    organizer = up.user()
    event = up.event(organizer)
    r = up.post(organizer, f"/events/{event['id']}/background",
                {"data_url": data_url(images.encode("jpeg", 200, 100), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert images.dimensions(fetch(up, r.json()["background_url"]).content) == (1300, 500)
    bad = up.post(organizer, f"/events/{event['id']}/background",
                  {"data_url": "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="})
    assert bad.status_code == 415, bad.text


def _part(up, user, event_id, kind, **body):
    return up.post(user, f"/events/{event_id}/{kind}", body)


def test_speaker_photo_and_sponsor_logo_hold_their_uploads(up):
    organizer = up.user()
    e = up.event(organizer)["id"]
    first, second, logo = (post_raw(up, organizer, images.png(50, 50, seed=s)).json()
                           for s in (71, 72, 73))
    r = _part(up, organizer, e, "speakers", name="Ada", photo_upload_id=first["id"].upper())
    assert r.status_code == 201, r.text
    speaker = r.json()
    assert speaker["photo_upload_id"] == first["id"]
    assert up.delete(organizer, f"/uploads/{first['id']}").status_code == 409
    # replaced: the new one is held, the old one let go
    r = up.request("PATCH", organizer, f"/events/{e}/speakers/{speaker['id']}",
                   json={"photo_upload_id": second["id"]}, gw=up.gw2)
    assert r.status_code == 200 and r.json()["photo_upload_id"] == second["id"], r.text
    assert up.delete(organizer, f"/uploads/{second['id']}").status_code == 409
    assert up.delete(organizer, f"/uploads/{first['id']}").status_code == 204
    # a change of another field keeps it held
    r = up.request("PATCH", organizer, f"/events/{e}/speakers/{speaker['id']}",
                   json={"bio": "pioneer"})
    assert r.status_code == 200 and r.json()["photo_upload_id"] == second["id"], r.text
    assert up.delete(organizer, f"/uploads/{second['id']}").status_code == 409
    # cleared: let go
    r = up.request("PATCH", organizer, f"/events/{e}/speakers/{speaker['id']}",
                   json={"photo_upload_id": None})
    assert r.status_code == 200 and r.json()["photo_upload_id"] is None, r.text
    assert up.delete(organizer, f"/uploads/{second['id']}").status_code == 204
    # a sponsor's logo, held until the sponsor is deleted (by the event
    # service's job, committed with the deletion)
    r = _part(up, organizer, e, "sponsors", name="ACME", logo_upload_id=logo["id"])
    assert r.status_code == 201, r.text
    sponsor = r.json()
    assert up.delete(organizer, f"/uploads/{logo['id']}").status_code == 409
    assert up.delete(organizer, f"/events/{e}/sponsors/{sponsor['id']}").status_code == 204
    tally.wait_for(lambda: up.delete(organizer, f"/uploads/{logo['id']}").status_code == 204,
                   "the logo to be let go", timeout=30)


def test_a_part_shows_only_the_callers_upload_and_a_refusal_holds_nothing(up):
    organizer, stranger = up.user(), up.user()
    e = up.event(organizer)["id"]
    theirs = post_raw(up, stranger, images.png(40, 40, seed=74)).json()
    mine_ = post_raw(up, organizer, images.png(40, 40, seed=75)).json()
    before = up.get(organizer, f"/events/{e}/speakers").json()["items"]
    for upload_id in (theirs["id"], "00000000-0000-4000-8000-000000000000"):
        r = _part(up, organizer, e, "speakers", name="Grace", photo_upload_id=upload_id)
        assert r.status_code == 404, r.text
    assert up.get(organizer, f"/events/{e}/speakers").json()["items"] == before
    r = _part(up, organizer, e, "speakers", name="Grace", photo_upload_id="photo.png")
    assert r.status_code == 400, r.text
    # refused by the event's rules (a bad email): the upload is not held
    r = _part(up, organizer, e, "speakers", name="Grace", email="not an address",
              photo_upload_id=mine_["id"])
    assert r.status_code == 400, r.text
    speaker = _part(up, organizer, e, "speakers", name="Grace").json()
    r = up.request("PATCH", organizer, f"/events/{e}/speakers/{speaker['id']}",
                   json={"photo_upload_id": theirs["id"]})
    assert r.status_code == 404, r.text
    assert up.get(organizer, f"/events/{e}/speakers/{speaker['id']}").json() == speaker
    assert up.get(organizer, f"/events/{e}/speakers").json()["items"] == before + [speaker]
    # the stranger's upload and mine were never held
    assert up.delete(stranger, f"/uploads/{theirs['id']}").status_code == 204
    assert up.delete(organizer, f"/uploads/{mine_['id']}").status_code == 204


def test_a_deleted_event_lets_go_of_everything_it_showed(up):
    organizer = up.user()
    e = up.event(organizer)["id"]
    shown = [post_raw(up, organizer, images.png(30, 30, seed=s)).json()["id"]
             for s in (76, 77, 78, 79)]
    assert up.post(organizer, f"/events/{e}/background",
                   {"upload_id": shown[0]}).status_code == 200
    for i, upload_id in enumerate(shown[1:3]):
        assert _part(up, organizer, e, "speakers", name=f"S{i}",
                     photo_upload_id=upload_id).status_code == 201
    assert _part(up, organizer, e, "sponsors", name="Co",
                 logo_upload_id=shown[3]).status_code == 201
    for upload_id in shown:
        assert up.delete(organizer, f"/uploads/{upload_id}").status_code == 409
    assert up.delete(organizer, f"/events/{e}").status_code == 204
    for upload_id in shown:
        tally.wait_for(lambda: up.delete(organizer, f"/uploads/{upload_id}").status_code == 204,
                       "the upload to be let go", timeout=30)


def test_avatar_is_in_the_user_object(up):
    user = up.user()
    body = post_raw(up, user, images.png(300, 100, seed=51)).json()
    r = up.post(user, "/me/avatar", {"upload_id": body["id"]})
    assert r.status_code == 200, r.text
    url = r.json()["avatar_url"]
    assert url.endswith(f"/uploads/{body['id']}/avatar")
    assert up.get(user, "/me").json()["avatar_url"] == url
    assert images.dimensions(fetch(up, url).content) == (256, 256)
    assert up.delete(user, f"/uploads/{body['id']}").status_code == 409
    r = up.delete(user, "/me/avatar")
    assert r.status_code == 200 and r.json()["avatar_url"] is None
    assert up.delete(user, f"/uploads/{body['id']}").status_code == 204


def test_deleted_users_uploads_go_but_an_event_background_stays(up):
    user = up.user()
    event = up.event(user)
    shown = post_raw(up, user, images.png(100, 100, seed=61)).json()
    unshown = post_raw(up, user, images.png(100, 100, seed=62)).json()
    assert up.post(user, f"/events/{event['id']}/background",
                   {"upload_id": shown["id"]}).status_code == 200
    assert up.post(user, "/me/avatar", {"upload_id": unshown["id"]}).status_code == 200
    r = up.request("DELETE", user, "/me", json={"password": tally_password()})
    assert r.status_code in (200, 204), r.text
    tally.wait_for(lambda: fetch(up, unshown["url"]).status_code == 404,
                   "the unshown upload to go", timeout=90)
    assert fetch(up, shown["url"]).status_code == 200
    owner = tally.psql(f"SELECT coalesce (owner, 'none') FROM upload.uploads "
                       f"WHERE id = '{shown['id']}'")
    assert owner == "none"


def tally_password():
    from tracker_system import PASSWORD
    return PASSWORD


def test_daily_job_removes_old_unreferenced_uploads(up):
    user = up.user()
    event = up.event(user)
    kept = post_raw(up, user, images.png(20, 20, seed=71)).json()
    shown = post_raw(up, user, images.png(20, 20, seed=72)).json()
    assert up.post(user, f"/events/{event['id']}/background",
                   {"upload_id": shown["id"]}).status_code == 200
    old = post_raw(up, user, images.png(20, 20, seed=73)).json()
    # The test's clock: the daily run just after the next midnight (UTC)
    # whose run has not happened yet (each day's runs once: a database of an
    # earlier test run may have had it); `old` and `shown` were made two days
    # before it, `kept` an hour before.
    at = tally.psql(
        "SELECT to_char (greatest (date_trunc ('day', now () AT TIME ZONE 'UTC'), "
        "                          max (run_at AT TIME ZONE 'UTC')) "
        "                + interval '1 day 30 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "FROM upload.jobs WHERE kind = 'upload.gc'")
    tally.psql(f"UPDATE upload.uploads SET created_at = '{at}'::timestamptz - interval '2 days' "
               f"WHERE id IN ('{old['id']}', '{shown['id']}')")
    tally.psql(f"UPDATE upload.uploads SET created_at = '{at}'::timestamptz - interval '1 hour' "
               f"WHERE id = '{kept['id']}'")
    out = up.tallyctl("jobs", "run-due", "upload", "--at", at)
    assert out.returncode == 0, out.stderr
    assert fetch(up, old["url"]).status_code == 404
    assert fetch(up, shown["url"]).status_code == 200
    assert fetch(up, kept["url"]).status_code == 200
    stored = [f for _, _, files in os.walk(up.data_dir) for f in files
              if f.startswith(old["sha256"])]
    assert stored == []
