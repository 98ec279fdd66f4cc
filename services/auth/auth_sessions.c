//  auth_sessions.c — logging in and out, the gateway's session check, and
//  password reset by mail. Passwords are checked under the failure
//  throttle (auth_throttle.h) and the hash bound (auth_password.h).
#include "auth_password.h"
#include "auth_service.h"
#include "auth_throttle.h"
#include "auth_token.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "user_by_login",
      "SELECT " AUTH_USER_COLUMNS " FROM users "
      "WHERE lower (username) = lower ($1) OR lower (email) = lower ($1) LIMIT 1", 1 },
    { "user_rehash", "UPDATE users SET password_hash = $2 WHERE id = $1", 2 },
    { "session_insert",
      "INSERT INTO sessions (token_hash, user_id, expires_at) "
      "VALUES (decode ($1, 'hex'), $2, now () + make_interval (days => $3::int))", 3 },
    //  A user's sessions beyond the newest $2 end
    { "session_trim",
      "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
      "WHERE user_id = $1 ORDER BY created_at DESC OFFSET $2::int)", 2 },
    //  The check and its sliding expiry in one statement: the session's
    //  use is written at most once every $2 seconds, extending it by $3
    //  days, by whichever check gets the row first (the others skip it:
    //  a burst of checks of one token never queues on its row lock).
    { "session_check",
      "WITH s AS ("
      "  SELECT s.user_id, u.is_admin, u.is_super_admin, u.timezone, u.verified, "
      "         s.expires_at "
      "  FROM sessions s JOIN users u ON u.id = s.user_id "
      "  WHERE s.token_hash = decode ($1, 'hex') AND s.expires_at > now ()), "
      "touched AS ("
      "  UPDATE sessions SET last_used_at = now (), "
      "         expires_at = now () + make_interval (days => $3::int) "
      "  WHERE token_hash IN (SELECT token_hash FROM sessions "
      "                       WHERE token_hash = decode ($1, 'hex') AND expires_at > now () "
      "                       AND last_used_at < now () - make_interval (secs => $2::int) "
      "                       FOR UPDATE SKIP LOCKED) "
      "  RETURNING expires_at) "
      "SELECT user_id, is_admin, is_super_admin, timezone, verified, "
      "       floor (extract (epoch FROM coalesce ((SELECT expires_at FROM touched), expires_at) "
      "                                - now ()) * 1000)::bigint "
      "FROM s", 3 },
    { "session_delete",
      "DELETE FROM sessions WHERE token_hash = decode ($1, 'hex') RETURNING user_id", 1 },
    { "code_peek",
      "SELECT user_id FROM codes WHERE code_hash = decode ($1, 'hex') "
      "AND purpose = $2 AND expires_at > now ()", 2 },
    { "code_take",
      "DELETE FROM codes WHERE code_hash = decode ($1, 'hex') AND purpose = $2 "
      "RETURNING user_id, email, expires_at > now ()", 2 },
    //  A reset proves the mailbox: the address it went to is verified
    { "reset_apply",
      "UPDATE users SET password_hash = $2, updated_at = now (), "
      "       verified = verified OR lower (email) = lower ($3) "
      "WHERE id = $1", 3 },
    { "sessions_end_all", "DELETE FROM sessions WHERE user_id = $1", 1 },
    { "codes_end", "DELETE FROM codes WHERE user_id = $1 AND purpose = $2", 2 },
};

int
auth_sessions_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  Shared with auth_accounts.c

//  The seconds `guard` makes its key wait before it may try, 0 when it may
//  now, or a negative code.
static int
s_guard_wait (tl_db_t *db, const auth_guard_t *guard)
{
    if (guard->rule == AUTH_GUARD_BACKOFF)
        return auth_throttle_backoff (db, guard->key, AUTH_BACKOFF_AFTER,
                                      AUTH_BACKOFF_MAX_SEC, AUTH_THROTTLE_WINDOW_SEC);
    int limit = guard->rule == AUTH_GUARD_ADDRESS ? AUTH_THROTTLE_IP_FAILURES
                                                  : AUTH_THROTTLE_FAILURES;
    return auth_throttle_check (db, guard->key, limit, AUTH_THROTTLE_WINDOW_SEC);
}

