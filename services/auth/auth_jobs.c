//  auth_jobs.c — the auth service's durable jobs: mailing verification and
//  reset codes and email-change notices (through the mailer), telling
//  services that a user is gone, and purging what has expired. Each is enqueued inside the transaction
//  of the change that calls for it (tl_jobs.h: a transactional outbox).
#include "auth_service.h"
#include "auth_throttle.h"
#include "auth_token.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CALL_TIMEOUT_MS 10000

static const tl_db_statement_t s_statements [] = {
    { "job_user", "SELECT id, username, email, verified FROM users WHERE id = $1", 1 },
    { "job_user_by_email",
      "SELECT id, username, email, verified FROM users WHERE lower (email) = lower ($1)", 1 },
    { "code_insert",
      "INSERT INTO codes (code_hash, user_id, purpose, email, expires_at) "
      "VALUES (decode ($1, 'hex'), $2, $3, $4, now () + make_interval (mins => $5::int))", 5 },
    { "purge_sessions", "DELETE FROM sessions WHERE expires_at < now ()", 0 },
    { "purge_codes", "DELETE FROM codes WHERE expires_at < now ()", 0 },
};

int
auth_jobs_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Makes a code for the user of `user` (row 0: id, username, email), stores
//  its hash, and asks the mailer to send it with `template`, the link
//  `<public url><path>?code=<code>`. The mail's key names this job and
//  attempt: a retry after a rolled-back attempt mails the new code.
static int
s_mail_code (tl_job_ctx_t *job, const PGresult *user, const char *purpose, int minutes,
             const char *template, const char *path)
{
    char code [AUTH_TOKEN_TEXT_LEN + 1], hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    auth_token_new (code);
    auth_token_hash_hex (code, hex);
    char minutes_text [16];
    snprintf (minutes_text, sizeof minutes_text, "%d", minutes);
    const char *values [] = { hex, tl_db_value (user, 0, 0), purpose,
                              tl_db_value (user, 0, 2), minutes_text };
    long rc = tl_db_exec_count (tl_job_ctx_db (job), "code_insert", 5, values);
    if (rc < 0) {
        tl_job_ctx_error (job, "code not stored: %s", tl_db_errmsg (tl_job_ctx_db (job)));
        return (int) rc;
    }
    char key [128], link [TL_MAX_URL_LEN + 128];
    snprintf (key, sizeof key, "auth:%s:%lld:%d", purpose, (long long) tl_job_ctx_id (job),
              tl_job_ctx_attempt (job));
    snprintf (link, sizeof link, "%s%s?code=%s", auth_config.public_url, path, code);

    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    tl_mp_pack_kv (&pk, "key", key);
    tl_mp_pack_kv (&pk, "user_id", tl_db_value (user, 0, 0));
    tl_mp_pack_kv (&pk, "to", tl_db_value (user, 0, 2));
    tl_mp_pack_kv (&pk, "template", template);
    tl_mp_pack_str (&pk, "vars");
    msgpack_pack_map (&pk, 3);
    tl_mp_pack_kv (&pk, "username", tl_db_value (user, 0, 1));
    tl_mp_pack_kv (&pk, "link", link);
    tl_mp_pack_kv (&pk, "code", code);
    int result = tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                                      S_CALL_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    sodium_memzero (code, sizeof code);
    return result;
}

//  auth.mail_verify {user_id}: mails a verification code, unless the user
//  is gone or verified meanwhile.
static int
s_mail_verify (tl_job_ctx_t *job)
{
    char *user_id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "user_id"), 64);
    if (!user_id)
        return 0;                       //  nothing to do with a bad payload
    int err = 0;
    PGresult *user = tl_db_exec (tl_job_ctx_db (job), "job_user", 1,
                                 (const char *const *) &user_id, &err);
    free (user_id);
    if (!user) {
        tl_job_ctx_error (job, "user not read: %s", tl_strerror (err));
        return err;
    }
    int rc = 0;
    if (PQntuples (user) == 1 && !auth_col_true (user, 0, 3))
        rc = s_mail_code (job, user, "verify", AUTH_VERIFY_CODE_HOURS * 60,
                          "verify_email", "/verify");
    PQclear (user);
    return rc;
}

