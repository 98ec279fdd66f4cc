//  auth_accounts.c — accounts: register, verify, the caller's own account
//  (/me: read, settings, password, deletion) and staff administration.
#include "auth_password.h"
#include "auth_service.h"
#include "auth_throttle.h"
#include "auth_token.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  The columns user_update returns after the user's
#define S_COL_EMAIL_CHANGED     (AUTH_COL_PASSWORD_HASH + 1)
#define S_COL_OLD_EMAIL         (AUTH_COL_PASSWORD_HASH + 2)
#define S_COL_OLD_VERIFIED      (AUTH_COL_PASSWORD_HASH + 3)

static const tl_db_statement_t s_statements [] = {
    { "user_insert",
      "INSERT INTO users (username, email, password_hash, verified, is_admin, is_super_admin) "
      "VALUES ($1, $2, $3, $4::boolean, $5::boolean, $5::boolean) "
      "RETURNING " AUTH_USER_COLUMNS, 5 },
    { "user_taken",
      "SELECT coalesce (bool_or (lower (username) = lower ($1)), false), "
      "       coalesce (bool_or (lower (email) = lower ($2)), false) "
      "FROM users WHERE lower (username) = lower ($1) OR lower (email) = lower ($2)", 2 },
    { "user_get", "SELECT " AUTH_USER_COLUMNS " FROM users WHERE id = $1", 1 },
    //  $1 an array literal of checked UUIDs ({id,id,...})
    { "users_lookup", "SELECT " AUTH_USER_COLUMNS " FROM users WHERE id = ANY ($1::uuid[])", 1 },
    //  A verified account's id by its address (users.by_email)
    { "user_by_email",
      "SELECT id FROM users WHERE lower (email) = lower ($1) AND verified", 1 },
    { "verify_take",
      "DELETE FROM codes WHERE code_hash = decode ($1, 'hex') AND purpose = 'verify' "
      "RETURNING user_id, email, expires_at > now ()", 1 },
    //  A code verifies the address it was sent to, not a newer one
    { "verify_apply",
      "UPDATE users SET verified = true, updated_at = now () "
      "WHERE id = $1 AND lower (email) = lower ($2) RETURNING " AUTH_USER_COLUMNS, 2 },
    //  $1 id, $2 username, $3 email, $4 timezone, $5 play_sounds,
    //  $6 report_format, $7 reminder_channel, $8 webhook given, $9 webhook,
    //  $10 reminder_time, $11 verification required. NULL keeps a value.
    //  Returns the user, then S_COL_EMAIL_CHANGED, S_COL_OLD_EMAIL,
    //  S_COL_OLD_VERIFIED.
    { "user_update",
      "WITH old AS (SELECT id AS old_id, email AS old_email, verified AS old_verified "
      "             FROM users WHERE id = $1 FOR UPDATE) "
      "UPDATE users SET "
      "  username = coalesce ($2, username), "
      "  email = coalesce ($3, email), "
      "  verified = CASE WHEN $3::text IS NOT NULL AND lower ($3) <> lower (old_email) "
      "                  THEN NOT $11::boolean ELSE verified END, "
      "  timezone = coalesce ($4, timezone), "
      "  play_sounds = coalesce ($5::boolean, play_sounds), "
      "  report_format = coalesce ($6, report_format), "
      "  reminder_channel = coalesce ($7, reminder_channel), "
      "  webhook_url = CASE WHEN $8::boolean THEN $9 ELSE webhook_url END, "
      "  reminder_time = coalesce ($10, reminder_time), "
      "  updated_at = now () "
      "FROM old WHERE id = old_id "
      "RETURNING " AUTH_USER_COLUMNS ", lower (old_email) <> lower (email), "
      "          old_email, old_verified", 11 },
    { "account_codes_end", "DELETE FROM codes WHERE user_id = $1 AND purpose = $2", 2 },
    { "sessions_end_others",
      "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> decode ($2, 'hex')", 2 },
    { "password_set",
      "UPDATE users SET password_hash = $2, updated_at = now () WHERE id = $1", 2 },
    { "user_delete", "DELETE FROM users WHERE id = $1", 1 },
    //  Keyset pages in creation order; $1/$2 the last row of the page before
    { "users_page",
      "SELECT " AUTH_USER_COLUMNS ", "
      "       to_char (created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
      "FROM users WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid) "
      "ORDER BY created_at, id LIMIT $3::int", 3 },
    { "user_set_admin",
      "UPDATE users SET is_admin = $2::boolean OR is_super_admin, updated_at = now () "
      "WHERE id = $1 RETURNING " AUTH_USER_COLUMNS, 2 },
};