//  Records the outcome of a password check against every guard: a failure
//  counts everywhere; a success clears all but addresses. Returns 0 or a
//  negative code.
static int
s_guards_record (tl_db_t *db, const auth_guard_t *guards, int nguards, bool right)
{
    for (int i = 0; i < nguards; i++) {
        int rc = 0;
        if (!right)
            rc = auth_throttle_fail (db, guards [i].key, AUTH_THROTTLE_WINDOW_SEC);
        else
        if (guards [i].rule != AUTH_GUARD_ADDRESS)
            rc = auth_throttle_clear (db, guards [i].key);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
auth_password_try (tl_call_t *call, const auth_guard_t *guards, int nguards,
                   const char *stored, const char *password)
{
    tl_db_t *db = tl_call_db (call);
    for (int i = 0; i < nguards; i++) {
        int wait = s_guard_wait (db, &guards [i]);
        if (wait < 0) {
            tl_call_db_error (call, wait);
            return wait;
        }
        if (wait > 0) {
            auth_refuse (call, wait);
            return TL_EBUSY;
        }
    }
    int rc = auth_password_verify (stored, password);
    if (rc == TL_EBUSY) {
        tl_call_error_retry (call, 503, 1, "busy", "too many password checks at once: retry shortly");
        return rc;
    }
    int err = s_guards_record (db, guards, nguards, rc == 1);
    if (err < 0) {
        tl_call_db_error (call, err);
        return err;
    }
    return rc == 1 ? AUTH_PASSWORD_RIGHT : AUTH_PASSWORD_WRONG;
}

int
auth_session_create (tl_call_t *call, const char *user_id, char token [AUTH_TOKEN_TEXT_LEN + 1])
{
    tl_db_t *db = tl_call_db (call);
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    auth_token_new (token);
    auth_token_hash_hex (token, hex);
    char days [16], keep [16];
    snprintf (days, sizeof days, "%d", AUTH_SESSION_IDLE_DAYS);
    snprintf (keep, sizeof keep, "%d", AUTH_MAX_SESSIONS_PER_USER);
    const char *values [] = { hex, user_id, days };
    long rc = tl_db_exec_count (db, "session_insert", 3, values);
    if (rc >= 0) {
        const char *trim [] = { user_id, keep };
        rc = tl_db_exec_count (db, "session_trim", 2, trim);
        if (rc > 0)
            auth_user_changed (call, user_id);
    }
    return rc < 0 ? (int) rc : 0;
}

void
auth_user_changed (tl_call_t *call, const char *user_id)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "user_id", user_id }, 1);
    int rc = body.data ? tl_call_broadcast (call, AUTH_TOPIC_USER_CHANGED, body.data, body.size)
                       : TL_ENOMEM;
    msgpack_sbuffer_destroy (&body);
    if (rc)
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "gateways not told of user %s: %s",
                user_id, tl_strerror (rc));
}

void
auth_session_cookie (tl_call_t *call, const char *token)
{
    char cookie [160];
    if (token)
        snprintf (cookie, sizeof cookie, "tally_session=%s; Path=/; Max-Age=%d; "
                  "HttpOnly; SameSite=Lax", token, AUTH_SESSION_IDLE_DAYS * 86400);
    else
        snprintf (cookie, sizeof cookie, "tally_session=; Path=/; Max-Age=0; "
                  "HttpOnly; SameSite=Lax");
    tl_call_header (call, "Set-Cookie", cookie);
}

//  ---------------------------------------------------------------------
//  POST /auth/login {login, password}

//  The throttle keys of a login: the account (its id, or the login typed
//  for an unknown one) from this address, locked after a few failures;
//  the address on any account; and the account from every address,
//  slowed down rather than locked, so that nobody can lock a user out.
typedef struct {
    char pair [AUTH_THROTTLE_MAX_KEY + 1];
    char address [AUTH_THROTTLE_MAX_KEY + 1];
    char account [AUTH_THROTTLE_MAX_KEY + 1];
} s_login_keys_t;

static void
s_login_keys (tl_call_t *call, const char *account, s_login_keys_t *keys)
{
    char address [AUTH_ADDRESS_LEN], pair [AUTH_THROTTLE_MAX_KEY + 1];
    auth_client_address (call, address);
    //  The address first: a long typed login cannot push it out of the key
    snprintf (pair, sizeof pair, "%s %.240s", address, account);
    auth_throttle_key (keys->pair, "login:", pair);
    auth_throttle_key (keys->address, "ip:", address);
    auth_throttle_key (keys->account, "account:", account);
}

