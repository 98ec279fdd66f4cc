//  tl_migrate.c — applies a service's ordered SQL files to its schema, once
//  each, under an advisory lock, in one transaction. See tl_migrate.h.
#include "tl_migrate.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

//  The runtime's own tables, created in every service schema before the
//  service's files. Their versions cannot clash with a file's name.
typedef struct {
    const char *version;
    const char *sql;
} s_runtime_t;

static const s_runtime_t s_runtime [] = {
    {   "tally_runtime_001_idempotency_keys",
        //  tl_idem.c: one row per (caller, key); status and reply are NULL
        //  until the handler's answer is stored in the same transaction.
        "CREATE TABLE IF NOT EXISTS idempotency_keys (\n"
        "    caller       text NOT NULL,\n"
        "    key          text NOT NULL,\n"
        "    method       text NOT NULL,\n"
        "    request_hash bytea NOT NULL,\n"
        "    status       int,\n"
        "    reply        bytea,\n"
        "    created_at   timestamptz NOT NULL DEFAULT now(),\n"
        "    PRIMARY KEY (caller, key)\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS idempotency_keys_created_at\n"
        "    ON idempotency_keys (created_at);\n"
    },
    {   "tally_runtime_002_jobs",
        //  tl_jobs.c: durable jobs. A job is due while done_at and dead_at
        //  are NULL and run_at has come; locked_until is its lease.
        "CREATE TABLE IF NOT EXISTS jobs (\n"
        "    id           bigserial PRIMARY KEY,\n"
        "    kind         text NOT NULL,\n"
        "    payload      bytea,\n"
        "    unique_key   text UNIQUE,\n"
        "    run_at       timestamptz NOT NULL DEFAULT now(),\n"
        "    attempts     int NOT NULL DEFAULT 0,\n"
        "    max_attempts int NOT NULL,\n"
        "    last_error   text,\n"
        "    locked_until timestamptz,\n"
        "    locked_by    text,\n"
        "    done_at      timestamptz,\n"
        "    dead_at      timestamptz,\n"
        "    created_at   timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at, id)\n"
        "    WHERE done_at IS NULL AND dead_at IS NULL;\n"
        "CREATE INDEX IF NOT EXISTS jobs_done_at ON jobs (done_at)\n"
        "    WHERE done_at IS NOT NULL AND unique_key IS NULL;\n"
    },
    {   "tally_runtime_003_events",
        //  tl_event.c: the publisher's outbox (a row per event and
        //  subscribing service, delivered in order per subscriber and
        //  subject) and the subscriber's record of what it handled.
        "CREATE TABLE IF NOT EXISTS event_outbox (\n"
        "    id           bigserial PRIMARY KEY,\n"
        "    event        text NOT NULL,\n"
        "    subject      text NOT NULL,\n"
        "    subscriber   text NOT NULL,\n"
        "    body         bytea,\n"
        "    created_at   timestamptz NOT NULL DEFAULT now(),\n"
        "    delivered_at timestamptz\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS event_outbox_pending\n"
        "    ON event_outbox (subscriber, subject, id) WHERE delivered_at IS NULL;\n"
        "CREATE INDEX IF NOT EXISTS event_outbox_delivered\n"
        "    ON event_outbox (delivered_at) WHERE delivered_at IS NOT NULL;\n"
        "CREATE TABLE IF NOT EXISTS event_inbox (\n"
        "    publisher    text NOT NULL,\n"
        "    id           bigint NOT NULL,\n"
        "    event        text NOT NULL,\n"
        "    received_at  timestamptz NOT NULL DEFAULT now(),\n"
        "    PRIMARY KEY (publisher, id)\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS event_inbox_received ON event_inbox (received_at);\n"
    },
    { NULL, NULL }
};

typedef struct {
    const char *schema;
    char *path;                 //  search_path value: "<schema>", public
    char *create;               //  CREATE SCHEMA IF NOT EXISTS "<schema>"
    const tl_embed_t **files;   //  in version order
    int nfiles;
    bool nested;                //  tl_migrate was called inside a transaction
    int applied;                //  files applied by this run
} s_ctx_t;

