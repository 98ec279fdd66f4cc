"""Accounts end to end: the real auth service behind two gateways, the
mailer delivering to a real SMTP server (the tests read codes out of the
mails), and testsvc holding user data that must go when its user goes.

Every row of API.md's "Accounts" section is exercised over HTTP. Client
addresses are simulated with X-Forwarded-For (the gateways trust it here),
so that each test's failed logins count against an address of its own."""

import itertools
import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import tally
from smtp_sink import SmtpSink
from tally import Cluster, binary, psql, unique, wait_for, wait_instances

API = "/api/v1"
PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def new_ip():
    n = next(_addresses) + os.getpid() % 200 * 1000
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def new_prefix6():
    """The first four groups of a fresh IPv6 /64 (append ":a:b:c:d" or "::1")."""
    n = next(_addresses) + os.getpid() % 200 * 1000
    return f"2001:db8:{n // 65536 % 65536:x}:{n % 65536:x}"


class Accounts:
    def __init__(self, cluster, sink):
        self.cluster = cluster
        self.sink = sink
        env = {"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"}
        self.gw = cluster.gateway(env=env)
        self.gw2 = cluster.gateway(env=env)
        gws = [self.gw, self.gw2]
        tally.mailer(cluster, gws, smtp_url=sink.url)
        tally.auth(cluster, gws, name="auth-a")
        tally.auth(cluster, gws, name="auth-b")
        self.data = cluster.service(gws, name="holder")
        # A subscriber of auth.user.deleted that is down holds auth's jobs
        # thread for a delivery's whole deadline on each attempt, ahead of
        # the verification mails: the event service hears deletions here
        tally.event(cluster, gws)
        tally.notification(cluster, gws)
        wait_instances(self.gw, 2, service="auth", timeout=60)
        wait_instances(self.gw2, 2, service="auth", timeout=60)
        wait_instances(self.gw, 1, service="mailer", timeout=60)
        wait_instances(self.gw, 1, service="testsvc", timeout=60)
        self.responses = []         # every JSON body seen, for the leak check

    # --- HTTP -----------------------------------------------------------
    def request(self, method, path, json_body=None, token=None, ip=None, gw=None,
                cookies=None, data=None, headers=None):
        h = {"X-Forwarded-For": ip or new_ip()}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        url = (gw or self.gw).url + API + path
        r = requests.request(method, url, json=json_body, headers=h, cookies=cookies,
                             data=data, timeout=30)
        if r.headers.get("Content-Type", "").startswith("application/json") and r.content:
            self.responses.append(r.text)
        return r

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    # --- Mail -------------------------------------------------------------
    def code_from_mail(self, address, kind, count=1):
        """The code of the `count`-th mail to `address` whose link is
        <public url>/<kind>?code=..."""
        def found():
            return len(self.codes(address, kind)) >= count
        wait_for(found, f"mail {count} to {address}", timeout=30)
        return self.codes(address, kind)[count - 1]

    def codes(self, address, kind):
        out = []
        for msg in self.sink.messages(rcpt=address):
            text = msg.parsed().get_body(preferencelist=("plain",)).get_content()
            m = re.search(r"http://tally\.test/" + kind + r"\?code=([A-Za-z0-9_-]+)", text)
            if m:
                assert m.group(1) in text.split("code: ", 1)[1], "code and link differ"
                out.append(m.group(1))
        return out

    # --- Accounts -----------------------------------------------------------
    def register(self, username=None, email=None, password=PASSWORD):
        username = username or unique("u")
        email = email or f"{username}@example.com"
        r = self.post("/auth/register", {"username": username, "email": email,
                                         "password": password})
        return r, username, email

    def verified_user(self, password=PASSWORD):
        r, username, email = self.register(password=password)
        assert r.status_code == 201, r.text
        code = self.code_from_mail(email, "verify")
        v = self.post("/auth/verify", {"code": code})
        assert v.status_code == 200, v.text
        return username, email, password, r.json()["id"]

    def login(self, login, password=PASSWORD, ip=None):
        r = self.post("/auth/login", {"login": login, "password": password}, ip=ip)
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def tallyctl(self, *args, stdin=None):
        env = dict(os.environ, TALLY_MESH=self.gw.mesh)
        return subprocess.run([binary("tallyctl"), *args], capture_output=True, text=True,
                              input=stdin, timeout=150, env=env)


@pytest.fixture(scope="module")
def acc():
    sink = SmtpSink().start()
    c = Cluster()
    a = Accounts(c, sink)
    yield a
    failures = c.stop()
    sink.stop()
    # No response ever carried a password, a hash or a stored token hash
    for text in a.responses:
        assert "$argon2" not in text and PASSWORD not in text, text
        assert "password_hash" not in text and "token_hash" not in text, text
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# Register and verify

