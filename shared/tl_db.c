//  tl_db.c — one PostgreSQL connection: session set-up, prepared statements
//  that are re-prepared after a reconnect, SQLSTATEs mapped to tl_error_t
//  codes, and transactions retried on serialization failures. See tl_db.h.
#include "tl_db.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

//  One savepoint name serves every level: PostgreSQL keeps savepoints of the
//  same name stacked, and ROLLBACK TO / RELEASE act on the innermost one.
#define S_SAVEPOINT             "tl_db_sp"

typedef struct {
    char *name;
    char *sql;
    int nparams;
} s_stmt_t;

//  Work that waits for the transaction's commit.
typedef struct {
    tl_db_commit_fn *fn;
    void *arg;
    tl_db_free_fn *free_fn;
    int depth;                  //  the level it was registered at
} s_hook_t;

struct _tl_db_t {
    PGconn *conn;
    char *schema;               //  head of search_path, or NULL
    bool ready;                 //  session settings applied on this connection
    int depth;                  //  0 outside tl_db_tx; 1 + savepoint levels
    bool lost;                  //  the connection died inside the transaction
    int tx_error;               //  first failure in the transaction, or 0
    int nstmts;
    s_stmt_t stmts [TL_DB_MAX_PREPARED];
    const tl_db_statement_t *tables [TL_DB_MAX_TABLES];    //  fully prepared
    int ntables;
    char errmsg [TL_DB_MAX_ERRMSG];
    s_hook_t hooks [TL_DB_MAX_COMMIT_HOOKS];  //  tl_db_after_commit, in order
    int nhooks;
};

static void s_hooks_end (tl_db_t *self, int depth, bool run);

//  How s_run sends a statement.
typedef enum { S_PREPARED, S_PARAMS, S_SIMPLE, S_PREPARE } s_kind_t;

typedef struct {
    s_kind_t kind;
    const char *name;           //  S_PREPARED, S_PREPARE
    const char *sql;            //  S_PARAMS, S_SIMPLE, S_PREPARE
    int nparams;
    const char *const *values;
    const int *lengths;
    const int *formats;
} s_call_t;

static int s_setup (tl_db_t *self);

//  ---------------------------------------------------------------------
//  Errors

//  Copies `text` into errmsg as one line: newlines and tabs become spaces,
//  runs of spaces one space.
static void
s_set_errmsg (tl_db_t *self, const char *text)
{
    size_t n = 0;
    for (const char *c = text ? text : ""; *c && n + 1 < sizeof self->errmsg; c++) {
        char ch = (*c == '\n' || *c == '\r' || *c == '\t') ? ' ' : *c;
        if (ch != ' ' || (n > 0 && self->errmsg [n - 1] != ' '))
            self->errmsg [n++] = ch;
    }
    while (n > 0 && self->errmsg [n - 1] == ' ')
        n--;
    self->errmsg [n] = 0;
}

//  The tl_error_t code for a SQLSTATE (NULL when the server sent none).
static int
s_code_for (const char *state)
{
    if (!state || strlen (state) != 5)
        return TL_EDB;
    if (strcmp (state, "40001") == 0 || strcmp (state, "40P01") == 0)
        return TL_ERETRY;
    if (strcmp (state, "23505") == 0)
        return TL_EEXIST;
    if (strncmp (state, "22", 2) == 0 || strncmp (state, "23", 2) == 0)
        return TL_EINVAL;
    if (strcmp (state, "57014") == 0)
        return TL_ETIMEDOUT;
    if (strncmp (state, "08", 2) == 0 || strncmp (state, "57P0", 4) == 0)
        return TL_EUNAVAIL;
    return TL_EDB;
}