int
auth_accounts_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

static void
s_free_password (char *password)
{
    if (password) {
        memset (password, 0, strlen (password));
        free (password);
    }
}

//  Looks up whether `username` or `email` (either may be NULL) is taken,
//  ignoring case. Returns true when both are free; otherwise answers 409
//  naming the field that is taken (or the database error) and returns
//  false.
static bool
s_free (tl_call_t *call, const char *username, const char *email)
{
    const char *values [] = { username ? username : "", email ? email : "" };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "user_taken", 2, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return false;
    }
    bool name = auth_col_true (res, 0, 0), mail = auth_col_true (res, 0, 1);
    PQclear (res);
    if (name)
        tl_call_field_error (call, 409, "taken", "username", "is taken");
    else
    if (mail)
        tl_call_field_error (call, 409, "taken", "email", "is taken");
    return !name && !mail;
}

//  Answers 409 for a write that hit a unique index (a race with another
//  request: the lookup before it found both free).
static void
s_taken (tl_call_t *call, const char *username, const char *email)
{
    if (s_free (call, username, email))
        tl_call_field_error (call, 409, "taken", "email", "is taken");
}

//  ---------------------------------------------------------------------
//  Creating an account (POST /auth/register, and the operators' command)

typedef struct {
    const char *username, *email, *hash;
    bool verified, staff;
    PGresult *res;
} s_create_t;

static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_create_t *create = (s_create_t *) arg;
    const char *values [] = { create->username, create->email, create->hash,
                              create->verified ? "t" : "f", create->staff ? "t" : "f" };
    int err = 0;
    create->res = tl_db_exec (db, "user_insert", 5, values, &err);
    if (!create->res)
        return err;
    if (!create->verified) {
        const char *pairs [] = { "user_id", tl_db_value (create->res, 0, AUTH_COL_ID) };
        int rc = auth_enqueue (db, "auth.mail_verify", pairs, 1, NULL, 0);
        if (rc < 0) {
            PQclear (create->res);
            create->res = NULL;
            return rc;
        }
    }
    return 0;
}

//  Checks the fields of a new account. Returns true when they are
//  acceptable; otherwise answers 400 and returns false.
static bool
s_create_valid (tl_call_t *call, const char *username, const char *email,
                const char *password)
{
    if (!tl_valid_username (username))
        tl_call_field_error (call, 400, "invalid", "username",
                             "must be 3 to 32 letters, digits, '_', '.' or '-'");
    else
    if (!tl_valid_email (email))
        tl_call_field_error (call, 400, "invalid", "email", "must be an email address");
    else
        return auth_password_acceptable (call, "password", password);
    return false;
}

//  Hashes the password and inserts the user (and, when it is not verified
//  yet, the job that mails the code). Answers 201, 409 (a race), 503.
static void
s_create_insert (tl_call_t *call, const char *username, const char *email,
                 const char *password, bool verified, bool staff)
{
    char hash [AUTH_PASSWORD_HASH_LEN];
    if (auth_password_hash (password, hash) != 0) {
        tl_call_error_retry (call, 503, 1, "busy", "too many password checks at once: retry shortly");
        return;
    }
    s_create_t create = { username, email, hash, verified, staff, NULL };
    int rc = tl_db_tx (tl_call_db (call), s_create_tx, &create);
    if (rc == TL_EEXIST)
        s_taken (call, username, email);
    else
    if (rc)
        tl_call_db_error (call, rc);
    else {
        tl_call_header (call, "Location", "/api/v1/me");
        auth_pack_user (tl_call_reply (call, 201), create.res, 0, AUTH_SHOW_ALL);
    }
    PQclear (create.res);
}

