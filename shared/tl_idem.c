//  tl_idem.c — idempotency keys over the schema's idempotency_keys table:
//  claim in the request's transaction, store the reply, replay it later.
//  See tl_idem.h.
#include "tl_idem.h"
#include "tl_error.h"
#include "tl_limits.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <sodium.h>

#include "tl_migrate.h"         //  self-test only

#define S_HASH_SIZE 32

//  The statements, prepared on a connection the first time it needs them.
//  Unqualified names: the connection's search_path leads to the schema.
static const tl_db_statement_t s_statements [] = {
    {   "tl_idem_expire",
        "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2"
        " AND created_at < now() - make_interval(hours => $3::int)", 3 },
    {   "tl_idem_insert",
        "INSERT INTO idempotency_keys (caller, key, method, request_hash)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (caller, key) DO NOTHING", 4 },
    {   "tl_idem_load",
        "SELECT method = $3 AND request_hash = $4, status, reply"
        " FROM idempotency_keys WHERE caller = $1 AND key = $2", 4 },
    {   "tl_idem_store",
        "UPDATE idempotency_keys SET status = $3, reply = $4"
        " WHERE caller = $1 AND key = $2", 4 },
    {   "tl_idem_purge",
        "DELETE FROM idempotency_keys WHERE (caller, key) IN ("
        " SELECT caller, key FROM idempotency_keys"
        " WHERE created_at < now() - make_interval(hours => $1::int)"
        " LIMIT $2 FOR UPDATE SKIP LOCKED)", 2 },
};

static int
s_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Checks one text argument: present, not empty, at most `max` bytes.
static int
s_check (const char *text, size_t max)
{
    if (!text || !*text)
        return TL_EINVAL;
    return strnlen (text, max + 1) > max ? TL_ETOOBIG : 0;
}

static int
s_check_key (const char *caller, const char *key)
{
    int rc = s_check (caller, TL_MAX_ID_LEN);
    return rc ? rc : s_check (key, TL_MAX_IDEM_KEY_LEN);
}

//  Fills `stored` from a status and an escaped bytea; returns 1 or a code.
static int
s_fill (tl_idem_stored_t *stored, const char *status, const char *reply)
{
    char *end = NULL;
    long value = strtol (status, &end, 10);
    if (*status == 0 || *end != 0 || value < 0 || value > 999)
        return TL_EDB;              //  not what we stored
    stored->status = (int) value;
    if (reply) {
        size_t size = 0;
        unsigned char *bytes = PQunescapeBytea ((const unsigned char *) reply, &size);
        if (!bytes)
            return TL_ENOMEM;
        if (size > 0) {
            stored->reply = (unsigned char *) malloc (size);
            if (stored->reply) {
                memcpy (stored->reply, bytes, size);
                stored->reply_size = size;
            }
        }
        PQfreemem (bytes);
        if (size > 0 && !stored->reply)
            return TL_ENOMEM;
    }
    return 1;
}

int
tl_idem_claim (tl_db_t *db, const char *caller, const char *key, const char *method,
               const unsigned char hash [32], tl_idem_stored_t *stored)
{
    assert (db);
    assert (stored);
    assert (tl_db_in_tx (db));
    memset (stored, 0, sizeof *stored);
    int rc = s_check_key (caller, key);
    if (rc == 0)
        rc = s_check (method, TL_MAX_NAME_LEN);
    if (rc == 0 && !hash)
        rc = TL_EINVAL;
    if (rc == 0)
        rc = s_prepare (db);
    if (rc)
        return rc;

    //  An expired key counts as absent
    char ttl [16];
    snprintf (ttl, sizeof ttl, "%d", TL_IDEM_TTL_HOURS);
    const char *expire [] = { caller, key, ttl };
    PQclear (tl_db_exec (db, "tl_idem_expire", 3, expire, &rc));
    if (rc)
        return rc;

    //  Waits here while another transaction holds an uncommitted claim
    const char *values [] = { caller, key, method, (const char *) hash };
    const int lengths [] = { 0, 0, 0, S_HASH_SIZE };
    const int formats [] = { 0, 0, 0, 1 };
    PGresult *r = tl_db_exec_bin (db, "tl_idem_insert", 4, values, lengths, formats, &rc);
    if (!r)
        return rc;
    bool claimed = strcmp (PQcmdTuples (r), "1") == 0;
    PQclear (r);
    if (claimed)
        return 0;

    r = tl_db_exec_bin (db, "tl_idem_load", 4, values, lengths, formats, &rc);
    if (!r)
        return rc;
    if (PQntuples (r) != 1 || PQnfields (r) != 3)
        rc = TL_ERETRY;             //  purged in between: start over
    else {
        const char *same = tl_db_value (r, 0, 0);
        const char *status = tl_db_value (r, 0, 1);
        if (!same || strcmp (same, "t") != 0)
            rc = TL_EEXIST;
        else
        if (!status)
            rc = TL_EBUSY;
        else
            rc = s_fill (stored, status, tl_db_value (r, 0, 2));
    }
    PQclear (r);
    if (rc != 1)
        tl_idem_stored_reset (stored);
    return rc;
}