//  Records the failure described by `r` (may be NULL) and returns its code.
static int
s_fail (tl_db_t *self, const PGresult *r)
{
    const char *state = r ? PQresultErrorField (r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField (r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int code = s_code_for (state);
    if (primary) {
        const char *detail = PQresultErrorField (r, PG_DIAG_MESSAGE_DETAIL);
        char text [TL_DB_MAX_ERRMSG];
        snprintf (text, sizeof text, "%s: %s%s%s%s", state ? state : "?????", primary,
                  detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
        s_set_errmsg (self, text);
    }
    else
    if (r && PQresultStatus (r) == PGRES_EMPTY_QUERY) {
        s_set_errmsg (self, "empty query");
        code = TL_EINVAL;
    }
    else
    if (r && PQresultStatus (r) != PGRES_FATAL_ERROR) {
        char text [64];
        snprintf (text, sizeof text, "unexpected result: %s",
                  PQresStatus (PQresultStatus (r)));
        s_set_errmsg (self, text);
    }
    else {
        const char *text = PQerrorMessage (self->conn);
        s_set_errmsg (self, text && *text ? text : "unknown database error");
    }
    if (PQstatus (self->conn) != CONNECTION_OK)
        code = TL_EUNAVAIL;
    if (self->depth > 0 && self->tx_error == 0)
        self->tx_error = code;
    return code;
}

//  Notices and warnings from the server go to the log, not to stderr raw.
static void
s_notice (void *arg, const PGresult *r)
{
    const char *severity = PQresultErrorField (r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *primary = PQresultErrorField (r, PG_DIAG_MESSAGE_PRIMARY);
    bool warning = severity && strcmp (severity, "WARNING") == 0;
    tl_log (warning ? TL_LOG_WARN : TL_LOG_DEBUG, NULL, "database %s: %s",
            severity ? severity : "NOTICE", primary ? primary : "");
}

//  ---------------------------------------------------------------------
//  Sending statements

static s_stmt_t *
s_find (tl_db_t *self, const char *name)
{
    for (int i = 0; i < self->nstmts; i++)
        if (strcmp (self->stmts [i].name, name) == 0)
            return &self->stmts [i];
    return NULL;
}

static bool
s_server_in_tx (tl_db_t *self)
{
    PGTransactionStatusType status = PQtransactionStatus (self->conn);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
        || status == PQTRANS_ACTIVE;
}

static PGresult *
s_send (tl_db_t *self, const s_call_t *call)
{
    switch (call->kind) {
        case S_PREPARED:
            return PQexecPrepared (self->conn, call->name, call->nparams, call->values,
                                   call->lengths, call->formats, 0);
        case S_PARAMS:
            return PQexecParams (self->conn, call->sql, call->nparams, NULL, call->values,
                                 call->lengths, call->formats, 0);
        case S_SIMPLE:
            return PQexec (self->conn, call->sql);
        case S_PREPARE:
            return PQprepare (self->conn, call->name, call->sql, call->nparams, NULL);
    }
    return NULL;
}

//  After a result in COPY state (which tl_db does not support), brings the
//  connection back to idle so that the next statement can run.
static void
s_drain (tl_db_t *self, const PGresult *r)
{
    ExecStatusType status = r ? PQresultStatus (r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COPY_IN)
        PQputCopyEnd (self->conn, "COPY is not supported by tl_db");
    else
    if (status == PGRES_COPY_OUT) {
        char *buffer = NULL;
        while (PQgetCopyData (self->conn, &buffer, 0) > 0) {
            PQfreemem (buffer);
            buffer = NULL;
        }
    }
    else
        return;
    PGresult *rest;
    while ((rest = PQgetResult (self->conn)))
        PQclear (rest);
}

//  Re-establishes the connection and the session (settings, statements).
static int
s_reconnect (tl_db_t *self)
{
    self->ready = false;
    PQreset (self->conn);
    if (PQstatus (self->conn) != CONNECTION_OK) {
        s_set_errmsg (self, PQerrorMessage (self->conn));
        tl_log (TL_LOG_ERROR, NULL, "cannot reconnect to the database: %s", self->errmsg);
        return TL_EUNAVAIL;
    }
    int rc = s_setup (self);
    if (rc == 0)
        tl_log (TL_LOG_INFO, NULL, "reconnected to the database");
    return rc;
}

//  Sends one statement. Outside a transaction, a lost connection is
//  re-established and the statement sent once more. Returns a successful
//  result, or NULL with *err set.
static PGresult *
s_run (tl_db_t *self, const s_call_t *call, int *err)
{
    PGresult *r = NULL;
    int code = 0;
    bool in_tx = self->depth > 0 || s_server_in_tx (self);
    if (self->depth > 0 && self->lost) {
        s_set_errmsg (self, "the connection was lost inside this transaction");
        code = TL_EUNAVAIL;
    }
    else
    if (!in_tx && (PQstatus (self->conn) != CONNECTION_OK || !self->ready))
        code = s_reconnect (self);

    for (int attempt = 0; code == 0; attempt++) {
        r = s_send (self, call);
        ExecStatusType status = r ? PQresultStatus (r) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK
        || (status == PGRES_EMPTY_QUERY && call->kind == S_SIMPLE))
            break;
        code = s_fail (self, r);
        s_drain (self, r);
        PQclear (r);
        r = NULL;
        if (PQstatus (self->conn) == CONNECTION_OK)
            break;
        if (in_tx)
            self->lost = self->depth > 0;
        else
        if (attempt == 0) {
            tl_log (TL_LOG_WARN, NULL, "database connection lost (%s); reconnecting",
                    self->errmsg);
            code = s_reconnect (self);
        }
    }
    if (err)
        *err = code;
    return r;
}

//  Runs a constant statement without parameters; returns 0 or its code.
static int
s_command (tl_db_t *self, const char *sql)
{
    s_call_t call = { S_PARAMS, NULL, sql, 0, NULL, NULL, NULL };
    int code = 0;
    PQclear (s_run (self, &call, &code));
    return code;
}

//  Applies the session settings and prepares every registered statement
//  on a fresh connection.
static int
s_setup (tl_db_t *self)
{
    char timeout [16];
    snprintf (timeout, sizeof timeout, "%d", TL_DB_STATEMENT_TIMEOUT_MS);
    char *path = NULL;
    if (self->schema) {
        char *quoted = PQescapeIdentifier (self->conn, self->schema, strlen (self->schema));
        if (!quoted) {
            s_set_errmsg (self, PQerrorMessage (self->conn));
            return TL_EINVAL;
        }
        size_t size = strlen (quoted) + sizeof ", public";
        path = malloc (size);
        if (path)
            snprintf (path, size, "%s, public", quoted);
        PQfreemem (quoted);
        if (!path)
            return TL_ENOMEM;
    }
    const char *values [2] = { timeout, path };
    PGresult *r = PQexecParams (self->conn, path
        ? "SELECT set_config('statement_timeout', $1, false),"
          " set_config('search_path', $2, false)"
        : "SELECT set_config('statement_timeout', $1, false)",
        path ? 2 : 1, NULL, values, NULL, NULL, 0);
    free (path);
    int code = 0;
    if (PQresultStatus (r) != PGRES_TUPLES_OK)
        code = s_fail (self, r);
    PQclear (r);
    if (code)
        return code;

    for (int i = 0; i < self->nstmts; i++) {
        s_stmt_t *stmt = &self->stmts [i];
        r = PQprepare (self->conn, stmt->name, stmt->sql, stmt->nparams, NULL);
        if (PQresultStatus (r) != PGRES_COMMAND_OK) {
            code = s_fail (self, r);
            if (code != TL_EUNAVAIL) {
                tl_log (TL_LOG_WARN, NULL, "statement %s not prepared again: %s",
                        stmt->name, self->errmsg);
                code = 0;       //  only that statement fails, when run
            }
        }
        PQclear (r);
        if (code)
            return code;
    }
    self->ready = true;
    return 0;
}

//  ---------------------------------------------------------------------
//  Public API

tl_db_t *
tl_db_new (const char *url, const char *schema)
{
    if (sodium_init () < 0)
        return NULL;
    tl_db_t *self = (tl_db_t *) calloc (1, sizeof (tl_db_t));
    if (!self)
        return NULL;
    if (schema && !(self->schema = strdup (schema))) {
        free (self);
        return NULL;
    }
    char appname [64];
    snprintf (appname, sizeof appname, "tally%s%s", schema ? "-" : "", schema ? schema : "");
    char timeout [16];
    snprintf (timeout, sizeof timeout, "%d", TL_DB_CONNECT_TIMEOUT_SEC);
    //  dbname last: what the URL sets wins over our defaults
    const char *keys [] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
    const char *values [] = { timeout, appname, url ? url : "", NULL };
    self->conn = PQconnectdbParams (keys, values, 1);
    if (!self->conn) {
        tl_log (TL_LOG_ERROR, NULL, "cannot connect to the database: out of memory");
        tl_db_destroy (&self);
        return NULL;
    }
    if (PQstatus (self->conn) != CONNECTION_OK) {
        s_set_errmsg (self, PQerrorMessage (self->conn));
        tl_log (TL_LOG_ERROR, NULL, "cannot connect to the database: %s", self->errmsg);
        tl_db_destroy (&self);
        return NULL;
    }
    PQsetNoticeReceiver (self->conn, s_notice, NULL);
    if (s_setup (self) != 0) {
        tl_log (TL_LOG_ERROR, NULL, "cannot set up the database session: %s", self->errmsg);
        tl_db_destroy (&self);
        return NULL;
    }
    return self;
}

void
tl_db_destroy (tl_db_t **self_p)
{
    assert (self_p);
    tl_db_t *self = *self_p;
    if (!self)
        return;
    s_hooks_end (self, 0, false);
    if (self->conn)
        PQfinish (self->conn);
    for (int i = 0; i < self->nstmts; i++) {
        free (self->stmts [i].name);
        free (self->stmts [i].sql);
    }
    free (self->schema);
    free (self);
    *self_p = NULL;
}

int
tl_db_prepare_all (tl_db_t *self, const tl_db_statement_t *table, size_t count)
{
    assert (self);
    for (int i = 0; i < self->ntables; i++)
        if (self->tables [i] == table)
            return 0;
    for (size_t i = 0; i < count; i++) {
        int rc = tl_db_prepare (self, table [i].name, table [i].sql, table [i].nparams);
        if (rc != 0 && rc != TL_EEXIST)
            return rc;
    }
    if (self->ntables < TL_DB_MAX_TABLES)
        self->tables [self->ntables++] = table;
    return 0;
}

int
tl_db_prepare (tl_db_t *self, const char *name, const char *sql, int nparams)
{
    assert (self);
    if (!name || !*name || !sql || nparams < 0)
        return TL_EINVAL;
    if (strlen (name) > TL_DB_MAX_IDENT || nparams > TL_DB_MAX_PARAMS)
        return TL_ETOOBIG;
    if (s_find (self, name))
        return TL_EEXIST;
    if (self->nstmts >= TL_DB_MAX_PREPARED)
        return TL_ETOOBIG;
    s_stmt_t stmt = { strdup (name), strdup (sql), nparams };
    if (!stmt.name || !stmt.sql) {
        free (stmt.name);
        free (stmt.sql);
        return TL_ENOMEM;
    }
    s_call_t call = { S_PREPARE, stmt.name, stmt.sql, nparams, NULL, NULL, NULL };
    int code = 0;
    PQclear (s_run (self, &call, &code));
    if (code) {
        free (stmt.name);
        free (stmt.sql);
        return code;
    }
    self->stmts [self->nstmts++] = stmt;
    return 0;
}

//  Checks the parameter list of a public call; sets errmsg.
static int
s_check_params (tl_db_t *self, int nparams, const char *const *values)
{
    if (nparams < 0 || (nparams > 0 && !values)) {
        s_set_errmsg (self, "bad parameter list");
        return TL_EINVAL;
    }
    if (nparams > TL_DB_MAX_PARAMS) {
        s_set_errmsg (self, "too many parameters");
        return TL_ETOOBIG;
    }
    return 0;
}

PGresult *
tl_db_exec_bin (tl_db_t *self, const char *name, int nparams,
                const char *const *values, const int *lengths,
                const int *formats, int *err)
{
    assert (self);
    int code = s_check_params (self, nparams, values);
    s_stmt_t *stmt = name ? s_find (self, name) : NULL;
    if (code == 0 && !stmt) {
        char text [TL_DB_MAX_IDENT + 64];
        snprintf (text, sizeof text, "no prepared statement \"%.*s\"",
                  TL_DB_MAX_IDENT, name ? name : "");
        s_set_errmsg (self, text);
        code = TL_ENOTFOUND;
    }
    else
    if (code == 0 && stmt->nparams != nparams) {
        char text [TL_DB_MAX_IDENT + 64];
        snprintf (text, sizeof text, "statement %s takes %d parameters, not %d",
                  stmt->name, stmt->nparams, nparams);
        s_set_errmsg (self, text);
        code = TL_EINVAL;
    }
    if (code) {
        if (err)
            *err = code;
        return NULL;
    }
    s_call_t call = { S_PREPARED, stmt->name, NULL, nparams, values, lengths, formats };
    return s_run (self, &call, err);
}

PGresult *
tl_db_exec (tl_db_t *self, const char *name, int nparams,
            const char *const *values, int *err)
{
    return tl_db_exec_bin (self, name, nparams, values, NULL, NULL, err);
}

long
tl_db_exec_count (tl_db_t *self, const char *name, int nparams,
                  const char *const *values)
{
    int err = 0;
    PGresult *r = tl_db_exec (self, name, nparams, values, &err);
    if (!r)
        return err;
    long count = strtol (PQcmdTuples (r), NULL, 10);
    PQclear (r);
    return count >= 0 ? count : TL_EDB;
}

PGresult *
tl_db_query (tl_db_t *self, const char *sql, int nparams,
             const char *const *values, int *err)
{
    assert (self);
    int code = s_check_params (self, nparams, values);
    if (code == 0 && !sql) {
        s_set_errmsg (self, "no SQL");
        code = TL_EINVAL;
    }
    if (code) {
        if (err)
            *err = code;
        return NULL;
    }
    s_call_t call = { S_PARAMS, NULL, sql, nparams, values, NULL, NULL };
    return s_run (self, &call, err);
}

int
tl_db_script (tl_db_t *self, const char *sql)
{
    assert (self);
    if (!sql)
        return TL_EINVAL;
    s_call_t call = { S_SIMPLE, NULL, sql, 0, NULL, NULL, NULL };
    int code = 0;
    PQclear (s_run (self, &call, &code));
    return code;
}

//  ---------------------------------------------------------------------
//  Transactions

//  Sleeps TL_DB_RETRY_BASE_MS * 2^retry plus as much again at random.
static void
s_backoff (int retry)
{
    uint32_t base_us = (uint32_t) TL_DB_RETRY_BASE_MS * 1000u << (retry < 10 ? retry : 10);
    uint32_t us = base_us + randombytes_uniform (base_us + 1);
    struct timespec ts = { us / 1000000, (long) (us % 1000000) * 1000 };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void
s_rollback (tl_db_t *self)
{
    if (!self->lost && PQstatus (self->conn) == CONNECTION_OK)
        s_command (self, "ROLLBACK");
}

//  Commits; a transaction left in error is rolled back and its first
//  error's code returned.
static int
s_commit (tl_db_t *self)
{
    if (PQtransactionStatus (self->conn) == PQTRANS_INERROR) {
        int code = self->tx_error ? self->tx_error : TL_EDB;
        s_rollback (self);
        return code;
    }
    s_call_t call = { S_PARAMS, NULL, "COMMIT", 0, NULL, NULL, NULL };
    int code = 0;
    PGresult *r = s_run (self, &call, &code);
    if (r && strcmp (PQcmdStatus (r), "COMMIT") != 0) {
        s_set_errmsg (self, "the transaction was rolled back at COMMIT");
        code = self->tx_error ? self->tx_error : TL_EDB;
    }
    PQclear (r);
    return code;
}

//  Runs (when `run`) and frees the hooks registered at `depth` or deeper.
static void
s_hooks_end (tl_db_t *self, int depth, bool run)
{
    int kept = 0;
    for (int i = 0; i < self->nhooks; i++) {
        s_hook_t *hook = &self->hooks [i];
        if (hook->depth < depth) {
            self->hooks [kept++] = *hook;
            continue;
        }
        if (run)
            hook->fn (hook->arg);
        if (hook->free_fn)
            hook->free_fn (hook->arg);
    }
    self->nhooks = kept;
}

int
tl_db_after_commit (tl_db_t *self, tl_db_commit_fn *fn, void *arg, tl_db_free_fn *free_fn)
{
    assert (self);
    assert (fn);
    if (self->depth == 0) {
        fn (arg);
        if (free_fn)
            free_fn (arg);
        return 0;
    }
    if (self->nhooks == TL_DB_MAX_COMMIT_HOOKS) {
        if (free_fn)
            free_fn (arg);
        return TL_ETOOBIG;
    }
    self->hooks [self->nhooks++] = (s_hook_t) { fn, arg, free_fn, self->depth };
    return 0;
}

//  Runs fn inside a savepoint of the current transaction.
static int
s_savepoint (tl_db_t *self, tl_db_tx_fn *fn, void *arg)
{
    int rc = s_command (self, "SAVEPOINT " S_SAVEPOINT);
    if (rc)
        return rc;
    self->depth++;
    int saved_error = self->tx_error;
    self->tx_error = 0;
    rc = fn (self, arg);
    if (self->lost)
        rc = TL_EUNAVAIL;
    else {
        if (rc == 0 && PQtransactionStatus (self->conn) == PQTRANS_INERROR)
            rc = self->tx_error ? self->tx_error : TL_EDB;
        if (rc == 0)
            rc = s_command (self, "RELEASE SAVEPOINT " S_SAVEPOINT);
        else
        if (s_command (self, "ROLLBACK TO SAVEPOINT " S_SAVEPOINT) == 0)
            s_command (self, "RELEASE SAVEPOINT " S_SAVEPOINT);
    }
    if (rc)
        s_hooks_end (self, self->depth, false);    //  undone with the savepoint
    else
        for (int i = 0; i < self->nhooks; i++)      //  now the enclosing level's
            if (self->hooks [i].depth == self->depth)
                self->hooks [i].depth--;
    self->depth--;
    //  the enclosing level is healthy again unless the connection died
    self->tx_error = self->lost ? TL_EUNAVAIL : saved_error;
    return rc;
}

int
tl_db_tx (tl_db_t *self, tl_db_tx_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (self->depth > 0)
        return s_savepoint (self, fn, arg);

    self->errmsg [0] = 0;
    for (int attempt = 0; ; attempt++) {
        int rc = s_command (self, "BEGIN");
        if (rc)
            return rc;
        self->depth = 1;
        self->tx_error = 0;
        rc = fn (self, arg);
        bool lost = self->lost;
        if (lost)
            rc = TL_EUNAVAIL;       //  nothing was committed: safe to run again
        else
        if (rc == 0)
            rc = s_commit (self);   //  lost here: outcome unknown, no retry
        else
            s_rollback (self);
        self->depth = 0;
        self->lost = false;
        self->tx_error = 0;
        s_hooks_end (self, 1, rc == 0);
        bool retry = rc == TL_ERETRY || lost;
        if (!retry || attempt >= TL_DB_TX_RETRIES)
            return rc;
        if (lost)
            tl_log (TL_LOG_WARN, NULL, "database connection lost in a transaction;"
                    " running it again");
        s_backoff (attempt);
    }
}

bool
tl_db_in_tx (tl_db_t *self)
{
    return self && self->depth > 0;
}

bool
tl_db_ping (tl_db_t *self)
{
    if (!self)
        return false;
    if (self->depth > 0)
        return !self->lost && PQstatus (self->conn) == CONNECTION_OK;
    int code = 0;
    s_call_t call = { S_PARAMS, NULL, "SELECT 1", 0, NULL, NULL, NULL };
    PGresult *r = s_run (self, &call, &code);
    const char *one = tl_db_value (r, 0, 0);
    bool ok = one && strcmp (one, "1") == 0;
    PQclear (r);
    return ok;
}

const char *
tl_db_errmsg (tl_db_t *self)
{
    return self ? self->errmsg : "";
}

PGconn *
tl_db_conn (tl_db_t *self)
{
    assert (self);
    return self->conn;
}

int64_t
tl_db_parse_int64 (const char *text)
{
    if (!text)
        return 0;
    const char *c = text + (*text == '-');
    uint64_t value = 0;
    int digits = 0;
    for (; *c >= '0' && *c <= '9' && digits < 18; c++, digits++)
        value = value * 10 + (uint64_t) (*c - '0');
    if (*c || digits == 0)
        return strtoll (text, NULL, 10);        //  long, or not plain digits
    return *text == '-' ? -(int64_t) value : (int64_t) value;
}

double
tl_db_parse_double (const char *text)
{
    static const double scale [] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
        1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
    if (!text)
        return 0;
    const char *c = text + (*text == '-');
    uint64_t mantissa = 0;
    int significant = 0, decimals = 0, digits = 0;
    bool point = false;
    for (;; c++) {
        if (*c == '.' && !point) {
            point = true;
            continue;
        }
        if (*c < '0' || *c > '9')
            break;
        digits++;
        decimals += point;
        mantissa = mantissa * 10 + (uint64_t) (*c - '0');
        significant += mantissa != 0;
        if (significant > 15 || decimals > 22)
            return strtod (text, NULL);
    }
    if (*c || digits == 0)
        return strtod (text, NULL);             //  an exponent, NaN, Infinity
    //  Both operands exact (mantissa < 2^53, 10^decimals <= 10^22): the
    //  quotient is the double nearest the decimal, as strtod's
    double value = (double) mantissa / scale [decimals];
    return *text == '-' ? -value : value;
}

const char *
tl_db_value (const PGresult *r, int row, int col)
{
    if (!r || row < 0 || col < 0 || row >= PQntuples (r) || col >= PQnfields (r))
        return NULL;
    if (PQgetisnull (r, row, col))
        return NULL;
    return PQgetvalue (r, row, col);
}

//  ---------------------------------------------------------------------
//  Self-test

//  Runs one statement that must succeed and returns its result.
static PGresult *
s_test_query (tl_db_t *db, const char *sql, int nparams, const char *const *values)
{
    int err = 0;
    PGresult *r = tl_db_query (db, sql, nparams, values, &err);
    if (!r)
        fprintf (stderr, "\n%s: %s (%s)\n", sql, tl_strerror (err), tl_db_errmsg (db));
    assert (r);
    assert (err == 0);
    return r;
}

//  Runs one statement that must succeed; returns the first value as int.
static int
s_test_int (tl_db_t *db, const char *sql, int nparams, const char *const *values)
{
    PGresult *r = s_test_query (db, sql, nparams, values);
    const char *value = tl_db_value (r, 0, 0);
    int n = value ? atoi (value) : -1;
    PQclear (r);
    return n;
}

static int
s_test_insert (tl_db_t *db, const char *id, const char *name, const char *note)
{
    const char *values [] = { id, name, note };
    int err = 0;
    PGresult *r = tl_db_exec (db, "test_insert", 3, values, &err);
    if (r) {
        assert (strcmp (PQcmdTuples (r), "1") == 0);
        PQclear (r);
    }
    return err;
}

static bool
s_test_has (tl_db_t *db, const char *id)
{
    const char *values [] = { id };
    return s_test_int (db, "SELECT count(*) FROM t WHERE id = $1", 1, values) == 1;
}

typedef struct {
    tl_db_t *other;             //  a second connection
    int attempts;               //  how often the body ran
    int result;                 //  what the body returns
    const char *id;
} s_test_ctx_t;

static int
s_test_insert_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    ctx->attempts++;
    assert (tl_db_in_tx (db));
    int rc = s_test_insert (db, ctx->id, ctx->id, NULL);
    return rc ? rc : ctx->result;
}

//  Inserts a row, then fails a statement and returns 0 regardless.
static int
s_test_swallow_tx (tl_db_t *db, void *arg)
{
    assert (s_test_insert (db, "12", "twelve", NULL) == 0);
    assert (s_test_insert (db, "13", "one", NULL) == TL_EEXIST);
    return 0;
}

//  One savepoint level more, around s_test_insert_tx.
static int
s_test_deeper_tx (tl_db_t *db, void *arg)
{
    return tl_db_tx (db, s_test_insert_tx, arg);
}

static int
s_test_nested_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    assert (s_test_insert (db, "20", "twenty", NULL) == 0);
    //  an inner failure rolls back only the inner work
    s_test_ctx_t inner = { NULL, 0, TL_ENOTFOUND, "21" };
    assert (tl_db_tx (db, s_test_insert_tx, &inner) == TL_ENOTFOUND);
    //  a server error inside: the savepoint absorbs it
    inner = (s_test_ctx_t) { NULL, 0, 0, "1" };
    assert (tl_db_tx (db, s_test_insert_tx, &inner) == TL_EEXIST);
    assert (inner.attempts == 1);       //  no retry at savepoint level
    //  a successful inner level, itself nesting one more
    inner = (s_test_ctx_t) { NULL, 0, 0, "22" };
    assert (tl_db_tx (db, s_test_deeper_tx, &inner) == 0);
    assert (tl_db_in_tx (db));
    return ctx->result;
}

//  Commit hooks: each adds its number to a sum when it runs; each
//  argument counts its frees.
typedef struct {
    int *sum;
    int value;
    int freed;
} s_test_hook_t;

static void
s_test_hook_run (void *arg)
{
    s_test_hook_t *hook = (s_test_hook_t *) arg;
    *hook->sum += hook->value;
}

static void
s_test_hook_free (void *arg)
{
    ((s_test_hook_t *) arg)->freed++;
}

//  Registers hooks [0] at this level, [1] in a savepoint that fails, [2]
//  in one that succeeds; returns the result of arg [3]'s value.
static int
s_test_hooked_inner_tx (tl_db_t *db, void *arg)
{
    s_test_hook_t *hook = (s_test_hook_t *) arg;
    assert (tl_db_after_commit (db, s_test_hook_run, hook, s_test_hook_free) == 0);
    return hook->value == 2 ? TL_ENOTFOUND : 0;
}

static int
s_test_hooked_tx (tl_db_t *db, void *arg)
{
    s_test_hook_t *hooks = (s_test_hook_t *) arg;
    assert (tl_db_after_commit (db, s_test_hook_run, &hooks [0], s_test_hook_free) == 0);
    assert (*hooks [0].sum == 0);               //  not before the commit
    assert (tl_db_tx (db, s_test_hooked_inner_tx, &hooks [1]) == TL_ENOTFOUND);
    assert (tl_db_tx (db, s_test_hooked_inner_tx, &hooks [2]) == 0);
    return hooks [3].value;
}

static int
s_test_prepare_tx (tl_db_t *db, void *arg)
{
    assert (tl_db_prepare (db, "test_in_tx", "SELECT $1::int + 1", 1) == 0);
    return TL_EINVAL;           //  roll back: the statement stays prepared
}

static int
s_test_timeout_tx (tl_db_t *db, void *arg)
{
    PQclear (s_test_query (db, "SET LOCAL statement_timeout = 50", 0, NULL));
    int err = 0;
    PGresult *r = tl_db_query (db, "SELECT pg_sleep(2)", 0, NULL, &err);
    assert (!r);
    return err;
}

//  A serialisable read, then another connection changes the row, then our
//  write: 40001 on the first attempt, success on the second.
static int
s_test_conflict (tl_db_t *db, s_test_ctx_t *ctx, bool first)
{
    const char *id [] = { "100" };
    s_test_int (db, "SELECT v FROM t WHERE id = $1", 1, id);
    if (first)
        PQclear (s_test_query (ctx->other, "UPDATE t SET v = v + 100 WHERE id = $1", 1, id));
    int err = 0;
    PGresult *r = tl_db_query (db, "UPDATE t SET v = v + 1 WHERE id = $1", 1, id, &err);
    PQclear (r);
    return err;
}

static int
s_test_serial_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    ctx->attempts++;
    PQclear (s_test_query (db, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0, NULL));
    return s_test_conflict (db, ctx, ctx->attempts == 1);
}

static int
s_test_serial_inner_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    return s_test_conflict (db, ctx, ctx->attempts == 1);
}