//  Creates an account: checks the body, then (when `throttled`: a
//  registration over HTTP) counts it per address and email, then refuses
//  a taken name or address, all before the slow hash.
static void
s_create (tl_call_t *call, bool verified, bool staff, bool throttled)
{
    char *username = auth_body_text (call, "username", TL_USERNAME_MAX);
    char *email = auth_body_text (call, "email", TL_MAX_EMAIL_LEN);
    char *password = auth_body_text (call, "password", AUTH_PASSWORD_MAX * 4);
    if (s_create_valid (call, username, email, password)
    &&  (!throttled || auth_admit_costly (call, "register", email))
    &&  s_free (call, username, email))
        s_create_insert (call, username, email, password, verified, staff);
    free (username);
    free (email);
    s_free_password (password);
}

static void
s_register (tl_call_t *call)
{
    s_create (call, !auth_config.require_verification, false, true);
}

//  admin.user.create {username, email, password, super_admin}: operators
//  only (the mesh, never a user): `tallyctl user create --super-admin`.
static void
s_admin_user_create (tl_call_t *call)
{
    const msgpack_object *super = tl_mp_get (tl_call_body (call), "super_admin");
    s_create (call, true, super && super->type == MSGPACK_OBJECT_BOOLEAN && super->via.boolean,
              false);
}

//  ---------------------------------------------------------------------
//  POST /auth/verify {code}

typedef struct {
    const char *hex;
    PGresult *res;
} s_verify_t;

static int
s_verify_tx (tl_db_t *db, void *arg)
{
    s_verify_t *verify = (s_verify_t *) arg;
    int err = 0;
    PGresult *code = tl_db_exec (db, "verify_take", 1, &verify->hex, &err);
    if (!code)
        return err;
    if (PQntuples (code) == 1 && auth_col_true (code, 0, 2)) {
        const char *values [] = { tl_db_value (code, 0, 0), tl_db_value (code, 0, 1) };
        verify->res = tl_db_exec (db, "verify_apply", 2, values, &err);
    }
    PQclear (code);
    return verify->res || err == 0 ? 0 : err;
}

static void
s_verify (tl_call_t *call)
{
    char *code = auth_body_text (call, "code", 512);
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    bool valid = code && auth_token_hash_hex (code, hex) == 0;
    free (code);
    if (!valid) {
        tl_call_field_error (call, 400, "invalid_code", "code", "is invalid or has expired");
        return;
    }
    s_verify_t verify = { hex, NULL };
    int rc = tl_db_tx (tl_call_db (call), s_verify_tx, &verify);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (!verify.res || PQntuples (verify.res) != 1)
        tl_call_field_error (call, 400, "invalid_code", "code", "is invalid or has expired");
    else {
        auth_user_changed (call, tl_db_value (verify.res, 0, AUTH_COL_ID));     //  verified
        auth_pack_user (tl_call_reply (call, 200), verify.res, 0, AUTH_SHOW_ALL);
    }
    PQclear (verify.res);
}

//  ---------------------------------------------------------------------
//  GET /me, and user.get {id} for services (mesh)

//  Answers 200 with user `id` (email included), or 404.
static void
s_reply_user (tl_call_t *call, const char *id)
{
    PGresult *res = tl_call_exec_one (call, "user_get", 1, &id, "user");
    if (res)
        auth_pack_user (tl_call_reply (call, 200), res, 0, AUTH_SHOW_ALL);
    PQclear (res);
}

static void
s_me_get (tl_call_t *call)
{
    s_reply_user (call, tl_call_user (call));
}

//  user.get: a service asks on its own behalf, or on behalf of that user.
static void
s_user_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    char *body_id = id ? NULL : auth_body_text (call, "id", 64);
    id = id ? id : body_id;
    const char *caller = tl_call_user (call);
    if (!tl_valid_uuid (id) || (caller && strcmp (caller, id) != 0))
        tl_call_error (call, 404, "not_found", "no such user");
    else
        s_reply_user (call, id);
    free (body_id);
}