//  True for [0-9]{3,}_[a-z0-9_]+\.sql within TL_DB_MAX_MIGRATION_NAME.
static bool
s_valid_name (const char *name)
{
    if (strlen (name) > TL_DB_MAX_MIGRATION_NAME)
        return false;
    size_t i = 0;
    while (name [i] >= '0' && name [i] <= '9')
        i++;
    if (i < 3 || name [i] != '_')
        return false;
    size_t start = ++i;
    while ((name [i] >= 'a' && name [i] <= 'z') || (name [i] >= '0' && name [i] <= '9')
    ||      name [i] == '_')
        i++;
    return i > start && strcmp (name + i, ".sql") == 0;
}

//  Orders file names by the number they start with, then by name.
static int
s_compare (const void *a, const void *b)
{
    const char *x = (*(const tl_embed_t *const *) a)->name;
    const char *y = (*(const tl_embed_t *const *) b)->name;
    const char *dx = x, *dy = y;
    while (*dx == '0' && dx [1] >= '0' && dx [1] <= '9')
        dx++;
    while (*dy == '0' && dy [1] >= '0' && dy [1] <= '9')
        dy++;
    size_t nx = strspn (dx, "0123456789");
    size_t ny = strspn (dy, "0123456789");
    if (nx != ny)
        return nx < ny ? -1 : 1;
    int rc = memcmp (dx, dy, nx);
    return rc ? rc : strcmp (x, y);
}

static bool
s_is_applied (const PGresult *done, const char *version)
{
    for (int row = 0; row < PQntuples (done); row++) {
        const char *value = tl_db_value (done, row, 0);
        if (value && strcmp (value, version) == 0)
            return true;
    }
    return false;
}

//  Runs one statement for its effect; returns 0 or its code.
static int
s_run (tl_db_t *db, const char *sql, int nparams, const char *const *values)
{
    int rc = 0;
    PQclear (tl_db_query (db, sql, nparams, values, &rc));
    return rc;
}

static int
s_set_path (tl_db_t *db, s_ctx_t *ctx)
{
    const char *values [] = { ctx->path };
    return s_run (db, "SELECT set_config('search_path', $1, true)", 1, values);
}

//  Applies one script and records its version.
static int
s_apply (tl_db_t *db, s_ctx_t *ctx, const char *version, const char *sql)
{
    int rc = s_set_path (db, ctx);
    if (rc == 0)
        rc = tl_db_script (db, sql);
    if (rc == 0 && PQtransactionStatus (tl_db_conn (db)) != PQTRANS_INTRANS) {
        tl_log (TL_LOG_ERROR, NULL, "migration %s of schema %s ended the transaction:"
                " COMMIT and ROLLBACK do not belong in migrations", version, ctx->schema);
        return TL_EINVAL;
    }
    if (rc == 0)
        rc = s_set_path (db, ctx);      //  the script may have changed it
    if (rc == 0) {
        const char *values [] = { version };
        rc = s_run (db, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, values);
    }
    if (rc)
        tl_log (TL_LOG_ERROR, NULL, "migration %s of schema %s failed: %s: %s",
                version, ctx->schema, tl_strerror (rc), tl_db_errmsg (db));
    return rc;
}