static void
s_login (tl_call_t *call)
{
    char *login = auth_body_text (call, "login", TL_MAX_EMAIL_LEN);
    char *password = auth_body_text (call, "password", AUTH_PASSWORD_MAX * 4);
    if (!login || !*login)
        tl_call_field_error (call, 400, "invalid", "login",
                             "is required: a user name or an email address");
    else
    if (!password)
        tl_call_field_error (call, 400, "invalid", "password", "is required");
    if (!login || !*login || !password) {
        free (login);
        free (password);
        return;
    }
    tl_db_t *db = tl_call_db (call);
    int err = 0;
    PGresult *res = tl_db_exec (db, "user_by_login", 1, (const char *const *) &login, &err);
    if (!res) {
        tl_call_db_error (call, err);
        goto done;
    }
    bool found = PQntuples (res) == 1;
    s_login_keys_t keys;
    s_login_keys (call, found ? tl_db_value (res, 0, AUTH_COL_ID) : login, &keys);
    const auth_guard_t guards [] = {
        { keys.pair, AUTH_GUARD_LOCK },
        { keys.address, AUTH_GUARD_ADDRESS },
        { keys.account, AUTH_GUARD_BACKOFF }
    };
    int rc = auth_password_try (call, guards, 3,
                                found ? tl_db_value (res, 0, AUTH_COL_PASSWORD_HASH) : NULL,
                                password);
    if (rc < 0)
        goto done;
    if (rc == AUTH_PASSWORD_WRONG) {
        tl_call_error (call, 401, "invalid_credentials", "wrong login or password");
        goto done;
    }
    if (auth_config.require_verification && !auth_col_true (res, 0, AUTH_COL_VERIFIED)) {
        tl_call_error (call, 403, "unverified",
                       "verify your email address first: the link is in the mail we sent");
        goto done;
    }
    const char *user_id = tl_db_value (res, 0, AUTH_COL_ID);
    if (auth_password_needs_rehash (tl_db_value (res, 0, AUTH_COL_PASSWORD_HASH))) {
        char hash [AUTH_PASSWORD_HASH_LEN];
        if (auth_password_hash (password, hash) == 0) {
            const char *values [] = { user_id, hash };
            if (tl_db_exec_count (db, "user_rehash", 2, values) < 0)
                tl_log (TL_LOG_WARN, tl_call_trace (call), "rehash not stored");
        }
    }
    char token [AUTH_TOKEN_TEXT_LEN + 1];
    rc = auth_session_create (call, user_id, token);
    if (rc) {
        tl_call_db_error (call, rc);
        goto done;
    }
    auth_session_cookie (call, token);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "token", token);
    tl_mp_pack_str (pk, "user");
    auth_pack_user (pk, res, 0, AUTH_SHOW_ALL);
done:
    PQclear (res);
    free (login);
    if (password) {
        memset (password, 0, strlen (password));
        free (password);
    }
}

//  ---------------------------------------------------------------------
//  POST /auth/logout (credentials: the session to end)

static void
s_logout (tl_call_t *call)
{
    const char *token = tl_call_param (call, "session_token");
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    if (!token || auth_token_hash_hex (token, hex) != 0) {
        tl_call_error (call, 401, "unauthenticated", "not logged in");
        return;
    }
    const char *values [] = { hex };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "session_delete", 1, values, &err);
    if (!res)
        tl_call_db_error (call, err);
    else
    if (PQntuples (res) == 0)
        tl_call_error (call, 401, "unauthenticated", "not logged in");
    else {
        auth_user_changed (call, tl_db_value (res, 0, 0));
        auth_session_cookie (call, NULL);
        msgpack_pack_map (tl_call_reply (call, 200), 0);
    }
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  session.check {token} → {user_id, tz, verified, expires_in_ms, roles}:
//  the gateway's question,
//  asked on every protected request (mesh only, never for a user).

static void
s_session_check (tl_call_t *call)
{
    char *token = auth_body_text (call, "token", 512);
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    bool valid = token && auth_token_hash_hex (token, hex) == 0;
    free (token);
    if (!valid) {
        tl_call_error (call, 401, "unauthenticated", "no such session");
        return;
    }
    char touch [16], days [16];
    snprintf (touch, sizeof touch, "%d", AUTH_SESSION_TOUCH_SEC);
    snprintf (days, sizeof days, "%d", AUTH_SESSION_IDLE_DAYS);
    const char *values [] = { hex, touch, days };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "session_check", 3, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    if (PQntuples (res) != 1) {
        PQclear (res);
        tl_call_error (call, 401, "unauthenticated", "no such session");
        return;
    }
    bool admin = auth_col_true (res, 0, 1), super = auth_col_true (res, 0, 2);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 5);
    tl_mp_pack_kv (pk, "user_id", tl_db_value (res, 0, 0));
    tl_mp_pack_kv (pk, "tz", tl_db_value (res, 0, 3));
    tl_mp_pack_str (pk, "verified");
    if (auth_col_true (res, 0, 4)) msgpack_pack_true (pk); else msgpack_pack_false (pk);
    tl_mp_pack_str (pk, "expires_in_ms");
    msgpack_pack_int64 (pk, strtoll (tl_db_value (res, 0, 5), NULL, 10));
    tl_mp_pack_str (pk, "roles");
    msgpack_pack_array (pk, (size_t) admin + (size_t) super);
    if (admin)
        tl_mp_pack_str (pk, "admin");
    if (super)
        tl_mp_pack_str (pk, "super_admin");
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  POST /auth/password-reset {email}: 202 whatever the address, after the
//  same work (one job enqueued); the job finds the account, if any.

