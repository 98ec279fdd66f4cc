//  mailer_outbox.c — the mailer's methods and jobs over its outbox table.
#include "mailer_outbox.h"
#include "mail_mime.h"
#include "mail_smtp.h"
#include "mail_spool.h"
#include "mail_template.h"
#include "mail_webhook.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_json.h"
#include "mail_limits.h"
#include "tl_log.h"
#include "tl_valid.h"
#include "tl_mp.h"

#include <czmq.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DELIVERY_ATTEMPTS 25      //  back-off capped at 1 h: about a day

//  Configuration, read once before any thread starts, then read-only.
static char *s_smtp_url;            //  NULL: write .eml files to s_spool_dir
static char s_from_address [MAIL_MAX_ADDRESS_LEN + 1];
static char s_from_name [MAIL_MAX_DISPLAY_NAME_LEN + 1];
static char s_spool_dir [1024];
static int s_webhook_flags;

//  Parses "Name <address>" or "address".
static int
s_parse_from (const char *text)
{
    const char *open = strchr (text, '<');
    const char *close = open ? strchr (open, '>') : NULL;
    if (open && close) {
        size_t name_len = (size_t) (open - text);
        while (name_len && text [name_len - 1] == ' ')
            name_len--;
        size_t addr_len = (size_t) (close - open - 1);
        if (name_len >= sizeof s_from_name || addr_len >= sizeof s_from_address)
            return TL_ECONFIG;
        memcpy (s_from_name, text, name_len);
        s_from_name [name_len] = 0;
        memcpy (s_from_address, open + 1, addr_len);
        s_from_address [addr_len] = 0;
    }
    else
    if (strlen (text) < sizeof s_from_address)
        strcpy (s_from_address, text);
    else
        return TL_ECONFIG;
    return tl_valid_email (s_from_address) ? 0 : TL_ECONFIG;
}

static const tl_db_statement_t s_statements [] = {
    { "outbox_insert",
      "INSERT INTO outbox (id, idem_key, kind, recipients, sender, subject, message, user_id) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idem_key) DO NOTHING RETURNING id", 8 },
    { "outbox_by_key",
      "SELECT id, status FROM outbox WHERE idem_key = $1", 1 },
    { "outbox_get",
      "SELECT id, kind, recipients, sender, message, status, last_error, "
      "to_char (created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
      "to_char (sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM outbox WHERE id = $1", 1 },
    { "outbox_sent",
      "UPDATE outbox SET status = 'sent', sent_at = now (), last_error = NULL "
      "WHERE id = $1 AND status = 'pending'", 1 },
    { "outbox_failed",
      "UPDATE outbox SET status = 'failed', last_error = $2 "
      "WHERE id = $1 AND status = 'pending'", 2 },
};

int
mailer_outbox_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  Queueing

typedef struct {
    const char *id;
    const char *key;
    const char *kind;               //  "mail" or "webhook"
    const char *recipients;
    const char *subject;
    const char *message;
    size_t size;
    const char *user_id;            //  the user it is for, or NULL
    //  Result
    char found_id [37];
    char found_status [16];
    bool duplicate;
} s_queue_t;