static int
s_migrate_tx (tl_db_t *db, void *arg)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    ctx->applied = 0;           //  a retried transaction starts over
    const char *values [] = { ctx->schema };
    //  READ COMMITTED: after waiting for the lock, each statement sees what
    //  the instance that held it committed. No statement timeout: a file
    //  may index or fill a large table (minutes, not the requests' 5 s),
    //  and the instances that wait for the lock wait as long. Inside the
    //  caller's transaction, both are the caller's.
    int rc = ctx->nested
           ? 0 : s_run (db, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", 0, NULL);
    if (rc == 0 && !ctx->nested)
        rc = s_run (db, "SET LOCAL statement_timeout = 0", 0, NULL);
    if (rc == 0)
        rc = s_run (db, "SELECT pg_advisory_xact_lock(hashtext('tally.migrate.' || $1))",
                    1, values);
    if (rc == 0)
        rc = s_run (db, ctx->create, 0, NULL);
    if (rc == 0)
        rc = s_set_path (db, ctx);
    if (rc == 0)
        rc = s_run (db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version text PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL);
    PGresult *done = NULL;
    if (rc == 0)
        done = tl_db_query (db, "SELECT version FROM schema_migrations", 0, NULL, &rc);
    if (rc) {
        tl_log (TL_LOG_ERROR, NULL, "cannot prepare schema %s for migrations: %s: %s",
                ctx->schema, tl_strerror (rc), tl_db_errmsg (db));
        return rc;
    }
    for (const s_runtime_t *step = s_runtime; step->version && rc == 0; step++)
        if (!s_is_applied (done, step->version))
            rc = s_apply (db, ctx, step->version, step->sql);
    for (int i = 0; i < ctx->nfiles && rc == 0; i++) {
        const tl_embed_t *file = ctx->files [i];
        if (!s_is_applied (done, file->name)) {
            rc = s_apply (db, ctx, file->name, file->data);
            if (rc == 0) {
                ctx->applied++;
                tl_log (TL_LOG_INFO, NULL, "schema %s: applied %s", ctx->schema, file->name);
            }
        }
    }
    PQclear (done);
    return rc;
}

//  Checks the files and sorts them into ctx->files.
static int
s_load_files (s_ctx_t *ctx, const tl_embed_t *files)
{
    int count = 0;
    while (files && files [count].name) {
        if (++count > TL_MAX_MIGRATIONS) {
            tl_log (TL_LOG_ERROR, NULL, "schema %s: more than %d migrations",
                    ctx->schema, TL_MAX_MIGRATIONS);
            return TL_ETOOBIG;
        }
    }
    ctx->files = (const tl_embed_t **) calloc ((size_t) count + 1, sizeof (tl_embed_t *));
    if (!ctx->files)
        return TL_ENOMEM;
    for (int i = 0; i < count; i++) {
        const tl_embed_t *file = &files [i];
        if (!s_valid_name (file->name)) {
            tl_log (TL_LOG_ERROR, NULL, "schema %s: migration name %.*s is not"
                    " NNN_name.sql ([0-9]{3,}_[a-z0-9_]+\\.sql)", ctx->schema,
                    TL_DB_MAX_MIGRATION_NAME, file->name);
            return TL_EINVAL;
        }
        if (!file->data || strlen (file->data) != file->size) {
            tl_log (TL_LOG_ERROR, NULL, "schema %s: migration %s is not text"
                    " (missing, or a NUL byte inside)", ctx->schema, file->name);
            return TL_EINVAL;
        }
        ctx->files [i] = file;
    }
    ctx->nfiles = count;
    qsort (ctx->files, (size_t) count, sizeof (tl_embed_t *), s_compare);
    for (int i = 1; i < count; i++)
        if (strcmp (ctx->files [i - 1]->name, ctx->files [i]->name) == 0) {
            tl_log (TL_LOG_ERROR, NULL, "schema %s: migration %s is listed twice",
                    ctx->schema, ctx->files [i]->name);
            return TL_EINVAL;
        }
    return 0;
}

int
tl_migrate (tl_db_t *db, const char *schema, const tl_embed_t *files)
{
    assert (db);
    if (!schema || !*schema || strlen (schema) > TL_DB_MAX_IDENT) {
        tl_log (TL_LOG_ERROR, NULL, "tl_migrate: bad schema name");
        return TL_EINVAL;
    }
    s_ctx_t ctx = { .schema = schema, .nested = tl_db_in_tx (db) };
    int rc = s_load_files (&ctx, files);
    char *quoted = NULL;
    if (rc == 0) {
        quoted = PQescapeIdentifier (tl_db_conn (db), schema, strlen (schema));
        if (!quoted) {
            tl_log (TL_LOG_ERROR, NULL, "tl_migrate: cannot quote schema name: %s",
                    PQerrorMessage (tl_db_conn (db)));
            rc = TL_EINVAL;
        }
    }
    if (rc == 0) {
        size_t size = strlen (quoted) + 64;
        ctx.path = (char *) malloc (size);
        ctx.create = (char *) malloc (size);
        if (ctx.path && ctx.create) {
            snprintf (ctx.path, size, "%s, public", quoted);
            snprintf (ctx.create, size, "CREATE SCHEMA IF NOT EXISTS %s", quoted);
        }
        else
            rc = TL_ENOMEM;
    }
    if (rc == 0)
        rc = tl_db_tx (db, s_migrate_tx, &ctx);
    if (quoted)
        PQfreemem (quoted);
    free (ctx.path);
    free (ctx.create);
    free (ctx.files);
    return rc == 0 ? ctx.applied : rc;
}