//  users.lookup {ids: [up to TL_LIST_LIMIT_MAX user ids]}: a service's own
//  jobs ask about many users at once (reminders, monthly reports). Never
//  on a user's behalf: a user does not ask about others (403). Answers 200
//  {items: [user with email and settings]} for the ids that exist, in no
//  given order; an id that is not a UUID matches no one.
static void
s_users_lookup (tl_call_t *call)
{
    const msgpack_object *ids = tl_mp_get (tl_call_body (call), "ids");
    if (!ids || ids->type != MSGPACK_OBJECT_ARRAY || ids->via.array.size > TL_LIST_LIMIT_MAX) {
        tl_call_field_error (call, 400, "invalid", "ids", "must be a list of at most 500 ids");
        return;
    }
    //  The array literal: {id,id,...}, UUIDs only (nothing to quote)
    char *literal = (char *) malloc (ids->via.array.size * 37 + 3);
    if (!literal) {
        tl_call_error (call, 503, "busy", "out of memory");
        return;
    }
    size_t used = 0;
    literal [used++] = '{';
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        const msgpack_object *id = &ids->via.array.ptr [i];
        if (id->type != MSGPACK_OBJECT_STR) {
            free (literal);
            tl_call_field_error (call, 400, "invalid", "ids", "must be a list of strings");
            return;
        }
        char text [37];
        if (id->via.str.size != 36)
            continue;
        memcpy (text, id->via.str.ptr, 36);
        text [36] = 0;
        if (!tl_valid_uuid (text))
            continue;
        if (used > 1)
            literal [used++] = ',';
        memcpy (literal + used, text, 36);
        used += 36;
    }
    literal [used++] = '}';
    literal [used] = 0;
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "users_lookup", 1,
                                (const char *const *) &literal, &err);
    free (literal);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) PQntuples (res));
    for (int row = 0; row < PQntuples (res); row++)
        auth_pack_user (pk, res, row, AUTH_SHOW_ALL);
    PQclear (res);
}

//  users.by_email {email}: a service's own jobs (the event service's
//  invites) ask which verified account has this address: {id}, or 404
//  when none (an unverified address is no one's yet).
static void
s_user_by_email (tl_call_t *call)
{
    char *email = NULL;
    if (!tl_call_text (call, NULL, "email", NULL, TL_MAX_EMAIL_LEN, &email, NULL))
        return;
    if (!email || !tl_valid_email (email)) {
        tl_call_field_error (call, 400, "invalid", "email", "must be an email address");
        free (email);
        return;
    }
    PGresult *res = tl_call_exec_one (call, "user_by_email", 1, (const char *const *) &email,
                                      "user");
    if (res) {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 1);
        tl_mp_pack_kv (pk, "id", tl_db_value (res, 0, 0));
    }
    PQclear (res);
    free (email);
}

//  ---------------------------------------------------------------------
//  The caller's password, asked before what a stolen session must not do

//  Reads user `id`'s row for a password check. Returns it, or NULL after
//  answering.
static PGresult *
s_user_row (tl_call_t *call, const char *id)
{
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "user_get", 1, &id, &err);
    if (!res)
        tl_call_db_error (call, err);
    else
    if (PQntuples (res) != 1) {
        tl_call_error (call, 401, "unauthenticated", "the account is gone");
        PQclear (res);
        res = NULL;
    }
    return res;
}

//  Checks the caller's password (throttled per user). Returns true when it
//  is right; otherwise it has answered (401 wrong, 429, 503).
static bool
s_own_password (tl_call_t *call, const PGresult *user, const char *field, const char *password)
{
    char key [80];
    snprintf (key, sizeof key, "user:%s", tl_call_user (call));
    const auth_guard_t guards [] = { { key, AUTH_GUARD_LOCK } };
    int rc = auth_password_try (call, guards, 1,
                                tl_db_value (user, 0, AUTH_COL_PASSWORD_HASH), password);
    if (rc == AUTH_PASSWORD_WRONG)
        tl_call_field_error (call, 401, "wrong_password", field, "is wrong");
    return rc == AUTH_PASSWORD_RIGHT;
}