static int
s_test_serial_outer_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    ctx->attempts++;
    PQclear (s_test_query (db, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0, NULL));
    int rc = tl_db_tx (db, s_test_serial_inner_tx, ctx);
    if (ctx->attempts == 1)
        assert (rc == TL_ERETRY);
    return rc;
}

static int
s_test_always_retry_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    ctx->attempts++;
    return TL_ERETRY;
}

//  Kills `db`'s server process from the other connection and waits for it.
static void
s_test_kill (tl_db_t *db, tl_db_t *other)
{
    char pid [16];
    snprintf (pid, sizeof pid, "%d", PQbackendPID (tl_db_conn (db)));
    const char *values [] = { pid };
    PGresult *r = s_test_query (other, "SELECT pg_terminate_backend($1::int, 5000)", 1, values);
    assert (strcmp (tl_db_value (r, 0, 0), "t") == 0);
    PQclear (r);
}

static int
s_test_lost_tx (tl_db_t *db, void *arg)
{
    s_test_ctx_t *ctx = (s_test_ctx_t *) arg;
    ctx->attempts++;
    if (ctx->attempts == 1) {
        s_test_kill (db, ctx->other);
        int rc = s_test_insert (db, ctx->id, ctx->id, NULL);
        assert (rc == TL_EUNAVAIL);
        assert (tl_db_in_tx (db));
        //  nothing more runs on this transaction, not even on a new link
        assert (s_test_insert (db, ctx->id, ctx->id, NULL) == TL_EUNAVAIL);
        assert (!tl_db_ping (db));
        return rc;
    }
    return s_test_insert (db, ctx->id, ctx->id, NULL);
}