//  ---------------------------------------------------------------------
//  Self-test

#define S_TEST_THREADS 3

typedef struct {
    const char *url;
    const char *schema;
    const tl_embed_t *files;
    int result;
} s_test_racer_t;

static void *
s_test_racer (void *arg)
{
    s_test_racer_t *racer = (s_test_racer_t *) arg;
    tl_db_t *db = tl_db_new (racer->url, NULL);
    assert (db);
    racer->result = tl_migrate (db, racer->schema, racer->files);
    tl_db_destroy (&db);
    return NULL;
}

static bool
s_test_table (tl_db_t *db, const char *schema, const char *table)
{
    const char *values [] = { schema, table };
    int err = 0;
    PGresult *r = tl_db_query (db, "SELECT count(*) FROM pg_tables"
                                   " WHERE schemaname = $1 AND tablename = $2",
                               2, values, &err);
    assert (r);
    bool found = strcmp (tl_db_value (r, 0, 0), "1") == 0;
    PQclear (r);
    return found;
}

#define S_FILE(name, text) { name, text, sizeof (text) - 1 }

void
tl_migrate_test (bool verbose)
{
    char schema [40];
    const char *url = tl_db_test_url ("tl_migrate_test", schema, sizeof schema);
    if (!url)
        return;
    tl_db_t *db = tl_db_new (url, schema);
    assert (db);

    //  Names: the pattern, and nothing else
    const tl_embed_t bad_names [][2] = {
        { S_FILE ("1_init.sql", "SELECT 1"), { 0 } },
        { S_FILE ("001-init.sql", "SELECT 1"), { 0 } },
        { S_FILE ("001_Init.sql", "SELECT 1"), { 0 } },
        { S_FILE ("001_.sql", "SELECT 1"), { 0 } },
        { S_FILE ("001_init.sql.bak", "SELECT 1"), { 0 } },
        { S_FILE ("init.sql", "SELECT 1"), { 0 } },
        { S_FILE ("001_a/b.sql", "SELECT 1"), { 0 } },
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names [0]; i++)
        assert (tl_migrate (db, schema, bad_names [i]) == TL_EINVAL);
    const tl_embed_t twice [] = {
        S_FILE ("001_a.sql", "SELECT 1"), S_FILE ("001_a.sql", "SELECT 1"), { 0 }
    };
    assert (tl_migrate (db, schema, twice) == TL_EINVAL);
    const tl_embed_t nul_inside [] = { { "001_a.sql", "SELECT 1\0x", 10 }, { 0 } };
    assert (tl_migrate (db, schema, nul_inside) == TL_EINVAL);
    tl_embed_t *many = (tl_embed_t *) calloc (TL_MAX_MIGRATIONS + 2, sizeof (tl_embed_t));
    assert (many);
    for (int i = 0; i < TL_MAX_MIGRATIONS + 1; i++)
        many [i] = (tl_embed_t) S_FILE ("001_a.sql", "SELECT 1");
    assert (tl_migrate (db, schema, many) == TL_ETOOBIG);
    free (many);
    assert (tl_migrate (db, "", NULL) == TL_EINVAL);
    //  none of that touched the database
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                          schema) == 0);

    //  Instances starting together: each file applied exactly once. The
    //  files are not idempotent (a second CREATE TABLE would fail, a second
    //  INSERT would show), and the last one sleeps to widen the race.
    const tl_embed_t files [] = {
        S_FILE ("003_slow.sql", "SELECT pg_sleep(0.2);\n"
                                "INSERT INTO items (id, name) VALUES (3, 'c');\n"),
        S_FILE ("001_init.sql", "-- the first table\n"
                                "CREATE TABLE items (id int PRIMARY KEY, name text);\n"
                                "INSERT INTO items VALUES (1, 'a');\n"),
        S_FILE ("002_note.sql", "ALTER TABLE items ADD COLUMN note text;\n"
                                "INSERT INTO items VALUES (2, 'b', 'x');\n"),
        { 0 }
    };
    pthread_t threads [S_TEST_THREADS];
    s_test_racer_t racers [S_TEST_THREADS];
    for (int i = 0; i < S_TEST_THREADS; i++) {
        racers [i] = (s_test_racer_t) { url, schema, files, -100 };
        assert (pthread_create (&threads [i], NULL, s_test_racer, &racers [i]) == 0);
    }
    int total = 0;
    for (int i = 0; i < S_TEST_THREADS; i++) {
        pthread_join (threads [i], NULL);
        assert (racers [i].result >= 0);
        total += racers [i].result;
    }
    assert (total == 3);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM items", NULL) == 3);
    int runtime = (int) (sizeof s_runtime / sizeof s_runtime [0]) - 1;
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM schema_migrations", NULL) == 3 + runtime);
    assert (s_test_table (db, schema, "idempotency_keys"));
    assert (s_test_table (db, schema, "jobs"));
    assert (s_test_table (db, schema, "schema_migrations"));
    assert (!s_test_table (db, "public", "items"));

    //  Up to date: nothing to do
    assert (tl_migrate (db, schema, files) == 0);
    assert (tl_migrate (db, schema, NULL) == 0);

    //  Version order is numeric: 999 runs before 1000, which needs it
    const tl_embed_t ordered [] = {
        files [0], files [1], files [2],
        S_FILE ("1000_second.sql", "INSERT INTO later VALUES ('second');"),
        S_FILE ("999_first.sql", "CREATE TABLE later (x text);"),
        { 0 }
    };
    assert (tl_migrate (db, schema, ordered) == 2);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM later", NULL) == 1);

    //  A failing file rolls back the whole run, earlier files included
    const tl_embed_t failing [] = {
        S_FILE ("1001_fine.sql", "CREATE TABLE fine (x int);"),
        S_FILE ("1002_broken.sql", "CREATE TABLE broken (x int);\nSELEKT 1;"),
        { 0 }
    };
    assert (tl_migrate (db, schema, failing) == TL_EDB);
    assert (!s_test_table (db, schema, "fine"));
    assert (!s_test_table (db, schema, "broken"));
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM schema_migrations"
                              " WHERE version = $1", "1001_fine.sql") == 0);

    //  A file may take longer than the statement timeout (an index over a
    //  large table); the connection's timeout holds again after
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM (SELECT set_config"
                                   " ('statement_timeout', '100', false)) s", NULL) == 1);
    const tl_embed_t long_file [] = { S_FILE ("2000_long.sql", "SELECT pg_sleep(0.3);"), { 0 } };
    assert (tl_migrate (db, schema, long_file) == 1);
    int err = 0;
    PGresult *timeout = tl_db_query (db, "SHOW statement_timeout", 0, NULL, &err);
    assert (timeout && strcmp (tl_db_value (timeout, 0, 0), "100ms") == 0);
    PQclear (timeout);
    char restored [32];
    snprintf (restored, sizeof restored, "%d", TL_DB_STATEMENT_TIMEOUT_MS);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM (SELECT set_config"
                                   " ('statement_timeout', $1, false)) s", restored) == 1);

    //  A fresh schema with no files still gets the runtime's tables
    char other [48];
    snprintf (other, sizeof other, "%s_b", schema);
    assert (tl_migrate (db, other, NULL) == 0);
    assert (s_test_table (db, other, "idempotency_keys"));

    //  A file that commits is refused (what it committed stays: the
    //  transaction is gone by the time we can see it)
    const tl_embed_t committing [] = { S_FILE ("1003_commit.sql", "COMMIT;"), { 0 } };
    assert (tl_migrate (db, other, committing) == TL_EINVAL);
    assert (tl_db_ping (db));

    const char *schemas [] = { schema, other };
    for (int i = 0; i < 2; i++)
        tl_db_test_drop (db, schemas [i]);
    tl_db_destroy (&db);
    if (verbose)
        printf ("(schema %s) ", schema);
}