//  ---------------------------------------------------------------------
//  PATCH /me {username?, email?, settings?{...}} (a new email needs
//  current_password: a stolen session cannot move the account away)

//  One settings field: its text (NULL: absent), checked.
typedef struct {
    char *username, *email;
    char *timezone, *report_format, *reminder_channel, *webhook_url, *reminder_time;
    const char *play_sounds;        //  "t", "f" or NULL
    bool webhook_given;
    PGresult *res;
} s_patch_t;

static void
s_patch_free (s_patch_t *patch)
{
    free (patch->username);
    free (patch->email);
    free (patch->timezone);
    free (patch->report_format);
    free (patch->reminder_channel);
    free (patch->webhook_url);
    free (patch->reminder_time);
    PQclear (patch->res);
}

//  Reads and checks the body. Returns false once it has answered 400.
static bool
s_patch_read (tl_call_t *call, s_patch_t *patch)
{
    const msgpack_object *body = tl_call_body_map (call);
    if (!body)
        return false;
    if (!tl_call_text (call, body, "username", NULL, TL_USERNAME_MAX + 1, &patch->username, NULL)
    ||  !tl_call_text (call, body, "email", NULL, TL_MAX_EMAIL_LEN + 1, &patch->email, NULL))
        return false;
    if (patch->username && !tl_valid_username (patch->username)) {
        tl_call_field_error (call, 400, "invalid", "username",
                             "must be 3 to 32 letters, digits, '_', '.' or '-'");
        return false;
    }
    if (patch->email && !tl_valid_email (patch->email)) {
        tl_call_field_error (call, 400, "invalid", "email", "must be an email address");
        return false;
    }
    const msgpack_object *settings = tl_mp_get (body, "settings");
    if (!settings || settings->type == MSGPACK_OBJECT_NIL)
        return true;
    if (settings->type != MSGPACK_OBJECT_MAP) {
        tl_call_field_error (call, 400, "invalid", "settings", "must be an object");
        return false;
    }
    if (!tl_call_text (call, settings, "timezone", "settings.timezone",
                       TL_MAX_TIMEZONE_LEN + 1, &patch->timezone, NULL)
    ||  !tl_call_text (call, settings, "report_format", "settings.report_format", 16,
                       &patch->report_format, NULL)
    ||  !tl_call_text (call, settings, "reminder_channel", "settings.reminder_channel", 16,
                       &patch->reminder_channel, NULL)
    ||  !tl_call_text (call, settings, "reminder_time", "settings.reminder_time", 16,
                       &patch->reminder_time, NULL))
        return false;
    if (patch->timezone && !tl_valid_timezone (patch->timezone)) {
        tl_call_field_error (call, 400, "invalid", "settings.timezone",
                             "must be an IANA time zone such as Europe/Paris");
        return false;
    }
    if (patch->report_format && strcmp (patch->report_format, "html") != 0
    &&  strcmp (patch->report_format, "pdf") != 0) {
        tl_call_field_error (call, 400, "invalid", "settings.report_format",
                             "must be html or pdf");
        return false;
    }
    if (patch->reminder_channel && strcmp (patch->reminder_channel, "email") != 0
    &&  strcmp (patch->reminder_channel, "webhook") != 0
    &&  strcmp (patch->reminder_channel, "none") != 0) {
        tl_call_field_error (call, 400, "invalid", "settings.reminder_channel",
                             "must be email, webhook or none");
        return false;
    }
    if (patch->reminder_time && !tl_valid_local_time (patch->reminder_time)) {
        tl_call_field_error (call, 400, "invalid", "settings.reminder_time",
                             "must be HH:MM, from 00:00 to 23:59");
        return false;
    }
    const msgpack_object *sounds = tl_mp_get (settings, "play_sounds");
    if (sounds && sounds->type != MSGPACK_OBJECT_NIL) {
        if (sounds->type != MSGPACK_OBJECT_BOOLEAN) {
            tl_call_field_error (call, 400, "invalid", "settings.play_sounds",
                                 "must be true or false");
            return false;
        }
        patch->play_sounds = sounds->via.boolean ? "t" : "f";
    }
    const msgpack_object *webhook = tl_mp_get (settings, "webhook_url");
    if (webhook) {
        patch->webhook_given = true;        //  null clears it
        if (webhook->type != MSGPACK_OBJECT_NIL) {
            patch->webhook_url = tl_mp_strdup (webhook, TL_MAX_URL_LEN);
            if (!tl_valid_http_url (patch->webhook_url)) {
                tl_call_field_error (call, 400, "invalid", "settings.webhook_url",
                                     "must be an http or https URL");
                return false;
            }
        }
    }
    return true;
}