const char *
tl_db_test_url (const char *prefix, char *schema, size_t size)
{
    const char *url = getenv ("TALLY_TEST_DATABASE_URL");
    if (!url || !*url) {
        printf ("skipped (TALLY_TEST_DATABASE_URL not set) ");
        return NULL;
    }
    assert (sodium_init () >= 0);
    unsigned char random [4];
    randombytes_buf (random, sizeof random);
    snprintf (schema, size, "%s_%02x%02x%02x%02x", prefix,
              random [0], random [1], random [2], random [3]);
    return url;
}

int64_t
tl_db_test_scalar (tl_db_t *db, const char *sql, const char *param)
{
    const char *values [] = { param };
    int err = 0;
    PGresult *r = tl_db_query (db, sql, param ? 1 : 0, values, &err);
    if (!r)
        fprintf (stderr, "\n%s: %s\n", sql, tl_db_errmsg (db));
    assert (r);
    const char *value = tl_db_value (r, 0, 0);
    int64_t n = value ? strtoll (value, NULL, 10) : -1;
    PQclear (r);
    return n;
}

void
tl_db_test_drop (tl_db_t *db, const char *schema)
{
    char *quoted = PQescapeIdentifier (tl_db_conn (db), schema, strlen (schema));
    assert (quoted);
    char sql [128];
    snprintf (sql, sizeof sql, "DROP SCHEMA %s CASCADE", quoted);
    PQfreemem (quoted);
    int err = 0;
    PQclear (tl_db_query (db, sql, 0, NULL, &err));
    assert (err == 0);
}