def test_register_answers_201_with_the_user_and_no_secret(acc):
    r, username, email = acc.register()
    assert r.status_code == 201, r.text
    user = r.json()
    assert set(user) == {"id", "username", "email", "verified", "is_admin", "is_super_admin",
                         "created_at", "avatar_url", "settings"}
    assert user["avatar_url"] is None
    assert user["username"] == username and user["email"] == email
    assert user["verified"] is False and user["is_admin"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["created_at"])
    assert user["settings"] == {"timezone": "UTC", "play_sounds": True, "report_format": "html",
                                "reminder_channel": "email", "webhook_url": None,
                                "reminder_time": "20:00"}
    stored = psql(f"SELECT password_hash FROM auth.users WHERE id = '{user['id']}'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


BAD_REGISTRATIONS = [
    ({}, "username"),
    ({"email": "x@example.com", "password": PASSWORD}, "username"),
    ({"username": "{u}", "password": PASSWORD}, "email"),
    ({"username": "{u}", "email": "{u}@example.com"}, "password"),
    ({"username": "{u}", "email": "{u}@example.com", "password": "elevenchars"}, "password"),
    ({"username": "{u}", "email": "{u}@example.com", "password": "p" * 129}, "password"),
    ({"username": "{u}", "email": "a@b", "password": PASSWORD}, "email"),
    ({"username": "{u}", "email": "no-at-sign", "password": PASSWORD}, "email"),
    ({"username": "{u}", "email": "{u}@example..com", "password": PASSWORD}, "email"),
    ({"username": "ab", "email": "{u}@example.com", "password": PASSWORD}, "username"),
    ({"username": "bad name", "email": "{u}@example.com", "password": PASSWORD}, "username"),
    ({"username": "x" * 33, "email": "{u}@example.com", "password": PASSWORD}, "username"),
    ({"username": "ünïcode", "email": "{u}@example.com", "password": PASSWORD}, "username"),
    ({"username": 5, "email": "{u}@example.com", "password": PASSWORD}, "username"),
    ({"username": "{u}", "email": ["{u}@example.com"], "password": PASSWORD}, "email"),
    ({"username": "{u}", "email": "{u}@example.com", "password": True}, "password"),
    ({"username": "{u}", "email": "{u}@example.com", "password": {"a": {"b": [1]}}}, "password"),
    ({"username": "{u}", "email": "{u}@example.com", "password": None}, "password"),
    ({"username": "{u}" + "x" * 100000, "email": "{u}@example.com", "password": PASSWORD},
     "username"),
]


def _fill(value, u):
    if isinstance(value, str):
        return value.replace("{u}", u)
    if isinstance(value, list):
        return [_fill(v, u) for v in value]
    return value


@pytest.mark.parametrize("body, field", BAD_REGISTRATIONS)
def test_register_refuses_bad_bodies_with_400_and_creates_nothing(acc, body, field):
    u = unique("bad")
    filled = {k: _fill(v, u) for k, v in body.items()}
    r = acc.post("/auth/register", filled)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert field in err.get("fields", {}), err
    assert psql(f"SELECT count(*) FROM auth.users WHERE username ILIKE '{u}%'") == "0"


@pytest.mark.parametrize("raw", [
    b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe{}",
    b'{"username": "\xc3\x28bad", "email": "x@example.com", "password": "correct horse battery"}',
    b"[" * 5000, b'{"a":' * 100 + b"1" + b"}" * 100,
])
def test_register_refuses_malformed_json_with_4xx(acc, raw):
    r = acc.post("/auth/register", data=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (raw[:40], r.status_code, r.text)


def test_username_and_email_are_unique_ignoring_case(acc):
    r, username, email = acc.register()
    assert r.status_code == 201
    again, _, _ = acc.register(username=username.upper(), email=f"other{username}@example.com")
    assert again.status_code == 409 and "username" in again.json()["error"]["fields"]
    again, _, _ = acc.register(username=unique("v"), email=email.upper())
    assert again.status_code == 409 and "email" in again.json()["error"]["fields"]


def test_verification_mail_carries_a_single_use_code(acc):
    r, username, email = acc.register()
    assert r.status_code == 201
    login = acc.post("/auth/login", {"login": username, "password": PASSWORD})
    assert login.status_code == 403 and login.json()["error"]["code"] == "unverified"
    code = acc.code_from_mail(email, "verify")
    mail = acc.sink.messages(rcpt=email)[0].parsed()
    assert mail["Subject"] == "Verify your email address for Tally"
    assert acc.post("/auth/verify", {"code": code[:-1] + ("A" if code[-1] != "A" else "B")}) \
        .status_code == 400
    v = acc.post("/auth/verify", {"code": code})
    assert v.status_code == 200 and v.json()["verified"] is True
    assert acc.post("/auth/verify", {"code": code}).status_code == 400      # used
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}).status_code == 200
    # The code is stored hashed only
    assert psql(f"SELECT count(*) FROM auth.codes WHERE encode(code_hash, 'escape') "
                f"LIKE '%{code}%'") == "0"


def test_expired_verification_code_is_400(acc):
    r, username, email = acc.register()
    code = acc.code_from_mail(email, "verify")
    psql(f"UPDATE auth.codes SET expires_at = now() - interval '1 second' "
         f"WHERE user_id = '{r.json()['id']}'")
    v = acc.post("/auth/verify", {"code": code})
    assert v.status_code == 400 and v.json()["error"]["code"] == "invalid_code"
    assert psql(f"SELECT verified FROM auth.users WHERE id = '{r.json()['id']}'") == "f"


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 42}, {"code": "x" * 600},
                                  {"code": "../../etc"}, {"code": "é" * 43}])
def test_verify_refuses_bad_codes_with_400(acc, body):
    assert acc.post("/auth/verify", body).status_code == 400


# ---------------------------------------------------------------------------
# Login, sessions, logout

def test_login_by_username_or_email_in_any_case_gives_token_and_cookie(acc):
    username, email, password, uid = acc.verified_user()
    for login in (username, email, username.upper(), email.upper()):
        r = acc.post("/auth/login", {"login": login, "password": password})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"token", "user"}
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["token"])
        assert body["user"]["id"] == uid and body["user"]["email"] == email
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith(f"tally_session={body['token']};")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie           # plain http here
    # Tokens are stored only as hashes
    stored = psql(f"SELECT encode(token_hash, 'hex') FROM auth.sessions WHERE user_id = '{uid}'")
    assert stored and body["token"] not in stored


@pytest.mark.parametrize("body", [{}, {"login": "someone"},
                                  {"password": PASSWORD}, {"login": "", "password": PASSWORD},
                                  {"login": 7, "password": PASSWORD},
                                  {"login": "bob", "password": ["p"]}])
def test_login_without_its_fields_is_400(acc, body):
    assert acc.post("/auth/login", body).status_code == 400