int
tl_idem_store (tl_db_t *db, const char *caller, const char *key, int status,
               const void *reply, size_t reply_size)
{
    assert (db);
    assert (tl_db_in_tx (db));
    int rc = s_check_key (caller, key);
    if (rc == 0 && !reply && reply_size > 0)
        rc = TL_EINVAL;
    if (rc == 0 && reply_size > (size_t) TL_MAX_FRAME_BYTES)
        rc = TL_ETOOBIG;
    if (rc == 0)
        rc = s_prepare (db);
    if (rc)
        return rc;
    char code [16];
    snprintf (code, sizeof code, "%d", status);
    const char *values [] = { caller, key, code, (const char *) reply };
    const int lengths [] = { 0, 0, 0, (int) reply_size };
    const int formats [] = { 0, 0, 0, 1 };
    PGresult *r = tl_db_exec_bin (db, "tl_idem_store", 4, values, lengths, formats, &rc);
    if (!r)
        return rc;
    bool updated = strcmp (PQcmdTuples (r), "1") == 0;
    PQclear (r);
    return updated ? 0 : TL_ENOTFOUND;
}

int
tl_idem_purge (tl_db_t *db)
{
    assert (db);
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char ttl [16], batch [16];
    snprintf (ttl, sizeof ttl, "%d", TL_IDEM_TTL_HOURS);
    snprintf (batch, sizeof batch, "%d", TL_IDEM_PURGE_BATCH);
    const char *values [] = { ttl, batch };
    long count = tl_db_exec_count (db, "tl_idem_purge", 2, values);
    return count <= TL_IDEM_PURGE_BATCH ? (int) count : TL_EDB;
}

void
tl_idem_stored_reset (tl_idem_stored_t *stored)
{
    if (!stored)
        return;
    free (stored->reply);
    memset (stored, 0, sizeof *stored);
}

//  ---------------------------------------------------------------------
//  Self-test

#define S_TEST_CALLER "user-1"

//  One request: claim the key, maybe hold the transaction open, store.
typedef struct {
    const char *key;
    const char *method;
    const unsigned char *hash;
    int store_status;           //  0: claim only
    const char *reply;
    size_t reply_size;
    int result;                 //  what the body returns (< 0: roll back)
    int hold_ms;                //  keep the claim uncommitted this long
    atomic_int *claimed_flag;   //  set once the claim is made
    const char *url;            //  the thread's own connection...
    const char *schema;         //  ... and its search_path
    int claimed;                //  out: tl_idem_claim's answer
    int tx;                     //  out: tl_db_tx's answer
    tl_idem_stored_t stored;    //  out
} s_test_t;

static int
s_test_tx (tl_db_t *db, void *arg)
{
    s_test_t *test = (s_test_t *) arg;
    tl_idem_stored_reset (&test->stored);
    test->claimed = tl_idem_claim (db, S_TEST_CALLER, test->key, test->method, test->hash,
                                   &test->stored);
    if (test->claimed_flag)
        atomic_store (test->claimed_flag, 1);
    if (test->hold_ms)
        zclock_sleep (test->hold_ms);
    if (test->claimed == 0 && test->store_status)
        assert (tl_idem_store (db, S_TEST_CALLER, test->key, test->store_status,
                               test->reply, test->reply_size) == 0);
    return test->claimed < 0 ? test->claimed : test->result;
}

static int
s_test_store_unclaimed_tx (tl_db_t *db, void *arg)
{
    return tl_idem_store (db, S_TEST_CALLER, "never-claimed", 200, "x", 1);
}