//  Stores the message and enqueues its delivery, in one transaction.
static int
s_queue_tx (tl_db_t *db, void *arg)
{
    s_queue_t *q = (s_queue_t *) arg;
    char size_text [24];
    snprintf (size_text, sizeof size_text, "%zu", q->size);
    const char *values [] = { q->id, q->key, q->kind, q->recipients,
                              s_from_address, q->subject, q->message, q->user_id };
    const int lengths [] = { 0, 0, 0, 0, 0, 0, (int) q->size, 0 };
    const int formats [] = { 0, 0, 0, 0, 0, 0, 1, 0 };
    int err = 0;
    PGresult *res = tl_db_exec_bin (db, "outbox_insert", 8, values, lengths, formats, &err);
    if (!res)
        return err;
    bool inserted = PQntuples (res) == 1;
    PQclear (res);
    if (!inserted) {
        //  The key was used before: that message stands, this one is dropped.
        const char *key [] = { q->key };
        res = tl_db_exec (db, "outbox_by_key", 1, key, &err);
        if (!res)
            return err;
        if (PQntuples (res) == 1) {
            snprintf (q->found_id, sizeof q->found_id, "%s", tl_db_value (res, 0, 0));
            snprintf (q->found_status, sizeof q->found_status, "%s", tl_db_value (res, 0, 1));
        }
        PQclear (res);
        q->duplicate = true;
        return 0;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_kv (&pk, "id", q->id);
    char unique [64];
    snprintf (unique, sizeof unique, "%s.deliver:%s", q->kind, q->id);
    char kind [32];
    snprintf (kind, sizeof kind, "%s.deliver", q->kind);
    int rc = tl_jobs_enqueue (db, kind, sbuf.data, sbuf.size, unique, 0, S_DELIVERY_ATTEMPTS);
    msgpack_sbuffer_destroy (&sbuf);
    snprintf (q->found_id, sizeof q->found_id, "%s", q->id);
    snprintf (q->found_status, sizeof q->found_status, "pending");
    return rc < 0 ? rc : 0;
}

static void
s_queue_and_reply (tl_call_t *call, s_queue_t *q)
{
    int rc = tl_db_tx (tl_call_db (call), s_queue_tx, q);
    if (rc) {
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "outbox: %s: %s",
                tl_strerror (rc), tl_db_errmsg (tl_call_db (call)));
        tl_call_error (call, 503, "unavailable", "the outbox cannot be written now");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, q->duplicate ? 200 : 202);
    msgpack_pack_map (pk, 3);
    tl_mp_pack_kv (pk, "id", q->found_id);
    tl_mp_pack_kv (pk, "status", q->found_status);
    tl_mp_pack_str (pk, "duplicate");
    if (q->duplicate) msgpack_pack_true (pk); else msgpack_pack_false (pk);
}

//  Reads the body's idempotency key, or answers 400.
static char *
s_key (tl_call_t *call)
{
    char *key = tl_mp_strdup (tl_mp_get (tl_call_body (call), "key"), TL_MAX_IDEM_KEY_LEN);
    if (!key || !*key) {
        free (key);
        tl_call_field_error (call, 400, "invalid", "key", "is required (1 to 255 bytes)");
        return NULL;
    }
    return key;
}

//  Reads the body's optional user_id (the user the message is for) into
//  *user_id (NULL when absent). Returns 0, or answers 400.
static int
s_user_id (tl_call_t *call, char **user_id)
{
    const msgpack_object *value = tl_mp_get (tl_call_body (call), "user_id");
    *user_id = NULL;
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return 0;
    *user_id = tl_mp_strdup (value, TL_MAX_ID_LEN);
    if (!*user_id || !**user_id) {
        free (*user_id);
        *user_id = NULL;
        tl_call_field_error (call, 400, "invalid", "user_id",
                             "must be a user id (1 to 64 bytes) when given");
        return TL_EINVAL;
    }
    return 0;
}