def test_wrong_password_and_unknown_user_answer_the_same_401(acc):
    username, _, _, _ = acc.verified_user()
    wrong = acc.post("/auth/login", {"login": username, "password": "not the password"})
    nobody = acc.post("/auth/login", {"login": unique("ghost"), "password": "not the password"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


def test_bearer_and_cookie_both_authenticate_me(acc):
    username, email, _, uid = acc.verified_user()
    token = acc.login(username)
    me = acc.request("GET", "/me", token=token)
    assert me.status_code == 200 and me.json()["id"] == uid and me.json()["email"] == email
    assert me.headers["ETag"]
    by_cookie = acc.request("GET", "/me", cookies={"tally_session": token})
    assert by_cookie.status_code == 200 and by_cookie.json()["id"] == uid
    assert acc.request("GET", "/me").status_code == 401
    assert acc.request("GET", "/me", token="A" * 43).status_code == 401


def test_logout_ends_the_session_at_once_on_every_gateway(acc):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    other = acc.login(username)
    assert acc.request("GET", "/me", token=token, gw=acc.gw2).status_code == 200
    out = acc.post("/auth/logout", token=token)
    assert out.status_code == 200
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    for gw in (acc.gw, acc.gw2):
        assert acc.request("GET", "/me", token=token, gw=gw).status_code == 401
    assert acc.post("/auth/logout", token=token).status_code == 401
    assert acc.post("/auth/logout").status_code == 401
    # Only that session ended
    assert acc.request("GET", "/me", token=other).status_code == 200
    # Logging out with the cookie works too
    by_cookie = acc.post("/auth/logout", cookies={"tally_session": other})
    assert by_cookie.status_code == 200
    assert acc.request("GET", "/me", token=other).status_code == 401


def test_a_session_idle_past_its_expiry_is_refused(acc):
    username, _, _, uid = acc.verified_user()
    token = acc.login(username)
    psql(f"UPDATE auth.sessions SET expires_at = now() - interval '1 second' "
         f"WHERE user_id = '{uid}'")
    assert acc.request("GET", "/me", token=token).status_code == 401


def test_using_a_session_slides_its_expiry(acc):
    username, _, _, uid = acc.verified_user()
    token = acc.login(username)
    psql(f"UPDATE auth.sessions SET last_used_at = now() - interval '10 days', "
         f"expires_at = now() + interval '20 days' WHERE user_id = '{uid}'")
    assert acc.request("GET", "/me", token=token).status_code == 200
    days = psql(f"SELECT round(extract(epoch FROM expires_at - now()) / 86400) "
                f"FROM auth.sessions WHERE user_id = '{uid}'")
    assert days == "30"


# ---------------------------------------------------------------------------
# Throttling

def test_ten_failures_from_one_address_lock_that_address_out_not_the_others(acc):
    username, email, _, _ = acc.verified_user()
    a = new_ip()
    for i in range(10):
        r = acc.post("/auth/login", {"login": username, "password": f"wrong {i}"}, ip=a)
        assert r.status_code == 401, (i, r.text)
    locked = acc.post("/auth/login", {"login": username, "password": PASSWORD}, ip=a)
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    # By email too (the same account)
    assert acc.post("/auth/login", {"login": email, "password": PASSWORD}, ip=a).status_code == 429
    # Another address logs in: failures from afar lock nobody out
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}).status_code == 200
    # ...and that success does not unlock address A
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}, ip=a) \
        .status_code == 429
    # Address A still logs in to another account
    other, _, _, _ = acc.verified_user()
    assert acc.post("/auth/login", {"login": other, "password": PASSWORD}, ip=a).status_code == 200


def test_ipv6_addresses_in_one_64_share_a_counter_and_mapped_ipv4_is_ipv4(acc):
    username, _, _, _ = acc.verified_user()
    prefix = new_prefix6()
    for i in range(10):
        r = acc.post("/auth/login", {"login": username, "password": f"wrong {i}"},
                     ip=f"{prefix}:{i + 1:x}::{i + 7:x}")
        assert r.status_code == 401, (i, r.text)
    same = acc.post("/auth/login", {"login": username, "password": PASSWORD},
                    ip=f"{prefix}:ffff:1:2:3")
    assert same.status_code == 429
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD},
                    ip=f"{new_prefix6()}::1").status_code == 200
    # An IPv4 address written as IPv6 (a dual-stack socket's) is that IPv4
    other, _, _, _ = acc.verified_user()
    v4 = new_ip()
    for i in range(10):
        r = acc.post("/auth/login", {"login": other, "password": f"wrong {i}"}, ip=f"::ffff:{v4}")
        assert r.status_code == 401, (i, r.text)
    assert acc.post("/auth/login", {"login": other, "password": PASSWORD}, ip=v4).status_code == 429


def test_failures_from_many_addresses_slow_the_account_down_without_locking_it(acc):
    username, _, _, uid = acc.verified_user()

    def login(password):
        return acc.post("/auth/login", {"login": username, "password": password})

    # Twenty failures, each from its own address: none is locked out
    for i in range(20):
        assert login(f"wrong {i}").status_code == 401, i
    # Past 20, each try waits 2^(failures - 20) s after the last failure.
    # The test sets the count so that the wait (128 s) dwarfs its own speed.
    key = f"account:{uid}"

    def throttle(sql):
        psql(f"UPDATE auth.throttle SET {sql} WHERE key = '{key}'")

    throttle("failures = 27, last_failure = now()")
    slowed = login(PASSWORD)
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["Retry-After"]) <= 128
    # The wait over, a try is checked again; a failure doubles the wait
    throttle("last_failure = last_failure - interval '129 seconds'")
    assert login("wrong again").status_code == 401
    slower = login(PASSWORD)
    assert slower.status_code == 429 and 128 < int(slower.headers["Retry-After"]) <= 256
    # It never passes 5 minutes
    throttle("failures = 1000, last_failure = now()")
    capped = login(PASSWORD)
    assert capped.status_code == 429 and 256 < int(capped.headers["Retry-After"]) <= 300
    # Once it is over, the right password logs in and clears the count
    throttle("last_failure = last_failure - interval '301 seconds'")
    assert login(PASSWORD).status_code == 200
    assert psql(f"SELECT count(*) FROM auth.throttle WHERE key = '{key}'") == "0"


def test_a_success_clears_the_account_counter(acc):
    username, _, _, _ = acc.verified_user()
    for round_ in range(2):
        for i in range(9):
            r = acc.post("/auth/login", {"login": username, "password": f"wrong {i}"})
            assert r.status_code == 401, (round_, i)
        assert acc.post("/auth/login", {"login": username, "password": PASSWORD}) \
            .status_code == 200


def test_one_address_failing_on_many_accounts_is_throttled(acc):
    ip = new_ip()
    for i in range(30):
        r = acc.post("/auth/login", {"login": unique("nobody"), "password": "guess"}, ip=ip)
        assert r.status_code == 401, i
    username, _, _, _ = acc.verified_user()
    blocked = acc.post("/auth/login", {"login": username, "password": PASSWORD}, ip=ip)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}).status_code == 200


