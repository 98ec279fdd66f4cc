//  auth_throttle.c — failed-login counters in PostgreSQL (see
//  auth_throttle.h).
#include "auth_throttle.h"
#include "tl_error.h"
#include "tl_migrate.h"         //  self-test only

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    //  $1 key, $2 limit, $3 window seconds: the seconds left, if locked
    { "throttle_check",
      "SELECT greatest (1, ceil (extract (epoch FROM window_start "
      "  + make_interval (secs => $3::int) - now ())))::int "
      "FROM throttle WHERE key = $1 AND failures >= $2::int "
      "AND window_start > now () - make_interval (secs => $3::int)", 3 },
    //  $1 key, $2 window seconds
    { "throttle_fail",
      "INSERT INTO throttle AS t (key, failures, window_start) VALUES ($1, 1, now ()) "
      "ON CONFLICT (key) DO UPDATE SET "
      "  failures = CASE WHEN t.window_start > now () - make_interval (secs => $2::int) "
      "                  THEN t.failures + 1 ELSE 1 END, "
      "  window_start = CASE WHEN t.window_start > now () - make_interval (secs => $2::int) "
      "                  THEN t.window_start ELSE now () END, "
      "  last_failure = now () "
      "RETURNING failures", 2 },
    //  $1 key, $2 failures before the back-off, $3 longest wait, $4 window
    //  seconds: the seconds left of the wait after the last failure
    //  (2^(failures - $2), at most $3), if any
    { "throttle_backoff",
      "SELECT greatest (1, ceil (extract (epoch FROM wait_until - now ())))::int FROM ("
      "  SELECT last_failure + make_interval (secs => least ($3::int, "
      "         power (2.0::float8, least (failures - $2::int, 30)::float8))) AS wait_until "
      "  FROM throttle WHERE key = $1 AND failures >= $2::int "
      "  AND window_start > now () - make_interval (secs => $4::int)) w "
      "WHERE wait_until > now ()", 4 },
    //  $1 key, $2 window seconds: the count, and the seconds left in the window
    { "throttle_hit",
      "INSERT INTO throttle AS t (key, failures, window_start) VALUES ($1, 1, now ()) "
      "ON CONFLICT (key) DO UPDATE SET "
      "  failures = CASE WHEN t.window_start > now () - make_interval (secs => $2::int) "
      "                  THEN t.failures + 1 ELSE 1 END, "
      "  window_start = CASE WHEN t.window_start > now () - make_interval (secs => $2::int) "
      "                  THEN t.window_start ELSE now () END "
      "RETURNING failures, greatest (1, ceil (extract (epoch FROM window_start "
      "  + make_interval (secs => $2::int) - now ())))::int", 2 },
    { "throttle_clear", "DELETE FROM throttle WHERE key = $1", 1 },
    { "throttle_purge",
      "DELETE FROM throttle WHERE window_start < now () - 2 * make_interval (secs => $1::int)", 1 },
};

static int
s_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Runs a statement that returns one integer (or no row: 0).
static int
s_scalar (tl_db_t *db, const char *name, int nparams, const char *const *values)
{
    int rc = s_prepare (db);
    if (rc)
        return rc;
    PGresult *res = tl_db_exec (db, name, nparams, values, &rc);
    if (!res)
        return rc;
    const char *value = tl_db_value (res, 0, 0);
    int result = value ? atoi (value) : 0;
    PQclear (res);
    return result;
}