//  Sets the subject and parts from a template and its vars, or from the
//  body's own subject/text/html. Returns 0 or answers 400/422.
static int
s_content (tl_call_t *call, mail_mime_t *mime, char *subject, size_t subject_size)
{
    const msgpack_object *body = tl_call_body (call);
    const msgpack_object *template = tl_mp_get (body, "template");
    char errbuf [256] = "";
    if (template) {
        char *name = tl_mp_strdup (template, 64);
        const msgpack_object *vars = tl_mp_get (body, "vars");
        if (!name || !mail_template_exists (name)
        ||  (vars && (vars->type != MSGPACK_OBJECT_MAP
                   || vars->via.map.size > MAIL_TEMPLATE_MAX_VARS))) {
            free (name);
            tl_call_field_error (call, 400, "invalid", "template", "names no known template, or vars is not a small map");
            return TL_EINVAL;
        }
        //  vars as a NULL-terminated name, value, … array
        const char *list [2 * MAIL_TEMPLATE_MAX_VARS + 1] = { NULL };
        char *owned [2 * MAIL_TEMPLATE_MAX_VARS] = { NULL };
        size_t n = 0;
        int rc = 0;
        for (uint32_t i = 0; vars && i < vars->via.map.size; i++) {
            owned [n] = tl_mp_strdup (&vars->via.map.ptr [i].key, MAIL_TEMPLATE_MAX_VAR_NAME);
            owned [n + 1] = tl_mp_strdup (&vars->via.map.ptr [i].val, MAIL_TEMPLATE_MAX_VALUE);
            if (!owned [n] || !owned [n + 1])
                rc = TL_EINVAL;
            list [n] = owned [n];
            list [n + 1] = owned [n + 1];
            n += 2;
        }
        mail_template_t *rendered = NULL;
        if (rc == 0)
            rc = mail_template_render (name, list, &rendered, errbuf, sizeof errbuf);
        if (rc == 0) {
            snprintf (subject, subject_size, "%s", mail_template_subject (rendered));
            rc = mail_mime_set_subject (mime, mail_template_subject (rendered));
            if (rc == 0)
                rc = mail_mime_set_text (mime, mail_template_text (rendered));
            if (rc == 0)
                rc = mail_mime_set_html (mime, mail_template_html (rendered));
        }
        mail_template_destroy (&rendered);
        for (size_t i = 0; i < n; i++)
            free (owned [i]);
        free (name);
        if (rc) {
            tl_call_error (call, 422, "invalid_template_vars", "%s",
                           *errbuf ? errbuf : "the template's variables are not right");
            return rc;
        }
        return 0;
    }
    char *text_subject = tl_mp_strdup (tl_mp_get (body, "subject"), MAIL_MAX_SUBJECT_LEN);
    char *text = tl_mp_strdup (tl_mp_get (body, "text"), MAIL_MAX_BODY_BYTES);
    char *html = tl_mp_strdup (tl_mp_get (body, "html"), MAIL_MAX_BODY_BYTES);
    int rc = text_subject && (text || html) ? 0 : TL_EINVAL;
    if (rc == 0)
        rc = mail_mime_set_subject (mime, text_subject);
    if (rc == 0 && text)
        rc = mail_mime_set_text (mime, text);
    if (rc == 0 && html)
        rc = mail_mime_set_html (mime, html);
    if (rc == 0)
        snprintf (subject, subject_size, "%s", text_subject);
    free (text_subject);
    free (text);
    free (html);
    if (rc)
        tl_call_error (call, 400, "invalid",
                       "give a template (and vars), or a subject with text and/or html");
    return rc;
}

static int
s_attachments (tl_call_t *call, mail_mime_t *mime)
{
    const msgpack_object *list = tl_mp_get (tl_call_body (call), "attachments");
    if (!list)
        return 0;
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > MAIL_MAX_ATTACHMENTS) {
        tl_call_field_error (call, 400, "invalid", "attachments", "must be a list of at most 10");
        return TL_EINVAL;
    }
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *item = &list->via.array.ptr [i];
        char *name = tl_mp_strdup (tl_mp_get (item, "name"), MAIL_MAX_ATTACHMENT_NAME);
        char *type = tl_mp_strdup (tl_mp_get (item, "content_type"), MAIL_MAX_CONTENT_TYPE_LEN);
        const msgpack_object *data = tl_mp_get (item, "data");
        //  With a content_id, an inline part the html shows as cid:<id>
        const msgpack_object *cid = tl_mp_get (item, "content_id");
        char *content_id = cid && cid->type != MSGPACK_OBJECT_NIL
                         ? tl_mp_strdup (cid, MAIL_MAX_OUTBOX_ID_LEN) : NULL;
        int rc = TL_EINVAL;
        if (name && type && data && data->type == MSGPACK_OBJECT_BIN
        &&  (content_id || !cid || cid->type == MSGPACK_OBJECT_NIL))
            rc = content_id
               ? mail_mime_add_inline (mime, name, type, content_id,
                                       data->via.bin.ptr, data->via.bin.size)
               : mail_mime_add_attachment (mime, name, type, data->via.bin.ptr,
                                           data->via.bin.size);
        free (name);
        free (type);
        free (content_id);
        if (rc) {
            tl_call_field_error (call, 400, "invalid", "attachments",
                                 "each needs name, content_type and data (bytes), and "
                                 "an optional content_id (left@right), unique in the mail");
            return rc;
        }
    }
    return 0;
}

