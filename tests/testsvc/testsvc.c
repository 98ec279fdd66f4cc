//  testsvc.c — tally-testsvc: a service that exists to exercise the
//  platform in tests and benchmarks: echo (params, body, caller), sleep (for
//  deadlines, queues and drains), relay (a service calling a service through
//  the mesh), items (PostgreSQL writes, ownership, idempotency keys), raw
//  uploads and binary replies, and notes (durable jobs: the test.note job,
//  enqueued by notes.enqueue in a transaction, and the test.hourly
//  schedule).
//
//  With TALLY_TEST_ROLE=auth it plays the auth service's session.check
//  instead, accepting tokens "test-token-<user>" (users named admin* get
//  the admin role) — a stand-in for tests until the accounts service exists.
#include "tl_client.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"
#include "tl_service.h"
#include "tl_valid.h"
#include "tl_time.h"

#include <czmq.h>
#include <libpq-fe.h>
#include <sodium.h>

extern const tl_embed_t testsvc_migrations [];

static const char *s_instance = "";

static void
s_pack_instance (msgpack_packer *pk)
{
    tl_mp_pack_kv (pk, "instance", s_instance);
}

static void
s_echo_get (tl_call_t *call)
{
    tl_msg_t *request = tl_call_request (call);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 3);
    s_pack_instance (pk);
    tl_mp_pack_kv (pk, "user", tl_call_user (call));
    tl_mp_pack_str (pk, "params");
    size_t count = tl_msg_param_count (request);
    msgpack_pack_map (pk, count);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        tl_msg_param_at (request, i, &name, &value);
        tl_mp_pack_kv (pk, name, value);
    }
}

static void
s_echo_post (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "body");
    if (body)
        msgpack_pack_object (pk, *body);
    else
        msgpack_pack_nil (pk);
}

//  Sleeps `ms` (query parameter, at most 20 s) then answers.
static void
s_sleep (tl_call_t *call)
{
    const char *ms = tl_call_param (call, "ms");
    long wait = ms ? atol (ms) : 0;
    if (wait < 0 || wait > 20000) {
        tl_call_field_error (call, 400, "invalid", "ms", "must be 0..20000");
        return;
    }
    zclock_sleep ((int) wait);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "slept");
    msgpack_pack_long (pk, wait);
}

//  Calls this service's whoami through the mesh, as any service calls
//  another: the nested call runs as this call's caller.
//  relay: calls another method through the mesh on the caller's behalf:
//  `to` = "service:method" (default testsvc:whoami), with the body
//  {"id": id, "ids": [id]} when param `id` is given; answers the nested
//  reply's status and body.
static void
s_relay (tl_call_t *call)
{
    const char *to = tl_call_param (call, "to");
    const char *id = tl_call_param (call, "id");
    char service [TL_MAX_NAME_LEN + 1] = "testsvc", method [TL_MAX_NAME_LEN + 1] = "whoami";
    if (to && sscanf (to, "%64[a-z0-9_-]:%64[a-z0-9_.]", service, method) != 2) {
        tl_call_field_error (call, 400, "invalid", "to", "must be service:method");
        return;
    }
    msgpack_sbuffer request;
    msgpack_sbuffer_init (&request);
    if (id) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &request, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_kv (&pk, "id", id);
        tl_mp_pack_str (&pk, "ids");
        msgpack_pack_array (&pk, 1);
        tl_mp_pack_str (&pk, id);
    }
    tl_msg_t *reply = NULL;
    int rc = tl_call_call (call, service, method, id ? request.data : NULL, id ? request.size : 0,
                           &reply);
    msgpack_sbuffer_destroy (&request);
    if (rc) {
        tl_call_error (call, 504, "deadline", "the relayed call failed: %s", tl_strerror (rc));
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 3);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "status");
    msgpack_pack_int (pk, tl_msg_status (reply));
    tl_mp_pack_str (pk, "relayed");
    const msgpack_object *body = tl_msg_body (reply);
    if (body)
        msgpack_pack_object (pk, *body);
    else
        msgpack_pack_nil (pk);
    tl_msg_destroy (&reply);
}

static void
s_whoami (tl_call_t *call)
{
    const char **roles = NULL;
    size_t count = tl_msg_roles (tl_call_request (call), &roles);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 5);
    tl_mp_pack_kv (pk, "caller", tl_call_caller (call));
    tl_mp_pack_kv (pk, "user_id", tl_call_user (call));
    tl_mp_pack_kv (pk, "tz", tl_call_user_zone (call));
    tl_mp_pack_str (pk, "verified");
    if (tl_call_user_verified (call)) msgpack_pack_true (pk); else msgpack_pack_false (pk);
    tl_mp_pack_str (pk, "roles");
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++)
        tl_mp_pack_str (pk, roles [i]);
}