static void
s_test_run (tl_db_t *db, s_test_t *test)
{
    test->tx = tl_db_tx (db, s_test_tx, test);
}

static void *
s_test_thread (void *arg)
{
    s_test_t *test = (s_test_t *) arg;
    tl_db_t *db = tl_db_new (test->url, test->schema);
    assert (db);
    s_test_run (db, test);
    tl_db_destroy (&db);
    return NULL;
}

static int
s_test_rows (tl_db_t *db, const char *key)
{
    const char *values [] = { key };
    int err = 0;
    PGresult *r = tl_db_query (db, "SELECT count(*) FROM idempotency_keys WHERE key = $1",
                               1, values, &err);
    assert (r);
    int n = atoi (tl_db_value (r, 0, 0));
    PQclear (r);
    return n;
}

static void
s_test_age (tl_db_t *db, const char *key)
{
    char hours [16];
    snprintf (hours, sizeof hours, "%d", TL_IDEM_TTL_HOURS + 1);
    const char *values [] = { key, hours };
    int err = 0;
    PGresult *r = tl_db_query (db, "UPDATE idempotency_keys"
                                   " SET created_at = now() - make_interval(hours => $2::int)"
                                   " WHERE key = $1", 2, values, &err);
    assert (r && strcmp (PQcmdTuples (r), "1") == 0);
    PQclear (r);
}

//  Two claims of one key, the second while the first is uncommitted.
//  Returns how long the second waited, in msec.
static int64_t
s_test_race (tl_db_t *db, const char *url, const char *schema, s_test_t *first,
             s_test_t *second)
{
    atomic_int claimed = 0;
    first->claimed_flag = &claimed;
    first->url = url;
    first->schema = schema;
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_thread, first) == 0);
    while (!atomic_load (&claimed))
        zclock_sleep (5);
    int64_t start = zclock_mono ();
    s_test_run (db, second);
    int64_t waited = zclock_mono () - start;
    pthread_join (thread, NULL);
    return waited;
}

