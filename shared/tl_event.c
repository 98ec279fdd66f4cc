//  tl_event.c — durable events between services: the publisher's outbox
//  (one row and one delivery job per subscribing service, written in the
//  publisher's transaction), the delivery job (in order per subscriber and
//  subject), and the receiver (once per event, in one transaction with the
//  subscriber's handler). The tables are the runtime's (tl_migrate.c):
//  event_outbox in the publisher's schema, event_inbox in the subscriber's.
#include "tl_event.h"
#include "tl_curve.h"
#include "tl_decl.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_migrate.h"
#include "tl_mp.h"
#include "tl_private.h"
#include "tl_service.h"

#include <czmq.h>

struct _tl_event_t {
    tl_db_t *db;
    const char *name;
    const char *subject;
    const char *publisher;
    const msgpack_object *body;
};

static const tl_db_statement_t s_statements [] = {
    { "tl_event_insert",
      "INSERT INTO event_outbox (event, subject, subscriber, body) "
      "VALUES ($1, $2, $3, $4) RETURNING id", 4 },
    { "tl_event_get",
      "SELECT event, subject, subscriber, body, delivered_at IS NOT NULL "
      "FROM event_outbox WHERE id = $1 FOR UPDATE", 1 },
    { "tl_event_earlier",
      "SELECT id FROM event_outbox WHERE subscriber = $1 AND subject = $2 AND id < $3 "
      "AND delivered_at IS NULL ORDER BY id LIMIT 1", 3 },
    { "tl_event_delivered",
      "UPDATE event_outbox SET delivered_at = now () WHERE id = $1", 1 },
    { "tl_event_claim",
      "INSERT INTO event_inbox (publisher, id, event) VALUES ($1, $2, $3) "
      "ON CONFLICT DO NOTHING", 3 },
    { "tl_event_purge_outbox",
      "DELETE FROM event_outbox WHERE delivered_at < now () - interval '7 days'", 0 },
    { "tl_event_purge_inbox",
      "DELETE FROM event_inbox WHERE received_at < now () - interval '60 days'", 0 },
};

static int
s_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

tl_db_t *tl_event_db (tl_event_t *self) { return self->db; }
const char *tl_event_name (tl_event_t *self) { return self->name; }
const char *tl_event_subject (tl_event_t *self) { return self->subject; }
const char *tl_event_publisher (tl_event_t *self) { return self->publisher; }
const msgpack_object *tl_event_body (tl_event_t *self) { return self->body; }

//  Whether `event` is named after the service this process runs.
static bool
s_own_event (const char *event)
{
    const char *peer = tl_curve_peer ();           //  service:<name>
    if (!peer || strncmp (peer, "service:", 8) != 0)
        return false;
    size_t size = strlen (peer + 8);
    return strncmp (event, peer + 8, size) == 0 && event [size] == '.';
}

//  ---------------------------------------------------------------------
//  Publishing

//  One outbox row and its delivery job, for `subscriber`.
static int
s_enqueue (tl_db_t *db, const char *event, const char *subject, const char *subscriber,
           const void *body, size_t size)
{
    const char *values [] = { event, subject, subscriber, body };
    const int lengths [] = { 0, 0, 0, (int) size };
    const int formats [] = { 0, 0, 0, 1 };
    int err = 0;
    PGresult *res = tl_db_exec_bin (db, "tl_event_insert", 4, values, lengths, formats, &err);
    if (!res)
        return err;
    char key [TL_MAX_ID_LEN];
    snprintf (key, sizeof key, "%s:%s", TL_EVENT_JOB, tl_db_value (res, 0, 0));
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_str (&pk, "id");
    msgpack_pack_int64 (&pk, strtoll (tl_db_value (res, 0, 0), NULL, 10));
    PQclear (res);
    int rc = tl_jobs_enqueue (db, TL_EVENT_JOB, sbuf.data, sbuf.size, key, 0,
                              TL_EVENT_MAX_ATTEMPTS);
    msgpack_sbuffer_destroy (&sbuf);
    return rc < 0 ? rc : 0;
}

int
tl_event_publish (tl_db_t *db, const char *event, const char *subject,
                  const void *body, size_t size)
{
    if (!event || !subject || !*subject || strlen (subject) > TL_MAX_ID_LEN
    ||  !s_own_event (event) || !tl_decl_published (event) || !tl_db_in_tx (db))
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    const char *subscribers [TL_EVENT_MAX_SUBSCRIBERS];
    int count = tl_decl_subscribers (event, subscribers, TL_EVENT_MAX_SUBSCRIBERS);
    for (int i = 0; i < count && rc == 0; i++)
        rc = s_enqueue (db, event, subject, subscribers [i], body, body ? size : 0);
    return rc ? rc : count;
}