//  The update, and for a new address the end of its old codes, the job
//  that mails a new one, and the job that tells the old address (when it
//  was verified: an address nobody proved may be someone else's), in one
//  transaction.
typedef struct {
    s_patch_t *patch;
    const char *const *values;
    const char *user;
} s_patch_run_t;

//  Enqueues the jobs a new email calls for (see above).
static int
s_patch_new_email (tl_db_t *db, const PGresult *res, const char *user)
{
    long rc = 0;
    if (auth_config.require_verification) {
        const char *codes [] = { user, "verify" };
        const char *pairs [] = { "user_id", user };
        rc = tl_db_exec_count (db, "account_codes_end", 2, codes);
        if (rc >= 0)
            rc = auth_enqueue (db, "auth.mail_verify", pairs, 1, NULL, 0);
    }
    if (rc >= 0 && auth_col_true (res, 0, S_COL_OLD_VERIFIED)) {
        const char *pairs [] = { "user_id", user,
                                 "old_email", tl_db_value (res, 0, S_COL_OLD_EMAIL),
                                 "new_email", tl_db_value (res, 0, AUTH_COL_EMAIL) };
        rc = auth_enqueue (db, "auth.mail_email_changed", pairs, 3, NULL, 0);
    }
    return rc < 0 ? (int) rc : 0;
}

static int
s_patch_tx (tl_db_t *db, void *arg)
{
    s_patch_run_t *run = (s_patch_run_t *) arg;
    int err = 0;
    PQclear (run->patch->res);
    run->patch->res = tl_db_exec (db, "user_update", 11, run->values, &err);
    if (!run->patch->res)
        return err;
    if (PQntuples (run->patch->res) == 1
    &&  auth_col_true (run->patch->res, 0, S_COL_EMAIL_CHANGED))
        return s_patch_new_email (db, run->patch->res, run->user);
    return 0;
}

//  A new email (not the same address in other letter case) needs the
//  caller's current_password. Returns true when the patch may go on;
//  otherwise it has answered (400 missing, 401 wrong, 429, 503).
static bool
s_patch_allowed (tl_call_t *call, const s_patch_t *patch)
{
    if (!patch->email)
        return true;
    PGresult *user = s_user_row (call, tl_call_user (call));
    if (!user)
        return false;
    bool allowed = strcasecmp (patch->email, tl_db_value (user, 0, AUTH_COL_EMAIL)) == 0;
    if (!allowed) {
        char *password = auth_body_text (call, "current_password", AUTH_PASSWORD_MAX * 4);
        if (!password)
            tl_call_field_error (call, 400, "invalid", "current_password",
                                 "is required to change the email");
        else
            allowed = s_own_password (call, user, "current_password", password);
        s_free_password (password);
    }
    PQclear (user);
    return allowed;
}