void
tl_db_test (bool verbose)
{
    //  Numbers as text: the fast reads agree with strtoll and strtod
    {
        static const char *const texts [] = { "0", "-0", "12.34", "-200", "0.1", "1e+20",
            "NaN", "Infinity", "-Infinity", "123456789012345", "1234567890123456",
            "0.000000000000000000000001", "9223372036854775807", "-9223372036854775808",
            "99999999999999999999", "3.", ".5", "", "1.5e-07", "007", "12.340000",
            "0.30000000000000004", "4503599627370497" };
        for (size_t i = 0; i < sizeof texts / sizeof texts [0]; i++) {
            double want = strtod (texts [i], NULL), got = tl_db_parse_double (texts [i]);
            assert (isnan (want) ? isnan (got) : memcmp (&want, &got, sizeof want) == 0);
            assert (tl_db_parse_int64 (texts [i]) == strtoll (texts [i], NULL, 10));
        }
        char text [48];
        for (int i = 0; i < 300000; i++) {
            double value = i % 3 == 0 ? i / 100.0 : i % 3 == 1 ? -i / 7.0 : i * 1e-6;
            snprintf (text, sizeof text, "%.*g", 1 + i % 17, value);
            double want = strtod (text, NULL), got = tl_db_parse_double (text);
            assert (memcmp (&want, &got, sizeof want) == 0);
            snprintf (text, sizeof text, "%lld", (long long) (i * 7919LL - 1000000000LL) * 1000);
            assert (tl_db_parse_int64 (text) == strtoll (text, NULL, 10));
        }
        assert (tl_db_parse_double (NULL) == 0 && tl_db_parse_int64 (NULL) == 0);
    }
    char schema [40];
    const char *url = tl_db_test_url ("tl_db_test", schema, sizeof schema);
    if (!url)
        return;

    //  An unreachable server: NULL, never a half-made object
    tl_db_t *db = tl_db_new ("postgresql://nobody@/none?host=/nonexistent&port=1"
                             "&connect_timeout=1", schema);
    assert (db == NULL);
    tl_db_destroy (&db);        //  safe on NULL

    db = tl_db_new (url, schema);
    assert (db);
    tl_db_t *other = tl_db_new (url, schema);
    assert (other);
    assert (!tl_db_in_tx (db));
    assert (tl_db_ping (db));

    //  The schema, named with a quoted identifier; search_path reaches it
    char *quoted = PQescapeIdentifier (tl_db_conn (db), schema, strlen (schema));
    assert (quoted);
    char sql [256];
    snprintf (sql, sizeof sql, "CREATE SCHEMA %s", quoted);
    PQclear (s_test_query (db, sql, 0, NULL));
    PQclear (s_test_query (db, "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL UNIQUE,"
                               " note text, v int NOT NULL DEFAULT 0)", 0, NULL));
    const char *values [] = { schema };
    assert (s_test_int (db, "SELECT count(*) FROM pg_tables WHERE schemaname = $1"
                            " AND tablename = 't'", 1, values) == 1);
    PGresult *r = s_test_query (db, "SHOW statement_timeout", 0, NULL);
    assert (strcmp (tl_db_value (r, 0, 0), "5s") == 0);
    PQclear (r);

    //  Prepared statements: registration rules
    assert (tl_db_prepare (db, "test_insert",
                           "INSERT INTO t (id, name, note) VALUES ($1, $2, $3)", 3) == 0);
    assert (tl_db_prepare (db, "test_get", "SELECT name, note FROM t WHERE id = $1", 1) == 0);
    assert (tl_db_prepare (db, "test_get", "SELECT 1", 0) == TL_EEXIST);
    assert (tl_db_prepare (db, "test_bad", "SELEKT 1", 0) == TL_EDB);
    assert (strstr (tl_db_errmsg (db), "42601"));
    assert (tl_db_prepare (db, "", "SELECT 1", 0) == TL_EINVAL);
    char long_name [TL_DB_MAX_IDENT + 2];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    assert (tl_db_prepare (db, long_name, "SELECT 1", 0) == TL_ETOOBIG);
    int err = 0;
    assert (tl_db_exec (db, "test_bad", 0, NULL, &err) == NULL);
    assert (err == TL_ENOTFOUND);

    //  Parameters, NULLs and value access
    assert (s_test_insert (db, "1", "one", NULL) == 0);
    assert (s_test_insert (db, "2", "two", "a note") == 0);
    const char *one [] = { "1" };
    r = tl_db_exec (db, "test_get", 1, one, &err);
    assert (r && err == 0);
    assert (PQresultStatus (r) == PGRES_TUPLES_OK);
    assert (strcmp (tl_db_value (r, 0, 0), "one") == 0);
    assert (tl_db_value (r, 0, 1) == NULL);         //  SQL NULL
    assert (tl_db_value (r, 1, 0) == NULL);         //  no such row
    assert (tl_db_value (r, 0, 2) == NULL);         //  no such column
    assert (tl_db_value (r, -1, 0) == NULL);
    assert (tl_db_value (NULL, 0, 0) == NULL);
    PQclear (r);
    const char *two [] = { "2" };
    r = tl_db_exec (db, "test_get", 1, two, NULL);  //  err may be NULL
    assert (r && strcmp (tl_db_value (r, 0, 1), "a note") == 0);
    PQclear (r);
    //  Quotes in a value are data, not SQL
    assert (s_test_insert (db, "3", "o'brien\"; DROP TABLE t; --", NULL) == 0);
    assert (s_test_has (db, "3"));

    //  Errors mapped from SQLSTATEs
    assert (s_test_insert (db, "4", "one", NULL) == TL_EEXIST);        //  23505
    assert (strstr (tl_db_errmsg (db), "23505"));
    assert (s_test_insert (db, "x", "four", NULL) == TL_EINVAL);       //  22P02
    assert (s_test_insert (db, "4", NULL, NULL) == TL_EINVAL);         //  23502
    assert (s_test_insert (db, "99999999999", "big", NULL) == TL_EINVAL);  //  22003
    assert (tl_db_query (db, "SELECT * FROM no_such_table", 0, NULL, &err) == NULL);
    assert (err == TL_EDB);                                             //  42P01
    assert (tl_db_exec (db, "test_get", 2, two, &err) == NULL);
    assert (err == TL_EINVAL);                                          //  count
    assert (tl_db_query (db, "", 0, NULL, &err) == NULL);
    assert (err == TL_EINVAL);
    assert (tl_db_script (db, "SELECT 1; SELECT 2") == 0);
    assert (tl_db_script (db, "-- only a comment") == 0);
    assert (tl_db_script (db, "SELECT 1; SELEKT 2") == TL_EDB);

    //  Transactions: commit, rollback, an error swallowed by the body
    s_test_ctx_t ctx = { other, 0, 0, "10" };
    assert (tl_db_tx (db, s_test_insert_tx, &ctx) == 0);
    assert (!tl_db_in_tx (db));
    assert (s_test_has (db, "10"));
    ctx = (s_test_ctx_t) { other, 0, TL_ENOTFOUND, "11" };
    assert (tl_db_tx (db, s_test_insert_tx, &ctx) == TL_ENOTFOUND);
    assert (ctx.attempts == 1);
    assert (!s_test_has (db, "11"));
    assert (tl_db_tx (db, s_test_swallow_tx, NULL) == TL_EEXIST);
    assert (!s_test_has (db, "12"));

    //  Savepoints: inner levels roll back alone
    ctx = (s_test_ctx_t) { other, 0, 0, NULL };
    assert (tl_db_tx (db, s_test_nested_tx, &ctx) == 0);
    assert (s_test_has (db, "20") && !s_test_has (db, "21") && s_test_has (db, "22"));
    ctx = (s_test_ctx_t) { other, 0, TL_ENOTFOUND, NULL };
    PQclear (s_test_query (db, "DELETE FROM t WHERE id IN (20, 22)", 0, NULL));
    assert (tl_db_tx (db, s_test_nested_tx, &ctx) == TL_ENOTFOUND);
    assert (!s_test_has (db, "20") && !s_test_has (db, "22"));

    //  A statement prepared in a rolled-back transaction stays prepared
    assert (tl_db_tx (db, s_test_prepare_tx, NULL) == TL_EINVAL);
    r = tl_db_exec (db, "test_in_tx", 1, one, &err);
    assert (r && strcmp (tl_db_value (r, 0, 0), "2") == 0);
    PQclear (r);

    //  Statement timeout
    assert (tl_db_tx (db, s_test_timeout_tx, NULL) == TL_ETIMEDOUT);

    //  Commit hooks run after the commit, not for what rolled back, and
    //  every argument is freed once
    int sum = 0;
    s_test_hook_t hooks [4] = {
        { &sum, 1, 0 }, { &sum, 2, 0 }, { &sum, 4, 0 }, { &sum, 0, 0 }
    };
    assert (tl_db_tx (db, s_test_hooked_tx, hooks) == 0);
    assert (sum == 1 + 4);
    assert (hooks [0].freed == 1 && hooks [1].freed == 1 && hooks [2].freed == 1);
    sum = 0;
    memset (hooks, 0, sizeof hooks);
    for (int i = 0; i < 3; i++)
        hooks [i] = (s_test_hook_t) { &sum, 1 << i, 0 };
    hooks [3] = (s_test_hook_t) { &sum, TL_ENOTFOUND, 0 };
    assert (tl_db_tx (db, s_test_hooked_tx, hooks) == TL_ENOTFOUND);
    assert (sum == 0);
    assert (hooks [0].freed == 1 && hooks [1].freed == 1 && hooks [2].freed == 1);
    hooks [0] = (s_test_hook_t) { &sum, 8, 0 };
    assert (tl_db_after_commit (db, s_test_hook_run, &hooks [0], s_test_hook_free) == 0);
    assert (sum == 8 && hooks [0].freed == 1);  //  outside a transaction: at once

    //  A real serialization failure, retried: two connections, one row
    PQclear (s_test_query (db, "INSERT INTO t (id, name) VALUES (100, 'hundred')", 0, NULL));
    ctx = (s_test_ctx_t) { other, 0, 0, NULL };
    assert (tl_db_tx (db, s_test_serial_tx, &ctx) == 0);
    assert (ctx.attempts == 2);
    const char *hundred [] = { "100" };
    assert (s_test_int (db, "SELECT v FROM t WHERE id = $1", 1, hundred) == 101);
    //  ... raised inside a savepoint, retried by the outermost level
    ctx = (s_test_ctx_t) { other, 0, 0, NULL };
    assert (tl_db_tx (db, s_test_serial_outer_tx, &ctx) == 0);
    assert (ctx.attempts == 2);
    assert (s_test_int (db, "SELECT v FROM t WHERE id = $1", 1, hundred) == 202);
    //  ... and given up after TL_DB_TX_RETRIES
    ctx = (s_test_ctx_t) { other, 0, 0, NULL };
    assert (tl_db_tx (db, s_test_always_retry_tx, &ctx) == TL_ERETRY);
    assert (ctx.attempts == TL_DB_TX_RETRIES + 1);

    //  Reconnect: the server process dies between statements
    int pid = PQbackendPID (tl_db_conn (db));
    s_test_kill (db, other);
    r = tl_db_exec (db, "test_get", 1, one, &err);
    assert (r && err == 0);
    assert (strcmp (tl_db_value (r, 0, 0), "one") == 0);
    PQclear (r);
    assert (PQbackendPID (tl_db_conn (db)) != pid);
    r = tl_db_exec (db, "test_in_tx", 1, two, &err);    //  all re-prepared
    assert (r && strcmp (tl_db_value (r, 0, 0), "3") == 0);
    PQclear (r);
    assert (s_test_int (db, "SELECT count(*) FROM t WHERE id = 1", 0, NULL) == 1);
    r = s_test_query (db, "SHOW statement_timeout", 0, NULL);
    assert (strcmp (tl_db_value (r, 0, 0), "5s") == 0);
    PQclear (r);
    s_test_kill (db, other);
    assert (tl_db_ping (db));
    //  ... and inside a transaction: that transaction runs again, once
    ctx = (s_test_ctx_t) { other, 0, 0, "30" };
    assert (tl_db_tx (db, s_test_lost_tx, &ctx) == 0);
    assert (ctx.attempts == 2);
    assert (s_test_has (db, "30"));

    PQfreemem (quoted);
    tl_db_test_drop (db, schema);
    tl_db_destroy (&other);
    tl_db_destroy (&db);
    assert (db == NULL);
    tl_db_destroy (&db);
    if (verbose)
        printf ("(schema %s) ", schema);
}