void
auth_throttle_key (char key [AUTH_THROTTLE_MAX_KEY + 1], const char *prefix, const char *text)
{
    snprintf (key, AUTH_THROTTLE_MAX_KEY + 1, "%s%s", prefix, text ? text : "");
    for (char *c = key; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
}

int
auth_throttle_check (tl_db_t *db, const char *key, int limit, int window)
{
    if (!key || strlen (key) > AUTH_THROTTLE_MAX_KEY)
        return TL_EINVAL;
    char limit_text [16], window_text [16];
    snprintf (limit_text, sizeof limit_text, "%d", limit);
    snprintf (window_text, sizeof window_text, "%d", window);
    const char *values [] = { key, limit_text, window_text };
    return s_scalar (db, "throttle_check", 3, values);
}

int
auth_throttle_backoff (tl_db_t *db, const char *key, int after, int max_wait, int window)
{
    if (!key || strlen (key) > AUTH_THROTTLE_MAX_KEY)
        return TL_EINVAL;
    char after_text [16], max_text [16], window_text [16];
    snprintf (after_text, sizeof after_text, "%d", after);
    snprintf (max_text, sizeof max_text, "%d", max_wait);
    snprintf (window_text, sizeof window_text, "%d", window);
    const char *values [] = { key, after_text, max_text, window_text };
    return s_scalar (db, "throttle_backoff", 4, values);
}

int
auth_throttle_fail (tl_db_t *db, const char *key, int window)
{
    if (!key || strlen (key) > AUTH_THROTTLE_MAX_KEY)
        return TL_EINVAL;
    char window_text [16];
    snprintf (window_text, sizeof window_text, "%d", window);
    const char *values [] = { key, window_text };
    return s_scalar (db, "throttle_fail", 2, values);
}

int
auth_throttle_hit (tl_db_t *db, const char *key, int limit, int window)
{
    if (!key || strlen (key) > AUTH_THROTTLE_MAX_KEY)
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char window_text [16];
    snprintf (window_text, sizeof window_text, "%d", window);
    const char *values [] = { key, window_text };
    PGresult *res = tl_db_exec (db, "throttle_hit", 2, values, &rc);
    if (!res)
        return rc;
    int count = atoi (tl_db_value (res, 0, 0));
    int wait = atoi (tl_db_value (res, 0, 1));
    PQclear (res);
    return count > limit ? wait : 0;
}

int
auth_throttle_clear (tl_db_t *db, const char *key)
{
    if (!key || strlen (key) > AUTH_THROTTLE_MAX_KEY)
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    long count = tl_db_exec_count (db, "throttle_clear", 1, &key);
    return count < 0 ? (int) count : 0;
}

int
auth_throttle_purge (tl_db_t *db, int window)
{
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char window_text [16];
    snprintf (window_text, sizeof window_text, "%d", window);
    const char *values [] = { window_text };
    long count = tl_db_exec_count (db, "throttle_purge", 1, values);
    return (int) count;
}

//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type.

//  Reads one of the auth schema's migrations from the source tree.
static char *
s_read_migration (const char *name, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/services/auth/migrations/%s", TALLY_SOURCE_DIR, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    char *data = (char *) calloc (1, 64 * 1024);
    assert (data);
    *size = fread (data, 1, 64 * 1024 - 1, file);
    fclose (file);
    return data;
}

//  Moves a key's window `seconds` into the past, as if time had passed.
static void
s_age (tl_db_t *db, const char *key, int seconds)
{
    char sql [200];
    snprintf (sql, sizeof sql, "UPDATE throttle SET window_start = window_start "
              "- make_interval (secs => %d) WHERE key = $1", seconds);
    tl_db_test_scalar (db, sql, key);
}

//  Moves a key's last failure `seconds` into the past.
static void
s_age_last (tl_db_t *db, const char *key, int seconds)
{
    char sql [200];
    snprintf (sql, sizeof sql, "UPDATE throttle SET last_failure = last_failure "
              "- make_interval (secs => %d) WHERE key = $1", seconds);
    tl_db_test_scalar (db, sql, key);
}

void
auth_throttle_test (bool verbose)
{
    char schema [40];
    const char *url = tl_db_test_url ("auth_throttle_test", schema, sizeof schema);
    if (!url)
        return;
    tl_db_t *db = tl_db_new (url, schema);
    assert (db);
    size_t size = 0, size2 = 0;
    char *sql = s_read_migration ("001_init.sql", &size);
    char *sql2 = s_read_migration ("002_throttle_backoff.sql", &size2);
    tl_embed_t files [] = { { "001_init.sql", sql, size },
                            { "002_throttle_backoff.sql", sql2, size2 }, { NULL, NULL, 0 } };
    assert (tl_migrate (db, schema, files) == 2);

    const int limit = 3, window = 900;
    //  Under the limit: allowed; at the limit: the seconds left
    assert (auth_throttle_check (db, "login:ann", limit, window) == 0);
    assert (auth_throttle_fail (db, "login:ann", window) == 1);
    assert (auth_throttle_fail (db, "login:ann", window) == 2);
    assert (auth_throttle_check (db, "login:ann", limit, window) == 0);
    assert (auth_throttle_fail (db, "login:ann", window) == 3);
    int wait = auth_throttle_check (db, "login:ann", limit, window);
    assert (wait > window - 10 && wait <= window);
    //  Keys are independent
    assert (auth_throttle_check (db, "login:bob", limit, window) == 0);
    assert (auth_throttle_check (db, "ip:127.0.0.1", limit, window) == 0);
    //  Time passes: the wait shrinks, then the window ends and a new one opens
    s_age (db, "login:ann", 600);
    wait = auth_throttle_check (db, "login:ann", limit, window);
    assert (wait > 290 && wait <= 300);
    s_age (db, "login:ann", 301);
    assert (auth_throttle_check (db, "login:ann", limit, window) == 0);
    assert (auth_throttle_fail (db, "login:ann", window) == 1);      //  a new window
    //  A success clears the key
    assert (auth_throttle_fail (db, "login:bob", window) == 1);
    assert (auth_throttle_fail (db, "login:bob", window) == 2);
    assert (auth_throttle_fail (db, "login:bob", window) == 3);
    assert (auth_throttle_check (db, "login:bob", limit, window) > 0);
    assert (auth_throttle_clear (db, "login:bob") == 0);
    assert (auth_throttle_check (db, "login:bob", limit, window) == 0);
    assert (auth_throttle_clear (db, "login:nobody") == 0);
    //  Two connections (two instances) count together
    tl_db_t *other = tl_db_new (url, schema);
    assert (other);
    assert (auth_throttle_fail (other, "ip:10.0.0.1", window) == 1);
    assert (auth_throttle_fail (db, "ip:10.0.0.1", window) == 2);
    assert (auth_throttle_fail (other, "ip:10.0.0.1", window) == 3);
    assert (auth_throttle_check (db, "ip:10.0.0.1", limit, window) > 0);
    tl_db_destroy (&other);
    //  Hits count every request, not failures: the limit's own passes
    assert (auth_throttle_hit (db, "register:10.0.0.2", limit, window) == 0);
    assert (auth_throttle_hit (db, "register:10.0.0.2", limit, window) == 0);
    assert (auth_throttle_hit (db, "register:10.0.0.2", limit, window) == 0);
    wait = auth_throttle_hit (db, "register:10.0.0.2", limit, window);
    assert (wait > window - 10 && wait <= window);
    s_age (db, "register:10.0.0.2", window + 1);
    assert (auth_throttle_hit (db, "register:10.0.0.2", limit, window) == 0);
    assert (auth_throttle_clear (db, "register:10.0.0.2") == 0);
    //  Back-off: none before `after` failures; then a wait of 2^(failures -
    //  after) seconds after the last failure, at most `max`; it ends once
    //  that time has passed, and grows with each further failure
    const int after = 3, max = 60;
    for (int i = 0; i < 3; i++) {
        assert (auth_throttle_backoff (db, "account:cy", after, max, window) == 0);
        assert (auth_throttle_fail (db, "account:cy", window) == i + 1);
    }
    assert (auth_throttle_backoff (db, "account:cy", after, max, window) == 1);
    assert (auth_throttle_check (db, "account:cy", limit, window) > 0);   //  rules differ
    s_age_last (db, "account:cy", 2);
    assert (auth_throttle_backoff (db, "account:cy", after, max, window) == 0);
    for (int i = 0; i < 4; i++)
        assert (auth_throttle_fail (db, "account:cy", window) == 4 + i);
    wait = auth_throttle_backoff (db, "account:cy", after, max, window);
    assert (wait > 14 && wait <= 16);                                   //  2^4
    for (int i = 0; i < 100; i++)
        auth_throttle_fail (db, "account:cy", window);
    wait = auth_throttle_backoff (db, "account:cy", after, max, window);
    assert (wait > max - 5 && wait <= max);                             //  capped
    s_age_last (db, "account:cy", max + 1);
    assert (auth_throttle_backoff (db, "account:cy", after, max, window) == 0);
    s_age (db, "account:cy", window + 1);                               //  window over
    assert (auth_throttle_fail (db, "account:cy", window) == 1);
    assert (auth_throttle_backoff (db, "account:cy", after, max, window) == 0);
    assert (auth_throttle_clear (db, "account:cy") == 0);
    //  Purge keeps live windows, drops long-ended ones
    s_age (db, "login:ann", 2 * window + 5);
    assert (auth_throttle_purge (db, window) == 1);
    assert (tl_db_test_scalar (db, "SELECT count (*) FROM throttle", NULL) == 1);
    //  Bounds
    char long_key [AUTH_THROTTLE_MAX_KEY + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    assert (auth_throttle_fail (db, long_key, window) == TL_EINVAL);
    assert (auth_throttle_check (db, NULL, limit, window) == TL_EINVAL);

    tl_db_test_drop (db, schema);
    tl_db_destroy (&db);
    free (sql);
    free (sql2);
    if (verbose)
        printf ("(auth_throttle: limit, window, clear, two connections, hits, back-off, purge) ");
}