//  mail.send {key, to, template + vars | subject + text + html, attachments?,
//  user_id?}. An attachment with a content_id is an inline part of the html.
static void
s_mail_send (tl_call_t *call)
{
    char *key = s_key (call);
    if (!key)
        return;
    char *user_id = NULL;
    if (s_user_id (call, &user_id)) {
        free (key);
        return;
    }
    mail_mime_t *mime = mail_mime_new ();
    char recipients [MAIL_MAX_RECIPIENTS * (MAIL_MAX_ADDRESS_LEN + 1) + 1] = "";
    char subject [MAIL_MAX_SUBJECT_LEN + 1] = "";
    char id [37];
    tl_valid_uuid_new (id);
    int rc = mime ? 0 : TL_ENOMEM;
    //  to: one address or a list
    const msgpack_object *to = tl_mp_get (tl_call_body (call), "to");
    uint32_t count = to && to->type == MSGPACK_OBJECT_ARRAY ? to->via.array.size : 1;
    if (rc == 0 && (!to || count == 0 || count > MAIL_MAX_RECIPIENTS))
        rc = TL_EINVAL;
    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        const msgpack_object *one = to->type == MSGPACK_OBJECT_ARRAY ? &to->via.array.ptr [i] : to;
        char *address = tl_mp_strdup (one, MAIL_MAX_ADDRESS_LEN);
        rc = address ? mail_mime_add_to (mime, address) : TL_EINVAL;
        if (rc == 0) {
            if (*recipients)
                strcat (recipients, "\n");
            strcat (recipients, address);
        }
        free (address);
    }
    if (rc) {
        tl_call_field_error (call, 400, "invalid", "to", "must be one address or a list of addresses");
        goto done;
    }
    if (s_content (call, mime, subject, sizeof subject) || s_attachments (call, mime))
        goto done;
    mail_mime_set_from (mime, s_from_address, *s_from_name ? s_from_name : NULL);
    mail_mime_set_date (mime, time (NULL));
    mail_mime_set_message_id (mime, id);
    char *message = NULL;
    size_t size = 0;
    rc = mail_mime_build_str (mime, &message, &size);
    if (rc) {
        tl_call_error (call, 413, "too_large", "the message is too large to build");
        goto done;
    }
    s_queue_t q = { .id = id, .key = key, .kind = "mail", .recipients = recipients,
                    .subject = subject, .message = message, .size = size,
                    .user_id = user_id };
    s_queue_and_reply (call, &q);
    free (message);
done:
    mail_mime_destroy (&mime);
    free (user_id);
    free (key);
}

static bool
s_is_json (const char *text)
{
    char errbuf [64];
    int err = 0;
    json_t *value = tl_json_parse (text, strlen (text), errbuf, sizeof errbuf, &err);
    json_decref (value);
    return value != NULL;
}

//  webhook.send {key, url, json, user_id?}: json is a JSON text (string)
//  to POST.
static void
s_webhook_send (tl_call_t *call)
{
    char *key = s_key (call);
    if (!key)
        return;
    char *user_id = NULL;
    if (s_user_id (call, &user_id)) {
        free (key);
        return;
    }
    const msgpack_object *body = tl_call_body (call);
    char *url = tl_mp_strdup (tl_mp_get (body, "url"), MAIL_MAX_URL_LEN);
    char *json = tl_mp_strdup (tl_mp_get (body, "json"), MAIL_WEBHOOK_MAX_BODY);
    if (!url || mail_webhook_check_url (url) != 0)
        tl_call_field_error (call, 400, "invalid", "url", "must be an http(s) URL");
    else
    if (!json || !s_is_json (json))
        tl_call_field_error (call, 400, "invalid", "json", "must be a JSON text of at most 64 KiB");
    else {
        char id [37];
        tl_valid_uuid_new (id);
        s_queue_t q = { .id = id, .key = key, .kind = "webhook", .recipients = url,
                        .subject = "", .message = json, .size = strlen (json),
                        .user_id = user_id };
        s_queue_and_reply (call, &q);
    }
    free (url);
    free (json);
    free (user_id);
    free (key);
}