static void
s_me_update (tl_call_t *call)
{
    s_patch_t patch = { 0 };
    if (!s_patch_read (call, &patch) || !s_patch_allowed (call, &patch)) {
        s_patch_free (&patch);
        return;
    }
    const char *values [] = {
        tl_call_user (call), patch.username, patch.email, patch.timezone, patch.play_sounds,
        patch.report_format, patch.reminder_channel, patch.webhook_given ? "t" : "f",
        patch.webhook_url, patch.reminder_time,
        auth_config.require_verification ? "t" : "f"
    };
    s_patch_run_t run = { &patch, values, tl_call_user (call) };
    int rc = tl_db_tx (tl_call_db (call), s_patch_tx, &run);
    if (rc == TL_EEXIST)
        s_taken (call, patch.username, patch.email);
    else
    if (rc == TL_EINVAL)
        tl_call_field_error (call, 400, "invalid", "settings.webhook_url",
                             "is required for reminders by webhook");
    else
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (PQntuples (patch.res) != 1)
        tl_call_error (call, 404, "not_found", "no such user");
    else {
        auth_user_changed (call, tl_call_user (call));      //  time zone, verified
        auth_pack_user (tl_call_reply (call, 200), patch.res, 0, AUTH_SHOW_ALL);
    }
    s_patch_free (&patch);
}

//  ---------------------------------------------------------------------
//  POST /me/password {current_password, new_password} (credentials: the
//  session in use stays, every other one ends)

typedef struct {
    const char *user, *hash, *keep;
} s_password_t;

static int
s_password_tx (tl_db_t *db, void *arg)
{
    s_password_t *change = (s_password_t *) arg;
    const char *set [] = { change->user, change->hash };
    const char *end [] = { change->user, change->keep };
    long rc = tl_db_exec_count (db, "password_set", 2, set);
    if (rc >= 0)
        rc = tl_db_exec_count (db, "sessions_end_others", 2, end);
    return rc < 0 ? (int) rc : 0;
}

static void
s_me_password (tl_call_t *call)
{
    char *current = auth_body_text (call, "current_password", AUTH_PASSWORD_MAX * 4);
    char *next = auth_body_text (call, "new_password", AUTH_PASSWORD_MAX * 4);
    PGresult *user = NULL;
    if (!current) {
        tl_call_field_error (call, 400, "invalid", "current_password", "is required");
        goto done;
    }
    if (!auth_password_acceptable (call, "new_password", next))
        goto done;
    user = s_user_row (call, tl_call_user (call));
    if (!user || !s_own_password (call, user, "current_password", current))
        goto done;
    char hash [AUTH_PASSWORD_HASH_LEN];
    if (auth_password_hash (next, hash) != 0) {
        tl_call_error_retry (call, 503, 1, "busy", "too many password checks at once: retry shortly");
        goto done;
    }
    char keep [AUTH_TOKEN_HASH_BYTES * 2 + 1] = "00";
    const char *token = tl_call_param (call, "session_token");
    if (token && *token)
        auth_token_hash_hex (token, keep);
    s_password_t change = { tl_call_user (call), hash, keep };
    int rc = tl_db_tx (tl_call_db (call), s_password_tx, &change);
    if (rc)
        tl_call_db_error (call, rc);
    else {
        auth_user_changed (call, tl_call_user (call));      //  other sessions ended
        msgpack_pack_map (tl_call_reply (call, 200), 0);
    }
done:
    PQclear (user);
    s_free_password (current);
    s_free_password (next);
}

//  ---------------------------------------------------------------------
//  DELETE /me {password}: the user goes, and every service holding data
//  of theirs is told by the durable event auth.user.deleted (tl_event.h),
//  published in the same transaction.

static int
s_delete_tx (tl_db_t *db, void *arg)
{
    const char *user = (const char *) arg;
    long rc = tl_db_exec_count (db, "user_delete", 1, &user);
    if (rc < 0)
        return (int) rc;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "user_id", user }, 1);
    rc = tl_event_publish (db, "auth.user.deleted", user, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    return rc < 0 ? (int) rc : 0;
}