static void
s_password_reset (tl_call_t *call)
{
    char *email = auth_body_text (call, "email", TL_MAX_EMAIL_LEN);
    if (!email || !*email) {
        free (email);
        tl_call_field_error (call, 400, "invalid", "email", "is required");
        return;
    }
    if (!auth_admit_costly (call, "reset", email)) {
        free (email);
        return;
    }
    const char *pairs [] = { "email", email };
    int rc = auth_enqueue (tl_call_db (call), "auth.mail_reset", pairs, 1, NULL, 0);
    free (email);
    if (rc < 0) {
        tl_call_db_error (call, rc);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 202);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_kv (pk, "message", "if an account has this address, a reset link is on its way");
}

//  ---------------------------------------------------------------------
//  POST /auth/password-reset/confirm {code, new_password}

typedef struct {
    tl_call_t *call;
    const char *hex;
    const char *hash;
    bool applied;
} s_reset_t;

static int
s_reset_tx (tl_db_t *db, void *arg)
{
    s_reset_t *reset = (s_reset_t *) arg;
    const char *values [] = { reset->hex, "reset" };
    int err = 0;
    PGresult *res = tl_db_exec (db, "code_take", 2, values, &err);
    if (!res)
        return err;
    if (PQntuples (res) != 1 || !auth_col_true (res, 0, 2)) {
        PQclear (res);
        return 0;               //  used or expired: nothing changes
    }
    const char *user_id = tl_db_value (res, 0, 0);
    const char *apply [] = { user_id, reset->hash, tl_db_value (res, 0, 1) };
    const char *one [] = { user_id };
    const char *codes [] = { user_id, "reset" };
    long rc = tl_db_exec_count (db, "reset_apply", 3, apply);
    if (rc >= 0)
        rc = tl_db_exec_count (db, "sessions_end_all", 1, one);
    if (rc >= 0)
        rc = tl_db_exec_count (db, "codes_end", 2, codes);
    if (rc >= 0)
        auth_user_changed (reset->call, user_id);      //  every session ended
    PQclear (res);
    reset->applied = rc >= 0;
    return rc < 0 ? (int) rc : 0;
}

static void
s_password_reset_confirm (tl_call_t *call)
{
    char *code = auth_body_text (call, "code", 512);
    char *password = auth_body_text (call, "new_password", AUTH_PASSWORD_MAX * 4);
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    if (!code || auth_token_hash_hex (code, hex) != 0) {
        tl_call_field_error (call, 400, "invalid_code", "code", "is invalid or has expired");
        goto done;
    }
    if (!auth_password_acceptable (call, "new_password", password))
        goto done;
    //  A code that cannot work costs no hash
    const char *values [] = { hex, "reset" };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "code_peek", 2, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        goto done;
    }
    bool live = PQntuples (res) == 1;
    PQclear (res);
    if (!live) {
        tl_call_field_error (call, 400, "invalid_code", "code", "is invalid or has expired");
        goto done;
    }
    char hash [AUTH_PASSWORD_HASH_LEN];
    int rc = auth_password_hash (password, hash);
    if (rc) {
        tl_call_error_retry (call, 503, 1, "busy", "too many password checks at once: retry shortly");
        goto done;
    }
    s_reset_t reset = { call, hex, hash, false };
    rc = tl_db_tx (tl_call_db (call), s_reset_tx, &reset);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (!reset.applied)
        tl_call_field_error (call, 400, "invalid_code", "code", "is invalid or has expired");
    else
        msgpack_pack_map (tl_call_reply (call, 200), 0);
done:
    free (code);
    if (password) {
        memset (password, 0, strlen (password));
        free (password);
    }
}

int
auth_sessions_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "login", s_login);
    rc = rc ? rc : tl_service_on (svc, "logout", s_logout);
    rc = rc ? rc : tl_service_on (svc, "session.check", s_session_check);
    rc = rc ? rc : tl_service_on (svc, "password_reset", s_password_reset);
    rc = rc ? rc : tl_service_on (svc, "password_reset.confirm", s_password_reset_confirm);
    return rc;
}