//  --- Items: PostgreSQL through the runtime --------------------------------

static const tl_db_statement_t s_statements [] = {
    { "items_insert",
      "INSERT INTO items (owner, name) VALUES ($1, $2) "
      "RETURNING id, name, to_char (created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", 2 },
    { "items_get",
      "SELECT id, name, to_char (created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM items WHERE id = $1 AND owner = $2", 2 },
    { "items_list",
      "SELECT id, name, to_char (created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM items WHERE owner = $1 "
      "ORDER BY created_at DESC, id LIMIT $2", 2 },
    { "items_delete",
      "DELETE FROM items WHERE id = $1 AND owner = $2", 2 },
    { "items_forget_owner", "DELETE FROM items WHERE owner = $1", 1 },
    { "notes_insert",
      "INSERT INTO notes (text, source, job_id, job_key, attempt) "
      "VALUES ($1, $2, $3, $4, $5)", 5 },
    { "notes_list",
      "SELECT id, text, source, job_id, job_key, attempt, "
      "to_char (created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM notes WHERE $1::text IS NULL OR text = $1 ORDER BY id LIMIT $2", 2 },
};

static int
s_prepare (tl_db_t *db, void *arg)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

static void
s_pack_item (msgpack_packer *pk, PGresult *res, int row)
{
    msgpack_pack_map (pk, 3);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, 0));
    tl_mp_pack_kv (pk, "name", tl_db_value (res, row, 1));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, 2));
}

static void
s_items_create (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    char *name = tl_mp_strdup (tl_mp_get (body, "name"), 400);
    if (!name || !*name) {
        free (name);
        tl_call_field_error (call, 400, "invalid", "name", "is required");
        return;
    }
    int64_t delay = 0;
    if (tl_mp_int (tl_mp_get (body, "delay_ms"), &delay) == 0 && delay > 0 && delay <= 10000)
        zclock_sleep ((int) delay);
    const char *values [] = { tl_call_user (call), name };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_insert", 2, values, &err);
    free (name);
    if (!res) {
        tl_call_error (call, 503, "database", "could not store the item");
        return;
    }
    char location [128];
    snprintf (location, sizeof location, "/api/v1/test/items/%s", tl_db_value (res, 0, 0));
    tl_call_header (call, "Location", location);
    s_pack_item (tl_call_reply (call, 201), res, 0);
    PQclear (res);
}

//  events.publish {subject, count, rollback?}: publishes `count` events
//  testsvc.ping {seq: 1..count} about `subject` in one transaction (rolled
//  back after publishing when asked): the publisher side of tl_event.
typedef struct {
    char *subject;
    int64_t count;
    bool rollback;
    int subscribers;
} s_publish_t;

static int
s_publish_tx (tl_db_t *db, void *arg)
{
    s_publish_t *run = (s_publish_t *) arg;
    int rc = 0;
    for (int64_t seq = 1; rc >= 0 && seq <= run->count; seq++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        tl_mp_pack_str (&pk, "seq");
        msgpack_pack_int64 (&pk, seq);
        rc = tl_event_publish (db, "testsvc.ping", run->subject, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        run->subscribers = rc;
    }
    if (rc >= 0 && run->rollback)
        rc = TL_ENOTFOUND;      //  anything negative rolls back
    return rc < 0 ? rc : 0;
}

static void
s_events_publish (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    const msgpack_object *rollback = tl_mp_get (body, "rollback");
    s_publish_t run = { tl_mp_strdup (tl_mp_get (body, "subject"), 64), 0,
                        rollback && rollback->type == MSGPACK_OBJECT_BOOLEAN
                                 && rollback->via.boolean, 0 };
    if (!run.subject || tl_mp_int (tl_mp_get (body, "count"), &run.count) != 0
    ||  run.count < 1 || run.count > 100)
        tl_call_error (call, 400, "invalid", "subject and count (1..100) are required");
    else {
        int rc = tl_db_tx (tl_call_db (call), s_publish_tx, &run);
        if (rc && !(run.rollback && rc == TL_ENOTFOUND))
            tl_call_error (call, 503, "database", "could not publish: %s", tl_strerror (rc));
        else {
            msgpack_packer *pk = tl_call_reply (call, 201);
            msgpack_pack_map (pk, 1);
            tl_mp_pack_str (pk, "subscribers");
            msgpack_pack_int (pk, run.subscribers);
        }
    }
    free (run.subject);
}

//  broadcast {topic}: tells every gateway (tl_service_broadcast) and
//  answers how many acknowledged.
static void
s_broadcast (tl_call_t *call)
{
    char *topic = tl_mp_strdup (tl_mp_get (tl_call_body (call), "topic"), 64);
    int acked = topic ? tl_service_broadcast (topic, NULL, 0, 3000) : TL_EINVAL;
    free (topic);
    if (acked < 0)
        tl_call_error (call, 400, "invalid", "a topic is required");
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 1);
        tl_mp_pack_str (pk, "acked");
        msgpack_pack_int (pk, acked);
    }
}