static void
s_me_delete (tl_call_t *call)
{
    char *password = auth_body_text (call, "password", AUTH_PASSWORD_MAX * 4);
    PGresult *user = NULL;
    if (!password) {
        tl_call_field_error (call, 400, "invalid", "password", "is required");
        goto done;
    }
    user = s_user_row (call, tl_call_user (call));
    if (!user || !s_own_password (call, user, "password", password))
        goto done;
    int rc = tl_db_tx (tl_call_db (call), s_delete_tx, (void *) tl_call_user (call));
    if (rc)
        tl_call_db_error (call, rc);
    else {
        tl_log (TL_LOG_INFO, tl_call_trace (call), "user %s deleted", tl_call_user (call));
        auth_user_changed (call, tl_call_user (call));
        auth_session_cookie (call, NULL);
        msgpack_pack_map (tl_call_reply (call, 200), 0);
    }
done:
    PQclear (user);
    s_free_password (password);
}

//  ---------------------------------------------------------------------
//  Staff: GET /admin/users, PATCH /admin/users/{id} {is_admin}

static bool
s_is_staff (tl_call_t *call)
{
    return tl_call_has_role (call, "admin") || tl_call_has_role (call, "super_admin");
}

//  Lists users in creation order. Other users' emails are not shown: staff
//  see who has an account, not how to reach them; nor is any webhook URL
//  (a secret: whoever has it can post to the user's endpoint).
static void
s_admin_users_list (tl_call_t *call)
{
    if (!s_is_staff (call)) {
        tl_call_error (call, 403, "forbidden", "staff only");
        return;
    }
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *values [] = { page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, "users_page", 3, values);
    if (!res)
        return;
    const char *self = tl_call_user (call);
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++) {
        bool own = self && strcmp (self, tl_db_value (res, row, AUTH_COL_ID)) == 0;
        auth_pack_user (pk, res, row, own ? AUTH_SHOW_EMAIL : 0);
    }
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, AUTH_COL_PASSWORD_HASH + 1),
                         tl_db_value (res, rows - 1, AUTH_COL_ID));
    PQclear (res);
}

static void
s_admin_users_update (tl_call_t *call)
{
    if (!tl_call_has_role (call, "super_admin")) {
        tl_call_error (call, 403, "forbidden", "only a super admin grants or revokes admin");
        return;
    }
    const char *id = tl_call_param (call, "id");
    const msgpack_object *admin = tl_mp_get (tl_call_body (call), "is_admin");
    if (!admin || admin->type != MSGPACK_OBJECT_BOOLEAN) {
        tl_call_field_error (call, 400, "invalid", "is_admin", "must be true or false");
        return;
    }
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such user");
        return;
    }
    const char *values [] = { id, admin->via.boolean ? "t" : "f" };
    PGresult *res = tl_call_exec_one (call, "user_set_admin", 2, values, "user");
    if (res) {
        tl_log (TL_LOG_INFO, tl_call_trace (call), "user %s is_admin=%s by %s", id,
                values [1], tl_call_user (call));
        auth_user_changed (call, id);                       //  roles
        bool own = strcmp (id, tl_call_user (call)) == 0;
        auth_pack_user (tl_call_reply (call, 200), res, 0, own ? AUTH_SHOW_EMAIL : 0);
    }
    PQclear (res);
}

int
auth_accounts_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "register", s_register);
    rc = rc ? rc : tl_service_on (svc, "verify", s_verify);
    rc = rc ? rc : tl_service_on (svc, "me.get", s_me_get);
    rc = rc ? rc : tl_service_on (svc, "me.update", s_me_update);
    rc = rc ? rc : tl_service_on (svc, "me.password", s_me_password);
    rc = rc ? rc : tl_service_on (svc, "me.delete", s_me_delete);
    rc = rc ? rc : tl_service_on (svc, "admin.users.list", s_admin_users_list);
    rc = rc ? rc : tl_service_on (svc, "admin.users.update", s_admin_users_update);
    rc = rc ? rc : tl_service_on (svc, "admin.user.create", s_admin_user_create);
    rc = rc ? rc : tl_service_on (svc, "user.get", s_user_get);
    rc = rc ? rc : tl_service_on (svc, "users.lookup", s_users_lookup);
    rc = rc ? rc : tl_service_on (svc, "users.by_email", s_user_by_email);
    return rc;
}