//  auth.mail_reset {email}: mails a reset code if an account has the
//  address and it is verified (a code sent to an address nobody proved
//  would hand the account to whoever owns it); otherwise does nothing (the
//  request was answered 202 anyway).
static int
s_mail_reset (tl_job_ctx_t *job)
{
    char *email = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "email"), TL_MAX_EMAIL_LEN);
    if (!email)
        return 0;
    int err = 0;
    PGresult *user = tl_db_exec (tl_job_ctx_db (job), "job_user_by_email", 1,
                                 (const char *const *) &email, &err);
    free (email);
    if (!user) {
        tl_job_ctx_error (job, "user not read: %s", tl_strerror (err));
        return err;
    }
    int rc = 0;
    if (PQntuples (user) == 1 && auth_col_true (user, 0, 3))
        rc = s_mail_code (job, user, "reset", AUTH_RESET_CODE_MINUTES,
                          "password_reset", "/reset");
    PQclear (user);
    return rc;
}

//  Asks the mailer to send template email_changed to `old_email` for the
//  user `user_id` (if still there), keyed by this job: a retry sends
//  nothing twice. Returns 0 or a negative code.
static int
s_mail_changed (tl_job_ctx_t *job, const char *user_id, const char *old_email,
                const char *new_email)
{
    int err = 0;
    PGresult *user = tl_db_exec (tl_job_ctx_db (job), "job_user", 1, &user_id, &err);
    if (!user) {
        tl_job_ctx_error (job, "user not read: %s", tl_strerror (err));
        return err;
    }
    char key [64], link [TL_MAX_URL_LEN + 2];
    snprintf (key, sizeof key, "auth:email_changed:%lld", (long long) tl_job_ctx_id (job));
    snprintf (link, sizeof link, "%s/", auth_config.public_url);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    tl_mp_pack_kv (&pk, "key", key);
    tl_mp_pack_kv (&pk, "to", old_email);
    tl_mp_pack_kv (&pk, "template", "email_changed");
    tl_mp_pack_str (&pk, "vars");
    msgpack_pack_map (&pk, 3);
    tl_mp_pack_kv (&pk, "username", PQntuples (user) == 1 ? tl_db_value (user, 0, 1) : "");
    tl_mp_pack_kv (&pk, "new_email", new_email);
    tl_mp_pack_kv (&pk, "link", link);
    int rc = PQntuples (user) != 1 ? 0
           : tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                                  S_CALL_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    PQclear (user);
    return rc;
}

//  auth.mail_email_changed {user_id, old_email, new_email}: tells the old
//  address that the account's email changed, so that its owner learns of
//  what a stolen session did. Nothing when the user is gone.
static int
s_mail_email_changed (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char *user_id = tl_mp_strdup (tl_mp_get (payload, "user_id"), 64);
    char *old_email = tl_mp_strdup (tl_mp_get (payload, "old_email"), TL_MAX_EMAIL_LEN);
    char *new_email = tl_mp_strdup (tl_mp_get (payload, "new_email"), TL_MAX_EMAIL_LEN);
    int rc = 0;
    if (user_id && old_email && new_email)      //  nothing to do with a bad payload
        rc = s_mail_changed (job, user_id, old_email, new_email);
    free (user_id);
    free (old_email);
    free (new_email);
    return rc;
}

//  auth.purge (hourly): expired sessions and codes, ended throttle windows.
static int
s_purge (tl_job_ctx_t *job)
{
    tl_db_t *db = tl_job_ctx_db (job);
    long sessions = tl_db_exec_count (db, "purge_sessions", 0, NULL);
    long codes = sessions < 0 ? sessions : tl_db_exec_count (db, "purge_codes", 0, NULL);
    int keys = codes < 0 ? (int) codes : auth_throttle_purge (db, AUTH_THROTTLE_WINDOW_SEC);
    if (keys < 0) {
        tl_job_ctx_error (job, "purge failed: %s", tl_db_errmsg (db));
        return keys;
    }
    if (sessions + codes + keys > 0)
        tl_log (TL_LOG_INFO, NULL, "purged %ld session(s), %ld code(s), %d throttle key(s)",
                sessions, codes, keys);
    return 0;
}

int
auth_jobs_register (tl_service_t *svc)
{
    int rc = tl_service_job (svc, "auth.mail_verify", s_mail_verify);
    rc = rc ? rc : tl_service_job (svc, "auth.mail_reset", s_mail_reset);
    rc = rc ? rc : tl_service_job (svc, "auth.mail_email_changed", s_mail_email_changed);
    rc = rc ? rc : tl_service_job (svc, "auth.purge", s_purge);
    rc = rc ? rc : tl_service_schedule (svc, "auth.purge", "auth.purge", "every 1h");
    return rc;
}