//  The event auth.user.deleted: the user's items go.
static int
s_user_deleted (tl_event_t *event)
{
    const char *user = tl_event_subject (event);
    long count = tl_db_exec_count (tl_event_db (event), "items_forget_owner", 1, &user);
    return count < 0 ? (int) count : 0;
}

static void
s_items_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such item");
        return;
    }
    const char *values [] = { id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_get", 2, values, &err);
    if (!res)
        tl_call_error (call, 503, "database", "could not read the item");
    else
    if (PQntuples (res) == 0)
        tl_call_error (call, 404, "not_found", "no such item");
    else
        s_pack_item (tl_call_reply (call, 200), res, 0);
    PQclear (res);
}

static void
s_items_list (tl_call_t *call)
{
    const char *limit_text = tl_call_param (call, "limit");
    long limit = limit_text ? atol (limit_text) : TL_LIST_LIMIT_DEFAULT;
    if (limit < 1 || limit > TL_LIST_LIMIT_MAX) {
        tl_call_field_error (call, 400, "invalid", "limit", "must be 1..500");
        return;
    }
    char limit_str [16];
    snprintf (limit_str, sizeof limit_str, "%ld", limit);
    const char *values [] = { tl_call_user (call), limit_str };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_list", 2, values, &err);
    if (!res) {
        tl_call_error (call, 503, "database", "could not list items");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) PQntuples (res));
    for (int i = 0; i < PQntuples (res); i++)
        s_pack_item (pk, res, i);
    tl_mp_pack_kv (pk, "next_cursor", NULL);
    PQclear (res);
}

static void
s_items_delete (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such item");
        return;
    }
    const char *values [] = { id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_delete", 2, values, &err);
    if (!res)
        tl_call_error (call, 503, "database", "could not delete the item");
    else
    if (strcmp (PQcmdTuples (res), "0") == 0)
        tl_call_error (call, 404, "not_found", "no such item");
    else
        tl_call_reply_empty (call, 204);
    PQclear (res);
}

//  --- Notes: durable jobs ----------------------------------------------------

static int
s_note_insert (tl_db_t *db, const char *text, const char *source, int64_t job_id,
               const char *job_key, int attempt)
{
    char id [24], attempt_text [16];
    snprintf (id, sizeof id, "%" PRId64, job_id);
    snprintf (attempt_text, sizeof attempt_text, "%d", attempt);
    const char *values [] = {
        text, source, job_id ? id : NULL, job_key, attempt ? attempt_text : NULL
    };
    int rc = 0;
    PQclear (tl_db_exec (db, "notes_insert", 5, values, &rc));
    return rc;
}

//  Job test.note: payload {text, fail?, sleep_ms?} (or a schedule's
//  {schedule, at}: the note's text is then the job's unique key). Sleeps
//  sleep_ms (at most 20 s) on the first attempt only, so that a test can
//  kill the instance mid-job; fails when asked to.
static int
s_note_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char *text = tl_mp_strdup (tl_mp_get (payload, "text"), 400);
    const msgpack_object *fail = tl_mp_get (payload, "fail");
    int64_t sleep_ms = 0;
    if (tl_job_ctx_attempt (job) == 1
    &&  tl_mp_int (tl_mp_get (payload, "sleep_ms"), &sleep_ms) == 0
    &&  sleep_ms > 0 && sleep_ms <= 20000)
        zclock_sleep ((int) sleep_ms);
    const char *key = tl_job_ctx_unique_key (job);
    const char *note = text ? text : key ? key : "";
    int rc = 0;
    if (fail && fail->type == MSGPACK_OBJECT_BOOLEAN && fail->via.boolean) {
        tl_job_ctx_error (job, "asked to fail: %s", note);
        rc = TL_EINVAL;
    }
    else
        rc = s_note_insert (tl_job_ctx_db (job), note, "job", tl_job_ctx_id (job), key,
                            tl_job_ctx_attempt (job));
    free (text);
    return rc;
}

