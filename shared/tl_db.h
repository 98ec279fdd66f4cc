//  tl_db.h — one PostgreSQL connection (libpq) with the habits every Tally
//  service needs: a search_path set to the service's schema, a statement
//  timeout, prepared statements that survive a reconnect, errors mapped to
//  tl_error_t codes, and transactions that are retried on serialization
//  failures and deadlocks.
//
//  A tl_db_t belongs to one thread at a time. Results are ordinary libpq
//  PGresults in text format: read them with tl_db_value and PQclear them.
#ifndef TL_DB_H_INCLUDED
#define TL_DB_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <libpq-fe.h>

typedef struct _tl_db_t tl_db_t;

//  A transaction body for tl_db_tx: returns 0 to commit, or a negative
//  TL_E* code to roll back. It may run more than once (see tl_db_tx), so it
//  must start over cleanly each time.
typedef int (tl_db_tx_fn) (tl_db_t *db, void *arg);

//  Connects to `url` (a libpq URI or conninfo string; NULL or "" means the
//  PG* environment). When `schema` is not NULL, sets the session's
//  search_path to `schema, public` (the schema need not exist yet). Sets
//  statement_timeout to TL_DB_STATEMENT_TIMEOUT_MS and, unless the URL
//  names one, application_name "tally-<schema>". Returns NULL if it cannot
//  connect, after logging why as one error line on stderr.
tl_db_t *tl_db_new (const char *url, const char *schema);

//  Closes the connection (an open transaction is rolled back by the
//  server), frees the object and nulls the caller's reference. Safe on NULL.
void tl_db_destroy (tl_db_t **self_p);

//  Registers statement `name` (at most TL_DB_MAX_IDENT bytes) with
//  `nparams` parameters ($1..$n, at most TL_DB_MAX_PARAMS): it is prepared
//  now and again after every reconnect. Returns 0; TL_EEXIST if the name is
//  taken; TL_ETOOBIG past TL_DB_MAX_PREPARED statements or limits;
//  TL_EINVAL for a bad argument; or the code of the server's error (a bad
//  statement is not registered; see tl_db_errmsg).
int tl_db_prepare (tl_db_t *self, const char *name, const char *sql, int nparams);

//  One statement of a table handed to tl_db_prepare_all.
typedef struct {
    const char *name;
    const char *sql;
    int nparams;
} tl_db_statement_t;

//  Registers every statement of `table` (`count` entries, static storage)
//  that this connection does not have yet. A table once prepared costs
//  nothing on later calls, so a class may call this before each use.
//  Returns 0 or the first error of tl_db_prepare (TL_EEXIST is not one).
int tl_db_prepare_all (tl_db_t *self, const tl_db_statement_t *table, size_t count);

//  Runs prepared statement `name` with `nparams` text parameters (a NULL
//  value is SQL NULL; `values` may be NULL when nparams is 0). Returns the
//  result (PGRES_COMMAND_OK or PGRES_TUPLES_OK), which the caller PQclear()s,
//  or NULL with *err (when `err` is not NULL) set to:
//    TL_ERETRY     serialization failure or deadlock (40001, 40P01)
//    TL_EEXIST     unique violation (23505)
//    TL_EINVAL     another data or integrity error (22xxx, 23xxx), a
//                  parameter count that does not match the registration
//    TL_ETIMEDOUT  statement timeout or cancel (57014)
//    TL_ENOTFOUND  no statement registered under `name`
//    TL_EUNAVAIL   the connection is lost and could not be restored, or was
//                  lost inside a transaction (that transaction is gone)
//    TL_EDB        any other server error
//  Outside a transaction, a lost connection is re-established (statements
//  re-prepared) and the statement sent once more; a statement cut off in
//  flight may therefore, rarely, have run twice.
PGresult *tl_db_exec (tl_db_t *self, const char *name, int nparams,
                      const char *const *values, int *err);

//  As tl_db_exec, with binary parameters: parameter i is `lengths [i]`
//  bytes in binary format when `formats [i]` is 1 (e.g. raw bytea), text
//  otherwise. `lengths` and `formats` may be NULL (all text).
PGresult *tl_db_exec_bin (tl_db_t *self, const char *name, int nparams,
                          const char *const *values, const int *lengths,
                          const int *formats, int *err);

//  Runs a prepared statement that changes rows and returns how many it
//  changed (PQcmdTuples), or a negative code as tl_db_exec.
long tl_db_exec_count (tl_db_t *self, const char *name, int nparams,
                       const char *const *values);