void
tl_idem_test (bool verbose)
{
    char schema [40];
    const char *url = tl_db_test_url ("tl_idem_test", schema, sizeof schema);
    if (!url)
        return;
    tl_db_t *db = tl_db_new (url, schema);
    assert (db);
    assert (tl_migrate (db, schema, NULL) == 0);    //  creates idempotency_keys

    unsigned char hash_a [32], hash_b [32];
    crypto_generichash (hash_a, 32, (const unsigned char *) "request a", 9, NULL, 0);
    crypto_generichash (hash_b, 32, (const unsigned char *) "request b", 9, NULL, 0);
    const char reply [] = "rep\0ly";                //  binary: a NUL inside

    //  A new key: claimed, answered, stored
    s_test_t test = { .key = "k1", .method = "items.create", .hash = hash_a,
                      .store_status = 201, .reply = reply, .reply_size = sizeof reply };
    s_test_run (db, &test);
    assert (test.claimed == 0 && test.tx == 0);
    assert (s_test_rows (db, "k1") == 1);

    //  The same request again: the stored answer, byte for byte
    test = (s_test_t) { .key = "k1", .method = "items.create", .hash = hash_a,
                        .store_status = 201 };
    s_test_run (db, &test);
    assert (test.claimed == 1 && test.tx == 0);
    assert (test.stored.status == 201);
    assert (test.stored.reply_size == sizeof reply);
    assert (memcmp (test.stored.reply, reply, sizeof reply) == 0);
    tl_idem_stored_reset (&test.stored);
    assert (test.stored.reply == NULL && test.stored.reply_size == 0);
    tl_idem_stored_reset (&test.stored);            //  twice is fine

    //  The key with another request or another method: TL_EEXIST
    test = (s_test_t) { .key = "k1", .method = "items.create", .hash = hash_b,
                        .store_status = 201 };
    s_test_run (db, &test);
    assert (test.claimed == TL_EEXIST && test.tx == TL_EEXIST);
    assert (test.stored.reply == NULL);
    test = (s_test_t) { .key = "k1", .method = "items.delete", .hash = hash_a,
                        .store_status = 201 };
    s_test_run (db, &test);
    assert (test.claimed == TL_EEXIST);

    //  A rolled-back transaction leaves no key behind
    test = (s_test_t) { .key = "k2", .method = "items.create", .hash = hash_a,
                        .store_status = 201, .reply = reply, .reply_size = sizeof reply,
                        .result = TL_EINVAL };
    s_test_run (db, &test);
    assert (test.claimed == 0 && test.tx == TL_EINVAL);
    assert (s_test_rows (db, "k2") == 0);
    test = (s_test_t) { .key = "k2", .method = "items.create", .hash = hash_b,
                        .store_status = 200 };
    s_test_run (db, &test);
    assert (test.claimed == 0 && test.tx == 0);
    assert (s_test_rows (db, "k2") == 1);

    //  A concurrent claim waits for the first transaction, then replays
    //  the reply it stored
    s_test_t first = { .key = "k3", .method = "items.create", .hash = hash_a,
                       .store_status = 200, .reply = "first", .reply_size = 5,
                       .hold_ms = 300 };
    s_test_t second = { .key = "k3", .method = "items.create", .hash = hash_a,
                        .store_status = 200, .reply = "second", .reply_size = 6 };
    int64_t waited = s_test_race (db, url, schema, &first, &second);
    assert (first.claimed == 0 && first.tx == 0);
    assert (second.claimed == 1 && second.tx == 0);
    assert (waited >= 200);
    assert (second.stored.status == 200 && second.stored.reply_size == 5);
    assert (memcmp (second.stored.reply, "first", 5) == 0);
    tl_idem_stored_reset (&second.stored);
    //  ... or, if the first rolls back, claims the key itself
    first = (s_test_t) { .key = "k4", .method = "items.create", .hash = hash_a,
                         .store_status = 200, .reply = "first", .reply_size = 5,
                         .result = TL_EINVAL, .hold_ms = 300 };
    second = (s_test_t) { .key = "k4", .method = "items.create", .hash = hash_a,
                          .store_status = 200, .reply = "second", .reply_size = 6 };
    waited = s_test_race (db, url, schema, &first, &second);
    assert (first.claimed == 0 && first.tx == TL_EINVAL);
    assert (second.claimed == 0 && second.tx == 0);
    assert (waited >= 200);

    //  A key committed without a reply: TL_EBUSY
    test = (s_test_t) { .key = "k5", .method = "items.create", .hash = hash_a };
    s_test_run (db, &test);
    assert (test.claimed == 0 && test.tx == 0);
    s_test_run (db, &test);
    assert (test.claimed == TL_EBUSY);

    //  An expired key counts as absent, even for another request
    s_test_age (db, "k1");
    test = (s_test_t) { .key = "k1", .method = "items.create", .hash = hash_b,
                        .store_status = 202, .reply = "new", .reply_size = 3 };
    s_test_run (db, &test);
    assert (test.claimed == 0 && test.tx == 0);
    test = (s_test_t) { .key = "k1", .method = "items.create", .hash = hash_b,
                        .store_status = 202 };
    s_test_run (db, &test);
    assert (test.claimed == 1 && test.stored.status == 202);
    tl_idem_stored_reset (&test.stored);

    //  Purge: the expired rows, and only those
    s_test_age (db, "k2");
    s_test_age (db, "k3");
    assert (tl_idem_purge (db) == 2);
    assert (s_test_rows (db, "k2") == 0 && s_test_rows (db, "k3") == 0);
    assert (s_test_rows (db, "k1") == 1 && s_test_rows (db, "k4") == 1);
    assert (tl_idem_purge (db) == 0);

    //  Storing needs a claim
    assert (tl_db_tx (db, s_test_store_unclaimed_tx, NULL) == TL_ENOTFOUND);

    //  Arguments
    char long_key [TL_MAX_IDEM_KEY_LEN + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    test = (s_test_t) { .key = long_key, .method = "items.create", .hash = hash_a,
                        .store_status = 200 };
    s_test_run (db, &test);
    assert (test.claimed == TL_ETOOBIG);
    test = (s_test_t) { .key = "", .method = "items.create", .hash = hash_a,
                        .store_status = 200 };
    s_test_run (db, &test);
    assert (test.claimed == TL_EINVAL);

    tl_db_test_drop (db, schema);
    tl_db_destroy (&db);
    if (verbose)
        printf ("(schema %s) ", schema);
}