def test_a_register_flood_from_one_address_is_429_and_sessions_keep_working(cluster):
    # One auth instance of 4 handler threads and 2 hash slots, and 64
    # clients registering from one address at once. Registrations are
    # counted per address before any hash, and one that finds every hash
    # slot busy is answered at once: the handler threads stay free for
    # session.check, which every GET /me needs (no 504).
    gw = cluster.gateway(env={"TALLY_PROTO_BUILTIN": "1", "TALLY_TRUST_PROXY": "1"})
    tally.auth(cluster, [gw], env={"TALLY_REQUIRE_VERIFICATION": "false"}, workers=4)
    wait_instances(gw, 1, service="auth", timeout=60)

    def post(path, body, ip, token=None):
        headers = {"X-Forwarded-For": ip}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(gw.url + API + path, json=body, headers=headers, timeout=60)

    name = unique("reader")
    assert post("/auth/register", {"username": name, "email": f"{name}@example.com",
                                   "password": PASSWORD}, new_ip()).status_code == 201
    token = post("/auth/login", {"login": name, "password": PASSWORD}, new_ip()).json()["token"]
    flood_ip, base = new_ip(), unique("f")
    me, stop = [], threading.Event()

    def register(i):
        name = f"{base}_{i}"
        return post("/auth/register", {"username": name, "email": f"{name}@example.com",
                                       "password": PASSWORD}, flood_ip)

    def read_me():
        while not stop.is_set():
            me.append(requests.get(gw.url + API + "/me", timeout=60,
                                   headers={"Authorization": f"Bearer {token}"}).status_code)

    reader = threading.Thread(target=read_me)
    reader.start()
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(register, range(200)))
    finally:
        stop.set()
        reader.join()
    statuses = [r.status_code for r in answers]
    assert me and all(status == 200 for status in me), me
    assert 429 in statuses, statuses
    assert set(statuses) <= {201, 429, 503}, statuses
    assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status_code != 201)
    # Another address still registers
    name = unique("after")
    assert post("/auth/register", {"username": name, "email": f"{name}@example.com",
                                   "password": PASSWORD}, new_ip()).status_code == 201


def test_registering_a_taken_email_is_409_then_429(acc):
    # Every try naming an email counts, taken or not (nobody probes which
    # addresses have accounts, or mails one over and over, at full speed)
    r, username, email = acc.register()
    assert r.status_code == 201
    statuses = []
    for i in range(6):
        again = acc.post("/auth/register", {"username": f"{username}{i}", "email": email,
                                            "password": PASSWORD})
        statuses.append(again.status_code)
    assert statuses[:4] == [409] * 4, statuses          # 1 + 4 within the email's 5
    assert statuses[4:] == [429, 429], statuses


def test_password_reset_requests_are_limited_per_email(acc):
    email = f"{unique('reset')}@example.com"
    statuses = [acc.post("/auth/password-reset", {"email": email}).status_code
                for _ in range(6)]
    assert statuses == [202] * 5 + [429], statuses
    assert acc.post("/auth/password-reset", {"email": email.upper()}).status_code == 429
    other = acc.post("/auth/password-reset", {"email": f"x{email}"})
    assert other.status_code == 202


# ---------------------------------------------------------------------------
# Password reset

def test_password_reset_answers_202_whatever_the_address(acc):
    ghost = f"{unique('ghost')}@example.com"
    unknown = acc.post("/auth/password-reset", {"email": ghost})
    username, email, _, _ = acc.verified_user()
    known = acc.post("/auth/password-reset", {"email": email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    acc.code_from_mail(email, "reset")
    time.sleep(1)
    assert acc.sink.messages(rcpt=ghost) == []
    assert acc.post("/auth/password-reset", {}).status_code == 400


def test_password_reset_sets_a_new_password_and_ends_every_session(acc):
    username, email, _, uid = acc.verified_user()
    old_token = acc.login(username)
    acc.post("/auth/password-reset", {"email": email.upper()})
    code = acc.code_from_mail(email, "reset")
    assert acc.sink.messages(rcpt=email)[-1].parsed()["Subject"] == "Reset your Tally password"
    new = "a brand new passphrase"
    weak = acc.post("/auth/password-reset/confirm", {"code": code, "new_password": "short"})
    assert weak.status_code == 400
    bad = acc.post("/auth/password-reset/confirm", {"code": "B" * 43, "new_password": new})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_code"
    ok = acc.post("/auth/password-reset/confirm", {"code": code, "new_password": new})
    assert ok.status_code == 200, ok.text
    assert acc.request("GET", "/me", token=old_token).status_code == 401
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}).status_code == 401
    acc.login(username, new)
    again = acc.post("/auth/password-reset/confirm", {"code": code, "new_password": new + "!"})
    assert again.status_code == 400                                # single use


def test_a_reset_code_lives_30_minutes(acc):
    username, email, _, uid = acc.verified_user()
    acc.post("/auth/password-reset", {"email": email})
    code = acc.code_from_mail(email, "reset")
    minutes = psql(f"SELECT round(extract(epoch FROM expires_at - now()) / 60) FROM auth.codes "
                   f"WHERE user_id = '{uid}' AND purpose = 'reset'")
    assert minutes in ("29", "30")
    psql(f"UPDATE auth.codes SET expires_at = now() - interval '1 second' "
         f"WHERE user_id = '{uid}' AND purpose = 'reset'")
    r = acc.post("/auth/password-reset/confirm", {"code": code, "new_password": "x" * 20})
    assert r.status_code == 400
    acc.login(username)                                             # unchanged


# ---------------------------------------------------------------------------
# /me

def test_me_settings_are_read_and_updated(acc):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    settings = {"timezone": "America/New_York", "play_sounds": False, "report_format": "pdf",
                "reminder_channel": "webhook", "webhook_url": "https://hooks.example.com/t",
                "reminder_time": "07:30"}
    r = acc.request("PATCH", "/me", {"settings": settings}, token=token)
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == settings
    me = acc.request("GET", "/me", token=token, gw=acc.gw2)
    assert me.json()["settings"] == settings
    # Partial: only what is given changes
    r = acc.request("PATCH", "/me", {"settings": {"play_sounds": True}}, token=token)
    assert r.json()["settings"] == dict(settings, play_sounds=True)


BAD_SETTINGS = [
    {"timezone": "Mars/Olympus"}, {"timezone": "../../etc/passwd"}, {"timezone": 3},
    {"timezone": "EST5EDT" + "x" * 100}, {"play_sounds": "yes"}, {"play_sounds": 1},
    {"report_format": "docx"}, {"reminder_channel": "sms"}, {"reminder_time": "25:00"},
    {"reminder_time": "7:30"}, {"reminder_time": "07:30:00"},
    {"webhook_url": "ftp://example.com/x"}, {"webhook_url": "javascript:alert(1)"},
    {"webhook_url": "not a url"}, {"webhook_url": 12},
    {"webhook_url": "https://hooks.example.com/t#fragment"},    # the mailer would refuse it
]