typedef struct {
    tl_call_t *call;
    const char *text;
    int max_attempts;
    int64_t run_at_ms;
    bool rollback;
} s_note_request_t;

//  A row and the job that will write another, in one transaction.
static int
s_notes_enqueue_tx (tl_db_t *db, void *arg)
{
    s_note_request_t *req = (s_note_request_t *) arg;
    size_t size = 0;
    const char *payload = tl_msg_body_raw (tl_call_request (req->call), &size);
    int rc = s_note_insert (db, req->text, "request", 0, NULL, 0);
    if (rc == 0)
        rc = tl_jobs_enqueue (db, "test.note", payload, size, NULL, req->run_at_ms,
                              req->max_attempts);
    if (rc >= 0 && req->rollback)
        rc = TL_ENOTFOUND;      //  anything negative rolls back
    return rc < 0 ? rc : 0;
}

//  notes.enqueue: body {text, fail?, rollback?, sleep_ms?, max_attempts?,
//  run_at? (RFC 3339)}.
static void
s_notes_enqueue (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    char *text = tl_mp_strdup (tl_mp_get (body, "text"), 400);
    if (!text || !*text) {
        free (text);
        tl_call_field_error (call, 400, "invalid", "text", "is required");
        return;
    }
    const msgpack_object *rollback = tl_mp_get (body, "rollback");
    int64_t max_attempts = 0;
    if (tl_mp_get (body, "max_attempts")
    &&  (tl_mp_int (tl_mp_get (body, "max_attempts"), &max_attempts) != 0
     ||  max_attempts < 1 || max_attempts > 100)) {
        free (text);
        tl_call_field_error (call, 400, "invalid", "max_attempts", "must be 1..100");
        return;
    }
    char *run_at = tl_mp_strdup (tl_mp_get (body, "run_at"), 64);
    int64_t run_at_ms = 0;
    bool bad_time = tl_mp_get (body, "run_at")
                 && (!run_at || tl_time_parse (run_at, &run_at_ms) != 0);
    free (run_at);
    if (bad_time) {
        free (text);
        tl_call_field_error (call, 400, "invalid", "run_at", "must be an RFC 3339 time");
        return;
    }
    s_note_request_t req = {
        call, text, (int) max_attempts, run_at_ms,
        rollback && rollback->type == MSGPACK_OBJECT_BOOLEAN && rollback->via.boolean
    };
    int rc = tl_db_tx (tl_call_db (call), s_notes_enqueue_tx, &req);
    free (text);
    if (rc && !(req.rollback && rc == TL_ENOTFOUND)) {
        tl_call_error (call, 503, "database", "could not enqueue: %s", tl_strerror (rc));
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, req.rollback ? 200 : 201);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "enqueued");
    if (req.rollback)
        msgpack_pack_false (pk);
    else
        msgpack_pack_true (pk);
    tl_mp_pack_str (pk, "rolled_back");
    if (req.rollback)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

//  notes.list: param text (only notes with that text), at most 500.
static void
s_notes_list (tl_call_t *call)
{
    const char *values [] = { tl_call_param (call, "text"), "500" };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "notes_list", 2, values, &err);
    if (!res) {
        tl_call_error (call, 503, "database", "could not list notes");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) PQntuples (res));
    for (int i = 0; i < PQntuples (res); i++) {
        msgpack_pack_map (pk, 7);
        tl_mp_pack_str (pk, "id");
        msgpack_pack_int64 (pk, strtoll (tl_db_value (res, i, 0), NULL, 10));
        tl_mp_pack_kv (pk, "text", tl_db_value (res, i, 1));
        tl_mp_pack_kv (pk, "source", tl_db_value (res, i, 2));
        tl_mp_pack_str (pk, "job_id");
        if (tl_db_value (res, i, 3))
            msgpack_pack_int64 (pk, strtoll (tl_db_value (res, i, 3), NULL, 10));
        else
            msgpack_pack_nil (pk);
        tl_mp_pack_kv (pk, "job_key", tl_db_value (res, i, 4));
        tl_mp_pack_str (pk, "attempt");
        if (tl_db_value (res, i, 5))
            msgpack_pack_int (pk, atoi (tl_db_value (res, i, 5)));
        else
            msgpack_pack_nil (pk);
        tl_mp_pack_kv (pk, "created_at", tl_db_value (res, i, 6));
    }
    PQclear (res);
}