//  ---------------------------------------------------------------------
//  Delivering (the publisher's jobs thread)

//  Packs events.deliver's body: {id, event, subject, body?}. `body` is the
//  outbox's bytea in text form (\x…), NULL when none.
static int
s_pack_delivery (msgpack_sbuffer *sbuf, int64_t id, const PGresult *row)
{
    const char *hex = PQgetisnull (row, 0, 3) ? NULL : PQgetvalue (row, 0, 3);
    size_t size = 0;
    unsigned char *bytes = hex ? PQunescapeBytea ((const unsigned char *) hex, &size) : NULL;
    if (hex && !bytes)
        return TL_ENOMEM;
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3 + (size > 0));
    tl_mp_pack_str (&pk, "id");
    msgpack_pack_int64 (&pk, id);
    tl_mp_pack_kv (&pk, "event", PQgetvalue (row, 0, 0));
    tl_mp_pack_kv (&pk, "subject", PQgetvalue (row, 0, 1));
    if (size > 0) {
        tl_mp_pack_str (&pk, "body");
        msgpack_sbuffer_write (sbuf, (const char *) bytes, size);
    }
    PQfreemem (bytes);
    return 0;
}

//  Whether an earlier event for the same subscriber and subject is still
//  undelivered: this one waits for it. Returns 1, 0 or a negative code.
static int
s_waits (tl_job_ctx_t *job, const PGresult *row, const char *id)
{
    const char *values [] = { PQgetvalue (row, 0, 2), PQgetvalue (row, 0, 1), id };
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "tl_event_earlier", 3, values, &err);
    if (!res)
        return err;
    int waits = PQntuples (res) > 0;
    if (waits)
        tl_job_ctx_error (job, "waits for event %s, earlier about the same subject",
                          tl_db_value (res, 0, 0));
    PQclear (res);
    return waits;
}