@pytest.mark.parametrize("settings", BAD_SETTINGS)
def test_bad_settings_are_400_and_change_nothing(acc, settings):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    before = acc.request("GET", "/me", token=token).json()
    r = acc.request("PATCH", "/me", {"settings": settings}, token=token)
    assert r.status_code == 400, r.text
    assert acc.request("GET", "/me", token=token).json() == before


def test_reminders_by_webhook_need_a_url(acc):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    r = acc.request("PATCH", "/me", {"settings": {"reminder_channel": "webhook"}}, token=token)
    assert r.status_code == 400
    assert "settings.webhook_url" in r.json()["error"]["fields"]


@pytest.mark.parametrize("body", [[1, 2], "text", {"username": "no spaces allowed"},
                                  {"email": "a@b"}, {"settings": "dark"}, {"username": 12}])
def test_bad_me_bodies_are_400(acc, body):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    assert acc.request("PATCH", "/me", body, token=token).status_code == 400


def test_renaming_to_a_taken_name_is_409(acc):
    taken, _, _, _ = acc.verified_user()
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    r = acc.request("PATCH", "/me", {"username": taken.upper()}, token=token)
    assert r.status_code == 409 and "username" in r.json()["error"]["fields"]
    r = acc.request("PATCH", "/me", {"username": username + "x"}, token=token)
    assert r.status_code == 200 and r.json()["username"] == username + "x"


def test_a_new_email_is_unverified_until_its_own_code(acc):
    username, email, _, uid = acc.verified_user()
    token = acc.login(username)
    old_code_count = len(acc.codes(email, "verify"))
    new_email = f"new{username}@example.org"
    r = acc.request("PATCH", "/me", {"email": new_email, "current_password": PASSWORD},
                    token=token)
    assert r.status_code == 200 and r.json()["verified"] is False
    assert r.json()["email"] == new_email
    code = acc.code_from_mail(new_email, "verify")
    assert len(acc.codes(email, "verify")) == old_code_count         # nothing to the old one
    assert acc.post("/auth/verify", {"code": code}).json()["verified"] is True
    # Another user cannot take the address
    r2, _, _ = acc.register(email=new_email.upper())
    assert r2.status_code == 409


def test_changing_the_email_needs_the_password_and_tells_the_old_address(acc):
    # A stolen session alone cannot move the account to another mailbox,
    # and the owner hears of a change at the address it leaves
    username, email, _, _ = acc.verified_user()
    token = acc.login(username)
    new_email = f"moved{username}@example.org"
    missing = acc.request("PATCH", "/me", {"email": new_email}, token=token)
    assert missing.status_code == 400 and "current_password" in missing.json()["error"]["fields"]
    wrong = acc.request("PATCH", "/me", {"email": new_email, "current_password": "not it at all"},
                        token=token)
    assert wrong.status_code == 401 and "current_password" in wrong.json()["error"]["fields"]
    assert acc.request("GET", "/me", token=token).json()["email"] == email
    # The same address in other letter case, and other changes, need none
    assert acc.request("PATCH", "/me", {"email": email.upper(), "settings": {"play_sounds": False}},
                       token=token).status_code == 200
    ok = acc.request("PATCH", "/me", {"email": new_email, "current_password": PASSWORD},
                     token=token)
    assert ok.status_code == 200, ok.text
    assert ok.json()["email"] == new_email and ok.json()["verified"] is False

    def notices():
        return [m.parsed() for m in acc.sink.messages(rcpt=email)
                if m.parsed()["Subject"] == "Your Tally email address was changed"]
    wait_for(lambda: notices(), f"the notice to {email}", timeout=30)
    text = notices()[0].get_body(preferencelist=("plain",)).get_content()
    assert new_email in text and username in text
    acc.code_from_mail(new_email, "verify")       # the new one gets its code
    assert len(notices()) == 1
    assert not [m for m in acc.sink.messages(rcpt=new_email)
                if m.parsed()["Subject"] == "Your Tally email address was changed"]


def test_password_reset_mails_only_a_verified_address(acc):
    r, username, email = acc.register()               # never verified
    assert r.status_code == 201
    uid = r.json()["id"]
    ghost = acc.post("/auth/password-reset", {"email": f"{unique('ghost')}@example.com"})
    unverified = acc.post("/auth/password-reset", {"email": email})
    assert unverified.status_code == ghost.status_code == 202
    assert unverified.json() == ghost.json()
    # The job ran (a code is stored before it is mailed) and made no code
    job_done = (f"SELECT count(*) FROM auth.jobs WHERE kind = 'auth.mail_reset' "
                f"AND position(convert_to('{email}', 'UTF8') IN payload) > 0 "
                f"AND done_at IS NOT NULL")
    wait_for(lambda: psql(job_done) == "1", "the reset job", timeout=30)
    assert psql(f"SELECT count(*) FROM auth.codes WHERE user_id = '{uid}' "
                f"AND purpose = 'reset'") == "0"
    assert acc.codes(email, "reset") == []
    # Verified, the same address gets its code
    acc.post("/auth/verify", {"code": acc.code_from_mail(email, "verify")})
    assert acc.post("/auth/password-reset", {"email": email}).status_code == 202
    acc.code_from_mail(email, "reset")


def test_change_password_needs_the_current_one_and_ends_other_sessions(acc):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    other = acc.login(username)
    new = "another fine passphrase"
    assert acc.post("/me/password", {"new_password": new}, token=token).status_code == 400
    assert acc.post("/me/password", {"current_password": PASSWORD, "new_password": "short"},
                    token=token).status_code == 400
    wrong = acc.post("/me/password", {"current_password": "not it at all", "new_password": new},
                     token=token)
    assert wrong.status_code == 401
    ok = acc.post("/me/password", {"current_password": PASSWORD, "new_password": new},
                  token=token)
    assert ok.status_code == 200, ok.text
    assert acc.request("GET", "/me", token=token).status_code == 200      # this one stays
    assert acc.request("GET", "/me", token=other).status_code == 401      # the others end
    acc.login(username, new)
    assert acc.post("/me/password", {"current_password": PASSWORD, "new_password": new}) \
        .status_code == 401                                              # no session


# ---------------------------------------------------------------------------
# Deleting the account

def _items(acc, token):
    return acc.request("GET", "/test/items", token=token)


def test_delete_me_needs_the_password(acc):
    username, _, _, _ = acc.verified_user()
    token = acc.login(username)
    assert acc.request("DELETE", "/me", {}, token=token).status_code == 400
    assert acc.request("DELETE", "/me", {"password": "not it at all"}, token=token) \
        .status_code == 401
    assert acc.request("GET", "/me", token=token).status_code == 200