//  outbox.get {id}: where a message stands.
static void
s_outbox_get (tl_call_t *call)
{
    char *id = tl_mp_strdup (tl_mp_get (tl_call_body (call), "id"), 36);
    const char *values [] = { id ? id : tl_call_param (call, "id") };
    if (!values [0] || strlen (values [0]) != 36) {
        free (id);
        tl_call_error (call, 404, "not_found", "no such message");
        return;
    }
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "outbox_get", 1, values, &err);
    free (id);
    if (!res || PQntuples (res) != 1) {
        if (res || err == TL_EINVAL)
            tl_call_error (call, 404, "not_found", "no such message");
        else
            tl_call_error (call, 503, "unavailable", "the outbox cannot be read now");
        PQclear (res);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 6);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, 0, 0));
    tl_mp_pack_kv (pk, "kind", tl_db_value (res, 0, 1));
    tl_mp_pack_kv (pk, "status", tl_db_value (res, 0, 5));
    tl_mp_pack_kv (pk, "last_error", tl_db_value (res, 0, 6));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, 0, 7));
    tl_mp_pack_kv (pk, "sent_at", tl_db_value (res, 0, 8));
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  Delivery jobs

//  Loads the outbox row named by the job's payload. Returns the result
//  (the caller clears it) or NULL with the job's error set.
static PGresult *
s_load (tl_job_ctx_t *job)
{
    char *id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "id"), 36);
    if (!id) {
        tl_job_ctx_error (job, "payload has no id");
        return NULL;
    }
    const char *values [] = { id };
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "outbox_get", 1, values, &err);
    free (id);
    if (!res)
        tl_job_ctx_error (job, "cannot read the outbox: %s", tl_strerror (err));
    return res;
}

//  Records the outcome: sent, or failed for good. Returns 0 or a code.
static int
s_record (tl_job_ctx_t *job, const char *id, bool sent, const char *error)
{
    const char *values [] = { id, error };
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), sent ? "outbox_sent" : "outbox_failed",
                                sent ? 1 : 2, values, &err);
    PQclear (res);
    if (!res)
        tl_job_ctx_error (job, "cannot record the delivery: %s", tl_strerror (err));
    return res ? 0 : err;
}

//  Turns a delivery's code into the job's result.
static int
s_outcome (tl_job_ctx_t *job, const char *id, const char *what, int rc, const char *errbuf)
{
    if (rc == 0) {
        tl_log (TL_LOG_INFO, NULL, "%s %s delivered", what, id);
        return s_record (job, id, true, NULL);
    }
    if (rc == TL_EINVAL) {
        //  Permanent: the other side refused it. Recorded, not retried.
        tl_log (TL_LOG_WARN, NULL, "%s %s refused: %s", what, id, errbuf);
        return s_record (job, id, false, errbuf);
    }
    if (tl_job_ctx_attempt (job) >= tl_job_ctx_max_attempts (job)) {
        //  The last attempt: say so in the outbox too, for good.
        char final [600];
        snprintf (final, sizeof final, "gave up after %d attempts: %s",
                  tl_job_ctx_attempt (job), *errbuf ? errbuf : tl_strerror (rc));
        tl_log (TL_LOG_WARN, NULL, "%s %s: %s", what, id, final);
        return s_record (job, id, false, final);
    }
    //  Temporary: the job runs again after its back-off. (Not TL_ERETRY,
    //  which would mean a database conflict and re-run the transaction.)
    tl_job_ctx_error (job, "%s", *errbuf ? errbuf : tl_strerror (rc));
    return TL_EIO;
}