//  As tl_db_exec for one unprepared, parameterised statement (PQexecParams):
//  for rare statements and DDL. `sql` holds one statement.
PGresult *tl_db_query (tl_db_t *self, const char *sql, int nparams,
                       const char *const *values, int *err);

//  Runs a trusted SQL script that may hold several statements and no
//  parameters (simple query protocol): for migrations compiled into the
//  binary, never for text that came from a request. Returns 0 or a code as
//  tl_db_exec's *err.
int tl_db_script (tl_db_t *self, const char *sql);

//  Runs fn (db, arg) inside BEGIN ... COMMIT. Returns 0 when committed, or
//  the negative code fn returned (after rolling back), or the code of a
//  failed BEGIN or COMMIT. A transaction that fn left in error (a statement
//  failed but fn returned 0) is rolled back and that error's code returned.
//  On TL_ERETRY (from fn or COMMIT), or when the connection was lost before
//  COMMIT, the transaction is rolled back and fn runs again after a
//  randomised back-off, up to TL_DB_TX_RETRIES more times. If the
//  connection is lost during COMMIT the outcome is unknown: TL_EUNAVAIL,
//  no retry. Called inside a transaction, runs fn inside a SAVEPOINT
//  instead, which is rolled back if fn fails; there is no retry at that
//  level (TL_ERETRY goes up to the outermost tl_db_tx, which retries).
int tl_db_tx (tl_db_t *self, tl_db_tx_fn *fn, void *arg);

//  True inside tl_db_tx.
bool tl_db_in_tx (tl_db_t *self);

//  What runs once a transaction's writes are committed, and how its
//  argument is freed.
typedef void (tl_db_commit_fn) (void *arg);
typedef void (tl_db_free_fn) (void *arg);

//  Runs fn (arg) right after the current transaction commits, on this
//  thread, before tl_db_tx returns; outside a transaction, at once. When
//  the transaction (or the savepoint it was registered in) rolls back, fn
//  never runs. Either way `arg` is then freed with free_fn (may be NULL).
//  For what other processes must learn only of committed data (a cache
//  invalidation must not race ahead of the write it announces). Returns 0,
//  or TL_ETOOBIG past TL_DB_MAX_COMMIT_HOOKS in one transaction (arg freed,
//  fn not run).
int tl_db_after_commit (tl_db_t *self, tl_db_commit_fn *fn, void *arg, tl_db_free_fn *free_fn);

//  True if the database answers SELECT 1, reconnecting if needed (outside
//  a transaction). For health reports.
bool tl_db_ping (tl_db_t *self);

//  The last error (server or connection) as one line of text, "" if none.
//  Borrowed: valid until the next call on this connection.
const char *tl_db_errmsg (tl_db_t *self);

//  The libpq connection, borrowed (for PQescapeIdentifier and the like).
//  Do not run statements on it behind tl_db's back.
PGconn *tl_db_conn (tl_db_t *self);

//  Value at (row, col) of a result, borrowed from `r`: NULL for SQL NULL,
//  for a NULL result and for a row or column out of range.
const char *tl_db_value (const PGresult *r, int row, int col);

//  A number as PostgreSQL writes it in a text result (an integer; a float8
//  or numeric: "12.34", "-0", "1e+20", "NaN"), read as strtoll and strtod
//  read it, faster for the common shapes (pages of rows read thousands):
//  plain digits by hand; a decimal of at most 15 significant digits and 22
//  decimals as one exact division, which rounds as strtod does. 0 for NULL.
int64_t tl_db_parse_int64 (const char *text);
double tl_db_parse_double (const char *text);

//  For self-tests that need PostgreSQL: returns TALLY_TEST_DATABASE_URL
//  and writes a fresh random schema name "<prefix>_<8 hex>" into `schema`;
//  returns NULL (after printing "skipped") when the variable is unset.
const char *tl_db_test_url (const char *prefix, char *schema, size_t size);

//  For self-tests: drops a throwaway schema and everything in it.
void tl_db_test_drop (tl_db_t *db, const char *schema);

//  For self-tests: runs `sql` (with one text parameter, or none when
//  `param` is NULL), asserting success; returns the first value as an
//  integer, or -1 when there is none.
int64_t tl_db_test_scalar (tl_db_t *db, const char *sql, const char *param);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void tl_db_test (bool verbose);

#endif