def test_delete_me_removes_the_user_and_their_data_in_other_services(acc):
    username, email, _, uid = acc.verified_user()
    token = acc.login(username)
    for name in ("one", "two"):
        assert acc.post("/test/items", {"name": name}, token=token).status_code == 201
    assert psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{uid}'") == "2"
    r = acc.request("DELETE", "/me", {"password": PASSWORD}, token=token)
    assert r.status_code == 200, r.text
    assert acc.request("GET", "/me", token=token).status_code == 401
    assert acc.post("/auth/login", {"login": username, "password": PASSWORD}).status_code == 401
    assert psql(f"SELECT count(*) FROM auth.users WHERE id = '{uid}'") == "0"
    assert psql(f"SELECT count(*) FROM auth.sessions WHERE user_id = '{uid}'") == "0"
    wait_for(lambda: psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{uid}'") == "0",
             "testsvc to forget the user", timeout=30)
    # The name and address are free again
    again, _, _ = acc.register(username=username, email=email)
    assert again.status_code == 201


def test_delete_me_drops_the_users_mail_from_the_mailers_outbox(acc):
    username, email, _, uid = acc.verified_user()
    # The verification mail was queued for this user, code and all
    rows = f"FROM mailer.outbox WHERE user_id = '{uid}'"
    assert psql(f"SELECT count(*) {rows} AND message IS NOT NULL") == "1"
    token = acc.login(username)
    r = acc.request("DELETE", "/me", {"password": PASSWORD}, token=token)
    assert r.status_code == 200, r.text
    wait_for(lambda: psql(f"SELECT count(*) {rows} AND message IS NOT NULL") == "0",
             "the mailer to forget the user", timeout=30)
    assert psql(f"SELECT count(*) {rows} AND recipients = ''") == "1"
    assert psql(f"SELECT count(*) FROM mailer.outbox WHERE recipients LIKE '%{email}%'") == "0"


def test_a_service_down_at_deletion_forgets_the_user_when_it_is_back(acc):
    username, _, _, uid = acc.verified_user()
    token = acc.login(username)
    assert acc.post("/test/items", {"name": "kept while down"}, token=token).status_code == 201
    acc.data.stop()
    wait_for(lambda: tally.instances(acc.gw, "testsvc") == 0, "testsvc gone", timeout=30)
    r = acc.request("DELETE", "/me", {"password": PASSWORD}, token=token)
    assert r.status_code == 200
    # The event waits in auth's outbox; its delivery job tries, fails, backs off
    delivery = (f"FROM auth.jobs j JOIN auth.event_outbox e ON j.unique_key = 'tl.event:' || e.id "
                f"WHERE e.subscriber = 'testsvc' AND e.subject = '{uid}'")
    wait_for(lambda: psql(f"SELECT j.attempts > 0 AND j.done_at IS NULL {delivery}") == "t",
             "a failed delivery", timeout=30)
    assert psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{uid}'") == "1"
    acc.data = acc.cluster.service([acc.gw, acc.gw2], name="holder-back")
    wait_instances(acc.gw, 1, service="testsvc", timeout=60)
    # The retry comes on its back-off; operators may run it now (a clock
    # an hour ahead makes it due at once).
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3700))
    out = acc.tallyctl("jobs", "run-due", "auth", "--at", at)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: psql(f"SELECT count(*) FROM testsvc.items WHERE owner = '{uid}'") == "0",
             "testsvc to forget the user after its return", timeout=60)
    assert psql(f"SELECT e.delivered_at IS NOT NULL AND j.done_at IS NOT NULL {delivery}") \
        == "t"


# ---------------------------------------------------------------------------
# Staff