int
tl_event_deliver_job (tl_job_ctx_t *job)
{
    tl_db_t *db = tl_job_ctx_db (job);
    int64_t id = 0;
    if (tl_mp_int (tl_mp_get (tl_job_ctx_payload (job), "id"), &id) != 0)
        return 0;                       //  not ours to understand: done
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char id_text [24];
    snprintf (id_text, sizeof id_text, "%" PRId64, id);
    const char *values [] = { id_text };
    int err = 0;
    PGresult *row = tl_db_exec (db, "tl_event_get", 1, values, &err);
    if (!row)
        return err;
    if (PQntuples (row) == 0 || streq (PQgetvalue (row, 0, 4), "t")) {
        PQclear (row);
        return 0;                       //  purged, or delivered already
    }
    int waits = s_waits (job, row, id_text);
    if (waits) {
        PQclear (row);
        return waits < 0 ? waits : TL_EBUSY;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    rc = s_pack_delivery (&sbuf, id, row);
    int status = 0;
    if (rc == 0)
        rc = tl_service_job_call (job, PQgetvalue (row, 0, 2), "events.deliver", sbuf.data,
                                  sbuf.size, TL_EVENT_DELIVERY_TIMEOUT_MS, &status, NULL);
    msgpack_sbuffer_destroy (&sbuf);
    if (rc == 0 && (status < 200 || status > 299)) {
        tl_job_ctx_error (job, "%s.events.deliver answered %d", PQgetvalue (row, 0, 2), status);
        rc = TL_EIO;
    }
    PQclear (row);
    if (rc == 0 && tl_db_exec_count (db, "tl_event_delivered", 1, values) != 1)
        rc = TL_EDB;
    return rc;
}

//  ---------------------------------------------------------------------
//  Receiving (the subscriber's events.deliver)

typedef struct {
    tl_event_t *event;
    tl_event_fn *fn;
    const char *id;
    bool duplicate;
} s_receive_t;

static int
s_receive_tx (tl_db_t *db, void *arg)
{
    s_receive_t *run = (s_receive_t *) arg;
    const char *values [] = { run->event->publisher, run->id, run->event->name };
    long claimed = tl_db_exec_count (db, "tl_event_claim", 3, values);
    if (claimed < 0)
        return (int) claimed;
    run->duplicate = claimed == 0;
    return run->duplicate ? 0 : run->fn (run->event);
}

void
tl_event_receive (tl_call_t *call, tl_event_lookup_fn *lookup)
{
    const msgpack_object *body = tl_call_body (call);
    const char *caller = tl_call_caller (call);
    char *name = tl_mp_strdup (tl_mp_get (body, "event"), TL_MAX_NAME_LEN);
    char *subject = tl_mp_strdup (tl_mp_get (body, "subject"), TL_MAX_ID_LEN);
    int64_t id = 0;
    bool valid = name && subject && tl_mp_int (tl_mp_get (body, "id"), &id) == 0 && id > 0;
    const char *publisher = strncmp (caller, "service:", 8) == 0 ? caller + 8 : "";
    size_t size = strlen (publisher);
    tl_event_fn *fn = valid ? lookup (name) : NULL;
    if (!valid)
        tl_call_error (call, 400, "invalid", "an event is {id, event, subject, body?}");
    else
    if (!*publisher || strncmp (name, publisher, size) != 0 || name [size] != '.')
        tl_call_error (call, 403, "forbidden", "a service delivers only its own events");
    else
    if (!fn)
        tl_call_error (call, 404, "unknown_event", "this service does not subscribe to it");
    else {
        char id_text [24];
        snprintf (id_text, sizeof id_text, "%" PRId64, id);
        tl_event_t event = { tl_call_db (call), name, subject, publisher,
                             tl_mp_get (body, "body") };
        s_receive_t run = { &event, fn, id_text, false };
        int rc = s_prepare (tl_call_db (call));
        rc = rc ? rc : tl_db_tx (tl_call_db (call), s_receive_tx, &run);
        if (rc) {
            tl_log (TL_LOG_WARN, tl_call_trace (call), "event %s %s from %s not handled: %s",
                    name, id_text, publisher, tl_strerror (rc));
            tl_call_error (call, 503, "unavailable", "the event could not be handled now");
        }
        else {
            msgpack_packer *pk = tl_call_reply (call, 200);
            msgpack_pack_map (pk, 1);
            tl_mp_pack_str (pk, "duplicate");
            if (run.duplicate) msgpack_pack_true (pk); else msgpack_pack_false (pk);
        }
    }
    free (name);
    free (subject);
}

int
tl_event_purge (tl_db_t *db)
{
    int rc = s_prepare (db);
    if (rc)
        return rc;
    long outbox = tl_db_exec_count (db, "tl_event_purge_outbox", 0, NULL);
    long inbox = outbox < 0 ? outbox : tl_db_exec_count (db, "tl_event_purge_inbox", 0, NULL);
    return inbox < 0 ? (int) inbox : (int) (outbox + inbox);
}

//  ---------------------------------------------------------------------
//  Self-test: publishing writes one outbox row and one job per subscriber,
//  in the transaction; outside one, or for another's event, nothing.

static int
s_publish_tx (tl_db_t *db, void *arg)
{
    int *count = (int *) arg;
    *count = tl_event_publish (db, "auth.user.deleted", "u-1", NULL, 0);
    return 0;
}

static int
s_publish_rollback_tx (tl_db_t *db, void *arg)
{
    assert (tl_event_publish (db, "auth.user.deleted", "u-2", NULL, 0) >= 2);
    return TL_ENOTFOUND;
}

static int
s_publish_undeclared_tx (tl_db_t *db, void *arg)
{
    assert (tl_event_publish (db, "auth.user.renamed", "u-3", NULL, 0) == TL_EINVAL);
    return 0;
}

void
tl_event_test (bool verbose)
{
    char schema [64];
    const char *url = tl_db_test_url ("tl_event", schema, sizeof schema);
    if (!url) {
        if (verbose)
            printf ("(event skipped: no TALLY_TEST_DATABASE_URL) ");
        return;
    }
    tl_db_t *db = tl_db_new (url, schema);
    assert (db);
    assert (tl_migrate (db, schema, NULL) == 0);
    tl_curve_set_peer ("service:auth");
    //  Outside a transaction: refused
    assert (tl_event_publish (db, "auth.user.deleted", "u-1", NULL, 0) == TL_EINVAL);
    //  In one: a row and a job per subscriber (tracker, mailer, …)
    int count = 0;
    assert (tl_db_tx (db, s_publish_tx, &count) == 0);
    assert (count >= 2);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM event_outbox WHERE subject = $1",
                               "u-1") == count);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE kind = $1",
                               TL_EVENT_JOB) == count);
    //  In a transaction that rolls back: nothing at all
    assert (tl_db_tx (db, s_publish_rollback_tx, NULL) == TL_ENOTFOUND);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM event_outbox WHERE subject = $1",
                               "u-2") == 0);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE kind = $1",
                               TL_EVENT_JOB) == count);
    //  Another service's event, an undeclared one: refused
    assert (tl_db_tx (db, s_publish_undeclared_tx, NULL) == 0);
    tl_curve_set_peer ("service:tracker");
    count = 0;
    assert (tl_db_tx (db, s_publish_tx, &count) == 0 && count == TL_EINVAL);
    tl_curve_set_peer (NULL);
    tl_db_test_drop (db, schema);
    tl_db_destroy (&db);
    if (verbose)
        printf ("(event ok) ");
}