//  --- Raw bytes -----------------------------------------------------------

static void
s_upload (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    if (!body || body->type != MSGPACK_OBJECT_BIN) {
        tl_call_error (call, 400, "invalid", "send some bytes");
        return;
    }
    unsigned char hash [32];
    crypto_hash_sha256 (hash, (const unsigned char *) body->via.bin.ptr, body->via.bin.size);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    msgpack_packer *pk = tl_call_reply (call, 201);
    msgpack_pack_map (pk, 3);
    tl_mp_pack_str (pk, "bytes");
    msgpack_pack_uint32 (pk, body->via.bin.size);
    tl_mp_pack_kv (pk, "sha256", hex);
    tl_mp_pack_kv (pk, "content_type", tl_call_param (call, "content_type"));
}

//  binary: a PNG signature; with `bytes` (at most 64 MiB), that many bytes
//  of 'x' instead (octet-stream), to send replies past the mesh frame.
static void
s_binary (tl_call_t *call)
{
    static const unsigned char png [] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    const char *bytes = tl_call_param (call, "bytes");
    long size = bytes ? atol (bytes) : 0;
    if (size < 0 || size > 64L * 1024 * 1024) {
        tl_call_field_error (call, 400, "invalid", "bytes", "must be 0..67108864");
        return;
    }
    if (bytes) {
        char *data = malloc ((size_t) size + 1);
        if (!data) {
            tl_call_error (call, 503, "unavailable", "out of memory");
            return;
        }
        memset (data, 'x', (size_t) size);
        tl_call_header (call, "Content-Type", "application/octet-stream");
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_bin (pk, (size_t) size);
        msgpack_pack_bin_body (pk, data, (size_t) size);
        free (data);
        return;
    }
    tl_call_header (call, "Content-Type", "image/png");
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, sizeof png);
    msgpack_pack_bin_body (pk, png, sizeof png);
}

//  --- The stand-in auth service --------------------------------------------

static void
s_session_check (tl_call_t *call)
{
    char *token = tl_mp_strdup (tl_mp_get (tl_call_body (call), "token"), 512);
    if (!token || strncmp (token, "test-token-", 11) != 0 || !token [11]) {
        free (token);
        tl_call_error (call, 401, "unauthenticated", "unknown token");
        return;
    }
    const char *user = token + 11;
    bool admin = strncmp (user, "admin", 5) == 0;
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "user_id", user);
    tl_mp_pack_str (pk, "roles");
    msgpack_pack_array (pk, admin ? 1 : 0);
    if (admin)
        tl_mp_pack_str (pk, "admin");
    free (token);
}

int
main (void)
{
    const char *role = getenv ("TALLY_TEST_ROLE");
    bool auth = role && streq (role, "auth");
    s_instance = getenv ("TALLY_INSTANCE") ? getenv ("TALLY_INSTANCE") : "testsvc";
    tl_service_t *svc = tl_service_new (auth ? "auth" : "testsvc",
                                        auth ? NULL : testsvc_migrations);
    if (!svc)
        return 1;
    if (auth)
        tl_service_on (svc, "session.check", s_session_check);
    else {
        tl_service_set_thread_init (svc, s_prepare, NULL);
        tl_service_on (svc, "echo.get", s_echo_get);
        tl_service_on (svc, "echo.post", s_echo_post);
        tl_service_on (svc, "sleep", s_sleep);
        tl_service_on (svc, "sleep.long", s_sleep);
        tl_service_on (svc, "relay", s_relay);
        tl_service_on (svc, "whoami", s_whoami);
        tl_service_on (svc, "whoami.mesh", s_whoami);
        tl_service_on (svc, "items.create", s_items_create);
        tl_service_on (svc, "items.get", s_items_get);
        tl_service_on (svc, "items.list", s_items_list);
        tl_service_on (svc, "items.delete", s_items_delete);
        tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
        tl_service_on (svc, "events.publish", s_events_publish);
        tl_service_on (svc, "broadcast", s_broadcast);
        tl_service_on (svc, "upload", s_upload);
        tl_service_on (svc, "upload.private", s_upload);
        tl_service_on (svc, "binary", s_binary);
        tl_service_on (svc, "notes.enqueue", s_notes_enqueue);
        tl_service_on (svc, "notes.list", s_notes_list);
        tl_service_job (svc, "test.note", s_note_job);
        tl_service_schedule (svc, "test.hourly", "test.note", "hourly");
    }
    int rc = tl_service_run (svc);
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