def _super_admin(acc):
    name = unique("root")
    out = acc.tallyctl("user", "create", "--super-admin", "--username", name,
                       "--email", f"{name}@example.com", stdin=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    assert f"created super admin {name}" in out.stdout
    return name


def test_the_first_super_admin_comes_from_tallyctl(acc):
    name = _super_admin(acc)
    token = acc.login(name)
    me = acc.request("GET", "/me", token=token).json()
    assert me["is_super_admin"] is True and me["is_admin"] is True and me["verified"] is True
    # A weak password is refused there too
    bad = acc.tallyctl("user", "create", "--username", unique("w"), "--email",
                       "w@example.com", stdin="short\n")
    assert bad.returncode != 0 and "weak_password" in bad.stderr
    # And no HTTP route creates staff
    r = acc.post("/auth/register", {"username": unique("s"), "email": f"{unique('s')}@x.example",
                                    "password": PASSWORD, "is_super_admin": True})
    assert r.status_code == 201 and r.json()["is_super_admin"] is False


def test_admin_users_is_for_staff_and_hides_other_users_emails(acc):
    username, email, _, uid = acc.verified_user()
    token = acc.login(username)
    assert acc.request("GET", "/admin/users", token=token).status_code == 403
    root = acc.login(_super_admin(acc))
    page = acc.request("GET", "/admin/users?limit=2", token=root)
    assert page.status_code == 200, page.text
    body = page.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    seen, cursor = [], None
    while True:
        q = "/admin/users?limit=200" + (f"&cursor={cursor}" if cursor else "")
        body = acc.request("GET", q, token=root).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    ids = [u["id"] for u in seen]
    assert uid in ids and len(ids) == len(set(ids))
    target = next(u for u in seen if u["id"] == uid)
    assert "email" not in target
    assert email not in json.dumps(seen)
    assert acc.request("GET", "/admin/users?limit=0", token=root).status_code == 400
    assert acc.request("GET", "/admin/users?cursor=junk", token=root).status_code == 400


def test_admin_users_never_shows_a_webhook_url(acc):
    # A webhook URL is a secret (whoever has it can post to the endpoint):
    # staff lists show neither another user's nor their own
    username, _, _, uid = acc.verified_user()
    token = acc.login(username)
    hook = f"https://hooks.example.com/{unique('secret')}"
    r = acc.request("PATCH", "/me", {"settings": {"reminder_channel": "webhook",
                                                 "webhook_url": hook}}, token=token)
    assert r.status_code == 200 and r.json()["settings"]["webhook_url"] == hook
    root_name = _super_admin(acc)
    root = acc.login(root_name)
    r = acc.request("PATCH", "/me", {"settings": {"reminder_channel": "webhook",
                                                 "webhook_url": hook + "root"}}, token=root)
    assert r.status_code == 200, r.text
    seen, cursor = [], None
    while True:
        q = "/admin/users?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = acc.request("GET", q, token=root)
        assert page.status_code == 200, page.text
        assert hook not in page.text and "webhook_url" not in page.text
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    target = next(u for u in seen if u["id"] == uid)
    assert target["settings"]["reminder_channel"] == "webhook"
    granted = acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": True}, token=root)
    assert granted.status_code == 200 and "webhook_url" not in granted.text
    # The owner still reads it on /me
    assert acc.request("GET", "/me", token=token).json()["settings"]["webhook_url"] == hook


def test_only_a_super_admin_grants_and_revokes_admin(acc):
    username, _, _, uid = acc.verified_user()
    helper, _, _, helper_id = acc.verified_user()
    root = acc.login(_super_admin(acc))
    user_token = acc.login(username)
    grant = acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": True}, token=root)
    assert grant.status_code == 200 and grant.json()["is_admin"] is True
    # The role reaches the gateway at once: the new admin lists users...
    assert acc.request("GET", "/admin/users", token=user_token).status_code == 200
    # ...but cannot grant admin
    r = acc.request("PATCH", f"/admin/users/{helper_id}", {"is_admin": True}, token=user_token)
    assert r.status_code == 403
    assert acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": "yes"}, token=root) \
        .status_code == 400
    assert acc.request("PATCH", "/admin/users/not-a-uuid", {"is_admin": True}, token=root) \
        .status_code == 404
    revoke = acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": False}, token=root)
    assert revoke.status_code == 200 and revoke.json()["is_admin"] is False
    assert acc.request("GET", "/admin/users", token=user_token).status_code == 403


def test_session_check_is_not_reachable_over_http(acc):
    for path in ("/auth/session.check", "/session.check", "/auth/session"):
        assert acc.post(path, {"token": "A" * 43}).status_code in (404, 405)


def test_users_lookup_gives_services_many_users_with_settings_and_no_http_route(acc):
    from mesh_client import MeshClient
    (a_name, a_email, _, a_id), (b_name, b_email, _, b_id) = \
        acc.verified_user(), acc.verified_user()
    token = acc.login(b_name)
    r = acc.request("PATCH", "/me", {"settings": {"timezone": "Europe/Paris",
                                                 "reminder_time": "20:30"}}, token=token)
    assert r.status_code == 200, r.text
    gone = "0b7e6a2c-1f00-4b51-9a3e-7d1c2e3f4a5b"
    with MeshClient(acc.gw.mesh, peer="service:tracker") as mesh:
        reply = mesh.call("auth", "users.lookup",
                          body={"ids": [a_id, b_id, gone, "not-a-uuid", a_id]})
        assert reply["status"] == 200, reply
        items = {u["id"]: u for u in reply["body"]["items"]}
        assert sorted(items) == sorted([a_id, b_id])
        assert items[a_id]["username"] == a_name and items[a_id]["email"] == a_email
        assert items[b_id]["email"] == b_email
        assert items[b_id]["settings"]["timezone"] == "Europe/Paris"
        assert items[b_id]["settings"]["reminder_time"] == "20:30"
        assert set(items[a_id]["settings"]) >= {"timezone", "reminder_channel", "webhook_url",
                                               "reminder_time", "report_format", "play_sounds"}
        assert "password_hash" not in json.dumps(reply["body"])
        for bad in ({"ids": [a_id] * 501}, {"ids": "x"}, {}, {"ids": [1]}):
            assert mesh.call("auth", "users.lookup", body=bad)["status"] == 400, bad
        assert mesh.call("auth", "users.lookup", body={"ids": []})["body"] == {"items": []}
    for path in ("/users.lookup", "/auth/users.lookup", "/users/lookup"):
        assert acc.post(path, {"ids": [a_id]}, token=token).status_code in (404, 405)


def test_a_service_acting_for_a_user_sees_only_that_user(acc):
    # testsvc's relay calls auth on the caller's behalf (the gateway derives
    # the nested call's caller from the request in flight): a user may read
    # their own account, never another's, and never the services' lookup
    (a_name, _, _, a_id), (_, _, _, b_id) = acc.verified_user(), acc.verified_user()
    token = acc.login(a_name)

    def relay(to, uid):
        r = acc.request("GET", f"/test/relay?to={to}&id={uid}", token=token)
        assert r.status_code == 200, r.text
        return r.json()

    own = relay("auth:user.get", a_id)
    assert own["status"] == 200 and own["relayed"]["id"] == a_id
    other = relay("auth:user.get", b_id)
    assert other["status"] == 404 and "email" not in json.dumps(other["relayed"])
    lookup = relay("auth:users.lookup", a_id)
    assert lookup["status"] == 403 and "items" not in lookup["relayed"]
    check = relay("auth:session.check", a_id)
    assert check["status"] == 403
    assert acc.request("GET", "/test/relay?to=nonsense", token=token).status_code == 400


# ---------------------------------------------------------------------------
# Without verification (a private install)

def test_without_verification_a_new_account_logs_in_at_once(cluster):
    # Served behind TLS (the public URL is https): the cookie is Secure too
    gw = cluster.gateway(env={"TALLY_PROTO_BUILTIN": "1",
                              "TALLY_PUBLIC_URL": "https://tally.example"})
    tally.auth(cluster, [gw], env={"TALLY_REQUIRE_VERIFICATION": "false"}, workers=2)
    wait_instances(gw, 1, service="auth", timeout=60)
    name = unique("p")
    r = requests.post(gw.url + API + "/auth/register",
                      json={"username": name, "email": f"{name}@example.com",
                            "password": PASSWORD}, timeout=30)
    assert r.status_code == 201 and r.json()["verified"] is True
    login = requests.post(gw.url + API + "/auth/login",
                          json={"login": name, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200
    cookie = login.headers["Set-Cookie"]
    assert cookie.endswith("; Secure") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ---------------------------------------------------------------------------
# Sessions the gateways keep checked: what ends or changes a session reaches
# every gateway before it is answered (auth broadcasts auth.user.changed
# after its commit and waits for each gateway's acknowledgement)

WHOAMI = "/test/whoami"


def _warm(acc, token, gw):
    """Uses `token` on `gw` so that the gateway keeps it checked."""
    r = acc.request("GET", WHOAMI, token=token, gw=gw)
    assert r.status_code == 200, r.text
    return r.json()


def _cache_hits(gw):
    return tally.metric(gw, "tally_session_checks_total", {"from": "cache"})


def test_a_known_session_costs_no_auth_round_trip(acc):
    username, _, _, uid = acc.verified_user()
    token = acc.login(username)
    _warm(acc, token, acc.gw2)
    before = _cache_hits(acc.gw2)
    for _ in range(5):
        assert _warm(acc, token, acc.gw2)["user_id"] == uid
    assert _cache_hits(acc.gw2) >= before + 5


def test_a_logout_through_one_gateway_is_seen_by_the_other_every_time_under_load(acc):
    username, _, _, _ = acc.verified_user()
    bystander = acc.login(username)         # the same user's other session
    late = []                               # statuses of uses sent after a logout's answer

    def hammer(token, stop, logged_out_at, sink):
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        while not stop.is_set():
            sent = time.monotonic()
            r = session.get(acc.gw2.url + API + WHOAMI, headers=headers, timeout=30)
            if logged_out_at is None:
                assert r.status_code == 200, r.text
            elif logged_out_at and sent > logged_out_at[0]:
                sink.append(r.status_code)

    # Load on gateway b from the same user's other session throughout
    calm = threading.Event()
    bystanders = [threading.Thread(target=hammer, args=(bystander, calm, None, None))
                  for _ in range(2)]
    for t in bystanders:
        t.start()
    try:
        for _ in range(10):
            token = acc.login(username)
            _warm(acc, token, acc.gw2)
            done, logged_out_at, seen = threading.Event(), [], []
            users = [threading.Thread(target=hammer, args=(token, done, logged_out_at, seen))
                     for _ in range(2)]
            for t in users:
                t.start()
            time.sleep(0.05)
            out = acc.post("/auth/logout", token=token)          # through gateway a
            logged_out_at.append(time.monotonic())
            assert out.status_code == 200, out.text
            r = acc.request("GET", WHOAMI, token=token, gw=acc.gw2)
            assert r.status_code == 401, r.text
            time.sleep(0.05)
            done.set()
            for t in users:
                t.join()
            assert seen and set(seen) == {401}, seen
            late.extend(seen)
    finally:
        calm.set()
        for t in bystanders:
            t.join()
    assert len(late) >= 10
    # The other session of the user lived on throughout
    assert _warm(acc, bystander, acc.gw2)["caller"] == "user"


def test_password_change_reset_role_change_and_deletion_reach_every_gateway_at_once(acc):
    username, email, password, uid = acc.verified_user()
    keep = acc.login(username)
    other = acc.login(username)
    for gw in (acc.gw, acc.gw2):
        _warm(acc, keep, gw)
        _warm(acc, other, gw)

    # A password change through gateway a ends the other session on b too
    new = password + " two"
    r = acc.post("/me/password", {"current_password": password, "new_password": new},
                 token=keep)
    assert r.status_code == 200, r.text
    assert acc.request("GET", WHOAMI, token=other, gw=acc.gw2).status_code == 401
    assert _warm(acc, keep, acc.gw2)["user_id"] == uid

    # A staff role granted through a is a role on b at once, and taken back
    root = acc.login(_super_admin(acc))
    assert _warm(acc, keep, acc.gw2)["roles"] == []
    r = acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": True}, token=root)
    assert r.status_code == 200, r.text
    assert _warm(acc, keep, acc.gw2)["roles"] == ["admin"]
    assert acc.request("GET", "/admin/users?limit=1", token=keep, gw=acc.gw2).status_code == 200
    r = acc.request("PATCH", f"/admin/users/{uid}", {"is_admin": False}, token=root)
    assert r.status_code == 200, r.text
    assert _warm(acc, keep, acc.gw2)["roles"] == []
    assert acc.request("GET", "/admin/users?limit=1", token=keep, gw=acc.gw2).status_code == 403

    # A password reset ends every session, on every gateway
    assert acc.post("/auth/password-reset", {"email": email}).status_code == 202
    code = acc.code_from_mail(email, "reset")
    r = acc.post("/auth/password-reset/confirm", {"code": code, "new_password": password})
    assert r.status_code == 200, r.text
    for gw in (acc.gw, acc.gw2):
        assert acc.request("GET", WHOAMI, token=keep, gw=gw).status_code == 401

    # Deleting the account ends its sessions everywhere
    again = acc.login(username)
    for gw in (acc.gw, acc.gw2):
        _warm(acc, again, gw)
    r = acc.request("DELETE", "/me", {"password": password}, token=again, gw=acc.gw2)
    assert r.status_code == 200, r.text
    for gw in (acc.gw, acc.gw2):
        assert acc.request("GET", WHOAMI, token=again, gw=gw).status_code == 401


def test_the_caller_carries_time_zone_and_verified_and_settings_reach_the_gateways(acc):
    username, email, password, uid = acc.verified_user()
    token = acc.login(username)
    me = _warm(acc, token, acc.gw2)
    assert me["tz"] == "UTC" and me["verified"] is True
    r = acc.request("PATCH", "/me", {"settings": {"timezone": "Asia/Tokyo"}}, token=token)
    assert r.status_code == 200, r.text
    assert _warm(acc, token, acc.gw2)["tz"] == "Asia/Tokyo"

    # A new address is unverified until its link is followed: at once on b
    new_email = f"new.{email}"
    r = acc.request("PATCH", "/me", {"email": new_email, "current_password": password},
                    token=token)
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is False
    assert _warm(acc, token, acc.gw2)["verified"] is False
    code = acc.code_from_mail(new_email, "verify")
    assert acc.post("/auth/verify", {"code": code}).status_code == 200
    assert _warm(acc, token, acc.gw2)["verified"] is True


def test_a_session_check_answered_across_a_revocation_is_not_kept(acc):
    # The gateway drops what a broadcast makes stale even while checks are
    # in flight: many first uses of fresh sessions racing a logout of each.
    username, _, _, _ = acc.verified_user()
    for _ in range(5):
        token = acc.login(username)
        with ThreadPoolExecutor(8) as pool:
            uses = [pool.submit(acc.request, "GET", WHOAMI, token=token, gw=acc.gw2)
                    for _ in range(8)]
            out = acc.post("/auth/logout", token=token)
            assert out.status_code == 200
            for f in uses:
                assert f.result().status_code in (200, 401)
        assert acc.request("GET", WHOAMI, token=token, gw=acc.gw2).status_code == 401