static int
s_mail_deliver (tl_job_ctx_t *job)
{
    PGresult *res = s_load (job);
    if (!res)
        return TL_EDB;
    if (PQntuples (res) != 1 || strcmp (tl_db_value (res, 0, 5), "pending") != 0
    ||  PQgetisnull (res, 0, 4)) {
        PQclear (res);
        return 0;                   //  gone, already sent, or its body dropped
    }
    char id [37];
    snprintf (id, sizeof id, "%s", tl_db_value (res, 0, 0));
    const char *message = PQgetvalue (res, 0, 4);
    size_t size = 0;
    unsigned char *bytes = PQunescapeBytea ((const unsigned char *) message, &size);
    char errbuf [512] = "";
    int rc = bytes ? 0 : TL_ENOMEM;
    if (rc == 0 && s_smtp_url) {
        char *recipients = strdup (tl_db_value (res, 0, 2));
        const char *to [MAIL_MAX_RECIPIENTS];
        size_t nto = 0;
        char *save = NULL;
        for (char *a = strtok_r (recipients, "\n", &save); a && nto < MAIL_MAX_RECIPIENTS;
             a = strtok_r (NULL, "\n", &save))
            to [nto++] = a;
        rc = mail_smtp_send (s_smtp_url, tl_db_value (res, 0, 3), to, nto,
                             (const char *) bytes, size, errbuf, sizeof errbuf);
        free (recipients);
    }
    else
    if (rc == 0) {
        char message_id [64];
        snprintf (message_id, sizeof message_id, "%s@tally", id);
        rc = mail_spool_write (s_spool_dir, message_id, (const char *) bytes, size,
                               NULL, errbuf, sizeof errbuf);
        if (rc == TL_EINVAL)
            rc = TL_EIO;            //  our folder, not the recipient: retry
    }
    PQfreemem (bytes);
    PQclear (res);
    return s_outcome (job, id, "mail", rc, errbuf);
}

static int
s_webhook_deliver (tl_job_ctx_t *job)
{
    PGresult *res = s_load (job);
    if (!res)
        return TL_EDB;
    if (PQntuples (res) != 1 || strcmp (tl_db_value (res, 0, 5), "pending") != 0
    ||  PQgetisnull (res, 0, 4)) {
        PQclear (res);
        return 0;
    }
    char id [37];
    snprintf (id, sizeof id, "%s", tl_db_value (res, 0, 0));
    size_t size = 0;
    unsigned char *json = PQunescapeBytea ((const unsigned char *) PQgetvalue (res, 0, 4), &size);
    char errbuf [512] = "";
    //  The outbox id goes along as the Idempotency-Key: every retry of one
    //  delivery carries the same one, whatever the sender's key looks like.
    int rc = json ? mail_webhook_post (tl_db_value (res, 0, 2), (const char *) json, size,
                                       id, s_webhook_flags, errbuf, sizeof errbuf)
                  : TL_ENOMEM;
    PQfreemem (json);
    PQclear (res);
    return s_outcome (job, id, "webhook", rc, errbuf);
}

int
mailer_outbox_register (tl_service_t *svc)
{
    const char *url = tl_env ("TALLY_SMTP_URL", NULL);
    if (url) {
        if (mail_smtp_check_url (url) != 0) {
            tl_log (TL_LOG_ERROR, NULL, "TALLY_SMTP_URL is not an smtp:// or smtps:// URL");
            return TL_ECONFIG;
        }
        s_smtp_url = strdup (url);
    }
    if (s_parse_from (tl_env ("TALLY_MAIL_FROM", "Tally <tally@tally.localhost>")) != 0) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_MAIL_FROM must be an address or \"Name <address>\"");
        return TL_ECONFIG;
    }
    snprintf (s_spool_dir, sizeof s_spool_dir, "%s/mail", tl_env ("TALLY_DATA_DIR", "var"));
    s_webhook_flags = tl_env_flag ("TALLY_WEBHOOK_ALLOW_PRIVATE", false)
                    ? MAIL_WEBHOOK_ALLOW_PRIVATE : 0;
    if (!s_smtp_url && zsys_dir_create ("%s", s_spool_dir) != 0) {
        tl_log (TL_LOG_ERROR, NULL, "cannot create the mail folder %s", s_spool_dir);
        return TL_ECONFIG;
    }
    tl_log (TL_LOG_INFO, NULL, "mail goes to %s", s_smtp_url ? "the SMTP relay" : s_spool_dir);

    int rc = 0;
    rc = rc ? rc : tl_service_on (svc, "mail.send", s_mail_send);
    rc = rc ? rc : tl_service_on (svc, "webhook.send", s_webhook_send);
    rc = rc ? rc : tl_service_on (svc, "outbox.get", s_outbox_get);
    rc = rc ? rc : tl_service_job (svc, "mail.deliver", s_mail_deliver);
    rc = rc ? rc : tl_service_job (svc, "webhook.deliver", s_webhook_deliver);
    return rc;
}
